/* Management work in slices (src/mgmt/mgmt_slice.h): streamed answers, the names they list,
 * deferred answers, and the budget of one loop turn they share. */
#include "build_config.h"

#include "src/mgmt/mgmt_slice.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/buf.h"
#include "src/base/util.h"
#include "src/mgmt/mgmt_api.h"

/* Items a stream's fill writes between two looks at the clock. */
#define STREAM_FILL_ITEMS 4
/* MHD's buffer for a body of unknown length without chunked encoding (HTTP/1.0). */
#define STREAM_BLOCK_BYTES (32 * 1024)

/* ---- The budget of a loop turn ------------------------------------------------------- */

/* Microseconds of management work the current loop turn still allows. */
static uint64_t budget_left(struct mgmt_slices *sl)
{
    unsigned turn = ev_iteration(sl->loop);

    if (turn != sl->turn) {
        sl->turn = turn;
        sl->spent_us = 0;
    }
    return sl->spent_us < MGMT_SLICE_US ? MGMT_SLICE_US - sl->spent_us : 0;
}

static void on_resume(struct ev_loop *loop, ev_timer *w, int revents);

void mgmt_slices_init(struct mgmt_slices *sl, struct ev_loop *loop, void (*run_http)(void *ctx),
                      void *ctx)
{
    *sl = (struct mgmt_slices){.loop = loop, .run_http = run_http, .run_http_ctx = ctx};
    ev_timer_init(&sl->resume, on_resume, 0., 0.);
}

/* The next loop turn, not this one: its poll serves AMQP first. */
static void resume_next_turn(struct mgmt_slices *sl)
{
    if (!ev_is_active(&sl->resume))
        ev_timer_start(sl->loop, &sl->resume);
}

/* ---- Streams --------------------------------------------------------------------------- */

struct mgmt_stream {
    struct mgmt_slices *sl;
    struct MHD_Connection *conn;
    const struct mgmt_stream_ops *ops;
    void *state;
    struct buf out; /* text written and not yet handed to MHD */
    size_t items;   /* items written */
    bool comma;     /* the next item follows an item */
    bool filled;    /* fill has written the end */
    bool complete;  /* ... and, when sorting, the sorted items and what followed them too */
    bool paused;    /* in sl->paused, its connection suspended */
    bool owed;      /* resumed: may write once even if the turn's budget is spent */
    struct mgmt_stream *next_paused;
    /* Sorting (ops->sort_items and ?sort=): the items kept as fill writes them, the text
     * that came after the first of them, and how many are written once sorted. */
    char *sort_path;
    bool sort_reverse, sorted;
    json_t *kept;
    struct buf tail;
    size_t kept_written;
};

static int append_text(const char *text, size_t len, void *data)
{
    struct mgmt_stream *st = data;

    buf_reserve(&st->out, len);
    memcpy(st->out.data + st->out.len, text, len);
    st->out.len += len;
    return 0;
}

void mgmt_stream_text(struct mgmt_stream *st, const char *text)
{
    if (st->kept != NULL && json_array_size(st->kept) > 0) {
        /* After the items being sorted: it follows them once they are written. */
        buf_reserve(&st->tail, strlen(text));
        memcpy(st->tail.data + st->tail.len, text, strlen(text));
        st->tail.len += strlen(text);
        return;
    }
    append_text(text, strlen(text), st);
    st->comma = false;
}

static void write_item(struct mgmt_stream *st, const json_t *item)
{
    if (st->comma)
        append_text(",", 1, st);
    /* Compact, as mgmt_respond_json() writes a whole list: the same bytes. */
    json_dump_callback(item, append_text, st, JSON_COMPACT | JSON_ENCODE_ANY);
    st->comma = true;
    st->items++;
}

void mgmt_stream_item(struct mgmt_stream *st, json_t *item)
{
    if (item == NULL)
        return;
    if (st->kept != NULL) {
        json_array_append_new(st->kept, item);
        return;
    }
    write_item(st, item);
    json_decref(item);
}

/* Sorting: once fill is done, sorts the kept items (at once: comparing keys is quick; the
 * objects were rendered a slice at a time), then writes at most max of them; true once all
 * of them and the text after them are written. */
static bool write_kept(struct mgmt_stream *st, size_t max)
{
    size_t n = json_array_size(st->kept);

    if (!st->sorted) {
        mgmt_sort_array(st->kept, st->sort_path, st->sort_reverse);
        st->sorted = true;
    }
    for (; st->kept_written < n && max > 0; max--)
        write_item(st, json_array_get(st->kept, st->kept_written++));
    if (st->kept_written < n)
        return false;
    append_text((const char *)st->tail.data, st->tail.len, st);
    st->tail.len = 0;
    return true;
}

