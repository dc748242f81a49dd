/* A queue's backlog beyond its memory window, in a file of its own: records are appended at
 * the tail and read back from the head, in order. The queue keeps in memory only a write
 * buffer, a read buffer and two offsets, whatever the length of the backlog, so a consumer
 * outage never runs the broker out of memory.
 *
 * A record is either a whole message (transient, or persistent in a non-durable queue) or,
 * for a message the store already holds, just its location in the store. Spill files are not
 * durable: they live in DATA_DIR/spill/, which is emptied at start; a persistent message's
 * durability comes from the store, whose recovery brings it back.
 *
 * The file is opened when the first record is spilled and removed when the last one has been
 * read back, so an idle queue holds no descriptor. */
#ifndef WARREN_SRC_BROKER_SPILL_H
#define WARREN_SRC_BROKER_SPILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/store/store.h"

struct message;

struct spill_rec {
    uint64_t seq;
    uint64_t expires_at_ms;
    uint32_t deliveries;
    bool redelivered;
    bool stored;            /* only loc is spilled: read the message from the store */
    struct store_loc loc;   /* stored */
    struct message *msg;    /* !stored: the message (append borrows it; next returns a new one) */
};

struct spill {
    char *path;
    int fd;                 /* -1 while nothing is spilled */
    uint64_t count;         /* records not read back yet */
    uint64_t bytes;         /* body bytes of those records (for x-max-length-bytes) */
    uint64_t write_off;     /* where the next flushed byte goes in the file */
    uint64_t read_off;      /* the next record to read from the file */
    uint8_t *wbuf;          /* records appended, not written yet */
    size_t wlen, wcap;
    uint8_t *rbuf;          /* read from the file, not parsed yet */
    size_t rpos, rlen, rcap;
};

/* A spill for the queue with this unique id, in dir (created if missing). Nothing is opened
 * until spill_append. */
void spill_init(struct spill *s, const char *dir, uint64_t uid);
/* Drops every record and removes the file. */
void spill_free(struct spill *s);

/* Appends a record; body_bytes counts toward s->bytes. 0, or -errno (the record is not
 * spilled: the caller keeps the message in memory). */
int spill_append(struct spill *s, const struct spill_rec *r, uint64_t body_bytes);

/* Reads the oldest record back: 1 with *r filled (a whole message comes back as a new
 * message with one reference), 0 if the spill is empty, -errno on a read error (logged: the
 * rest of the spill is lost). Records that could not be written (a full disk) are read back
 * from the write buffer: reading never writes. */
int spill_next(struct spill *s, struct spill_rec *r);

/* Bytes written to all spill files so far (the broker checks free disk space as they grow). */
uint64_t spill_bytes_written(void);

/* Removes every file of dir (a previous run's spills) at start. */
void spill_clear_dir(const char *dir);

#endif
