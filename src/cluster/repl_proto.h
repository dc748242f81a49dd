/* The replication stream's wire format (CLUSTERING.md §2.3, §2.7): frames, the handshake,
 * and the small files a node keeps about epochs. Pure encoding and decoding (plus those
 * files): the sockets are in repl_leader.c and repl_follower.c.
 *
 * ---- Framing ------------------------------------------------------------------------------
 *
 * One TCP connection per follower, opened by the follower. Every frame is
 *
 *   u8 type, u32 length, u32 crc, payload (length bytes)
 *
 * big-endian, crc = CRC-32C (src/store/crc32c.h) of the type, the four length bytes and the
 * payload. A receiver checks the length against its limit before buffering the payload
 * (REPL_FRAME_MAX, or REPL_SMALL_FRAME_MAX where only small frames may come), and the crc
 * before decoding. An unknown type, a length over the limit, a crc mismatch or a payload
 * that does not decode exactly (missing or extra bytes) ends the connection.
 *
 * ---- Handshake ----------------------------------------------------------------------------
 *
 *   follower -> HELLO      magic "WRNREPL\n", u16 version, shortstr node id, u64 highest
 *                          epoch seen, 32-byte nonce, the epoch history of its log (u32
 *                          count, then count x (u64 epoch, u32 first segment)), its manifest
 *                          (u32 count, then count x (u32 segment, u64 size), ascending), u64
 *                          defs.log size, u32 CRC-32C of defs.log
 *   leader   -> CHALLENGE  u64 leader epoch, 32-byte nonce, 32-byte mac, shortstr node id
 *   follower -> AUTH       32-byte mac
 *
 * The macs are HMAC-SHA256 over the cluster secret (repl_mac()): the leader's covers both
 * nonces, its epoch and both node ids, the follower's the same with its epoch seen, so each
 * side proves it knows the secret without sending it, and neither can replay an old answer.
 * The follower refuses a leader whose mac is wrong or whose epoch is below the highest it
 * has seen (and says so with ERROR); the leader refuses a wrong mac, and a follower that has
 * seen a higher epoch than its own (ERROR, and the leader learns it may be deposed). The
 * stream after the handshake is protected by the crcs against corruption, not against an
 * attacker on the path: that is what TLS under it is for (cluster.tls.*, repl_link.h).
 *
 * ---- The stream ---------------------------------------------------------------------------
 *
 *   CREATE     u64 pos, u32 segment, header          the file is (re)created with header
 *   APPEND     u64 pos, u8 file, u32 segment, u64 offset, data (1 byte or more)
 *   APPEND_LZ4 u64 pos, u8 file, u32 segment, u64 offset, u32 length, the data (length
 *              bytes once decompressed) as one LZ4 block: an APPEND, compressed
 *              (cluster.compression = lz4 on the leader; a follower takes both)
 *   TRUNCATE   u64 pos, u8 file, u32 segment, u64 size
 *   UNLINK     u64 pos, u32 segment
 *   REPLACE    u64 pos, u64 total, u64 offset, data  one piece of a new defs.log of total
 *                                                    bytes; the last piece puts it in place
 *   EPOCH      u64 epoch, the leader's epoch history (as in HELLO)
 *   HEARTBEAT  u64 head, u64 commit, u8 flags (REPL_HB_SYNC: fsync and ack now;
 *              REPL_HB_LIVE: the catch-up is over, this is the live stream)
 *   ACK        u64 position: everything up to it is applied and fsynced (follower -> leader)
 *   ERROR      u16 code (enum repl_error), shortstr reason; the sender then closes
 *
 * file is REPL_FILE_SEGMENT (msgs/NNNNNNNN.seg, segment 1..99999999) or REPL_FILE_DEFS
 * (defs.log, segment 0). Data pieces are at most REPL_CHUNK_MAX bytes.
 *
 * ---- Positions ----------------------------------------------------------------------------
 *
 * A position is a u64 counter of the leader's stream, starting at 0 when its repl_leader is
 * created (once per epoch): each change the store and the definitions log report through
 * their taps advances it by 1 + the change's data bytes, and a live frame carries the
 * position just after its change. Frames of a catch-up (rebuilt from the files) carry pos 0;
 * the catch-up ends with HEARTBEAT(head = H0, LIVE), H0 being the position at which it was
 * planned, and live frames after H0 follow. So "the follower acked P" means: its files hold
 * every change up to P, fsynced. A (segment, offset) pair would not do: the definitions log
 * is a second file and unlinks are changes too.
 *
 * ---- Epoch files (in the data directory) --------------------------------------------------
 *
 *   cluster.epoch    the highest epoch this node has seen, decimal, one line
 *   cluster.epochs   the epoch history of the files: one line "<epoch> <first segment>" per
 *                    epoch, ascending in both; the leader of an epoch writes into segments
 *                    >= its first segment only (it rolls to a new segment when promoted)
 *
 * Both are replaced atomically (written to a temporary file, fsynced, renamed, directory
 * fsynced). repl_divergence() uses the histories to find where a follower's log parted from
 * the leader's (KIP-101/279 with segments for offsets). */
