/* headers: a binding matches on the message's headers property, not its routing key. The
 * binding's arguments are the pattern; "x-match" says how much of it must hold:
 *
 *   all (the default)  every pattern entry has a header of that name with an equal value
 *   any                at least one does
 *   all-with-x, any-with-x   the same, counting the pattern's "x-" entries too
 *
 * Otherwise entries whose name starts with "x-" (case-sensitive; "x-" alone counts) are not
 * part of the pattern, and "x-match" itself never is. So "all" with nothing left matches
 * every message and "any" with nothing left matches none. A pattern entry of type void
 * ('V') asks only for the header's presence. Values compare as RabbitMQ's decoded Erlang
 * terms do (erl_term_equal): 'I' 1 matches 'l' 1 and 'd' 1.0, 'S' matches 'x' with the same
 * bytes.
 *
 * Repeated names follow RabbitMQ too. It sorts both lists by name (keeping the order of
 * equal names) and walks them together: the k-th pattern entry named n meets the k-th
 * header named n, if there is one. The first "x-match" decides the mode.
 *
 * Every binding is tried for every message, as in RabbitMQ; the message's headers are
 * sorted once per message, each binding's pattern once at bind time. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "exchanges/erl_term.h"
#include "exchanges/registry.h"
#include "exchanges/xalloc.h"

/* One name and value of a pattern or of a message's headers. order keeps the sort stable. */
struct header_entry {
    struct wire_bytes name;
    struct wire_field value;
    size_t order;
};

/* A bound pattern, ready to match. The names and values point into the binding's
 * arguments, which the broker keeps until unbind. */
struct headers_pattern {
    struct binding *binding;
    size_t index; /* position in struct headers.bindings */
    bool match_any;
    size_t len;
    struct header_entry entries[]; /* sorted by name */
};

struct headers {
    struct headers_pattern **bindings;
    size_t len;
    size_t cap;
    struct header_entry *message; /* scratch: the routed message's headers, sorted */
    size_t message_cap;
};

static const struct wire_bytes x_match_name = WIRE_BYTES_C("x-match");

/* Erlang's order of binaries: byte by byte, a prefix first. */
static int name_cmp(struct wire_bytes a, struct wire_bytes b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n != 0 ? memcmp(a.ptr, b.ptr, n) : 0;

    if (c != 0)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int entry_cmp(const void *pa, const void *pb)
{
    const struct header_entry *a = pa, *b = pb;
    int c = name_cmp(a->name, b->name);

    if (c != 0)
        return c;
    return a->order < b->order ? -1 : a->order > b->order;
}

static bool is_x_name(struct wire_bytes name)
{
    return name.len >= 2 && name.ptr[0] == 'x' && name.ptr[1] == '-';
}

enum x_match { X_MATCH_ALL, X_MATCH_ANY, X_MATCH_ALL_WITH_X, X_MATCH_ANY_WITH_X, X_MATCH_BAD };

static enum x_match x_match_parse(struct wire_bytes v)
{
    static const char *const names[] = {"all", "any", "all-with-x", "any-with-x"};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (wire_bytes_eq_cstr(v, names[i]))
            return (enum x_match)i;
    }
    return X_MATCH_BAD;
}

/* RabbitMQ's texts (3.10), without the "PRECONDITION_FAILED - " the broker puts in front:
 *   Invalid x-match field value <<"foo">>; expected all, any, all-with-x, or any-with-x
 *   Invalid x-match field type signedint (value 1); expected longstr
 * Only the first x-match counts; a later one is not even checked. */
static int headers_validate(const struct binding *b, char *err, size_t err_size)
{
    struct erl_out o = {.buf = err, .size = err_size};
    struct wire_field v;

    if (err_size > 0)
        err[0] = '\0';
    if (!wire_table_find(b->arguments, "x-match", &v))
        return 0;
    if (v.type == 'S') {
        if (x_match_parse(v.v.bytes) != X_MATCH_BAD)
            return 0;
        erl_out_str(&o, "Invalid x-match field value ");
        erl_out_binary(&o, v.v.bytes);
        erl_out_str(&o, "; expected all, any, all-with-x, or any-with-x");
    } else {
        erl_out_str(&o, "Invalid x-match field type ");
        erl_out_str(&o, erl_term_type_name(v.type));
        erl_out_str(&o, " (value ");
        erl_out_term(&o, &v);
        erl_out_str(&o, "); expected longstr");
    }
    return -1;
}

static void *headers_create(void)
{
    return exch_xcalloc(1, sizeof(struct headers));
}

static void headers_destroy(void *state)
{
    struct headers *h = state;

    if (h == NULL)
        return;
    /* The bindings themselves may already be gone: only our patterns are freed. */
    for (size_t i = 0; i < h->len; i++)
        free(h->bindings[i]);
    free(h->bindings);
    free(h->message);
    free(h);
}

