/* The log of a stream queue: an append-only sequence of messages, each with an offset
 * (0, 1, 2, ...) that never changes, kept in segment files of its own and read back from
 * disk by any number of readers, each at its own position.
 *
 * Layout: DIR/streams/<queue id>/<first offset, 20 digits>.seg. A segment is a recfile
 * (src/store/recfile.h, magic "WRNSTRM\n", version 1, tag 0) of records back to back:
 *
 *   u8 type (1: message), u64 offset, u64 timestamp_ms (wall clock at publish), shortstr
 *   exchange, shortstr routing_key, u8 has_filter, shortstr filter_value, u32 header_len,
 *   header (the content-header payload as published), body (the rest of the record)
 *
 * Offsets grow by one from record to record across segments (a record that breaks the
 * sequence is corrupt); a segment's name is the offset of its first record. Retention removes
 * whole segments, oldest first, never the one appended to.
 *
 * Index: beside each segment, <first offset, 20 digits>.idx holds a sparse index of it, so
 * that a seek reads a few entries and scans at most one interval (4 KiB and one record) of
 * the segment instead of the segment from its start (up to 500 MB, on the loop thread). It
 * is a recfile header (magic "WRNSIDX\n", version 1, tag 0) and 36-byte entries:
 *
 *   u64 offset, u64 pos (file position of that record in the segment), u64 ts_before (the
 *   greatest timestamp of the segment's records before this one; meaningful if flags has
 *   HAS_TS), u32 record_crc (the checksum in that record's frame), u32 flags (1 END,
 *   2 HAS_TS), u32 crc (CRC-32C of the segment's first offset as a u64 followed by the 32
 *   bytes before it, so an entry of another segment does not pass)
 *
 * one for the segment's first record and one for each record starting at least 4 KiB after
 * the previous entry's record (about 0.9% of the segment's size: 4.4 MB for 500 MB). When the
 * next segment starts, an END entry closes the index: offset = the offset after the last
 * record, pos = the segment's size, ts_before = its greatest timestamp (HAS_TS unless it
 * has no record). Entries are written with the records they describe and never fsynced:
 * the index is a hint that is checked and rebuilt, never trusted over the segment.
 *   - Open: the last segment's index is rebuilt by the recovery scan, which reads the whole
 *     segment anyway (so an index left stale by a tail cut at recovery is never used). A
 *     sealed segment's index is used only if it ends with a valid END entry whose pos is
 *     the segment's size; that entry also gives the segment's greatest timestamp.
 *   - Seek: the entry is found by binary search, one pread(2) per step (nothing of the index
 *     is kept in memory); an entry with a wrong checksum, or one whose position does not
 *     hold a valid record with that offset and checksum, makes the index bad. (ts_before
 *     cannot be checked against the segment without reading it: it is trusted when its entry
 *     and the record it points at pass, which a stale or damaged index does not.)
 *   - A missing, short, corrupt or bad index is rebuilt from a scan of its segment when a
 *     seek first needs it (one full scan, what every seek cost before); if it cannot be
 *     written the seek scans the segment from its start.
 * Seeking to a time is "the first message, in offset order, whose timestamp is >= T",
 * exactly as a scan of the whole log finds it: the first segment whose greatest timestamp
 * is >= T, in it the last entry whose ts_before is < T, then a scan. Timestamps are the wall
 * clock at publish: if the clock stepped back, a message published after the step may carry
 * a smaller timestamp than older ones; the seek then starts at the first older message
 * stamped >= T (earlier than the caller might expect), never after a message stamped >= T.
 *
 * Memory: a few dozen bytes per segment, the write buffer and the index entries of the last
 * loop turn; nothing per message. A stream of 100 M messages costs what an empty one does,
 * plus its segment list.
 *
 * Durability: appends go to the log's write buffer, which is written at the end of the loop
 * turn (or when it passes 1 MiB, or when a reader needs what it holds); a thread shared by
 * all the logs of a broker (struct stream_sync) then fdatasyncs every file written and
 * reports "every append up to sequence N is durable" on the loop, as the message store's
 * group commit does (src/store/store.h): publisher confirms wait for that.
 *
 * Recovery (stream_log_open): the last segment is scanned and a torn or corrupt tail cut
 * off, so offsets continue where the last complete record left them (and its index is
 * rebuilt); the other segments are trusted (they were complete before the next one was
 * started) and checked record by record as they are read: a reader meeting a corrupt record
 * in one skips the rest of it, and a seek gives what such a reader would find.
 *
 * Threads: every function runs on the loop thread of the stream_sync. */
