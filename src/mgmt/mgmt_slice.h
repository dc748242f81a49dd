/* Management work in slices: the loop that runs the management API also serves every AMQP
 * client (src/mgmt/mgmt.h), so a large answer or a large import is done a slice at a time,
 * at most MGMT_SLICE_US of it in one loop turn, and AMQP traffic is served in between.
 *
 * Streams. A list (GET /api/queues, /api/definitions, ...) is answered 200 at once; its
 * JSON is written as MHD asks for the next part of the body, by the list's fill callback. A
 * list never keeps a pointer to a broker object from one slice to the next: it remembers
 * names (struct mgmt_names) and finds each object again when its turn comes, and an object
 * gone by then is left out. When the turn's budget is spent, the HTTP connection is
 * suspended and resumed at the next turn.
 *
 * Deferred answers. A request whose work is long (POST /api/definitions) suspends its HTTP
 * connection, does the work a slice per loop turn, and answers when it is done; until then
 * the client waits as it would for any slow request. The work continues if the client goes
 * away (as it would have), and mgmt_slices_stop() ends it at shutdown. */
#ifndef WARREN_SRC_MGMT_MGMT_SLICE_H
#define WARREN_SRC_MGMT_MGMT_SLICE_H

#include <ev.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"

struct mgmt;
struct mgmt_call;
struct mgmt_stream;
struct mgmt_work;

/* Management work one loop turn may do: an AMQP client waits at most about this long (plus
 * one object, or one fsync of an import's slice) for the API. */
#define MGMT_SLICE_US 1000

/* What struct mgmt keeps for the slices in progress. */
struct mgmt_slices {
    struct ev_loop *loop;
    void (*run_http)(void *ctx); /* runs MHD, which sees resumed connections only then */
    void *run_http_ctx;
    unsigned turn;     /* ev_iteration() of the turn spent_us belongs to */
    uint64_t spent_us; /* management work done in that turn */
    ev_timer resume;   /* the next turn: resume paused streams, run works */
    struct mgmt_stream *paused;
    struct mgmt_work *works;
};

/* run_http(ctx) runs the daemon whose connections are suspended (MHD has no thread to
 * notice a resumed connection by itself). */
void mgmt_slices_init(struct mgmt_slices *sl, struct ev_loop *loop, void (*run_http)(void *ctx),
                      void *ctx);
/* Resumes every suspended HTTP connection and stops the work in progress (its requests are
 * then closed without an answer by MHD_stop_daemon()). Call before stopping the daemons. */
void mgmt_slices_stop(struct mgmt_slices *sl);

/* ---- Streams --------------------------------------------------------------------------- */

struct mgmt_stream_ops {
    /* Writes the next part of the answer with mgmt_stream_text() and mgmt_stream_item(), at
     * most about max items of it (or a bounded step of preparation, such as sorting, that
     * writes nothing). Returns true once the answer is complete. */
    bool (*fill)(struct mgmt_stream *st, void *state, size_t max);
    /* Frees state: after the last part, or when the client went away before it. */
    void (*free)(void *state);
    /* The answer is one array, and ?sort= (mgmt_sort_wanted()) sorts it here: its items are
     * kept as fill writes them (a slice at a time, as ever), then sorted, then written a
     * slice at a time; the text fill writes after them follows them. A list that sorts
     * itself (a page must be sorted before it is chosen) leaves this false. */
    bool sort_items;
};

/* Answers 200 application/json with what ops->fill() writes from state, a slice at a time.
 * Takes state (freed through ops->free even if the answer cannot be queued). */
enum MHD_Result mgmt_respond_stream(struct mgmt_call *c, const struct mgmt_stream_ops *ops,
                                    void *state);
/* Appends JSON text as it is; the next item follows it without a comma. */
void mgmt_stream_text(struct mgmt_stream *st, const char *text);
/* Appends an item's JSON, after a comma when it follows another item; takes the reference
 * (NULL: nothing is written). */
void mgmt_stream_item(struct mgmt_stream *st, json_t *item);
/* Items written so far. */
size_t mgmt_stream_items(const struct mgmt_stream *st);

/* ---- Sorting by a field, as RabbitMQ's ?sort= and ?sort_reverse=true -------------------
 *
 * RabbitMQ sorts a list by the value at a dotted path in each item
 * (sort=message_stats.publish_details.rate), then by the list's own order (vhost, name), and
 * sort_reverse=true reverses the whole of it; a page is then taken from the result. Values
 * compare as Erlang terms do: numbers first (a field that is missing counts as 0, so it sorts
 * with the zeros), then atoms (false, null, true), then lists (arrays and objects: equal
 * here), then strings, byte by byte. */

enum mgmt_sort_kind { MGMT_KEY_NUMBER, MGMT_KEY_ATOM, MGMT_KEY_LIST, MGMT_KEY_STRING };

struct mgmt_sort_key {
    enum mgmt_sort_kind kind;
    double number;
    char *text; /* owned: a string's bytes, or an atom's name */
    size_t text_len;
};

/* The field of ?sort= (NULL when there is none, or it is empty) and whether
 * ?sort_reverse=true. */
const char *mgmt_sort_wanted(const struct mgmt_call *c, bool *reverse);
/* The value at the dotted path in item, as a key (a copy: item can go). */
void mgmt_sort_key_of(const json_t *item, const char *path, struct mgmt_sort_key *out);
void mgmt_sort_key_of_bytes(struct wire_bytes text, struct mgmt_sort_key *out);
int mgmt_sort_key_cmp(const struct mgmt_sort_key *a, const struct mgmt_sort_key *b);
void mgmt_sort_key_free(struct mgmt_sort_key *k);
/* Sorts array's items by path (NULL: keeps their order; stable: equal keys keep their order, the list's own), and
 * reverses it if asked. */
