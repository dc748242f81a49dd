/* The leader's side of replication (CLUSTERING.md §2.3, §2.7), on the main libev loop.
 *
 * Followers connect (src/cluster/repl_proto.h has the wire format) and authenticate; each
 * one is brought up to date from the files of the data directory (the catch-up), then
 * follows the live stream the store's and the definitions log's taps feed. Nothing blocks
 * the loop on a follower: a catch-up reads at most 1 MiB of segment files per loop turn per
 * follower and only as fast as the socket drains; a follower whose unsent stream passes
 * backlog_max is dropped (LAGGING) and catches up from the files when it reconnects.
 *
 * With a TLS context (cluster.tls.*) the port speaks TLS only, and a follower must present a
 * certificate of the same CA (src/cluster/repl_link.h, tls_mutual_new()); the HMAC
 * handshake runs inside it as on plain TCP. A follower that speaks plain TCP to it, or TLS
 * to a plain leader, or has a certificate of another CA, is logged (warning, once per reason
 * every 10 s: repl_warn_level()) and closed.
 *
 * ---- Sync rate limit (cluster.sync_rate_limit) ------------------------------------------
 *
 * sync_rate caps, per follower, the file bytes of its catch-up: the definitions log and the
 * segment bytes read from the files for it (what repl_leader_stats.catchup_bytes counts),
 * not frame headers. Over any time t from the moment a catch-up is planned, at most
 * sync_rate x t of them are sent (only the definitions log, queued whole at the plan, may
 * run ahead of that). The live stream is never capped: neither what a follower gets once it
 * is past its catch-up, nor the changes kept in its backlog meanwhile (sent right after
 * the catch-up's files, and still bounded by backlog_max: a follower whose catch-up at this
 * rate cannot keep up with the writes is dropped as LAGGING and starts again). A throttled
 * catch-up waits on a timer; the loop never does. Several followers may catch up at once,
 * each at up to the rate.
 *
 * ---- Catch-up --------------------------------------------------------------------------
 *
 * From the follower's HELLO (its epoch history, its segments with their sizes, the size and
 * CRC-32C of its defs.log), at the moment the follower authenticates (position H0):
 *   1. D = repl_divergence(leader history, follower history): the follower's segments >= D
 *      were written by leaders this one did not follow, or past the end of the last epoch
 *      both share; they are removed (UNLINK). So are the follower's segments the leader no
 *      longer has, and a follower segment longer than the leader's is cut to the leader's
 *      size (TRUNCATE: the divergent tail of an older epoch).
 *      This rests on one rule: a leader writes only into segments of its own epoch (it rolls
 *      to a new segment when promoted: store_roll_segment() then repl_begin_epoch()), so
 *      below D, a segment of the same number is the same file on both nodes, one a prefix
 *      of the other.
 *   2. EPOCH: the leader's history, which the follower records once the removals above are
 *      on its disk.
 *   3. defs.log: if the follower's file is a prefix of the leader's (size and CRC), the rest
 *      is appended; otherwise the whole file is sent (REPLACE, atomic on the follower).
 *   4. Every leader segment the follower lacks (or has shorter) is sent from the file:
 *      CREATE with the header, then APPENDs from the follower's size to the size the file
 *      had at H0. Sealed segments are never re-read whole when the follower has them.
 *   5. HEARTBEAT(H0, LIVE); then the live changes after H0, which were kept meanwhile in the
 *      follower's backlog (bounded by backlog_max like the live stream).
 * A follower is LIVE once it acks a position >= H0.
 *
 * ---- Positions, acks, commit ---------------------------------------------------------
 *
 * repl_leader_position() is the stream position of everything tapped so far (repl_proto.h
 * defines positions). Each follower acks the position up to which its files are fsynced.
 * The commit position is the smallest acked position over the followers in the ISR
 * (repl_leader_set_isr(); an ISR member that is not connected holds the commit where its
 * last ack left it, until the caller removes it), or the head when the ISR has no follower.
 * on commit the caller also hears the highest store append sequence (the store's
 * store_on_durable() numbering) whose bytes every ISR follower has acked: a publisher
 * confirm for sequence S may go when S is durable locally and S <= that. For a definitions
 * change, remember repl_leader_position() right after it and wait until the commit reaches
 * it.
 *
 * Followers fsync when asked: at the end of every loop turn in which something was tapped
 * (unless lazy_sync; then only after repl_leader_request_sync()), the leader sends each
 * live follower HEARTBEAT with the sync flag; other heartbeats go every heartbeat_ms.
 *
 * ---- Threads, ownership ----------------------------------------------------------------
 *
 * Everything runs on the loop given to repl_leader_new(); the callbacks too. Callbacks must
 * not free the leader. The leader reads segment files and defs.log from data_dir by path
 * (for catch-ups) and never writes there. */
#ifndef WARREN_SRC_CLUSTER_REPL_LEADER_H
#define WARREN_SRC_CLUSTER_REPL_LEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"

struct ev_loop;
struct store;
struct defs_log;
struct repl_leader;
struct tls_server;

#define REPL_DEFAULT_BACKLOG_MAX  (64ull << 20)
#define REPL_DEFAULT_HEARTBEAT_MS 150
#define REPL_DEFAULT_TIMEOUT_MS   3000