static size_t table_count(struct wire_table t)
{
    struct wire_table_iter it;
    struct wire_bytes name;
    struct wire_field value;
    size_t n = 0;

    wire_table_iter_init(&it, t);
    while (wire_table_next(&it, &name, &value))
        n++;
    return n;
}

static void headers_bind(void *state, struct binding *b)
{
    struct headers *h = state;
    enum x_match mode = X_MATCH_ALL;
    struct headers_pattern *p;
    struct wire_table_iter it;
    struct wire_bytes name;
    struct wire_field value;
    bool with_x;
    size_t n = 0;

    if (wire_table_find(b->arguments, "x-match", &value)) {
        assert(value.type == 'S'); /* validate() refused anything else */
        mode = x_match_parse(value.v.bytes);
        assert(mode != X_MATCH_BAD);
    }
    with_x = mode == X_MATCH_ALL_WITH_X || mode == X_MATCH_ANY_WITH_X;

    p = exch_xmalloc(sizeof *p + table_count(b->arguments) * sizeof p->entries[0]);
    p->binding = b;
    p->match_any = mode == X_MATCH_ANY || mode == X_MATCH_ANY_WITH_X;
    wire_table_iter_init(&it, b->arguments);
    while (wire_table_next(&it, &name, &value)) {
        if (wire_bytes_eq(name, x_match_name) || (!with_x && is_x_name(name)))
            continue;
        p->entries[n] = (struct header_entry){.name = name, .value = value, .order = n};
        n++;
    }
    p->len = n;
    if (n > 1)
        qsort(p->entries, n, sizeof p->entries[0], entry_cmp);

    if (h->len == h->cap) {
        h->cap = h->cap != 0 ? 2 * h->cap : 8;
        h->bindings = exch_xreallocarray(h->bindings, h->cap, sizeof *h->bindings);
    }
    p->index = h->len;
    h->bindings[h->len++] = p;
    b->type_data = p;
}

static void headers_unbind(void *state, struct binding *b)
{
    struct headers *h = state;
    struct headers_pattern *p = b->type_data;

    assert(p != NULL && p->index < h->len && h->bindings[p->index] == p);
    h->bindings[p->index] = h->bindings[--h->len];
    h->bindings[p->index]->index = p->index;
    b->type_data = NULL;
    free(p);
    if (h->len == 0) {
        free(h->bindings);
        h->bindings = NULL;
        h->cap = 0;
    }
}

/* The first of msg[from, n) whose name is not below name (n if none). */
static size_t lower_bound(const struct header_entry *msg, size_t from, size_t n,
                          struct wire_bytes name)
{
    size_t lo = from, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (name_cmp(msg[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The walk over both sorted lists: headers below the next pattern name are passed over; a
 * header with the pattern's name is compared and used up. */
static bool pattern_matches(const struct headers_pattern *p, const struct header_entry *msg,
                            size_t n)
{
    size_t next = 0;

    for (size_t i = 0; i < p->len; i++) {
        const struct header_entry *want = &p->entries[i];
        bool found, equal;

        next = lower_bound(msg, next, n, want->name);
        found = next < n && wire_bytes_eq(msg[next].name, want->name);
        equal =
            found && (want->value.type == 'V' || erl_term_equal(&want->value, &msg[next].value));
        if (found)
            next++;
        if (p->match_any && equal)
            return true;
        if (!p->match_any && !equal)
            return false;
    }
    return !p->match_any;
}

static void headers_route(void *state, const struct route_msg *m, struct route_out *out)
{
    struct headers *h = state;
    struct wire_table_iter it;
    struct wire_bytes name;
    struct wire_field value;
    size_t n = 0;

    if (h->len == 0)
        return;
    wire_table_iter_init(&it, m->headers);
    while (wire_table_next(&it, &name, &value)) {
        if (n == h->message_cap) {
            h->message_cap = h->message_cap != 0 ? 2 * h->message_cap : 16;
            h->message = exch_xreallocarray(h->message, h->message_cap, sizeof *h->message);
        }
        h->message[n] = (struct header_entry){.name = name, .value = value, .order = n};
        n++;
    }
    if (n > 1)
        qsort(h->message, n, sizeof h->message[0], entry_cmp);

    for (size_t i = 0; i < h->len; i++) {
        if (pattern_matches(h->bindings[i], h->message, n))
            route_out_add(out, h->bindings[i]->binding->destination);
    }
}

const struct exchange_type exchange_type_headers = {
    .name = "headers",
    .create = headers_create,
    .destroy = headers_destroy,
    .validate = headers_validate,
    .bind = headers_bind,
    .unbind = headers_unbind,
    .route = headers_route,
};
