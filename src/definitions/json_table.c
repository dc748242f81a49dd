/* JSON <-> AMQP field tables, as RabbitMQ converts them (definitions.h): arguments and policy
 * definitions are JSON in a document and field tables in struct definitions, so import
 * converts them with definitions_json_to_table and export with definitions_table_to_json. */
#include "src/definitions/definitions.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/util.h"
#include "src/definitions/definitions_internal.h"

static bool put_json_value(struct wire_writer *w, const json_t *v, int depth, char *err,
                           size_t err_size);

static bool put_json_entries(struct wire_writer *w, const json_t *obj, int depth, char *err,
                             size_t err_size)
{
    const char *key;
    json_t *value;

    json_object_foreach((json_t *)obj, key, value)
    {
        size_t key_len = strlen(key);
        if (key_len > 255) {
            definitions_set_err(err, err_size, "argument name '%.40s...' is longer than 255 bytes",
                                key);
            return false;
        }
        wire_put_shortstr(w, (struct wire_bytes){.ptr = (const uint8_t *)key, .len = key_len});
        if (!put_json_value(w, value, depth, err, err_size))
            return false;
    }
    return true;
}

/* One value with its type letter, as rabbit_misc:to_amqp_table types JSON. */
static bool put_json_value(struct wire_writer *w, const json_t *v, int depth, char *err,
                           size_t err_size)
{
    struct wire_field f = {0};
    size_t begin, i;
    json_t *item;

    switch (json_typeof(v)) {
    case JSON_STRING:
        f.type = 'S';
        f.v.bytes = (struct wire_bytes){.ptr = (const uint8_t *)json_string_value(v),
                                        .len = json_string_length(v)};
        break;
    case JSON_INTEGER:
        f.type = 'l';
        f.v.i = (int64_t)json_integer_value(v);
        break;
    case JSON_REAL:
        f.type = 'd';
        f.v.f64 = json_real_value(v);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        f.type = 't';
        f.v.boolean = json_is_true(v);
        break;
    case JSON_NULL:
        /* 'V' exists, but RabbitMQ refuses null here ({unhandled_type, nil}): a file
         * Warren accepts must import into RabbitMQ too. */
        definitions_set_err(err, err_size, "null is not a value RabbitMQ accepts in arguments");
        return false;
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth >= WIRE_TABLE_MAX_DEPTH) {
            definitions_set_err(err, err_size, "arguments nest deeper than %d levels",
                                WIRE_TABLE_MAX_DEPTH);
            return false;
        }
        wire_put_u8(w, json_is_object(v) ? 'F' : 'A');
        begin = wire_table_begin(w);
        if (json_is_object(v)) {
            if (!put_json_entries(w, v, depth + 1, err, err_size))
                return false;
        } else {
            json_array_foreach((json_t *)v, i, item)
            {
                if (!put_json_value(w, item, depth + 1, err, err_size))
                    return false;
            }
        }
        wire_table_end(w, begin);
        return true;
    }
    wire_put_field(w, &f);
    return true;
}

int definitions_json_to_table(const json_t *json, struct wire_table *out, char *err,
                              size_t err_size)
{
    const json_t *obj = json;
    uint8_t probe[256];
    struct wire_writer w = wire_writer_init(probe, sizeof probe);
    uint8_t *buf;
    size_t need;

    *out = (struct wire_table){{0}};
    if (obj == NULL || json_is_null(obj) || (json_is_array(obj) && json_array_size(obj) == 0))
        return 0; /* absent, null and [] all mean no arguments, as in rabbit_definitions */
    if (!json_is_object(obj)) {
        definitions_set_err(err, err_size, "not an object");
        return -1;
    }
    /* Sized by a first pass: the writer counts what it could not store. */
    if (!put_json_entries(&w, obj, 0, err, err_size))
        return -1;
    need = wire_writer_used(&w);
    if (need == 0)
        return 0;
    buf = xmalloc(need);
    w = wire_writer_init(buf, need);
    put_json_entries(&w, obj, 0, NULL, 0);
    assert(!wire_writer_overflowed(&w) && wire_writer_used(&w) == need);
    out->raw = (struct wire_bytes){.ptr = buf, .len = need};
    return 0;
}

static json_t *field_to_json(const struct wire_field *f, int depth);

static json_t *entries_to_json(struct wire_table t, bool named, int depth)
{
    json_t *out = named ? json_object() : json_array();
    struct wire_table_iter ti;
    struct wire_array_iter ai;
    struct wire_bytes name;
    struct wire_field f;

    /* Checking the outer table checks everything nested in it. */
    if (depth > WIRE_TABLE_MAX_DEPTH || (depth == 0 && !wire_table_check(t.raw)))
        goto fail;
    if (named)
        wire_table_iter_init(&ti, t);
    else
        wire_array_iter_init(&ai, (struct wire_array){.raw = t.raw});
    while (named ? wire_table_next(&ti, &name, &f) : wire_array_next(&ai, &f)) {
        json_t *v = field_to_json(&f, depth + 1);
        char *key;
        if (v == NULL)
            goto fail;
        if (!named) {
            json_array_append_new(out, v);
            continue;
        }
        key = xstrndup_bytes(name);
        json_object_set_new(out, key, v);
        free(key);
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

static json_t *field_to_json(const struct wire_field *f, int depth)
{
    double scale;

    switch (f->type) {
    case 't':
        return json_boolean(f->v.boolean);
    case 'b':
    case 's':
    case 'I':
    case 'l':
        return json_integer((json_int_t)f->v.i);
    case 'B':
    case 'u':
    case 'i':
    case 'L':
    case 'T':
        return f->v.u > INT64_MAX ? json_real((double)f->v.u) : json_integer((json_int_t)f->v.u);
    case 'f':
        return json_real(f->v.f32);
    case 'd':
        return json_real(f->v.f64);
    case 'D':
        /* One division, so that 314 with scale 2 is the double nearest to 3.14. */
        scale = 1;
        for (unsigned i = 0; i < f->v.decimal.scale; i++)
            scale *= 10;
        return json_real(f->v.decimal.value / scale);
    case 'S':
    case 'x':
        /* NULL when the bytes are not UTF-8: JSON cannot carry them. */
        return json_stringn((const char *)f->v.bytes.ptr, f->v.bytes.len);
    case 'F':
        return entries_to_json(f->v.table, true, depth);
    case 'A':
        return entries_to_json((struct wire_table){.raw = f->v.array.raw}, false, depth);
    case 'V':
        return json_null();
    default:
        return NULL;
    }
}

json_t *definitions_table_to_json(struct wire_table t)
{
    return entries_to_json(t, true, 0);
}