size_t mgmt_stream_items(const struct mgmt_stream *st)
{
    return st->items;
}

/* Fills until want_bytes are waiting, the budget is spent or the answer is complete; always
 * calls fill at least once. */
static void produce(struct mgmt_stream *st, size_t want_bytes, uint64_t budget_us)
{
    uint64_t start = now_us(), spent;

    do {
        if (!st->filled)
            st->filled = st->ops->fill(st, st->state, STREAM_FILL_ITEMS);
        if (st->filled)
            st->complete = st->kept == NULL || write_kept(st, STREAM_FILL_ITEMS);
        spent = now_us() - start;
    } while (!st->complete && buf_pending(&st->out) < want_bytes && spent < budget_us);
    st->sl->spent_us += spent;
}

static void stream_pause(struct mgmt_stream *st)
{
    MHD_suspend_connection(st->conn);
    st->paused = true;
    st->next_paused = st->sl->paused;
    st->sl->paused = st;
    resume_next_turn(st->sl);
}

/* MHD wants the next part of the body, at most max bytes: what is written, topped up with a
 * new slice while the turn's budget lasts. */
static ssize_t on_stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct mgmt_stream *st = cls;
    size_t n;

    (void)pos;
    if (!st->complete && buf_pending(&st->out) < max) {
        uint64_t budget = budget_left(st->sl);
        if (budget == 0 && st->owed)
            budget = 1; /* one fill, so that a stream always advances once resumed */
        if (budget > 0)
            produce(st, max, budget);
        st->owed = false;
    }
    if (buf_pending(&st->out) == 0) {
        if (st->complete)
            return MHD_CONTENT_READER_END_OF_STREAM;
        /* Returning 0 without suspending would leave MHD waiting for the socket forever. */
        stream_pause(st);
        return 0;
    }
    n = buf_pending(&st->out) < max ? buf_pending(&st->out) : max;
    memcpy(out, st->out.data + st->out.sent, n);
    buf_consumed(&st->out, n);
    return (ssize_t)n;
}

static void stream_unpause(struct mgmt_stream *st)
{
    struct mgmt_stream **p = &st->sl->paused;

    while (*p != NULL && *p != st)
        p = &(*p)->next_paused;
    if (*p == st)
        *p = st->next_paused;
    st->paused = false;
    st->next_paused = NULL;
}

static void on_stream_free(void *cls)
{
    struct mgmt_stream *st = cls;

    if (st->paused)
        stream_unpause(st);
    st->ops->free(st->state);
    buf_free(&st->out);
    buf_free(&st->tail);
    json_decref(st->kept);
    free(st->sort_path);
    free(st);
}

enum MHD_Result mgmt_respond_stream(struct mgmt_call *c, const struct mgmt_stream_ops *ops,
                                    void *state)
{
    struct mgmt_stream *st = xcalloc(1, sizeof *st);
    struct MHD_Response *r;
    enum MHD_Result ok;

    const char *sort_path;
    bool reverse;

    *st = (struct mgmt_stream){.sl = &c->m->slices, .conn = c->conn, .ops = ops, .state = state};
    sort_path = mgmt_sort_wanted(c, &reverse);
    if (ops->sort_items && (sort_path != NULL || reverse)) {
        st->sort_path = sort_path != NULL ? xstrdup(sort_path) : NULL;
        st->sort_reverse = reverse;
        st->kept = json_array();
    }
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK_BYTES, on_stream_read, st,
                                          on_stream_free);
    if (r == NULL) {
        on_stream_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    ok = MHD_queue_response(c->conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r); /* MHD keeps its own reference until the body is sent */
    return ok;
}

/* ---- Sorting by a field --------------------------------------------------------------- */

const char *mgmt_sort_wanted(const struct mgmt_call *c, bool *reverse)
{
    const char *path = mgmt_query(c, "sort"), *rev = mgmt_query(c, "sort_reverse");

    /* As RabbitMQ: only "true" reverses. */
    *reverse = rev != NULL && strcmp(rev, "true") == 0;
    return path != NULL && path[0] != '\0' ? path : NULL;
}

static void key_text(struct mgmt_sort_key *out, enum mgmt_sort_kind kind, const char *p,
                     size_t len)
{
    out->kind = kind;
    out->text = xmalloc(len + 1);
    memcpy(out->text, p, len);
    out->text[len] = '\0';
    out->text_len = len;
}