#ifndef WARREN_SRC_CLUSTER_REPL_PROTO_H
#define WARREN_SRC_CLUSTER_REPL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"
#include "src/base/buf.h"

#define REPL_MAGIC           "WRNREPL\n"
#define REPL_VERSION         1
#define REPL_FRAME_HEADER    9          /* u8 type, u32 length, u32 crc */
#define REPL_CHUNK_MAX       (1u << 20) /* data bytes in one APPEND or REPLACE */
#define REPL_FRAME_MAX       (2u << 20) /* payload limit of any frame (a HELLO's manifest) */
#define REPL_SMALL_FRAME_MAX 512        /* payload limit after the HELLO (leader side) */
#define REPL_NONCE_BYTES     32
#define REPL_MAC_BYTES       32
#define REPL_NODE_ID_MAX     255
#define REPL_HISTORY_MAX     4096         /* epochs in a history */
#define REPL_SEGMENT_MAX     99999999u    /* segment numbers have 8 digits */
#define REPL_HEADER_MAX      64           /* bytes in a CREATE's header */
#define REPL_DEFS_MAX        (1ull << 32) /* a defs.log bigger than this is not replicated */
/* Segments a HELLO can list: what fits in REPL_FRAME_MAX besides the rest. */
#define REPL_MANIFEST_MAX ((REPL_FRAME_MAX - 1024 - 12 * REPL_HISTORY_MAX) / 12)

enum repl_type {
    REPL_HELLO = 1,
    REPL_CHALLENGE = 2,
    REPL_AUTH = 3,
    REPL_CREATE = 4,
    REPL_APPEND = 5,
    REPL_TRUNCATE = 6,
    REPL_UNLINK = 7,
    REPL_REPLACE = 8,
    REPL_EPOCH = 9,
    REPL_HEARTBEAT = 10,
    REPL_ACK = 11,
    REPL_ERROR = 12,
    REPL_APPEND_LZ4 = 13,
};

enum repl_file {
    REPL_FILE_SEGMENT = 0,
    REPL_FILE_DEFS = 1,
};

#define REPL_HB_SYNC 1u
#define REPL_HB_LIVE 2u

enum repl_error {
    REPL_ERROR_PROTOCOL = 1,    /* a frame that should not have come */
    REPL_ERROR_AUTH = 2,        /* wrong mac: the other side does not have the secret */
    REPL_ERROR_STALE_EPOCH = 3, /* sent by a follower: the leader's epoch is below one seen */
    REPL_ERROR_DEPOSED = 4,     /* sent by a leader: the follower has seen a higher epoch */
    REPL_ERROR_VERSION = 5,
    REPL_ERROR_LAGGING = 6, /* the follower's backlog passed its bound: reconnect */
    REPL_ERROR_IO = 7,      /* the follower could not write its files */
};

/* Results of the decoders. */
enum repl_status {
    REPL_OK = 0,
    REPL_NEED_MORE = 1,    /* a frame is not complete yet */
    REPL_ERR_TOO_BIG = -1, /* the length is over the receiver's limit */
    REPL_ERR_CRC = -2,     /* the crc does not match */
    REPL_ERR_TYPE = -3,    /* unknown frame type */
    REPL_ERR_SYNTAX = -4,  /* the payload does not decode */
};

const char *repl_status_text(int status);
const char *repl_type_name(uint8_t type);
const char *repl_error_text(uint16_t code);

/* ---- Epoch histories ---------------------------------------------------------------------- */

struct repl_epoch_start {
    uint64_t epoch;
    uint32_t segment; /* first segment written in that epoch */
};

struct repl_history {
    struct repl_epoch_start *v; /* ascending in epoch and in segment */
    size_t count;
};

void repl_history_free(struct repl_history *h);
/* Appends (epoch, segment); false (and nothing changed) unless epoch is above the last
 * epoch and segment not below its segment, or the history is full. */
