/* Recovery at open (store_recover(), src/store/store.h): reads every durable segment back in
 * order into a table of messages and their references. A segment whose header is missing or
 * wrong is removed or set aside, a torn tail of the last segment is cut off, a corrupt record
 * elsewhere is skipped up to the next valid one. The ACK, RETURN, DELIVERED and QUEUE_DELETE
 * records are applied to the messages they name, every live reference is reported to the
 * broker, and segments left with nothing live go to segment.c to be deleted. */
#include "src/store/store_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/base/util.h"
#include "src/store/recfile.h"

/* ---- Recovery --------------------------------------------------------------------------- */

static bool pos_before(uint32_t seg_a, uint32_t off_a, uint32_t seg_b, uint32_t off_b)
{
    return seg_a < seg_b || (seg_a == seg_b && off_a < off_b);
}

enum {
    REF_DEAD = 1,
    REF_DELIVERED = 2,
};

struct rmsg {
    uint64_t published_ms, expires_ms;
    uint32_t offset, size;
    size_t first_ref;
    uint32_t ref_count;
};

struct rref {
    uint32_t queue_id;
    uint32_t deliveries;
    uint8_t flags;
};

struct rdel {
    uint32_t queue_id, segment, offset;
};

struct recovery {
    struct store *st;
    struct rmsg *msgs;
    size_t msg_count, msg_cap;
    struct rref *refs;
    size_t ref_count, ref_cap;
    struct rdel *dels;
    size_t del_count, del_cap;
};

static struct rmsg *recovery_find(struct recovery *rv, uint32_t segment, uint32_t offset)
{
    struct segment *s = seg_area_find(&rv->st->msgs, segment);
    size_t lo, hi;

    if (s == NULL || s->rec_count == 0)
        return NULL;
    assert(rv->msgs != NULL);
    lo = s->rec_first;
    hi = s->rec_first + s->rec_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rv->msgs[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->rec_first + s->rec_count && rv->msgs[lo].offset == offset ? &rv->msgs[lo] : NULL;
}

static struct rref *recovery_ref(struct recovery *rv, uint32_t segment, uint32_t offset,
                                 uint32_t queue_id)
{
    struct rmsg *m = recovery_find(rv, segment, offset);

    if (m == NULL)
        return NULL;
    for (uint32_t i = 0; i < m->ref_count; i++) {
        if (rv->refs[m->first_ref + i].queue_id == queue_id)
            return &rv->refs[m->first_ref + i];
    }
    return NULL;
}

/* Applies one valid record found at (s, offset); false if its payload does not parse. */
static bool recovery_apply(struct recovery *rv, struct segment *s, uint64_t offset,
                           struct wire_bytes body)
{
    struct wire_reader r = wire_reader_init(body.ptr, body.len);
    uint32_t queue_id, seg, off, count = 0;
    uint8_t type;
    struct rref *ref;

