/* The durable definitions: an append-only log of changes (exchange declared, queue deleted,
 * binding added, user created, ...) from which the live set is rebuilt at start.
 *
 * The log knows entries only as (kind, key) -> value: kind is a small number naming the sort
 * of entity, key identifies it within its kind, value is whatever the broker needs to
 * rebuild it. The broker owns the encodings (DEFS_KIND_* below are the suggested kinds);
 * the log only promises that after a restart defs_log_foreach() presents exactly the entries
 * put and not deleted, with their last values.
 *
 * Suggested encodings (the broker may choose others, the log never parses them):
 *   key   vhost, 0x00, name (binding: vhost, 0x00, source, 0x00, kind, destination, 0x00,
 *         routing key, 0x00, arguments hash); the kind byte of a binding tells queue or
 *         exchange destinations apart
 *   value for a queue: u32 queue id (the id the message store knows it by), u8 flags
 *         (durable, exclusive, auto-delete), arguments as an encoded field table;
 *         exchanges: type shortstr, flags, arguments; bindings: arguments
 * New queues get an id above every id the replay presented (remember the largest).
 *
 * File format: a recfile (src/store/recfile.h; magic "WRNDEFS\n", version 1) of records
 *   PUT    u8 type=1, u8 kind, u16 key_len, key, value (the rest)
 *   DEL    u8 type=2, u8 kind, u16 key_len, key
 *   BATCH  u8 type=3, u32 count, then count times: u8 op (1 put, 2 del), u8 kind,
 *          u16 key_len, key, u32 value_len, value
 * Each change is one append and one fdatasync, so it costs O(1) whatever the size of the
 * live set; a batch (an exchange deleted with its bindings) is one record with one checksum,
 * so after a crash either all of it is there or none. Definitions change rarely, so each
 * change is synced on the spot, on the calling thread.
 *
 * Compaction: when the file is both larger than compact_min_bytes and more than
 * compact_ratio times the size the live set needs, the live set is written to PATH.tmp,
 * fsynced, renamed over PATH and the directory fsynced. A crash before the rename leaves the
 * old file whole (the stale PATH.tmp is removed at the next open); after it, the new one.
 *
 * Replay: a torn or corrupt record at the end of the file (a crash in the middle of an
 * append) is cut off with a warning; a corrupt record followed by valid ones is skipped with
 * an error (its change is lost, the rest is kept).
 *
 * The log is opened after the message store, whose lock on the data directory covers it. */
#ifndef WARREN_SRC_STORE_DEFS_LOG_H
#define WARREN_SRC_STORE_DEFS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"

enum defs_kind {
    DEFS_KIND_VHOST = 1,
    DEFS_KIND_EXCHANGE = 2,
    DEFS_KIND_QUEUE = 3,
    DEFS_KIND_BINDING = 4,
    DEFS_KIND_USER = 5,
    DEFS_KIND_PERMISSION = 6,
    DEFS_KIND_POLICY = 7,
    DEFS_KIND_PARAMETER = 8,
    DEFS_KIND_META = 9, /* broker-wide values (e.g. the next queue id) */
};

#define DEFS_MAX_KEY 65535

struct defs_log_options {
    uint64_t compact_min_bytes; /* 0: 1 MiB */
    uint32_t compact_ratio;     /* 0: 4 */
};

struct defs_log;

/* Opens or creates the log at path and replays it. NULL with the reason in err if the file
 * cannot be opened, read, or is not a definitions log. opts may be NULL. */
struct defs_log *defs_log_open(const char *path, const struct defs_log_options *opts, char *err,
                               size_t err_size);

typedef void (*defs_log_fn)(void *ctx, uint8_t kind, struct wire_bytes key,
                            struct wire_bytes value);

/* Calls fn for every live entry in the order the entries were first put (a delete and a new
 * put make a new entry), so an entity comes after those that existed when it was created:
 * vhost before exchange, exchange and queue before binding. The byte strings are valid
 * during the call. fn must not change the log. */
void defs_log_foreach(const struct defs_log *log, defs_log_fn fn, void *ctx);

/* The value of (kind, key), borrowed until the next change; false if there is none. */
bool defs_log_get(const struct defs_log *log, uint8_t kind, struct wire_bytes key,
                  struct wire_bytes *value);

size_t defs_log_count(const struct defs_log *log);

/* Creates or replaces (kind, key) (key at most DEFS_MAX_KEY bytes). Durable when it
 * returns 0; -errno if writing or syncing failed, and then nothing changed. */
int defs_log_put(struct defs_log *log, uint8_t kind, struct wire_bytes key,
                 struct wire_bytes value);

/* Removes (kind, key); 0 without writing anything if it does not exist. */
int defs_log_delete(struct defs_log *log, uint8_t kind, struct wire_bytes key);

/* Groups the puts and deletes until defs_log_commit() into one atomic record. Inside a batch
 * put and delete only collect (they return 0); the changes become visible, and durable,
 * when defs_log_commit() returns 0. Batches do not nest. */
void defs_log_begin(struct defs_log *log);
int defs_log_commit(struct defs_log *log);

/* Rewrites the log as the live set now (normally done by the changes themselves when the
 * file has grown past the thresholds). 0 or -errno; on failure the old file is kept. */
int defs_log_compact(struct defs_log *log);

struct defs_log_stats {
    uint64_t file_bytes; /* size of the log file */
    uint64_t live_bytes; /* size a compacted log would have */
    uint64_t entries;
    uint64_t compactions; /* since open */
};

void defs_log_stats(const struct defs_log *log, struct defs_log_stats *out);

/* A tap (replication): told, on the calling thread, of every change to the file once it is
 * durable, in order. appended: len bytes (whole records) now follow offset. replaced: a
 * compaction put a new file of size bytes in place of the old one; read its content from fd
 * (pread, borrowed for the call; the log keeps appending to it). Byte strings are borrowed
 * for the call. Replaying the events on a copy of the file as it was when the tap was set
 * gives the file byte for byte. The callbacks must not change the log. */
struct defs_log_tap {
    void (*appended)(void *ctx, uint64_t offset, const uint8_t *data, size_t len);
    void (*replaced)(void *ctx, int fd, uint64_t size);
};

/* Sets (or with tap NULL removes) the tap; both members must be set. The log keeps the
 * pointers. */
void defs_log_set_tap(struct defs_log *log, const struct defs_log_tap *tap, void *ctx);

/* Closes the log (every change is already durable). NULL is accepted. */
void defs_log_close(struct defs_log *log);

#endif
