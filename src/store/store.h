/* The message store: persistent messages of durable queues in append-only segment files,
 * their acknowledgements and delivery counts, recovery after a crash, and a paging area where
 * a long queue parks the tail of its backlog (transient messages included) out of memory.
 *
 * Layout of the data directory (store_open creates what is missing):
 *
 *   DIR/LOCK                   flock(2)ed for as long as the store is open; holds the pid
 *   DIR/msgs/00000001.seg ...  durable segments, fsynced by the group commit
 *   DIR/paging/00000001.seg    paging segments: never fsynced, deleted at open and close
 *   DIR/defs.log               the definitions log (src/store/defs_log.h), opened by the broker
 *                              after the store, so under the same lock
 *
 * A segment is a recfile (src/store/recfile.h, magic "WRNSEG\r\n", version 1, tag = its number)
 * holding records. A record's identity is its position: (segment, offset). The types:
 *
 *   MESSAGE       u16 queue_count, u32 queue_id[queue_count], shortstr exchange,
 *                 shortstr routing_key, u32 header_len, header (the content-header payload
 *                 as published), body (the rest of the record)
 *   ACK           u32 queue_id, u32 segment, u32 offset      the message left that queue
 *   RETURN        u32 queue_id, u32 segment, u32 offset, u32 deliveries
 *   DELIVERED     u32 queue_id, u32 segment, u32 offset
 *   QUEUE_DELETE  u32 queue_id, u32 segment, u32 offset      every message of that queue
 *                                                            stored before this position
 *   MESSAGE_TIMED u64 published_ms, u64 expires_ms, then as MESSAGE: the wall-clock times
 *                 a message's expiry is rebuilt from after a restart (store_msg). Written for
 *                 every durable message the broker stores; MESSAGE records of older data
 *                 directories are still read (their expiry restarts with the broker).
 *
 * A persistent message routed to several durable queues is written once, with every queue's
 * id; each (queue, message) pair is a reference, and a MESSAGE record is dead once all its
 * references are gone (ACK, QUEUE_DELETE). A 16-byte persistent message with no other
 * property, to one queue, is a record of 68 bytes plus its exchange and routing key names (8
 * frame + 1 type + 16 times + 2 + 4 queue id + 1 + 1 + 4 + 15 header + 16 body): 73 bytes for
 * routing key "bench" through the default exchange.
 *
 * ---- Deleting segments (why acks never resurrect messages) ----------------------------
 *
 * The store keeps, per segment, in memory: live_refs, the (queue, message) references still
 * alive among its MESSAGE records, and foreign_refs, how many of its other records point at
 * an older segment. A full segment (no longer appended to) whose live_refs reaches 0 is
 * deleted, wherever it is in the sequence, so a message stuck unacked in an old segment pins
 * only that segment, not everything written after it.
 *
 * The danger is the other direction: segment k may hold the ACK of a message that lives in
 * an older segment j still on disk (the message went to two queues, one acked it). Deleting k
 * alone would bring that reference back at recovery. So before k is deleted, every record
 * of k whose target segment still exists is appended again at the head (carried forward),
 * and k is unlinked only once those copies are fsynced. Records other than MESSAGE are
 * idempotent and name their target by position, so a copy means the same wherever it lies,
 * and a crash between copying and unlinking only leaves harmless duplicates. A QUEUE_DELETE
 * is carried while any older segment exists. A target counts as gone only once its unlink
 * has been made durable by an fsync of the directory, so a crash cannot bring back j after
 * k's copies were dropped. A segment without foreign_refs (the common case of messages
 * acked soon after publication) is unlinked without being read. A segment more than half of
 * whose bytes are records still needed is not carried (the copies would only fill the next
 * segment, which would be carried in turn, round and round): it is kept until a segment its
 * records point at goes, and looked at again then.
 *
 * Disk use is therefore bounded by the segments holding live messages plus the carried
 * records, which all concern messages in segments still on disk (their acks, first
 * deliveries and returns: 21 to 25 bytes each). What it does not do yet is compaction: one
 * live message keeps its whole segment (16 MiB by default) on disk, and a message requeued
 * many times carries all its RETURN records, not just the last.
 *
 * ---- Delivered and redelivered ---------------------------------------------------------
 *
 * RabbitMQ sets redelivered after a restart only on messages that had been delivered. The
 * store records that cheaply: store_delivered() on a message's first delivery appends a
 * 21-byte DELIVERED record that rides along with the next group fsync (no fsync of its own).
 * A kill -9 loses nothing (the record is in the page cache by the end of the loop turn); a
 * power loss within the fsync interval may lose it, and then a delivered message comes back
 * without redelivered, the same window RabbitMQ's queue index has. A broker that prefers the
 * cheapest path may skip store_delivered() and set redelivered on every recovered message,
 * which AMQP allows ("may have been delivered").
 *
 * ---- Group commit ----------------------------------------------------------------------
 *
 * Every durable record gets an append sequence number (1, 2, ...). Records go into a write
 * buffer; the loop thread writes it (one write(2)) at the end of each loop turn (an
 * ev_prepare watcher) or when it passes 1 MiB. A background thread then fdatasyncs
 * everything written since its last sync (and the directory, when segments were created
 * or removed) and posts back into the loop (ev_async); the callback set with
 * store_on_durable() is told "every record up to sequence N is durable": send the publisher
 * confirms for the messages with sequence <= N. With sync_interval_ms > 0 the thread waits
 * at least that long between fsyncs, trading latency for fewer fsyncs. While appends wait for
 * their fsync the store holds a reference on the loop, so ev_run() does not return before
 * the callback could report them.
 *
 * ---- Queue ids -------------------------------------------------------------------------
 *
 * The store names queues by a u32 the broker chooses; it never interprets them. The broker
 * keeps the id in the queue's definition record (src/store/defs_log.h) and gives new queues ids
 * above every recovered one. Reusing the id of a deleted queue is safe: QUEUE_DELETE only
 * removes messages stored before it.
 *
 * ---- Memory ----------------------------------------------------------------------------
 *
 * The store itself keeps a few dozen bytes per segment, never per message. The broker keeps,
 * per queued message, its struct store_loc (16 bytes) plus its own queue sequence number,
 * delivery count and flags: about 32 bytes per message that is not in memory, against the
 * whole message for one that is. A queue keeps a window of messages near its head in memory
 * and only the locations of the rest.
 *
 * ---- Threads ---------------------------------------------------------------------------
 *
 * Every function is called from the thread that runs the loop given to store_open(); the
 * store's own thread only fsyncs and never calls back by itself. Callbacks run on the loop.
 *
 * ---- Settings --------------------------------------------------------------------------
 *
 * struct store_options: sync_interval_ms is the configuration's persistence.sync_interval
 * (default 0: group commit without added delay); segment_bytes (default 16 MiB) has no
 * configuration key.
 *
 * ---- Integrating (what the broker calls when) ------------------------------------------
 *
 *   start:      store_open(); store_recover() (rebuild queues from the callbacks);
 *               store_on_durable()
 *   publish:    persistent message with durable target queues: store_append_message() with
 *               those queues' ids, keep the loc in each queue entry, remember the returned
 *               sequence against the publisher's confirm tag; confirm when durable
 *   deliver:    first delivery of a stored message: store_delivered()
 *   ack:        store_ack() (also for a message dropped by TTL, length limit, reject without
 *               requeue, dead-lettering: it left the queue)
 *   requeue:    store_requeue() with the new delivery count
 *   purge:      store_ack() for every purged message (unacked ones stay: AMQP purge only
 *               drops ready messages)
 *   delete:     store_queue_deleted(), then store_release() for every stored message the
 *               queue still references, ready or unacked; an unacked delivery of the
 *               deleted queue then needs no store call when it is acked or rejected
 *   page out:   store_page_out() to move a message out of memory; store_read() to bring it
 *               back; store_release() when its queue no longer needs the paged copy. A
 *               persistent message needs no paging: it is read back from its durable loc.
 *   shutdown:   store_close() (flushes and fsyncs)
 */