void mgmt_sort_array(json_t *array, const char *path, bool reverse);

/* ---- Names of the objects a stream lists --------------------------------------------- */

#define MGMT_NAMES_FIELDS 5    /* a binding: vhost, source, destination, key, arguments */
#define MGMT_SORT_STEPS   2048 /* comparisons a fill spends sorting before it returns */

/* Records of up to MGMT_NAMES_FIELDS byte strings, copied into one arena when a list begins
 * (cheap: no JSON), then sorted a bounded number of steps at a time, then listed in order.
 * Sorting 20,000 names takes milliseconds, so it is sliced too. */
struct mgmt_names {
    uint8_t *arena; /* each record: u32 tag, u32 field count, then each field: u32 length,
                     * its bytes, a NUL */
    size_t arena_len, arena_cap;
    size_t *recs; /* where each record starts in the arena */
    size_t count, cap;
    uint32_t *order, *spare; /* record numbers, sorted; spare: the merge's other half */
    struct {
        size_t width, lo, mid, hi, i, j, k;
        bool merging, done;
    } sort;           /* a bottom-up merge sort, in progress */
    size_t next, end; /* the records still to list: order[next..end) */
    bool limited;     /* end was set by mgmt_names_range() */
    bool reversed;    /* positions count from the end of the order */
    struct mgmt_sort_key *keys; /* one per record once mgmt_names_set_key() was called */
};

typedef int (*mgmt_names_cmp_fn)(const struct mgmt_names *names, size_t a, size_t b);

/* Appends a record of n (at most MGMT_NAMES_FIELDS) fields, copied; each copy is followed by
 * a NUL (not counted), so that a name can be used as a C string. */
void mgmt_names_add(struct mgmt_names *names, unsigned tag, size_t n,
                    const struct wire_bytes *fields);
/* Field i of record r (empty past its last field), valid until the next mgmt_names_add()
 * or mgmt_names_free(); and its tag. */
struct wire_bytes mgmt_names_field(const struct mgmt_names *names, size_t r, size_t i);
unsigned mgmt_names_tag(const struct mgmt_names *names, size_t r);
/* Compares records a and b by their first nfields fields, byte by byte. */
int mgmt_names_cmp_fields(const struct mgmt_names *names, size_t a, size_t b, size_t nfields);
/* Advances the sort of the records by cmp (stable: equal records keep the order they were
 * added in) by at most about max_steps comparisons; true once they are sorted. Call it
 * with the same cmp until then. */
bool mgmt_names_sort(struct mgmt_names *names, mgmt_names_cmp_fn cmp, size_t max_steps);
/* Record r's sort key (mgmt_names_cmp_key() compares them); takes *key. Call it for every
 * record, after the last mgmt_names_add(). */
void mgmt_names_set_key(struct mgmt_names *names, size_t r, struct mgmt_sort_key *key);
/* Compares records a and b by their keys. */
int mgmt_names_cmp_key(const struct mgmt_names *names, size_t a, size_t b);
/* The order is listed from its end (sort_reverse=true): a range counts positions from there. */
void mgmt_names_reverse(struct mgmt_names *names);
/* List only positions [first, end) of the order (a page); the default is all of them. */
void mgmt_names_range(struct mgmt_names *names, size_t first, size_t end);
/* Whether every record of the range has been listed. */
bool mgmt_names_done(const struct mgmt_names *names);
/* The next record to list (by number, for mgmt_names_field()), in sorted order if sorted,
 * else in the order added; false when there is none left. */
bool mgmt_names_next(struct mgmt_names *names, size_t *r);
void mgmt_names_free(struct mgmt_names *names);

/* ---- Deferred answers ------------------------------------------------------------------ */

enum mgmt_work_state {
    MGMT_WORK_MORE, /* step again next turn */
    MGMT_WORK_WAIT, /* waiting for something off the loop, until mgmt_work_wake() */
    MGMT_WORK_DONE, /* answer now */
};

struct mgmt_work_ops {
    /* Does the next part of the work, for about budget_us (at least one step of it). */
    enum mgmt_work_state (*step)(void *state, uint64_t budget_us);
    /* Answers the request once the work is done (c is the request, called back). */
    enum MHD_Result (*answer)(struct mgmt_call *c, void *state);
    void (*free)(void *state);
};

/* Suspends the request and does ops->step() from state a slice per loop turn until it is
 * done, then answers with ops->answer(). Takes state; *out (if out is not NULL) gets the
 * work, for mgmt_work_wake(). Returns what the request callback returns. */
enum MHD_Result mgmt_defer(struct mgmt_call *c, const struct mgmt_work_ops *ops, void *state,
                           struct mgmt_work **out);
/* A waiting work can go on: it steps again from the next turn. On the loop thread only. */
void mgmt_work_wake(struct mgmt_work *w);
/* The request of w was called back by MHD: the answer once the work is done (otherwise it
 * waits again). */
enum MHD_Result mgmt_work_answer(struct mgmt_work *w, struct mgmt_call *c);
/* The request of w is over (answered, or its connection closed): frees w, ending its work if
 * it is still running. NULL is fine. */
void mgmt_work_free(struct mgmt_work *w);

#endif