bool repl_history_push(struct repl_history *h, uint64_t epoch, uint32_t segment);
bool repl_history_equal(const struct repl_history *a, const struct repl_history *b);

/* The first segment number from which the follower's segments are not the leader's: every
 * follower segment >= it is to be removed (and copied again where the leader has it), the
 * ones below it hold a prefix of the leader's segment of the same number. With a common
 * epoch E (the largest epoch both histories hold, with the same first segment), that is the
 * smaller of the first segments of the epochs after E in each history (UINT32_MAX if
 * neither has one); without one, 0: everything is copied again. */
uint32_t repl_divergence(const struct repl_history *leader, const struct repl_history *follower);

/* ---- Files in the data directory ------------------------------------------------------ */

/* *epoch = the epoch in dir/cluster.epoch, 0 if there is no such file. 0 or -errno
 * (-EINVAL for a file that does not hold a number). */
int repl_epoch_read(const char *dir, uint64_t *epoch);
int repl_epoch_write(const char *dir, uint64_t epoch);
/* The history in dir/cluster.epochs (empty if there is none). 0 or -errno (-EINVAL for a
 * malformed file). */
int repl_history_read(const char *dir, struct repl_history *h);
int repl_history_write(const char *dir, const struct repl_history *h);
/* What a new leader does after store_roll_segment(): records that epoch starts at segment
 * in dir/cluster.epochs, and epoch in dir/cluster.epoch. 0 or -errno (-EINVAL if the epoch
 * or segment is not above the history's last). */
int repl_begin_epoch(const char *dir, uint64_t epoch, uint32_t segment);

/* ---- Frames ------------------------------------------------------------------------------ */

struct repl_frame {
    uint8_t type;
    struct wire_bytes payload;
    size_t size; /* header included: the bytes to consume */
};

/* Splits the next frame off buf[0..len): REPL_OK with *f filled, REPL_NEED_MORE, or an error
 * (type, length over max_payload, crc). Nothing is consumed on error. */
int repl_frame_next(const uint8_t *buf, size_t len, uint32_t max_payload, struct repl_frame *f);

/* Decoded frames: byte strings borrow the frame's payload. */
struct repl_hello {
    uint16_t version;
    struct wire_bytes node_id;
    uint64_t epoch_seen;
    const uint8_t *nonce; /* REPL_NONCE_BYTES */
    uint32_t history_count;
    struct wire_bytes history; /* history_count x 12 bytes, checked ascending */
    uint32_t segment_count;
    struct wire_bytes segments; /* segment_count x 12 bytes, checked ascending */
    uint64_t defs_size;
    uint32_t defs_crc;
};

struct repl_challenge {
    uint64_t epoch;
    const uint8_t *nonce; /* REPL_NONCE_BYTES */
    const uint8_t *mac;   /* REPL_MAC_BYTES */
    struct wire_bytes node_id;
};

struct repl_msg {
    uint8_t type;
    uint64_t pos;
    union {
        struct repl_hello hello;
        struct repl_challenge challenge;
        const uint8_t *mac; /* AUTH */
        struct {
            uint32_t segment;
            struct wire_bytes header;
        } create;
        struct {
            uint8_t file;
            uint32_t segment;
            uint64_t offset;
            struct wire_bytes data; /* APPEND_LZ4: compressed (repl_lz4_unpack) */
            uint32_t raw_len;       /* APPEND_LZ4: the data's length decompressed */
        } append;
        struct {
            uint8_t file;
            uint32_t segment;
            uint64_t size;
        } truncate;
        uint32_t unlink_segment;
        struct {
            uint64_t total;
            uint64_t offset;
            struct wire_bytes data;
        } replace;
        struct {
            uint64_t epoch;
            uint32_t count;
            struct wire_bytes entries; /* count x 12 bytes, checked ascending */
        } epoch;
        struct {
            uint64_t head;
            uint64_t commit;
            uint8_t flags;
        } heartbeat;
        struct {
            uint16_t code;
            struct wire_bytes reason;
        } error;
    } u;
};

/* Decodes a frame's payload; REPL_OK or REPL_ERR_SYNTAX (also for a field out of range:
 * segment numbers, an offset past the end of a replaced file, lists not ascending, a HELLO
 * with the wrong magic; a HELLO of another version decodes, with its version, so the leader
 * can answer ERROR(VERSION)). */
int repl_decode(const struct repl_frame *f, struct repl_msg *out);