#ifndef WARREN_SRC_STORE_STORE_H
#define WARREN_SRC_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"

struct ev_loop;
struct store;

/* Where a record is. 16 bytes, kept by the broker in each queue entry. */
struct store_loc {
    uint32_t segment; /* segment number */
    uint32_t offset;  /* of the record in its segment */
    uint32_t size;    /* of the record, frame included: the buffer store_read needs */
    uint32_t flags;   /* STORE_LOC_PAGING */
};

#define STORE_LOC_PAGING 1u /* the record is in the paging area */

#define STORE_DEFAULT_SEGMENT_BYTES  (16u << 20)
#define STORE_MAX_QUEUES_PER_MESSAGE 65535

struct store_options {
    /* A segment takes no more records once this size is reached (a record bigger than this
     * gets a segment of its own). 0 means STORE_DEFAULT_SEGMENT_BYTES. */
    uint32_t segment_bytes;
    /* Minimum time between two fsyncs; 0 syncs as soon as appends are pending. */
    uint32_t sync_interval_ms;
};

/* A message as written and as read back. Read back, the byte strings borrow the caller's
 * buffer. */
struct store_msg {
    const uint32_t *queue_ids; /* distinct; NULL when queue_count is 0 */
    uint32_t queue_count;      /* reading fills in only this */
    /* Wall-clock milliseconds since the epoch, so that expiry keeps its schedule across a
     * restart: when the message was published (0: unknown, the record is written without
     * times), and its own deadline from the expiration property (0: none). */
    uint64_t published_ms;
    uint64_t expires_ms;
    struct wire_bytes exchange;
    struct wire_bytes routing_key;
    struct wire_bytes header; /* content-header payload as published */
    struct wire_bytes body;
};