void mgmt_sort_key_of(const json_t *item, const char *path, struct mgmt_sort_key *out)
{
    const json_t *v = item;
    char part[256];

    *out = (struct mgmt_sort_key){.kind = MGMT_KEY_NUMBER};
    for (const char *p = path; v != NULL;) {
        const char *dot = strchr(p, '.');
        size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
        if (!json_is_object(v) || len >= sizeof part)
            return; /* no such field: 0, as RabbitMQ counts it */
        memcpy(part, p, len);
        part[len] = '\0';
        v = json_object_get(v, part);
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    if (v == NULL) {
        return;
    } else if (json_is_number(v)) {
        out->number = json_number_value(v);
    } else if (json_is_string(v)) {
        key_text(out, MGMT_KEY_STRING, json_string_value(v), json_string_length(v));
    } else if (json_is_boolean(v) || json_is_null(v)) {
        const char *atom = json_is_null(v) ? "null" : json_is_true(v) ? "true" : "false";
        key_text(out, MGMT_KEY_ATOM, atom, strlen(atom));
    } else {
        out->kind = MGMT_KEY_LIST;
    }
}

void mgmt_sort_key_of_bytes(struct wire_bytes text, struct mgmt_sort_key *out)
{
    key_text(out, MGMT_KEY_STRING, (const char *)text.ptr, text.len);
}

int mgmt_sort_key_cmp(const struct mgmt_sort_key *a, const struct mgmt_sort_key *b)
{
    size_t n;
    int r;

    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    switch (a->kind) {
    case MGMT_KEY_NUMBER:
        return a->number < b->number ? -1 : a->number > b->number ? 1 : 0;
    case MGMT_KEY_LIST:
        return 0;
    case MGMT_KEY_ATOM:
    case MGMT_KEY_STRING:
        break;
    }
    n = a->text_len < b->text_len ? a->text_len : b->text_len;
    r = memcmp(a->text, b->text, n);
    if (r != 0)
        return r < 0 ? -1 : 1;
    return a->text_len < b->text_len ? -1 : a->text_len > b->text_len ? 1 : 0;
}

void mgmt_sort_key_free(struct mgmt_sort_key *k)
{
    free(k->text);
    k->text = NULL;
}

struct keyed_item {
    struct mgmt_sort_key key;
    size_t index;
    json_t *item;
};

static int cmp_keyed_items(const void *a, const void *b)
{
    const struct keyed_item *x = a, *y = b;
    int r = mgmt_sort_key_cmp(&x->key, &y->key);

    if (r != 0)
        return r;
    /* Equal keys keep the list's own order: stable. */
    return x->index < y->index ? -1 : x->index > y->index ? 1 : 0;
}

void mgmt_sort_array(json_t *array, const char *path, bool reverse)
{
    size_t n = json_array_size(array);
    struct keyed_item *items;

    if (n == 0)
        return;
    items = xmalloc(n * sizeof *items);
    for (size_t i = 0; i < n; i++) {
        items[i].item = json_incref(json_array_get(array, i));
        items[i].index = i;
        items[i].key = (struct mgmt_sort_key){.kind = MGMT_KEY_NUMBER};
        if (path != NULL)
            mgmt_sort_key_of(items[i].item, path, &items[i].key);
    }
    qsort(items, n, sizeof *items, cmp_keyed_items);
    json_array_clear(array);
    for (size_t i = 0; i < n; i++) {
        struct keyed_item *k = &items[reverse ? n - 1 - i : i];
        json_array_append_new(array, k->item);
        mgmt_sort_key_free(&k->key);
    }
    free(items);
}

/* ---- Names ----------------------------------------------------------------------------- */

static void arena_put(struct mgmt_names *names, const void *p, size_t n)
{
    if (names->arena_cap - names->arena_len < n) {
        while (names->arena_cap - names->arena_len < n)
            names->arena_cap = names->arena_cap ? names->arena_cap * 2 : 4096;
        names->arena = xrealloc(names->arena, names->arena_cap);
    }
    if (n > 0)
        memcpy(names->arena + names->arena_len, p, n);
    names->arena_len += n;
}

static uint32_t arena_u32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof v);
    return v;
}

void mgmt_names_add(struct mgmt_names *names, unsigned tag, size_t n,
                    const struct wire_bytes *fields)
{
    uint32_t head[2] = {tag, (uint32_t)n};

    assert(n <= MGMT_NAMES_FIELDS && names->order == NULL && names->count < UINT32_MAX);
    if (names->count == names->cap) {
        names->cap = names->cap ? names->cap * 2 : 64;
        names->recs = xrealloc(names->recs, names->cap * sizeof *names->recs);
    }
    names->recs[names->count++] = names->arena_len;
    arena_put(names, head, sizeof head);
    for (size_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)fields[i].len;
        arena_put(names, &len, sizeof len);
        arena_put(names, fields[i].ptr, fields[i].len);
        arena_put(names, "", 1);
    }
}

