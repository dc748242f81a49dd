/* Checksummed records in append-only files: the framing shared by the message store's
 * segments and the definitions log.
 *
 * A file starts with a 16-byte header: an 8-byte magic naming the file kind, a u32 format
 * version and a u32 the owner chooses (a segment's number). Records follow back to back:
 *
 *   u32 body_len   bytes of the body that follows the 8-byte frame header (>= 1)
 *   u32 crc        CRC-32C of the four body_len bytes followed by the body
 *   body           u8 type, then the type's payload
 *
 * Integers are big-endian like the rest of AMQP. The checksum covers the length, so a
 * flipped bit in a length is caught like one in a body; a record is valid only if its whole
 * body is in the file and the checksum matches, which is how a torn write (a crash in the
 * middle of an append) is told from a complete record. */
#ifndef WARREN_SRC_STORE_RECFILE_H
#define WARREN_SRC_STORE_RECFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"

#define RECFILE_FILE_HEADER_BYTES 16
#define RECFILE_FRAME_BYTES       8

/* Fills the 16-byte file header. */
void recfile_header_encode(uint8_t out[RECFILE_FILE_HEADER_BYTES], const char magic[8],
                           uint32_t version, uint32_t tag);
/* True if hdr has this magic and version; *tag receives the owner's word. */
bool recfile_header_check(const uint8_t hdr[RECFILE_FILE_HEADER_BYTES], const char magic[8],
                          uint32_t version, uint32_t *tag);

/* rec points at RECFILE_FRAME_BYTES of room followed by a body of body_len bytes already
 * written: fills in the length and the checksum. */
void recfile_frame_seal(uint8_t *rec, uint32_t body_len);

/* Checks the record at rec (avail bytes readable there): true if it is complete and its
 * checksum matches; *body then borrows its body. */
bool recfile_frame_check(const uint8_t *rec, size_t avail, uint32_t max_body,
                         struct wire_bytes *body);

enum recfile_result {
    RECFILE_OK,  /* a valid record */
    RECFILE_END, /* the end of the file, exactly at a record boundary */
    RECFILE_BAD, /* the bytes at pos are not a valid record (torn, corrupt): pos unchanged */
    RECFILE_IO,  /* read(2) failed; errno says why */
};

/* Reads records of a file in order through a buffer of its own (large reads, so a scan of
 * small records does not cost one system call each). */
struct recfile_reader {
    int fd;
    uint64_t file_size;
    uint32_t max_body; /* a longer length is corrupt */
    uint64_t pos;      /* file offset of the next record */
    uint8_t *buf;
    size_t cap;
    uint64_t buf_off; /* file offset of buf[0] */
    size_t buf_len;
    uint64_t resync_budget; /* bytes left to checksum while looking for a valid record */
};

/* Starts reading fd (of file_size bytes) at offset start. Does not own fd. */
void recfile_reader_init(struct recfile_reader *r, int fd, uint64_t file_size, uint64_t start,
                         uint32_t max_body);
void recfile_reader_free(struct recfile_reader *r);

/* The record at r->pos: on RECFILE_OK *offset is its file offset, *body borrows the reader's
 * buffer until the next call, and r->pos moves past it. */
enum recfile_result recfile_next(struct recfile_reader *r, uint64_t *offset,
                                 struct wire_bytes *body);

/* After RECFILE_BAD: moves r->pos to the next offset where a valid record starts whose type
 * byte satisfies type_ok, and returns true; false if there is none before the end of the
 * file (or the search spent its budget, so corrupt data that happens to hold many plausible
 * lengths cannot make it quadratic). */
bool recfile_resync(struct recfile_reader *r, bool (*type_ok)(uint8_t type));

/* write(2) of all n bytes at offset, retrying short writes and EINTR. 0 or -errno. */
int recfile_pwrite_all(int fd, const void *data, size_t n, uint64_t offset);
/* pread(2) of exactly n bytes; -EIO if the file is shorter. 0 or -errno. */
int recfile_pread_all(int fd, void *data, size_t n, uint64_t offset);
/* fsync(2) of a directory, so the names created, renamed or removed in it are durable. */
int recfile_fsync_dir(const char *path);

#endif
