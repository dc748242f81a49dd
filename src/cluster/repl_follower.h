/* The follower's side of replication (CLUSTERING.md §2.3, §2.7): connects to the leader,
 * authenticates (src/cluster/repl_proto.h), and applies the stream to its own data
 * directory: msgs/NNNNNNNN.seg and defs.log, the files a store and a definitions log opened
 * there after a promotion will find. No store may have the directory open meanwhile: the
 * follower holds the flock on DIR/LOCK that store_open() takes, so the caller frees the
 * follower before promoting.
 *
 * Writes are pwrite(2) on the loop thread (page cache); fdatasync runs on a thread of the
 * follower's own, grouped: every file touched since the last sync (and the directories,
 * after a segment was created or removed or defs.log replaced) in one pass, when the leader
 * asks (HEARTBEAT with the sync flag) or at the latest sync_delay_ms after the first
 * unsynced write. Only when that pass is done does the follower ack the position it
 * covers. Two exceptions block the loop briefly, both rare: the last piece of a replaced
 * defs.log is fsynced before its rename, and the removals that start a catch-up are fsynced
 * before the leader's epoch history is recorded (cluster.epochs must never claim a history
 * the files do not have yet).
 *
 * The highest epoch seen is kept in DIR/cluster.epoch (repl_proto.h); a leader with a lower
 * epoch is refused (and told so, after the follower proved it knows the secret, so that
 * leader learns it may be deposed).
 *
 * With a TLS context the follower connects with TLS (src/cluster/repl_link.h), presents its
 * certificate and verifies the leader's against the same CA; a failed TLS handshake (a
 * plain leader, another CA) is logged as a warning (once per reason every 10 s) and reported
 * through lost() with EPROTO.
 *
 * After a lost connection or a failed connect the follower tries again every retry_ms,
 * reporting each failure; connects refused outright (ECONNREFUSED: the host is up, no
 * process listens) are reported as such for the crash fast-path (CLUSTERING.md §2.6). The
 * caller stops it with repl_follower_free() (e.g. when the coordinator names another
 * leader) and may make a new one. Everything runs on the loop given to repl_follower_new();
 * callbacks too, and they must not free the follower. */
#ifndef WARREN_SRC_CLUSTER_REPL_FOLLOWER_H
#define WARREN_SRC_CLUSTER_REPL_FOLLOWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"

struct ev_loop;
struct repl_follower;
struct tls_server;

#define REPL_DEFAULT_RETRY_MS      100
#define REPL_DEFAULT_SYNC_DELAY_MS 10

struct repl_follower_options {
    const char *node_id;        /* this node's id (1..255 bytes) */
    const char *data_dir;       /* created if missing */
    const char *leader_address; /* the leader's cluster address, "host:port" */
    struct wire_bytes secret;   /* the cluster secret (copied) */
    uint32_t retry_ms;          /* 0: REPL_DEFAULT_RETRY_MS */
    uint32_t sync_delay_ms;     /* 0: REPL_DEFAULT_SYNC_DELAY_MS */
    uint32_t timeout_ms;        /* a leader silent this long is dropped; 0: 3000 */
    struct tls_server *tls;     /* cluster.tls.* (tls_mutual_new()), borrowed: it must outlive
                                   the follower; NULL: plain TCP */
};

enum repl_reject {
    REPL_REJECT_AUTH,        /* the leader's mac was wrong, or the leader refused ours */
    REPL_REJECT_STALE_EPOCH, /* the leader's epoch is below the highest seen (epoch: its) */
    REPL_REJECT_NEWER_EPOCH, /* the leader refused us: we have seen a newer epoch than its */
    REPL_REJECT_VERSION,     /* the leader speaks another protocol version */
};

const char *repl_reject_name(enum repl_reject why);

struct repl_follower_events {
    /* Authenticated; the leader's stream starts (the catch-up first). */
    void (*connected)(void *ctx, uint64_t leader_epoch);
    /* The catch-up is fsynced and acked: from here on the follower is within the live
     * stream (position: the leader's position it was planned at). */
    void (*caught_up)(void *ctx, uint64_t position);
    /* The follower acked position (its files are fsynced up to it). */
    void (*acked)(void *ctx, uint64_t position);
    /* The connection failed or was lost (err: an errno; refused: the connect got
     * ECONNREFUSED). The follower retries after retry_ms. */
    void (*lost)(void *ctx, int err, bool refused);
    /* The handshake failed for a reason a retry will not cure by itself; the follower
     * still retries after retry_ms. */
    void (*rejected)(void *ctx, enum repl_reject why, uint64_t epoch);
};

/* Takes the data directory's lock, reads the epoch seen and starts connecting. NULL with the
 * reason in err (a bad option, the directory in use, an unreadable cluster.epoch). */
struct repl_follower *repl_follower_new(struct ev_loop *loop,
                                        const struct repl_follower_options *opts,
                                        const struct repl_follower_events *events, void *ctx,
                                        char *err, size_t err_size);

/* The coordinator saw epoch (e.g. a new leader's election): recorded if higher than the
 * highest seen; a connection to a leader of a lower epoch is then closed. 0 or -errno
 * (writing cluster.epoch failed). */
int repl_follower_note_epoch(struct repl_follower *f, uint64_t epoch);

uint64_t repl_follower_epoch_seen(const struct repl_follower *f);
/* The last position acked to the current leader (0 when not connected). */
uint64_t repl_follower_acked(const struct repl_follower *f);
bool repl_follower_is_caught_up(const struct repl_follower *f);

/* Closes the connection, waits for an fsync under way, releases the lock, frees. Files are
 * left as they are (what was written but not synced is in the page cache; the next
 * follower or store finds it). NULL is accepted. */
void repl_follower_free(struct repl_follower *f);

#endif
