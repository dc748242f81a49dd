/* struct definitions: the builders that copy every string and table into it, and its free;
 * and the helpers the files of src/definitions/ share (definitions_internal.h). Import,
 * export and the JSON <-> AMQP table conversion are in import.c, export.c and json_table.c;
 * definitions.h describes the format, the order of application and the refusals. */
#include "src/definitions/definitions.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/util.h"
#include "src/definitions/definitions_internal.h"

void definitions_set_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* ---- struct definitions ---------------------------------------------------------------- */

struct definitions *definitions_new(void)
{
    return xcalloc(1, sizeof(struct definitions));
}

static struct wire_table table_dup(struct wire_table t)
{
    struct wire_bytes copy = {0};

    if (t.raw.len > 0) {
        uint8_t *p = xmalloc(t.raw.len);
        memcpy(p, t.raw.ptr, t.raw.len);
        copy = (struct wire_bytes){.ptr = p, .len = t.raw.len};
    }
    return (struct wire_table){.raw = copy};
}

void definitions_table_free(struct wire_table *t)
{
    free((void *)t->raw.ptr);
    *t = (struct wire_table){{0}};
}

void definitions_free(struct definitions *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->exchanges_len; i++) {
        struct def_exchange *x = &d->exchanges[i];
        free(x->vhost);
        free(x->name);
        free(x->type);
        definitions_table_free(&x->arguments);
    }
    for (size_t i = 0; i < d->queues_len; i++) {
        struct def_queue *q = &d->queues[i];
        free(q->vhost);
        free(q->name);
        definitions_table_free(&q->arguments);
    }
    for (size_t i = 0; i < d->bindings_len; i++) {
        struct def_binding *b = &d->bindings[i];
        free(b->vhost);
        free(b->source);
        free(b->destination);
        free(b->routing_key);
        definitions_table_free(&b->arguments);
    }
    for (size_t i = 0; i < d->policies_len; i++) {
        struct def_policy *p = &d->policies[i];
        free(p->vhost);
        free(p->name);
        free(p->pattern);
        free(p->apply_to);
        definitions_table_free(&p->definition);
    }
    free(d->exchanges);
    free(d->queues);
    free(d->bindings);
    free(d->policies);
    free(d);
}

/* Appends one zeroed element to an array of elements of elem_size bytes. The room doubles
 * whenever len reaches a power of two, so that adding 30,000 queues moves the array a few
 * times, not 30,000 times. */
static void *grow(void *array, size_t *len, size_t elem_size)
{
    char *p = array;

    if ((*len & (*len - 1)) == 0)
        p = xrealloc(array, (*len == 0 ? 1 : 2 * *len) * elem_size);
    memset(p + *len * elem_size, 0, elem_size);
    (*len)++;
    return p;
}

void definitions_add_exchange(struct definitions *d, const char *vhost, const char *name,
                              const char *type, bool durable, bool auto_delete, bool internal,
                              struct wire_table arguments)
{
    struct def_exchange *x;

    d->exchanges = grow(d->exchanges, &d->exchanges_len, sizeof *d->exchanges);
    x = &d->exchanges[d->exchanges_len - 1];
    *x = (struct def_exchange){.vhost = xstrdup(vhost),
                               .name = xstrdup(name),
                               .type = xstrdup(type),
                               .durable = durable,
                               .auto_delete = auto_delete,
                               .internal = internal,
                               .arguments = table_dup(arguments)};
}

void definitions_add_queue(struct definitions *d, const char *vhost, const char *name, bool durable,
                           bool auto_delete, struct wire_table arguments)
{
    struct def_queue *q;

    d->queues = grow(d->queues, &d->queues_len, sizeof *d->queues);
    q = &d->queues[d->queues_len - 1];
    *q = (struct def_queue){.vhost = xstrdup(vhost),
                            .name = xstrdup(name),
                            .durable = durable,
                            .auto_delete = auto_delete,
                            .arguments = table_dup(arguments)};
}

void definitions_add_binding(struct definitions *d, const char *vhost, const char *source,
                             const char *destination, bool destination_is_exchange,
                             const char *routing_key, struct wire_table arguments)
{
    struct def_binding *b;

    d->bindings = grow(d->bindings, &d->bindings_len, sizeof *d->bindings);
    b = &d->bindings[d->bindings_len - 1];
    *b = (struct def_binding){.vhost = xstrdup(vhost),
                              .source = xstrdup(source),
                              .destination = xstrdup(destination),
                              .destination_is_exchange = destination_is_exchange,
                              .routing_key = xstrdup(routing_key),
                              .arguments = table_dup(arguments)};
}

void definitions_add_policy(struct definitions *d, const char *vhost, const char *name,
                            const char *pattern, const char *apply_to, int64_t priority,
                            struct wire_table definition)
{
    struct def_policy *p;

    d->policies = grow(d->policies, &d->policies_len, sizeof *d->policies);
    p = &d->policies[d->policies_len - 1];
    *p = (struct def_policy){.vhost = xstrdup(vhost),
                             .name = xstrdup(name),
                             .pattern = xstrdup(pattern),
                             .apply_to = xstrdup(apply_to),
                             .priority = priority,
                             .definition = table_dup(definition)};
}
