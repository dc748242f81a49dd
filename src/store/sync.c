/* The store's group commit (src/store/store.h): the background thread that fdatasyncs what
 * the loop thread wrote (and the msgs directory when segments were created or removed), and
 * its completion back on the loop (an ev_async): segments waiting for that sync are unlinked
 * and the durable callback hears how far durability got. Also the ev_prepare watcher that
 * writes the buffered records at the end of each loop turn, the reference on the loop held
 * while appends wait, a failed write or fsync (reported through the same ev_async), and the
 * calls that set the durable and failure callbacks. store_open() starts the thread;
 * store_close() stops it and does the last sync itself. */
#include "src/store/store_internal.h"

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/base/log.h"
#include "src/base/util.h"

/* ---- Failure ---------------------------------------------------------------------------- */

void store_update_hold(struct store *st)
{
    bool want = st->failed == 0 && st->appended_seq > st->durable_seq;

    if (!st->watchers_started)
        return;
    if (want && !st->holding_loop) {
        ev_ref(st->loop);
        st->holding_loop = true;
    } else if (!want && st->holding_loop) {
        ev_unref(st->loop);
        st->holding_loop = false;
    }
}

/* The disk failed us: nothing more can be promised durable. The callback runs from the
 * async watcher, never inside the append that failed. */
void store_fail(struct store *st, int err, const char *what, const char *path)
{
    if (st->failed != 0)
        return;
    st->failed = err;
    log_error(NULL,
              "message store: %s %s failed: %s; persistent messages can no longer be "
              "confirmed",
              what, path, strerror(err));
    store_update_hold(st);
    if (st->watchers_started)
        ev_async_send(st->loop, &st->async);
}

int store_resume(struct store *st)
{
    struct area *a = &st->msgs;
    bool fsync_failed;
    int rc;

    if (st->failed == 0)
        return 0;
    if ((rc = seg_area_retry(st, a)) != 0)
        return rc;
    pthread_mutex_lock(&st->sync.mu);
    fsync_failed = st->sync.error != 0;
    st->sync.error = 0;
    pthread_mutex_unlock(&st->sync.mu);
    st->failed = 0;
    st->failure_reported = false;
    /* After a failed fsync the kernel may have dropped pages it could not write and will
     * not say so again: the segment takes nothing more, new records go to a new one. */
    if (fsync_failed && a->active != NULL)
        seg_area_seal(st, a);
    pthread_mutex_lock(&st->sync.mu);
    st->sync.written_seq = st->appended_seq;
    pthread_cond_signal(&st->sync.cond);
    pthread_mutex_unlock(&st->sync.mu);
    store_update_hold(st);
    log_info(NULL, "message store: writing again in %s", a->path);
    if (st->doomed_count > 0)
        seg_process_doomed(st);
    return 0;
}

/* ---- The sync thread -------------------------------------------------------------------- */

