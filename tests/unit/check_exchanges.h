/* Test helpers shared by the exchange suites: an exchange of some type driven the way the
 * broker drives it (validate, bind, unbind, route), with destinations that are names, so a
 * routing result reads as a sorted list "q1,q2,q2".
 *
 * Each binding owns heap copies of its key and arguments, freed at unbind: a type that kept
 * a pointer into them past unbind is caught by ASan. */
#ifndef WARREN_TESTS_UNIT_CHECK_EXCHANGES_H
#define WARREN_TESTS_UNIT_CHECK_EXCHANGES_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/table.h"
#include "exchanges/registry.h"

struct test_exchange {
    const struct exchange_type *type;
    void *state;
    struct route_out out;
    char routed[8192];      /* the last route() result */
    struct binding **bound; /* the live bindings, freed by tx_close after destroy */
    size_t bound_len;
    size_t bound_cap;
};

static inline void tx_open(struct test_exchange *x, const char *type_name)
{
    memset(x, 0, sizeof *x);
    x->type = exchange_type_find(wire_cstr(type_name));
    ck_assert_ptr_nonnull(x->type);
    x->state = x->type->create();
    ck_assert_ptr_nonnull(x->state);
}

static inline void tx_free_binding(struct binding *b)
{
    free((void *)b->routing_key.ptr);
    free((void *)b->arguments.raw.ptr);
    free(b);
}

/* Destroys the exchange with its remaining bindings still bound, then frees them, as the
 * broker may: destroy must forget them without touching them. */
static inline void tx_close(struct test_exchange *x)
{
    x->type->destroy(x->state);
    route_out_free(&x->out);
    for (size_t i = 0; i < x->bound_len; i++)
        tx_free_binding(x->bound[i]);
    free(x->bound);
}

static inline struct wire_bytes tx_copy(const void *p, size_t len)
{
    uint8_t *copy = malloc(len != 0 ? len : 1);

    ck_assert_ptr_nonnull(copy);
    if (len != 0)
        memcpy(copy, p, len);
    return (struct wire_bytes){.ptr = copy, .len = len};
}

/* A binding to destination dest (a string literal: routing returns it) with routing key
 * key and arguments args; validate() must accept it. */
static inline struct binding *tx_bind_table(struct test_exchange *x, const char *dest,
                                            const char *key, struct wire_table args)
{
    struct binding *b = calloc(1, sizeof *b);
    char err[512];

    ck_assert_ptr_nonnull(b);
    b->destination = (void *)dest;
    b->routing_key = tx_copy(key, strlen(key));
    b->arguments.raw = tx_copy(args.raw.ptr, args.raw.len);
    if (x->type->validate != NULL)
        ck_assert_msg(x->type->validate(b, err, sizeof err) == 0, "refused: %s", err);
    x->type->bind(x->state, b);
    if (x->bound_len == x->bound_cap) {
        x->bound_cap = x->bound_cap ? 2 * x->bound_cap : 64;
        x->bound = realloc(x->bound, x->bound_cap * sizeof *x->bound);
        ck_assert_ptr_nonnull(x->bound);
    }
    x->bound[x->bound_len++] = b;
    return b;
}

static inline struct binding *tx_bind(struct test_exchange *x, const char *dest, const char *key)
{
    return tx_bind_table(x, dest, key, (struct wire_table){{NULL, 0}});
}

static inline void tx_unbind(struct test_exchange *x, struct binding *b)
{
    size_t i = 0;

    while (i < x->bound_len && x->bound[i] != b)
        i++;
    ck_assert_uint_lt(i, x->bound_len);
    x->bound[i] = x->bound[--x->bound_len];
    x->type->unbind(x->state, b);
    tx_free_binding(b);
}

static inline int tx_cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Routes a message with routing key key (of key_len bytes) and headers; returns the
 * destinations, sorted, joined by ','. */
static inline const char *tx_route_full(struct test_exchange *x, const char *key, size_t key_len,
                                        struct wire_table headers)
{
    struct route_msg m = {.routing_key = {(const uint8_t *)key, key_len}, .headers = headers};
    size_t used = 0;

    route_out_clear(&x->out);
    x->type->route(x->state, &m, &x->out);
    if (x->out.len > 1)
        qsort(x->out.dest, x->out.len, sizeof x->out.dest[0], tx_cmp_names);
    x->routed[0] = '\0';
    for (size_t i = 0; i < x->out.len; i++) {
        int n = snprintf(x->routed + used, sizeof x->routed - used, "%s%s", i ? "," : "",
                         (const char *)x->out.dest[i]);
        ck_assert(n > 0 && (size_t)n < sizeof x->routed - used);
        used += (size_t)n;
    }
    return x->routed;
}

static inline const char *tx_route(struct test_exchange *x, const char *key)
{
    return tx_route_full(x, key, strlen(key), (struct wire_table){{NULL, 0}});
}

/* ---- Building field tables with the codec's writer ---------------------------------- */

struct tx_table {
    uint8_t buf[4096];
    struct wire_writer w;
    size_t begin;
};

static inline struct wire_writer *tx_table_begin(struct tx_table *t)
{
    t->w = wire_writer_init(t->buf, sizeof t->buf);
    t->begin = wire_table_begin(&t->w);
    return &t->w;
}

/* The entries written since tx_table_begin, as a struct wire_table (without its length). */
static inline struct wire_table tx_table_end(struct tx_table *t)
{
    wire_table_end(&t->w, t->begin);
    ck_assert(!wire_writer_overflowed(&t->w));
    return (struct wire_table){{t->buf + t->begin + 4, wire_writer_used(&t->w) - t->begin - 4}};
}

static inline struct wire_field tx_S(const char *s)
{
    return (struct wire_field){.type = 'S', .v.bytes = wire_cstr(s)};
}

static inline struct wire_field tx_x(const char *s, size_t len)
{
    return (struct wire_field){.type = 'x', .v.bytes = {(const uint8_t *)s, len}};
}

static inline struct wire_field tx_int(uint8_t type, int64_t i)
{
    return (struct wire_field){.type = type, .v.i = i};
}

static inline struct wire_field tx_uint(uint8_t type, uint64_t u)
{
    return (struct wire_field){.type = type, .v.u = u};
}

static inline struct wire_field tx_f(float f)
{
    return (struct wire_field){.type = 'f', .v.f32 = f};
}

static inline struct wire_field tx_d(double d)
{
    return (struct wire_field){.type = 'd', .v.f64 = d};
}

static inline struct wire_field tx_D(uint8_t scale, uint32_t value)
{
    return (struct wire_field){.type = 'D', .v.decimal = {scale, value}};
}

static inline struct wire_field tx_t(bool b)
{
    return (struct wire_field){.type = 't', .v.boolean = b};
}

static inline struct wire_field tx_V(void)
{
    return (struct wire_field){.type = 'V'};
}

#endif