/* Opens (creating if needed) the data directory dir and takes its lock; deletes what an
 * earlier run left in the paging area; starts the sync thread, whose completions arrive on
 * loop. opts may be NULL for the defaults. On failure returns NULL with the reason in err,
 * e.g. "data directory /var/lib/warren is in use by another warrend (pid 4242)". Call
 * store_recover() next. */
struct store *store_open(struct ev_loop *loop, const char *dir, const struct store_options *opts,
                         char *err, size_t err_size);

/* One live (queue, message) reference found by recovery. */
struct store_recovered {
    uint32_t queue_id;
    uint32_t deliveries; /* from the last store_requeue(), 0 if none */
    bool delivered;      /* delivered before the restart: set redelivered */
    struct store_loc loc;
    uint64_t published_ms; /* as stored with the message; 0 when it was stored without */
    uint64_t expires_ms;
};

typedef void (*store_recover_fn)(void *ctx, const struct store_recovered *r);

/* Scans every segment in order, checking each record's checksum, and calls cb once per live
 * reference, in publish order (so in order within each queue); the references of one message
 * come one after the other with the same loc, so it can be read once and shared. A torn or
 * corrupt tail of the last segment is cut off (truncated, with a warning naming file and
 * offset). A corrupt record elsewhere is logged as an error and skipped up to the next valid
 * record: a MESSAGE lost that way is lost, an ACK lost that way brings its message back
 * (at-least-once). Segments that hold nothing live are deleted.
 *
 * Inside cb only store_release() and store_read() may be called (e.g. a reference to a queue
 * the definitions no longer have: release it, then call store_queue_deleted() for that id
 * once store_recover() has returned). Must be called once, before any append. 0 or -errno
 * (reading a segment failed: the broker should not start). */
int store_recover(struct store *st, store_recover_fn cb, void *ctx);

/* cb(ctx, n) runs on the loop thread whenever every durable record with sequence <= n has
 * been fsynced. */
void store_on_durable(struct store *st, void (*cb)(void *ctx, uint64_t durable_seq), void *ctx);

/* cb(ctx, errno) runs once, on the loop thread, if writing or fsyncing fails. From then on
 * store_append_message() returns 0 and nothing more becomes durable: the broker should nack
 * confirms that are waiting and refuse persistent messages. Nothing written or buffered is
 * dropped: records a failed write left in the write buffer stay there (store_read() finds
 * them), and the small records (ack, return, delivered, queue deleted) are still buffered,
 * up to 16 MiB, so that consuming goes on. */
void store_on_failure(struct store *st, void (*cb)(void *ctx, int err), void *ctx);

/* After a failure, once the disk has room again: writes what the failed write left buffered
 * and lets the store take appends again (and report durability, and fail again, through the
 * same callbacks). After a failed fsync the active segment is sealed first, since the kernel
 * may have dropped its unwritten pages. 0, or -errno if writing still fails (the store stays
 * failed; try again later). */
int store_resume(struct store *st);

/* Appends a persistent message for m->queue_count durable queues (1 or more). Fills *loc
 * and returns the append sequence number, or 0 if the store has failed. */
uint64_t store_append_message(struct store *st, const struct store_msg *m, struct store_loc *loc);

/* The message at loc left queue queue_id (acked, or dropped: TTL, limits, dead-lettered).
 * Returns the record's sequence number (0 if the store has failed); nothing needs to wait
 * for it. */
uint64_t store_ack(struct store *st, uint32_t queue_id, struct store_loc loc);

/* The message came back to queue queue_id with this delivery count (nack, reject, recover,
 * a closed channel), so the count survives a restart. */
uint64_t store_requeue(struct store *st, uint32_t queue_id, struct store_loc loc,
                       uint32_t deliveries);

/* The message was delivered for the first time from queue queue_id (later deliveries need
 * no record: a requeue already implies it). */
uint64_t store_delivered(struct store *st, uint32_t queue_id, struct store_loc loc);

/* Queue queue_id was deleted: none of the messages stored for it so far comes back. The
 * broker then calls store_release() for each stored message the queue referenced. */
uint64_t store_queue_deleted(struct store *st, uint32_t queue_id);