    if (!wire_u8(&r, &type))
        return false;
    if (rec_is_message(type)) {
        struct store_msg m;
        struct wire_reader ids;
        if (!store_message_decode(body, &m, &ids))
            return false;
        if (rv->msg_count == rv->msg_cap) {
            rv->msg_cap = rv->msg_cap ? rv->msg_cap * 2 : 1024;
            rv->msgs = xrealloc(rv->msgs, rv->msg_cap * sizeof(*rv->msgs));
        }
        if (rv->ref_count + m.queue_count > rv->ref_cap) {
            while (rv->ref_count + m.queue_count > rv->ref_cap)
                rv->ref_cap = rv->ref_cap ? rv->ref_cap * 2 : 1024;
            rv->refs = xrealloc(rv->refs, rv->ref_cap * sizeof(*rv->refs));
        }
        rv->msgs[rv->msg_count++] = (struct rmsg){
            .published_ms = m.published_ms,
            .expires_ms = m.expires_ms,
            .offset = (uint32_t)offset,
            .size = (uint32_t)(RECFILE_FRAME_BYTES + body.len),
            .first_ref = rv->ref_count,
            .ref_count = m.queue_count,
        };
        for (uint32_t i = 0; i < m.queue_count; i++) {
            uint32_t q = 0;
            (void)wire_u32(&ids, &q);
            rv->refs[rv->ref_count++] = (struct rref){.queue_id = q};
        }
        s->rec_count++;
        return true;
    }
    if (!wire_u32(&r, &queue_id) || !wire_u32(&r, &seg) || !wire_u32(&r, &off))
        return false;
    if (type == REC_RETURN && !wire_u32(&r, &count))
        return false;
    if (wire_left(&r) != 0)
        return false;
    if (type == REC_QUEUE_DELETE || seg != s->number)
        s->foreign_refs++;
    switch (type) {
    case REC_ACK:
        if ((ref = recovery_ref(rv, seg, off, queue_id)) != NULL)
            ref->flags |= REF_DEAD;
        break;
    case REC_RETURN:
        if ((ref = recovery_ref(rv, seg, off, queue_id)) != NULL) {
            ref->flags |= REF_DELIVERED;
            if (count > ref->deliveries)
                ref->deliveries = count;
        }
        break;
    case REC_DELIVERED:
        if ((ref = recovery_ref(rv, seg, off, queue_id)) != NULL)
            ref->flags |= REF_DELIVERED;
        break;
    case REC_QUEUE_DELETE:
        if (rv->del_count == rv->del_cap) {
            rv->del_cap = rv->del_cap ? rv->del_cap * 2 : 16;
            rv->dels = xrealloc(rv->dels, rv->del_cap * sizeof(*rv->dels));
        }
        rv->dels[rv->del_count++] = (struct rdel){queue_id, seg, off};
        break;
    default:
        return false;
    }
    return true;
}

/* Sets a segment whose header is missing or wrong aside: the last one was being created
 * when the broker stopped, so it is removed; an earlier one is renamed for an operator. */
static void recovery_drop_segment(struct store *st, struct segment *s, bool last)
{
    char path[4096], aside[4200];

    seg_path(&st->msgs, s->number, path, sizeof(path));
    if (last && s->size < SEG_HEADER) {
        log_warn(NULL, "message store: %s: incomplete segment header (%" PRIu64 " bytes), removed",
                 path, s->size);
        unlink(path);
    } else {
        snprintf(aside, sizeof(aside), "%s.corrupt", path);
        log_error(NULL, "message store: %s: not a segment of this store, moved to %s", path, aside);
        if (rename(path, aside) < 0)
            log_error(NULL, "message store: renaming %s failed: %s", path, strerror(errno));
    }
    seg_tap_unlinked(st, s->number);
    seg_area_remove(st, &st->msgs, s);
}

/* Reads one segment into the recovery table. Returns 0, 1 if the segment was dropped, or
 * -errno. */
static int recovery_scan(struct recovery *rv, struct segment *s, bool last)
{
    struct store *st = rv->st;
    uint8_t hdr[SEG_HEADER];
    struct recfile_reader r;
    struct wire_bytes body;
    uint64_t off;
    uint32_t tag;
    char path[4096];
    int fd, rc = 0;

    seg_path(&st->msgs, s->number, path, sizeof(path));
    fd = open(path, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        log_error(NULL, "message store: opening %s failed: %s", path, strerror(errno));
        return rc;
    }
    if (s->size < SEG_HEADER || recfile_pread_all(fd, hdr, SEG_HEADER, 0) < 0 ||
        !recfile_header_check(hdr, SEG_MAGIC, SEG_VERSION, &tag) || tag != s->number) {
        close(fd);
        recovery_drop_segment(st, s, last);
        return 1;
    }
    s->rec_first = rv->msg_count;
    s->rec_count = 0;
    recfile_reader_init(&r, fd, s->size, SEG_HEADER, MAX_RECORD_BODY);
    for (;;) {
        enum recfile_result res = recfile_next(&r, &off, &body);
        if (res == RECFILE_END)
            break;
        if (res == RECFILE_IO) {
            rc = -errno;
            log_error(NULL, "message store: reading %s failed: %s", path, strerror(errno));
            break;
        }
        if (res == RECFILE_OK) {
            if (!recovery_apply(rv, s, off, body))
                log_error(NULL, "message store: %s: malformed record at offset %" PRIu64 " skipped",
                          path, off);
            continue;
        }
        uint64_t bad = r.pos;
        if (recfile_resync(&r, store_rec_type_ok)) {
            log_error(NULL,
                      "message store: %s: corrupt record at offset %" PRIu64 "; skipped %" PRIu64
                      " bytes to the next valid record",
                      path, bad, r.pos - bad);
            continue;
        }
        if (last) {
            /* A torn append: the broker stopped in the middle of a write, and nothing in it
             * was confirmed. Cut it so the file ends at a record boundary again. */
            log_warn(NULL,
                     "message store: %s: torn or corrupt record at offset %" PRIu64 "; cut %" PRIu64
                     " bytes off the end",
                     path, bad, s->size - bad);
            if (ftruncate(fd, (off_t)bad) < 0 || fdatasync(fd) < 0) {
                rc = -errno;
                log_error(NULL, "message store: truncating %s failed: %s", path, strerror(errno));
            }
            s->size = bad;
            seg_tap_truncated(st, s->number, bad);
        } else {
            log_error(NULL,
                      "message store: %s: corrupt data from offset %" PRIu64 " to the end (%" PRIu64
                      " bytes) skipped",
                      path, bad, s->size - bad);
        }
        break;
    }
    recfile_reader_free(&r);
    close(fd);
    return rc;
}

static int rdel_cmp(const void *a, const void *b)
{
    const struct rdel *x = a, *y = b;

    if (x->queue_id != y->queue_id)
        return x->queue_id < y->queue_id ? -1 : 1;
    if (x->segment != y->segment)
        return x->segment < y->segment ? 1 : -1; /* latest position first */
    return x->offset < y->offset ? 1 : (x->offset > y->offset ? -1 : 0);
}

/* The latest QUEUE_DELETE position of queue_id, if any (dels sorted by rdel_cmp). */
static const struct rdel *recovery_deleted(const struct recovery *rv, uint32_t queue_id)
{
    size_t lo = 0, hi = rv->del_count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rv->dels[mid].queue_id < queue_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < rv->del_count && rv->dels[lo].queue_id == queue_id ? &rv->dels[lo] : NULL;
}

int store_recover(struct store *st, store_recover_fn cb, void *ctx)
{
    struct recovery rv = {.st = st};
    int rc = 0;

    assert(!st->recovered);
    st->recovering = true;
    for (size_t i = 0; i < st->msgs.count;) {
        struct segment *s = st->msgs.segs[i];
        int r = recovery_scan(&rv, s, i + 1 == st->msgs.count);
        if (r < 0) {
            rc = r;
            goto out;
        }
        if (r == 0)
            i++;
    }
    if (rv.del_count > 1)
        qsort(rv.dels, rv.del_count, sizeof(*rv.dels), rdel_cmp);

    /* First the counts, so that releases from the callbacks find them complete. */
    for (size_t i = 0; i < st->msgs.count; i++) {
        struct segment *s = st->msgs.segs[i];
        assert(s->rec_count == 0 || rv.msgs != NULL);
        for (size_t k = s->rec_first; k < s->rec_first + s->rec_count; k++) {
            struct rmsg *m = &rv.msgs[k];
            for (uint32_t j = 0; j < m->ref_count; j++) {
                struct rref *ref = &rv.refs[m->first_ref + j];
                const struct rdel *d = recovery_deleted(&rv, ref->queue_id);
                if (d != NULL && pos_before(s->number, m->offset, d->segment, d->offset))
                    ref->flags |= REF_DEAD;
                if (!(ref->flags & REF_DEAD))
                    s->live_refs++;
            }
        }
    }
    for (size_t i = 0; i < st->msgs.count; i++) {
        struct segment *s = st->msgs.segs[i];
        assert(s->rec_count == 0 || rv.msgs != NULL);
        for (size_t k = s->rec_first; k < s->rec_first + s->rec_count; k++) {
            struct rmsg *m = &rv.msgs[k];
            for (uint32_t j = 0; j < m->ref_count; j++) {
                struct rref *ref = &rv.refs[m->first_ref + j];
                if (ref->flags & REF_DEAD)
                    continue;
                struct store_recovered out = {
                    .queue_id = ref->queue_id,
                    .deliveries = ref->deliveries,
                    .delivered = (ref->flags & REF_DELIVERED) != 0,
                    .loc = {.segment = s->number, .offset = m->offset, .size = m->size},
                    .published_ms = m->published_ms,
                    .expires_ms = m->expires_ms,
                };
                if (cb != NULL)
                    cb(ctx, &out);
            }
        }
    }
out:
    free(rv.msgs);
    free(rv.refs);
    free(rv.dels);
    st->recovering = false;
    st->recovered = true;
    if (rc == 0) {
        for (size_t i = 0; i < st->msgs.count; i++) {
            if (st->msgs.segs[i]->live_refs == 0)
                seg_maybe_delete(st, st->msgs.segs[i]);
        }
        seg_process_doomed(st);
    } else {
        st->failed = -rc; /* do not delete or append over what could not be read */
    }
    return rc;
}