struct repl_leader_options {
    const char *node_id;      /* this node's id (1..255 bytes), sent to followers */
    const char *data_dir;     /* the store's data directory: msgs/, defs.log, cluster.epochs */
    struct wire_bytes secret; /* the cluster secret (copied) */
    uint64_t epoch;           /* this leader's epoch, > 0 */
    uint64_t backlog_max;     /* cluster.follower_backlog_max; 0: REPL_DEFAULT_BACKLOG_MAX */
    uint64_t sync_rate;       /* cluster.sync_rate_limit, bytes per second; 0: unlimited */
    struct tls_server *tls;   /* cluster.tls.* (tls_mutual_new()), borrowed: it must outlive
                                 the leader; NULL: plain TCP */
    uint32_t heartbeat_ms;    /* 0: REPL_DEFAULT_HEARTBEAT_MS */
    uint32_t timeout_ms;      /* a follower silent this long is dropped; 0: the default */
    bool lazy_sync;           /* followers fsync only after repl_leader_request_sync() (and on
                                 their own timer) */
    bool compress;            /* segment data as APPEND_LZ4 where LZ4 makes it smaller
                                 (cluster.compression = lz4) */
};

enum repl_follower_state {
    REPL_FOLLOWER_CONNECTED,    /* authenticated, catching up */
    REPL_FOLLOWER_LIVE,         /* acked the end of its catch-up; follows the live stream */
    REPL_FOLLOWER_LAGGING,      /* dropped: its unsent stream passed backlog_max (it catches up
                                   from the files when it reconnects); no DISCONNECTED follows */
    REPL_FOLLOWER_DISCONNECTED, /* the connection is gone */
};

const char *repl_follower_state_name(enum repl_follower_state s);

struct repl_leader_events {
    /* A follower changed state (any member may be NULL). */
    void (*follower)(void *ctx, const char *node_id, enum repl_follower_state state);
    /* A follower acked a higher position. */
    void (*acked)(void *ctx, const char *node_id, uint64_t position);
    /* The commit position advanced; store_seq: every store append with sequence <= it is
     * in bytes all ISR followers acked. */
    void (*commit)(void *ctx, uint64_t position, uint64_t store_seq);
    /* An authenticated follower has seen a higher epoch than this leader's: this leader
     * may be deposed (ask the coordinator). The follower was refused. */
    void (*deposed)(void *ctx, const char *node_id, uint64_t epoch);
};

/* NULL with the reason in err if an option is invalid. Listens nowhere yet. */
struct repl_leader *repl_leader_new(struct ev_loop *loop, const struct repl_leader_options *opts,
                                    const struct repl_leader_events *events, void *ctx, char *err,
                                    size_t err_size);

/* Binds and listens on "host:port" (port 0: any free port, see repl_leader_port()). 0, or
 * -errno with the reason in err. */
int repl_leader_listen(struct repl_leader *l, const char *address, char *err, size_t err_size);
/* Accepts on a socket the caller bound and put in listening state (the leader owns it). */
void repl_leader_listen_fd(struct repl_leader *l, int fd);
/* The port listened on (0 if none). */
uint16_t repl_leader_port(const struct repl_leader *l);

/* Sets the store's and the definitions log's taps to this leader (either may be NULL). Call
 * before anything is written that followers should get: at promotion, after store_recover()
 * and store_roll_segment(). The leader keeps the pointers: either detach before closing
 * them, or close them attached (what closing writes is replicated too) and then call
 * repl_leader_attach(l, NULL, NULL), which forgets them without touching them. */
void repl_leader_attach(struct repl_leader *l, struct store *st, struct defs_log *defs);
void repl_leader_detach(struct repl_leader *l); /* NULL is accepted */

/* Stream position of everything tapped so far. */
uint64_t repl_leader_position(const struct repl_leader *l);
/* The commit position and the store sequence it covers (as last reported). */
uint64_t repl_leader_commit(const struct repl_leader *l);
uint64_t repl_leader_committed_seq(const struct repl_leader *l);

/* The ISR's followers by node id (this leader's own id is ignored). Followers not yet seen
 * count with acked position 0. The commit is re-evaluated (on_commit may follow, from the
 * loop, soon after). */
void repl_leader_set_isr(struct repl_leader *l, const char *const *node_ids, size_t count);

/* Asks every live follower to fsync and ack at the end of this loop turn (a confirm or a
 * durable declare waits). Without lazy_sync the leader does so after every write anyway. */
void repl_leader_request_sync(struct repl_leader *l);

struct repl_follower_info {
    const char *node_id; /* borrowed until the next call into the leader */
    bool connected;
    bool live;
    bool in_isr;
    uint64_t acked;
    uint64_t pending_bytes; /* stream not yet written to its socket (backlog included) */
};

/* Fills up to max entries (members: every follower seen and every ISR member); returns how
 * many there are. */
size_t repl_leader_followers(const struct repl_leader *l, struct repl_follower_info *out,
                             size_t max);

struct repl_leader_stats {
    uint64_t catchups;      /* catch-ups started */
    uint64_t catchup_bytes; /* segment and defs.log bytes sent by catch-ups */
    uint64_t live_bytes;    /* data bytes tapped (each sent to every follower) */
    uint64_t packed_in;     /* data bytes sent compressed (live once, catch-up per follower) */
    uint64_t packed_out;    /* ... and what they took compressed */
    uint64_t auth_failures; /* handshakes refused for a wrong mac */
};

void repl_leader_stats(const struct repl_leader *l, struct repl_leader_stats *out);

/* Closes every connection and the listening socket, frees the leader. Does not touch the
 * store or the definitions log (see repl_leader_attach). NULL is accepted. */
void repl_leader_free(struct repl_leader *l);

#endif