/* Drops one reference without writing anything: for a durable loc, after
 * store_queue_deleted() (or for a recovered reference whose queue is gone); for a paging loc,
 * when a queue no longer needs its paged copy. */
void store_release(struct store *st, struct store_loc loc);

/* Writes a message to the paging area (never fsynced, gone after a restart). It stays there
 * until store_release() has been called once per queue in m->queue_count, or once if that
 * is 0. Returns 0, or -errno once a paging write has failed (the records are written at the
 * end of the loop turn, so the failure shows on the next call): keep messages in memory
 * then, and let the memory alarm act. store_read() of a message whose write failed returns
 * -EIO. */
int store_page_out(struct store *st, const struct store_msg *m, struct store_loc *loc);

/* Reads the message at loc (durable or paging) into buf, which must hold loc.size bytes;
 * out's byte strings borrow buf. Checks the record's checksum: -EIO (and an error logged)
 * if the record is corrupt; -ENOENT if loc names no segment that is still there; -errno of
 * pread otherwise. A message from the store is rebuilt with message_new(exchange,
 * routing_key, header, body.len) and message_append_body(body). */
int store_read(struct store *st, struct store_loc loc, void *buf, size_t buf_size,
               struct store_msg *out);

/* Writes the buffered records now rather than at the end of the loop turn. */
void store_flush(struct store *st);

struct store_stats {
    uint64_t appended_seq;  /* last sequence number handed out */
    uint64_t durable_seq;   /* last sequence number reported durable */
    uint64_t fsyncs;        /* fdatasync calls for durable segments */
    uint64_t records;       /* durable records appended */
    uint64_t bytes_written; /* durable bytes appended since open */
    uint64_t segments;      /* durable segment files on disk */
    uint64_t disk_bytes;    /* their total size */
    uint64_t paging_segments;
    uint64_t paging_bytes;
    uint64_t carried; /* records copied forward so a segment could be deleted */
};

void store_stats(const struct store *st, struct store_stats *out);
/* How long written records have waited for an fsync without any progress (0: nothing
 * waits). A cluster leader stops renewing its lease when this passes its stall timeout, so
 * a wedged disk cannot keep a leader that confirms nothing (CLUSTERING.md §2.5). Cheap. */
uint64_t store_sync_stalled_ms(const struct store *st);

/* stats.bytes_written alone, cheap enough to ask every loop turn. */
uint64_t store_bytes_written(const struct store *st);

/* ---- Tap (replication) -------------------------------------------------------------------
 *
 * An observer of every change to the durable segment files (msgs/), told on the loop thread
 * right after the change reached the file, in the order the changes reached the disk:
 * replaying the events into an empty directory (create the file and write the header,
 * write the bytes at the offset, truncate, unlink) gives the same msgs/ byte for byte.
 * Nothing is copied for the tap: the byte strings borrow the store's write buffer for the
 * duration of the call. The paging area is not tapped.
 *
 *   segment_created    the segment file now starts with its header (len bytes, the
 *                      16-byte recfile header); its first records follow as appends
 *   segment_appended   len bytes were written at offset; every record with an append
 *                      sequence number <= seq (the numbers store_on_durable() reports) is
 *                      in these bytes or in earlier ones
 *   segment_truncated  the file was cut to size bytes (store_recover() cutting a torn tail)
 *   segment_unlinked   the file was removed (a segment with nothing live; or, at recovery,
 *                      one set aside as corrupt)
 *
 * A callback must not call back into the store. Set the tap before store_recover() to see
 * what recovery cuts or removes. */
struct store_tap {
    void (*segment_created)(void *ctx, uint32_t segment, const uint8_t *header, size_t len);
    void (*segment_appended)(void *ctx, uint32_t segment, uint64_t offset, const uint8_t *data,
                             size_t len, uint64_t seq);
    void (*segment_truncated)(void *ctx, uint32_t segment, uint64_t size);
    void (*segment_unlinked)(void *ctx, uint32_t segment);
};

/* Sets (or with tap NULL removes) the tap; every member of *tap must be set. The store keeps
 * the pointers. */
void store_set_tap(struct store *st, const struct store_tap *tap, void *ctx);

/* Seals the active segment (if any) and starts a new one now, numbered at least min_number
 * (and above every segment there was), with its header written: what a new leader does so
 * that its epoch starts in a segment of its own. *number receives the new segment's number.
 * Call after store_recover(). 0, or -errno if the store has failed or the file could not be
 * created or written. */
int store_roll_segment(struct store *st, uint32_t min_number, uint32_t *number);

/* Flushes and fsyncs what is pending, stops the thread, deletes the paging area, releases
 * the lock and frees the store. NULL is accepted. The durable callback is not called. */
void store_close(struct store *st);

#endif