/* Entry i of a checked history or manifest (hello.history, hello.segments, epoch.entries). */
struct repl_epoch_start repl_history_entry(struct wire_bytes list, uint32_t i);
void repl_manifest_entry(struct wire_bytes list, uint32_t i, uint32_t *segment, uint64_t *size);
/* A decoded history list as a struct repl_history (allocated; free with repl_history_free). */
void repl_history_from_list(struct wire_bytes list, uint32_t count, struct repl_history *out);

/* ---- Encoding (appends one whole frame to out) ----------------------------------------- */

struct repl_manifest_seg {
    uint32_t segment;
    uint64_t size;
};

void repl_put_hello(struct buf *out, struct wire_bytes node_id, uint64_t epoch_seen,
                    const uint8_t nonce[REPL_NONCE_BYTES], const struct repl_history *history,
                    const struct repl_manifest_seg *segs, size_t seg_count, uint64_t defs_size,
                    uint32_t defs_crc);
void repl_put_challenge(struct buf *out, uint64_t epoch, const uint8_t nonce[REPL_NONCE_BYTES],
                        const uint8_t mac[REPL_MAC_BYTES], struct wire_bytes node_id);
void repl_put_auth(struct buf *out, const uint8_t mac[REPL_MAC_BYTES]);
void repl_put_create(struct buf *out, uint64_t pos, uint32_t segment, struct wire_bytes header);
void repl_put_append(struct buf *out, uint64_t pos, enum repl_file file, uint32_t segment,
                     uint64_t offset, struct wire_bytes data);
void repl_put_truncate(struct buf *out, uint64_t pos, enum repl_file file, uint32_t segment,
                       uint64_t size);
void repl_put_unlink(struct buf *out, uint64_t pos, uint32_t segment);
void repl_put_replace(struct buf *out, uint64_t pos, uint64_t total, uint64_t offset,
                      struct wire_bytes data);
void repl_put_epoch(struct buf *out, uint64_t epoch, const struct repl_history *history);
void repl_put_heartbeat(struct buf *out, uint64_t head, uint64_t commit, uint8_t flags);
void repl_put_ack(struct buf *out, uint64_t pos);
void repl_put_error(struct buf *out, enum repl_error code, const char *reason);

/* An APPEND_LZ4 of data (1..REPL_CHUNK_MAX bytes) if LZ4 makes it smaller: true; false,
 * and nothing appended, if it does not (send a plain APPEND). */
bool repl_put_append_lz4(struct buf *out, uint64_t pos, enum repl_file file, uint32_t segment,
                         uint64_t offset, struct wire_bytes data);
/* Decompresses a decoded APPEND_LZ4's data into dst (REPL_CHUNK_MAX bytes): 0, or -1 if the
 * block is corrupt or does not give exactly raw_len bytes. */
int repl_lz4_unpack(const struct repl_msg *m, uint8_t *dst);

/* The frame header and fixed fields of an APPEND whose data is sent from where it is (no
 * copy): writes them to head (REPL_APPEND_HEAD bytes; the crc covers data too). */
#define REPL_APPEND_HEAD (REPL_FRAME_HEADER + 8 + 1 + 4 + 8)
void repl_append_head(uint8_t head[REPL_APPEND_HEAD], uint64_t pos, enum repl_file file,
                      uint32_t segment, uint64_t offset, struct wire_bytes data);

/* ---- Authentication ------------------------------------------------------------------- */

enum repl_role {
    REPL_ROLE_LEADER,
    REPL_ROLE_FOLLOWER,
};

/* HMAC-SHA256 with the secret over the role, both nonces (the follower's first), both node
 * ids and an epoch (the leader's epoch for the leader's mac, the epoch the follower has seen
 * for the follower's). */
void repl_mac(uint8_t out[REPL_MAC_BYTES], struct wire_bytes secret, enum repl_role role,
              const uint8_t follower_nonce[REPL_NONCE_BYTES],
              const uint8_t leader_nonce[REPL_NONCE_BYTES], struct wire_bytes follower_id,
              struct wire_bytes leader_id, uint64_t epoch);
/* Constant-time comparison of two macs. */
bool repl_mac_equal(const uint8_t a[REPL_MAC_BYTES], const uint8_t b[REPL_MAC_BYTES]);

/* ---- Sockets (shared by both sides) ------------------------------------------------------ */

/* Splits "host:port" ("[v6]:port"; an empty host means every address) and resolves it.
 * Returns a non-blocking socket, listening (listen true) or connecting (connect(2) may still
 * be in progress: *in_progress), or -errno with the reason in err. */
int repl_socket(const char *address, bool listen, bool *in_progress, char *err, size_t err_size);

#endif