struct wire_bytes mgmt_names_field(const struct mgmt_names *names, size_t r, size_t i)
{
    const uint8_t *p = names->arena + names->recs[r];
    uint32_t n = arena_u32(p + 4), len;

    if (i >= n)
        return WIRE_BYTES_C("");
    p += 8;
    for (;; i--) {
        len = arena_u32(p);
        if (i == 0)
            return (struct wire_bytes){.ptr = p + 4, .len = len};
        p += 4 + len + 1;
    }
}

unsigned mgmt_names_tag(const struct mgmt_names *names, size_t r)
{
    return arena_u32(names->arena + names->recs[r]);
}

int mgmt_names_cmp_fields(const struct mgmt_names *names, size_t a, size_t b, size_t nfields)
{
    for (size_t i = 0; i < nfields; i++) {
        struct wire_bytes x = mgmt_names_field(names, a, i), y = mgmt_names_field(names, b, i);
        size_t n = x.len < y.len ? x.len : y.len;
        int r = memcmp(x.ptr, y.ptr, n);
        if (r != 0)
            return r;
        if (x.len != y.len)
            return x.len < y.len ? -1 : 1;
    }
    return 0;
}

/* A bottom-up merge sort that can stop anywhere: runs of width are merged pairwise from
 * order into spare, then the two swap and width doubles. */
bool mgmt_names_sort(struct mgmt_names *names, mgmt_names_cmp_fn cmp, size_t max_steps)
{
    size_t n = names->count;

    if (names->order == NULL) {
        names->order = xmalloc((n + 1) * sizeof *names->order);
        names->spare = xmalloc((n + 1) * sizeof *names->spare);
        for (size_t i = 0; i < n; i++)
            names->order[i] = (uint32_t)i;
        names->sort.width = 1;
    }
    while (!names->sort.done && max_steps > 0) {
        if (names->sort.width >= n) {
            names->sort.done = true;
            break;
        }
        if (!names->sort.merging) {
            if (names->sort.lo >= n) {
                uint32_t *t = names->order;
                names->order = names->spare;
                names->spare = t;
                names->sort.width *= 2;
                names->sort.lo = 0;
                continue;
            }
            names->sort.mid =
                names->sort.lo + names->sort.width < n ? names->sort.lo + names->sort.width : n;
            names->sort.hi =
                names->sort.mid + names->sort.width < n ? names->sort.mid + names->sort.width : n;
            names->sort.i = names->sort.k = names->sort.lo;
            names->sort.j = names->sort.mid;
            names->sort.merging = true;
        }
        for (; names->sort.k < names->sort.hi && max_steps > 0; max_steps--) {
            size_t *i = &names->sort.i, *j = &names->sort.j;
            /* From the left run on ties: that keeps the sort stable. */
            if (*i < names->sort.mid &&
                (*j >= names->sort.hi || cmp(names, names->order[*i], names->order[*j]) <= 0))
                names->spare[names->sort.k++] = names->order[(*i)++];
            else
                names->spare[names->sort.k++] = names->order[(*j)++];
        }
        if (names->sort.k == names->sort.hi) {
            names->sort.merging = false;
            names->sort.lo = names->sort.hi;
        }
    }
    return names->sort.done;
}

void mgmt_names_set_key(struct mgmt_names *names, size_t r, struct mgmt_sort_key *key)
{
    if (names->keys == NULL)
        names->keys = xcalloc(names->count + 1, sizeof *names->keys);
    mgmt_sort_key_free(&names->keys[r]);
    names->keys[r] = *key;
    *key = (struct mgmt_sort_key){0};
}

int mgmt_names_cmp_key(const struct mgmt_names *names, size_t a, size_t b)
{
    return mgmt_sort_key_cmp(&names->keys[a], &names->keys[b]);
}

void mgmt_names_reverse(struct mgmt_names *names)
{
    names->reversed = true;
}

void mgmt_names_range(struct mgmt_names *names, size_t first, size_t end)
{
    names->next = first;
    names->end = end;
    names->limited = true;
}

bool mgmt_names_done(const struct mgmt_names *names)
{
    return names->next >= (names->limited ? names->end : names->count) ||
           names->next >= names->count;
}