static void add_ms(struct timespec *ts, uint64_t ms)
{
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void *store_sync_main(void *arg)
{
    struct store *st = arg;
    struct sync_state *y = &st->sync;
    struct timespec last = {0, 0};
    bool synced_once = false;
    int *fds = NULL;
    size_t fds_cap = 0;

    pthread_mutex_lock(&y->mu);
    for (;;) {
        bool work = y->written_seq > y->synced_seq || y->retired_count > 0 ||
                    y->dir_requested > y->dir_done;

        if (y->stop)
            break;
        if (!work || y->error != 0) {
            pthread_cond_wait(&y->cond, &y->mu);
            continue;
        }
        if (y->interval_ms > 0 && synced_once) {
            /* Group more appends into one fsync: wait out the interval since the last one. */
            struct timespec due = last, now;
            add_ms(&due, y->interval_ms);
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec < due.tv_sec ||
                (now.tv_sec == due.tv_sec && now.tv_nsec < due.tv_nsec)) {
                pthread_cond_timedwait(&y->cond, &y->mu, &due);
                continue;
            }
        }

        uint64_t target = y->written_seq;
        uint64_t dir_gen = y->dir_requested;
        bool dir = dir_gen > y->dir_done;
        int active = y->active_fd;
        size_t nfds = y->retired_count;
        if (fds_cap < nfds) {
            fds_cap = nfds;
            fds = xrealloc(fds, fds_cap * sizeof(int));
        }
        if (nfds)
            memcpy(fds, y->retired, nfds * sizeof(int));
        y->retired_count = 0;
        pthread_mutex_unlock(&y->mu);

        int err = 0;
        uint64_t calls = 0;
        /* Sealed segments first: their records come before the active segment's. */
        for (size_t i = 0; i < nfds; i++, calls++) {
            if (fdatasync(fds[i]) < 0 && err == 0)
                err = errno;
            close(fds[i]);
        }
        if (active >= 0) {
            calls++;
            if (fdatasync(active) < 0 && err == 0)
                err = errno;
        }
        if (dir && fsync(y->dirfd) < 0 && err == 0)
            err = errno;

        clock_gettime(CLOCK_MONOTONIC, &last);
        synced_once = true;
        pthread_mutex_lock(&y->mu);
        y->fsyncs += calls;
        if (err != 0) {
            y->error = err;
        } else {
            if (target > y->synced_seq)
                y->synced_seq = target;
            y->dir_done = dir_gen;
        }
        pthread_mutex_unlock(&y->mu);
        ev_async_send(st->loop, &st->async);
        pthread_mutex_lock(&y->mu);
    }
    pthread_mutex_unlock(&y->mu);
    free(fds);
    return NULL;
}

/* Back on the loop thread after a sync: segments waiting for it go, then the broker hears
 * how far durability got. */
void store_on_synced(struct ev_loop *loop, ev_async *w, int revents)
{
    struct store *st = container_of(w, struct store, async);
    uint64_t synced, dir_done;
    int err;

    (void)loop;
    (void)revents;
    pthread_mutex_lock(&st->sync.mu);
    synced = st->sync.synced_seq;
    dir_done = st->sync.dir_done;
    err = st->sync.error;
    pthread_mutex_unlock(&st->sync.mu);

    if (err != 0)
        store_fail(st, err, "fsync of", st->msgs.path);
    if (st->dying > 0) {
        for (size_t i = 0; i < st->msgs.count;) {
            struct segment *s = st->msgs.segs[i];
            if (s->state == SEG_DELETING && s->wait <= synced) {
                seg_unlink(st, s);
            } else if (s->state == SEG_UNLINKED && s->wait <= dir_done) {
                uint32_t number = s->number;
                seg_area_remove(st, &st->msgs, s);
                if (st->kept > 0)
                    seg_release_kept(st, number);
                continue;
            }
            i++;
        }
        if (st->doomed_count > 0)
            seg_process_doomed(st);
    }
    if (synced > st->durable_seq) {
        st->durable_seq = synced;
        /* Progress: the clock of what still waits starts again. */
        st->sync_waiting_since_ms = st->durable_seq < st->appended_seq ? now_ms() : 0;
        store_update_hold(st);
        if (st->durable_cb != NULL)
            st->durable_cb(st->durable_ctx, synced);
    }
    if (st->failed != 0 && !st->failure_reported) {
        st->failure_reported = true;
        if (st->failure_cb != NULL)
            st->failure_cb(st->failure_ctx, st->failed);
    }
}

void store_on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    store_flush(container_of(w, struct store, prepare));
}

uint64_t store_sync_stalled_ms(const struct store *st)
{
    uint64_t since = st->sync_waiting_since_ms, now;

    if (since == 0 || st->failed != 0)
        return 0;
    now = now_ms();
    return now > since ? now - since : 0;
}

void store_on_durable(struct store *st, void (*cb)(void *ctx, uint64_t durable_seq), void *ctx)
{
    st->durable_cb = cb;
    st->durable_ctx = ctx;
}

void store_on_failure(struct store *st, void (*cb)(void *ctx, int err), void *ctx)
{
    st->failure_cb = cb;
    st->failure_ctx = ctx;
}
