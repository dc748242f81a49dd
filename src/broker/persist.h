/* Persistence: what makes durable definitions and persistent messages survive a restart, on
 * top of the message store (src/store/store.h) and the definitions log (src/store/defs_log.h).
 *
 * Definitions: a durable exchange, a durable non-exclusive queue, a binding whose two ends
 * are durable, and every policy are written to the definitions log when they are created and
 * removed from it when they go; at start recovery (src/broker/recovery.h) creates them again
 * before any client connects.
 *
 * Messages: a persistent message (delivery-mode 2) routed to durable queues is appended to
 * the store once, with the ids of those queues; each queue that holds it records in the store
 * when it leaves (ack, reject, expiry, limits, purge), comes back (requeue, with its delivery
 * count) or is first delivered. A publisher confirm for it waits until the store reports the
 * append fsynced.
 *
 * Everything here does nothing when the broker runs without a data directory (vh->persist is
 * NULL), as the connection fuzz target does. */
#ifndef WARREN_SRC_BROKER_PERSIST_H
#define WARREN_SRC_BROKER_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/hmap.h"
#include "src/store/store.h"

struct ev_loop;
struct auth_db;
struct queue_budget;
struct vhost;
struct exchange;
struct queue;
struct xbinding;
struct message;
struct store;
struct defs_log;

struct persist {
    struct store *store;
    struct defs_log *defs;
    uint32_t next_queue_id;
    bool replaying;            /* creating what the log holds: do not write it again */
    uint64_t durable_seq;      /* last store sequence reported durable */
    /* Told when the store reports a sequence durable: publisher confirms wait for it. The
     * server points it at its channels (src/broker/server.c); persistence knows no channel. */
    void (*durable_cb)(void *ctx, uint64_t durable_seq);
    void *durable_ctx;
    /* Told when the store fails (with durable_ctx): confirms still waiting are nacked. */
    void (*failure_cb)(void *ctx);
    /* The stream logs' group commit (src/broker/stream.h) and who hears of it (with
     * durable_ctx): confirms of stream publishes wait for it. */
    struct stream_sync *streams;
    void (*stream_durable_cb)(void *ctx, uint64_t stream_durable_seq);
    bool failed;               /* the store failed: persistent publishes are refused until
                                * persist_resume() */
    char *spill_dir;           /* DATA_DIR/spill */
    char *dir;
    uint8_t *read_buf;         /* for persist_load */
    size_t read_buf_size;
};

/* How definitions are encoded in the definitions log, written here and read back by
 * recovery.c:
 *
 * key   vhost 0x00 name                                      (exchange, queue)
 *       vhost 0x00 source 0x00 kind destination 0x00 routing key 0x00 arguments
 *                                                            (binding; kind 'q' or 'e')
 * value exchange: shortstr type, u8 flags, arguments (table entries)
 *       queue:    u32 store id, u8 flags, arguments
 *       binding:  empty
 * flags: 1 durable, 2 auto-delete, 4 internal (exchanges); a policy's encoding is beside
 * policy_key in persist.c */

enum { DEF_DURABLE = 1, DEF_AUTO_DELETE = 2, DEF_INTERNAL = 4 };

/* Start-up, in this order: persist_open takes the data directory (its lock, the store, the
 * definitions log) and returns the persistence, or NULL with the reason in err;
 * persist_auth_load brings back the users, vhosts and permissions into db (an entry this
 * version refuses is dropped with an error: definitions_recover); the server creates its
 * vhosts (persist_attach each: with persistence a queue spills its backlog beyond
 * memory_window, within budget); recovery_run (src/broker/recovery.h) creates the durable
 * exchanges, queues, bindings and policies again and gives the queues their messages.
 * persist_auth_load and recovery_run return 0, or -1 with the reason in err. The functions
 * that take p accept p == NULL (no data directory) and then do nothing. */
struct persist *persist_open(struct ev_loop *loop, const char *dir, uint32_t sync_interval_ms,
                             char *err, size_t err_size);
int persist_auth_load(struct persist *p, struct auth_db *db, char *err, size_t err_size);
void persist_attach(struct persist *p, struct vhost *vh, uint32_t memory_window,
                    struct queue_budget *budget);
/* Recovery itself is recovery_run() (src/broker/recovery.h); when it is done, persist_start
 * lets the store report durability and failures. */
void persist_start(struct persist *p);
/* Writes the user database again (after any change to users, vhosts or permissions). */
void persist_auth_save(struct persist *p, const struct auth_db *db);
/* Flushes, closes and frees p; the vhosts are detached from it (they are freed after). */
void persist_close(struct persist *p, struct hmap *vhosts);

/* After the store failed (a full disk), once there is room again: the store writes what it
 * kept buffered and takes persistent messages again. 0, or -errno if it still cannot write. */
int persist_resume(struct persist *p);

/* Definitions. Each writes only what is durable, and nothing while replaying. The *_added
 * ones return 0, or -errno if the definitions log could not be written (logged): the caller
 * takes the object away again and refuses the method, as it would not survive a restart. */
int persist_exchange_added(struct exchange *x);
void persist_exchange_removed(struct exchange *x);
int persist_queue_added(struct queue *q);
void persist_queue_removed(struct queue *q);
int persist_binding_added(struct xbinding *xb);
void persist_binding_removed(struct xbinding *xb);

/* Groups the definition changes made until persist_batch_end() into one record of the
 * definitions log, written and synced once: a definitions import declares thousands of
 * objects, a slice of them per loop turn. Both calls must come in the same loop turn, so
 * that no client sees a change before it is durable. Batches do not nest; NULL p is fine. */
void persist_batch_begin(struct persist *p);
void persist_batch_end(struct persist *p);

/* Policies (src/broker/policy.h). */
struct policy;
void persist_policy_put(struct vhost *vh, const struct policy *p);
void persist_policy_delete(struct vhost *vh, const struct policy *p);

/* Messages. persist_publish stores m if it is persistent and one of the n queues it was
 * routed to is durable; returns the store sequence its confirm must wait for (0: none). */
uint64_t persist_publish(struct vhost *vh, struct message *m, struct queue *const *queues,
                         size_t n);
/* True if (q, m) is a reference the store knows. */
bool persist_tracks(const struct queue *q, const struct message *m);
void persist_left(struct queue *q, struct message *m);                /* ack, drop, purge */
void persist_returned(struct queue *q, struct message *m, uint32_t deliveries);
void persist_delivered(struct queue *q, struct message *m);           /* first delivery */
void persist_released(struct queue *q, struct message *m);            /* after queue deleted */
/* The same for a message the queue holds only by location (spilled). */
void persist_left_loc(struct queue *q, struct store_loc loc);
void persist_released_loc(struct queue *q, struct store_loc loc);
/* Reads a stored message back (a spilled one): a new message with one reference, or NULL
 * if the store cannot read it (logged). */
struct message *persist_load(struct vhost *vh, struct store_loc loc);

#endif