bool mgmt_names_next(struct mgmt_names *names, size_t *r)
{
    size_t pos;

    if (mgmt_names_done(names))
        return false;
    pos = names->reversed ? names->count - 1 - names->next : names->next;
    *r = names->order != NULL ? names->order[pos] : pos;
    names->next++;
    return true;
}

void mgmt_names_free(struct mgmt_names *names)
{
    if (names->keys != NULL) {
        for (size_t i = 0; i < names->count; i++)
            mgmt_sort_key_free(&names->keys[i]);
        free(names->keys);
    }
    free(names->arena);
    free(names->recs);
    free(names->order);
    free(names->spare);
    *names = (struct mgmt_names){0};
}

/* ---- Deferred answers ------------------------------------------------------------------ */

struct mgmt_work {
    struct mgmt_slices *sl;
    struct MHD_Connection *conn;
    const struct mgmt_work_ops *ops;
    void *state;
    bool running; /* in sl->works, its connection suspended */
    bool waiting; /* not stepped until mgmt_work_wake() */
    bool done;
    struct mgmt_work *next;
};

static void work_unlink(struct mgmt_work *w)
{
    struct mgmt_work **p = &w->sl->works;

    while (*p != NULL && *p != w)
        p = &(*p)->next;
    if (*p == w)
        *p = w->next;
    w->next = NULL;
    w->running = false;
}

enum MHD_Result mgmt_defer(struct mgmt_call *c, const struct mgmt_work_ops *ops, void *state,
                           struct mgmt_work **out)
{
    struct mgmt_work *w = xcalloc(1, sizeof *w);

    *w = (struct mgmt_work){.sl = &c->m->slices, .conn = c->conn, .ops = ops, .state = state};
    assert(*c->work == NULL);
    *c->work = w;
    if (out != NULL)
        *out = w;
    w->running = true;
    w->next = w->sl->works;
    w->sl->works = w;
    MHD_suspend_connection(c->conn);
    resume_next_turn(w->sl);
    return MHD_YES;
}

void mgmt_work_wake(struct mgmt_work *w)
{
    if (w->running && w->waiting) {
        w->waiting = false;
        resume_next_turn(w->sl);
    }
}

enum MHD_Result mgmt_work_answer(struct mgmt_work *w, struct mgmt_call *c)
{
    /* Only mgmt_slices_stop() resumes a request before its work is done. */
    if (!w->done)
        return mgmt_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "service_unavailable",
                                  "the broker is stopping");
    return w->ops->answer(c, w->state);
}

void mgmt_work_free(struct mgmt_work *w)
{
    if (w == NULL)
        return;
    if (w->running)
        work_unlink(w);
    w->ops->free(w->state);
    free(w);
}

/* ---- The next turn --------------------------------------------------------------------- */

/* Steps every work that is not waiting; true if one wants the next turn too. */
static bool run_works(struct mgmt_slices *sl)
{
    struct mgmt_work *w = sl->works, *next;
    bool more = false;

    for (; w != NULL; w = next) {
        uint64_t budget = budget_left(sl), start = now_us();
        enum mgmt_work_state state;
        next = w->next;
        if (w->waiting)
            continue;
        /* Each work advances every turn, however much the others took. */
        state = w->ops->step(w->state, budget > 0 ? budget : 1);
        sl->spent_us += now_us() - start;
        if (state == MGMT_WORK_DONE) {
            w->done = true;
            work_unlink(w);
            MHD_resume_connection(w->conn);
        } else if (state == MGMT_WORK_WAIT) {
            w->waiting = true;
        } else {
            more = true;
        }
    }
    return more;
}

static void on_resume(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct mgmt_slices *sl = container_of(t, struct mgmt_slices, resume);
    struct mgmt_stream *st = sl->paused;

    (void)loop;
    (void)revents;
    sl->paused = NULL;
    while (st != NULL) {
        struct mgmt_stream *next = st->next_paused;
        st->paused = false;
        st->owed = true;
        st->next_paused = NULL;
        MHD_resume_connection(st->conn);
        st = next;
    }
    if (run_works(sl))
        resume_next_turn(sl);
    sl->run_http(sl->run_http_ctx);
}

void mgmt_slices_stop(struct mgmt_slices *sl)
{
    if (sl->loop == NULL)
        return;
    ev_timer_stop(sl->loop, &sl->resume);
    while (sl->paused != NULL) {
        struct mgmt_stream *st = sl->paused;
        stream_unpause(st);
        MHD_resume_connection(st->conn);
    }
    while (sl->works != NULL) {
        struct mgmt_work *w = sl->works;
        work_unlink(w);
        MHD_resume_connection(w->conn);
    }
}