#ifndef WARREN_SRC_STORE_STREAM_LOG_H
#define WARREN_SRC_STORE_STREAM_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"

struct ev_loop;
struct stream_sync;
struct stream_log;

#define STREAM_DEFAULT_SEGMENT_BYTES 500000000u /* RabbitMQ's default */

/* The group commit of all stream logs. durable_cb(ctx, n): every append with sequence <= n
 * is fsynced. failure_cb(ctx, errno): a write or fsync failed; nothing more is reported
 * durable. */
struct stream_sync *stream_sync_new(struct ev_loop *loop,
                                    void (*durable_cb)(void *ctx, uint64_t durable_seq),
                                    void (*failure_cb)(void *ctx, int err), void *ctx);
/* Writes and fsyncs what is pending, stops the thread. Logs must be closed first. */
void stream_sync_free(struct stream_sync *y);

/* A message as appended and read back (read back, the byte strings borrow the reader). */
struct stream_record {
    uint64_t offset;
    uint64_t timestamp_ms;
    struct wire_bytes exchange;
    struct wire_bytes routing_key;
    bool has_filter;
    struct wire_bytes filter_value;
    struct wire_bytes header;
    struct wire_bytes body;
};

/* Opens (creating it if needed) the log in directory dir, recovering it. NULL with the
 * reason in err if the directory or a segment cannot be used. */
struct stream_log *stream_log_open(struct stream_sync *y, const char *dir, char *err,
                                   size_t err_size);
/* Writes what is buffered and frees the log (its readers must be gone). NULL is accepted. */
void stream_log_close(struct stream_log *l);
/* Closes the log and removes its files and directory (the stream was deleted). */
void stream_log_destroy(struct stream_log *l);

/* Appends a message (r->offset and r->timestamp_ms are filled in; the timestamp is taken as
 * given if not 0). Returns the sync sequence a confirm waits for, or 0 if the log cannot
 * be written (a failed write or fsync: refuse the publish). */
uint64_t stream_log_append(struct stream_log *l, struct stream_record *r);

/* Retention: the oldest segments go while the log holds more than max_bytes (0: no limit),
 * as RabbitMQ's do, and a segment goes once the newest message in it is older than
 * max_age_ms (0: no limit); never the segment appended to. New
 * segments start once the active one holds segment_bytes (0: the default). */
void stream_log_set_limits(struct stream_log *l, uint64_t max_bytes, uint64_t max_age_ms,
                           uint64_t segment_bytes);
/* Applies retention now (now_ms: wall clock); returns the segments removed. */
size_t stream_log_retain(struct stream_log *l, uint64_t now_ms);

/* The first offset still in the log, and the offset the next append gets (equal when the
 * log is empty). */
uint64_t stream_log_first_offset(const struct stream_log *l);
uint64_t stream_log_next_offset(const struct stream_log *l);
/* Bytes of its segment files, buffered bytes included (their .idx indexes, about 1% more,
 * are not counted); the number of segments. */
uint64_t stream_log_disk_bytes(const struct stream_log *l);
size_t stream_log_segment_count(const struct stream_log *l);

/* A position in the log, for one reader. */
struct stream_cursor {
    uint64_t offset;      /* of the next record to read */
    uint64_t seg_first;   /* first offset of the segment pos is in */
    uint64_t pos;         /* file offset of that record in its segment */
    uint8_t *buf;         /* read-ahead window of the segment */
    size_t cap, len;
    uint64_t buf_off;     /* file offset of buf[0] */
};

enum stream_seek {
    STREAM_SEEK_FIRST,
    STREAM_SEEK_LAST,   /* the last message there is (the next one if the log is empty) */
    STREAM_SEEK_NEXT,   /* only what is appended from now on */
    STREAM_SEEK_OFFSET, /* value: an offset, clamped to [first, next] */
    STREAM_SEEK_TIME,   /* value: wall-clock ms: the first message stamped at or after it */
};

/* Places c (zeroed, or one placed before) in l. 0 or -errno (reading a segment failed). */
int stream_cursor_seek(struct stream_log *l, struct stream_cursor *c, enum stream_seek how,
                       uint64_t value);
/* Reads the record at c into *out (borrowing c's buffer until the next call) and moves past
 * it. 1: a record; 0: c is at the end of the log; -errno: the log cannot be read. A cursor
 * whose segment was removed by retention moves to the first offset still there. */
int stream_cursor_next(struct stream_log *l, struct stream_cursor *c, struct stream_record *out);
void stream_cursor_free(struct stream_cursor *c);

#endif
