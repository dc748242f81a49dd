/* The management API: exchanges, queues and bindings; publishing and getting messages. */
#include "build_config.h"

#include "src/mgmt/mgmt_api.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/base/config.h"
#include "src/base/log.h"
#include "src/base/regex.h"
#include "src/base/util.h"
#include "src/broker/channel.h"
#include "src/broker/conn.h"
#include "src/broker/exchange.h"
#include "src/broker/message.h"
#include "src/broker/persist.h"
#include "src/broker/policy.h"
#include "src/broker/queue.h"
#include "src/broker/server.h"
#include "src/broker/vhost.h"
#include "src/mgmt/metrics.h"
#include "src/mgmt/mgmt_defs.h"
#include "src/mgmt/mgmt_json.h"
#include "src/mgmt/mgmt_stats.h"
#include "src/mgmt/ops.h"
#include "src/security/auth.h"

/* Case-insensitive search for needle in name, as RabbitMQ's name filter matches. */
static bool name_contains(struct wire_bytes name, const char *needle)
{
    size_t len = strlen(needle);

    if (len == 0)
        return true;
    for (size_t i = 0; i + len <= name.len; i++) {
        size_t k = 0;
        while (k < len && tolower(name.ptr[i + k]) == tolower((unsigned char)needle[k]))
            k++;
        if (k == len)
            return true;
    }
    return false;
}

/* Whether the pattern matches somewhere in name (RabbitMQ's use_regex=true). A name is a
 * shortstr: at most 255 bytes; one with a NUL byte is matched up to it. */
static bool name_matches(struct wire_bytes name, const regex_t *re)
{
    char text[256];
    size_t len = name.len < sizeof text - 1 ? name.len : sizeof text - 1;

    memcpy(text, name.ptr, len);
    text[len] = '\0';
    return regexec(re, text, 0, NULL, 0) == 0;
}

/* ---- Lists of exchanges, queues and bindings, written a slice at a time ---------------- */

/* A list of exchanges or queues (mgmt_slice.h): their vhosts and names, and for a page the
 * figures around its items. */
struct object_list {
    struct mgmt_ctx *ctx;
    bool queues;
    bool paged;
    bool begun;
    long page, page_size;
    size_t filtered, total;
    struct mgmt_names names; /* vhost, name */
    char *sort_path;         /* ?sort=, or NULL */
    size_t keyed;            /* records whose sort key is taken */
};

static int cmp_vhost_name(const struct mgmt_names *names, size_t a, size_t b)
{
    return mgmt_names_cmp_fields(names, a, b, 2);
}

/* By ?sort='s field, then by vhost and name, as RabbitMQ. */
static int cmp_key_vhost_name(const struct mgmt_names *names, size_t a, size_t b)
{
    int r = mgmt_names_cmp_key(names, a, b);

    return r != 0 ? r : mgmt_names_cmp_fields(names, a, b, 2);
}

/* Takes the sort keys of at most max more objects; true once every one has its key. The
 * name and the vhost are in the record; any other field is read from the object's JSON
 * (an object gone meanwhile keys as a missing field, and is left out when listed). */
static bool take_sort_keys(struct object_list *l, size_t max)
{
    for (; l->keyed < l->names.count && max > 0; l->keyed++, max--) {
        size_t r = l->keyed;
        struct wire_bytes vname = mgmt_names_field(&l->names, r, 0);
        struct wire_bytes name = mgmt_names_field(&l->names, r, 1);
        struct mgmt_sort_key key = {.kind = MGMT_KEY_NUMBER};
        struct vhost *vh;
        json_t *item = NULL;
        struct queue *q;
        struct exchange *x;

        if (strcmp(l->sort_path, "name") == 0 || strcmp(l->sort_path, "vhost") == 0) {
            mgmt_sort_key_of_bytes(l->sort_path[0] == 'n' ? name : vname, &key);
        } else if ((vh = server_vhost_find(l->ctx->srv, vname)) != NULL) {
            if (l->queues && (q = vhost_queue_find(vh, name)) != NULL)
                item = mgmt_json_queue(l->ctx, q, false);
            else if (!l->queues && (x = vhost_exchange_find(vh, name)) != NULL)
                item = mgmt_json_exchange(l->ctx, x);
            if (item != NULL)
                mgmt_sort_key_of(item, l->sort_path, &key);
            json_decref(item);
        }
        mgmt_names_set_key(&l->names, r, &key);
    }
    return l->keyed == l->names.count;
}

static bool fill_objects(struct mgmt_stream *st, void *state, size_t max)
{
    struct object_list *l = state;
    char text[200];
    size_t r;

    if (l->sort_path != NULL && !take_sort_keys(l, max))
        return false;
    if (!mgmt_names_sort(&l->names, l->sort_path != NULL ? cmp_key_vhost_name : cmp_vhost_name,
                         MGMT_SORT_STEPS))
        return false;
    if (!l->begun) {
        l->begun = true;
        if (!l->paged) {
            mgmt_stream_text(st, "[");
        } else {
            snprintf(text, sizeof text, "{\"filtered_count\":%zu,\"items\":[", l->filtered);
            mgmt_stream_text(st, text);
        }
    }
    for (size_t k = 0; k < max && mgmt_names_next(&l->names, &r); k++) {
        struct vhost *vh = server_vhost_find(l->ctx->srv, mgmt_names_field(&l->names, r, 0));
        struct wire_bytes name = mgmt_names_field(&l->names, r, 1);
        struct queue *q;
        struct exchange *x;

        /* Found again by name: one deleted since the list began is left out. */
        if (vh == NULL)
            continue;
        if (l->queues && (q = vhost_queue_find(vh, name)) != NULL)
            mgmt_stream_item(st, mgmt_json_queue(l->ctx, q, false));
        else if (!l->queues && (x = vhost_exchange_find(vh, name)) != NULL)
            mgmt_stream_item(st, mgmt_json_exchange(l->ctx, x));
    }
    if (!mgmt_names_done(&l->names))
        return false;
    if (!l->paged) {
        mgmt_stream_text(st, "]");
        return true;
    }
    /* The items as written: one deleted meanwhile is not counted. */
    snprintf(text, sizeof text,
             "],\"item_count\":%zu,\"page\":%ld,\"page_count\":%zu,\"page_size\":%ld,"
             "\"total_count\":%zu}",
             mgmt_stream_items(st), l->page,
             (l->filtered + (size_t)l->page_size - 1) / (size_t)l->page_size, l->page_size,
             l->total);
    mgmt_stream_text(st, text);
    return true;
}

static void free_objects(void *state)
{
    struct object_list *l = state;

    mgmt_names_free(&l->names);
    free(l->sort_path);
    free(l);
}

static const struct mgmt_stream_ops object_list_ops = {fill_objects, free_objects, .sort_items = false};

/* Lists objects, whole, or (with ?page=) one page of those whose name contains ?name=, in
 * RabbitMQ's paged shape; sorted by ?sort= (then by vhost and name), reversed by
 * ?sort_reverse=true, before the page is taken. The names are copied now; each object is
 * rendered when the stream reaches it, so only the objects of the page are rendered: a page
 * of 100 out of 10,000 queues costs a hundred queues' JSON. Sorting by a field other than
 * the name or vhost renders every object once more, a slice at a time, to read the field. */
static enum MHD_Result list_objects(struct mgmt_call *c, struct vhost *only, bool queues)
{
    const char *page_arg = mgmt_query(c, "page"), *size_arg = mgmt_query(c, "page_size");
    const char *sort_path;
    char *filter = NULL; /* ?name=, decoded */
    bool reverse, use_regex = false;
    regex_t re;
    size_t nv, total = 0, first;
    struct vhost **vhs;
    long page = 1, size = 100;
    char *end;
    struct object_list *l;

    if (page_arg != NULL) {
        page = strtol(page_arg, &end, 10);
        if (*page_arg == '\0' || *end != '\0' ||
            (size_arg != NULL &&
             ((size = strtol(size_arg, &end, 10)), *size_arg == '\0' || *end != '\0')))
            return mgmt_bad_request(c, "Pagination parameters are invalid");
        if (page < 1 || size < 1 || size > 500)
            return mgmt_respond_error(
                c, MHD_HTTP_BAD_REQUEST, "invalid_pagination_parameters",
                "Invalid pagination parameters: page number %ld, page size %s", page,
                size_arg != NULL ? size_arg : "undefined");
        /* Without a page, ?name= is ignored and everything listed. */
        filter = mgmt_query_decoded(c, "name");
    }
    if (filter != NULL && filter[0] != '\0' && mgmt_query_true(c, "use_regex")) {
        /* Case-insensitive, as RabbitMQ matches it; bounded in cost as every pattern a
         * user writes (src/base/regex.h). */
        char why[200];
        int rc = regex_check_cost(filter, why, sizeof why);
        if (rc == 0 && (rc = regcomp(&re, filter, REG_EXTENDED | REG_NOSUB | REG_ICASE)) != 0)
            regerror(rc, &re, why, sizeof why);
        if (rc != 0) {
            free(filter);
            return mgmt_bad_request(c, "Invalid regular expression in name: %s", why);
        }
        use_regex = true;
    }
    l = xcalloc(1, sizeof *l);
    *l = (struct object_list){.ctx = &c->m->ctx,
                              .queues = queues,
                              .paged = page_arg != NULL,
                              .page = page,
                              .page_size = size};
    if ((sort_path = mgmt_sort_wanted(c, &reverse)) != NULL)
        l->sort_path = xstrdup(sort_path);
    vhs = mgmt_vhosts_sorted(c->m->srv, only, &nv);
    for (size_t i = 0; i < nv; i++) {
        const struct hmap *map = queues ? &vhs[i]->queues : &vhs[i]->exchanges;
        void *v;
        if (!mgmt_sees_objects_of(c, vhs[i]))
            continue;
        /* The name is the map's key: read there, not through the object, it costs one
         * cache miss per object rather than two. */
        for (size_t k = 0; hmap_next(map, &k, &v);) {
            struct wire_bytes fields[2] = {vhs[i]->name, map->slots[k - 1].key};
            total++;
            bool matches = filter == NULL ||
                           (use_regex ? name_matches(fields[1], &re) : name_contains(fields[1], filter));
            if (matches)
                mgmt_names_add(&l->names, 0, 2, fields);
        }
    }
    free(vhs);
    if (use_regex)
        regfree(&re);
    free(filter);
    l->total = total;
    l->filtered = l->names.count;
    if (reverse)
        mgmt_names_reverse(&l->names);
    if (l->paged) {
        /* Compared in pages, so that no page number can overflow. */
        if (l->filtered > 0 &&
            (size_t)(page - 1) >= (l->filtered + (size_t)size - 1) / (size_t)size) {
            size_t filtered = l->filtered;
            free_objects(l);
            return mgmt_respond_error(c, MHD_HTTP_BAD_REQUEST, "page_out_of_range",
                                      "Page out of range, page: %ld page size: %ld, len: %zu", page,
                                      size, filtered);
        }
        first = l->filtered > 0 ? (size_t)(page - 1) * (size_t)size : 0;
        mgmt_names_range(&l->names, first,
                         l->filtered - first < (size_t)size ? l->filtered : first + (size_t)size);
    }
    return mgmt_respond_stream(c, &object_list_ops, l);
}

/* Bindings being listed (mgmt_slice.h): copies of what each shows, taken when the list
 * began, so that no binding is touched after it. */
enum { BINDING_DEFAULT, BINDING_TO_QUEUE, BINDING_TO_EXCHANGE };

struct binding_list {
    bool begun;
    bool as_added; /* listed in the order added, not sorted */
    /* DEFAULT: vhost, queue; the others: vhost, source, destination, routing key,
     * arguments */
    struct mgmt_names names;
};

static void add_binding_name(struct mgmt_names *names, const struct xbinding *xb)
{
    const void *dest = xb->b.destination;
    bool to_queue = destination_kind(dest) == DEST_QUEUE;
    struct wire_bytes fields[5] = {
        xb->source->vhost->name,
        xb->source->name,
        to_queue ? ((const struct queue *)dest)->name : ((const struct exchange *)dest)->name,
        xb->b.routing_key,
        xb->b.arguments.raw,
    };

    mgmt_names_add(names, to_queue ? BINDING_TO_QUEUE : BINDING_TO_EXCHANGE, 5, fields);
}

/* The implicit binding of the default exchange to every queue of vh. */
static void add_default_binding_names(struct mgmt_names *names, struct vhost *vh)
{
    void *q;

    for (size_t i = 0; hmap_next(&vh->queues, &i, &q);) {
        struct wire_bytes fields[2] = {vh->name, vh->queues.slots[i - 1].key};
        mgmt_names_add(names, BINDING_DEFAULT, 2, fields);
    }
}

static void add_binding_names_of(struct mgmt_names *names, struct vhost *vh)
{
    void *v;

    add_default_binding_names(names, vh);
    for (size_t i = 0; hmap_next(&vh->exchanges, &i, &v);) {
        const struct exchange *x = v;
        for (const struct xbinding *xb = x->bindings; xb != NULL; xb = xb->next_in_source)
            add_binding_name(names, xb);
    }
}

/* By vhost; the default exchange's first, by queue; then by source exchange, and in the
 * exchange's own order (the sort is stable). */
static int cmp_bindings(const struct mgmt_names *names, size_t a, size_t b)
{
    int r = mgmt_names_cmp_fields(names, a, b, 1);
    bool a_default = mgmt_names_tag(names, a) == BINDING_DEFAULT;
    bool b_default = mgmt_names_tag(names, b) == BINDING_DEFAULT;
    struct wire_bytes x, y;
    size_t n;

    if (r != 0)
        return r;
    if (a_default != b_default)
        return a_default ? -1 : 1;
    x = mgmt_names_field(names, a, 1);
    y = mgmt_names_field(names, b, 1);
    n = x.len < y.len ? x.len : y.len;
    if ((r = memcmp(x.ptr, y.ptr, n)) != 0)
        return r;
    return (x.len > y.len) - (x.len < y.len);
}

static bool fill_bindings(struct mgmt_stream *st, void *state, size_t max)
{
    struct binding_list *l = state;
    const struct mgmt_names *names = &l->names;
    size_t r;

    if (!l->as_added && !mgmt_names_sort(&l->names, cmp_bindings, MGMT_SORT_STEPS))
        return false;
    if (!l->begun) {
        l->begun = true;
        mgmt_stream_text(st, "[");
    }
    for (size_t k = 0; k < max && mgmt_names_next(&l->names, &r); k++) {
        struct wire_bytes vhost = mgmt_names_field(names, r, 0);
        if (mgmt_names_tag(names, r) == BINDING_DEFAULT) {
            struct wire_bytes queue = mgmt_names_field(names, r, 1);
            mgmt_stream_item(st, mgmt_json_binding_of(vhost, WIRE_BYTES_C(""), queue, "queue",
                                                      queue, WIRE_BYTES_C("")));
            continue;
        }
        mgmt_stream_item(st,
                         mgmt_json_binding_of(
                             vhost, mgmt_names_field(names, r, 1), mgmt_names_field(names, r, 2),
                             mgmt_names_tag(names, r) == BINDING_TO_QUEUE ? "queue" : "exchange",
                             mgmt_names_field(names, r, 3), mgmt_names_field(names, r, 4)));
    }
    if (!mgmt_names_done(&l->names))
        return false;
    mgmt_stream_text(st, "]");
    return true;
}

static void free_bindings(void *state)
{
    struct binding_list *l = state;

    mgmt_names_free(&l->names);
    free(l);
}

static const struct mgmt_stream_ops binding_list_ops = {fill_bindings, free_bindings, .sort_items = true};

/* ---- Exchanges ------------------------------------------------------------------------- */

static enum MHD_Result list_exchanges(struct mgmt_call *c, struct vhost *only)
{
    return list_objects(c, only, false);
}

static enum MHD_Result put_exchange(struct mgmt_call *c, struct vhost *vh, struct wire_bytes name)
{
    enum MHD_Result answered = MHD_NO;
    json_t *body = mgmt_body_object(c, &answered);
    bool durable, auto_delete, internal, created;
    const char *type;
    size_t type_len, args_len = 0;
    uint8_t *args = NULL;
    struct ops_error err;

    if (body == NULL)
        return answered;
    if ((type = mgmt_body_string(c, body, "type", "direct", &type_len, &answered)) == NULL ||
        mgmt_body_bool(c, body, "durable", true, &durable, &answered) != 0 ||
        mgmt_body_bool(c, body, "auto_delete", false, &auto_delete, &answered) != 0 ||
        mgmt_body_bool(c, body, "internal", false, &internal, &answered) != 0 ||
        mgmt_body_arguments(c, body, &args, &args_len, &answered) != 0)
        goto out;
    {
        struct wire_field ae;
        bool has_ae = wire_table_find((struct wire_table){.raw = {args, args_len}},
                                      "alternate-exchange", &ae) &&
                      ae.type == 'S';
        /* The name is copied out of the table: permission checks want a C string. */
        char *ae_name = has_ae ? xstrndup_bytes(ae.v.bytes) : NULL;
        bool ok =
            mgmt_permitted(c, vh, has_ae ? AUTH_OP_EXCHANGE_DECLARE_AE : AUTH_OP_EXCHANGE_DECLARE,
                           name, has_ae ? wire_cstr(ae_name) : WIRE_BYTES_C(""), false, &answered);
        free(ae_name);
        if (!ok)
            goto out;
    }
    if (ops_exchange_declare(vh, name, (struct wire_bytes){(const uint8_t *)type, type_len}, false,
                             durable, auto_delete, internal, (struct wire_bytes){args, args_len},
                             &created, &err) != 0) {
        answered = mgmt_respond_ops_error(c, &err);
        goto out;
    }
    answered = mgmt_respond_empty(c, created ? MHD_HTTP_CREATED : MHD_HTTP_NO_CONTENT);
out:
    free(args);
    json_decref(body);
    return answered;
}

enum MHD_Result mgmt_api_exchanges(struct mgmt_call *c)
{
    struct vhost *vh = NULL;
    struct wire_bytes name;
    struct exchange *x;
    struct ops_error err;
    enum MHD_Result answered;

    if (c->nseg >= 2 && (vh = mgmt_find_vhost(c, c->seg[1])) == NULL) {
        if (mgmt_method_is(c, MHD_HTTP_METHOD_PUT))
            return mgmt_respond_error(c, MHD_HTTP_NOT_FOUND, "not_found", "vhost_not_found");
        return mgmt_not_found(c);
    }
    if (vh != NULL && !mgmt_may_see(c, vh, &answered))
        return answered;
    if (c->nseg <= 2)
        return list_exchanges(c, vh);
    name = mgmt_exchange_name(c->seg[2]);
    if (mgmt_method_is(c, MHD_HTTP_METHOD_PUT))
        return put_exchange(c, vh, name);
    x = vhost_exchange_find(vh, name);
    if (mgmt_method_is(c, MHD_HTTP_METHOD_DELETE)) {
        if (name.len == 0 || exchange_name_is_reserved(name))
            return mgmt_access_refused(c);
        if (x == NULL)
            return mgmt_not_found(c);
        if (!mgmt_permitted(c, vh, AUTH_OP_EXCHANGE_DELETE, name, WIRE_BYTES_C(""), false,
                            &answered))
            return answered;
        if (ops_exchange_delete(vh, name, mgmt_query_true(c, "if-unused"), true, &err) != 0)
            return mgmt_respond_ops_error(c, &err);
        return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    if (x == NULL)
        return mgmt_not_found(c);
    {
        json_t *j = mgmt_json_exchange(&c->m->ctx, x);
        json_object_set_new(j, "incoming", json_array());
        json_object_set_new(j, "outgoing", json_array());
        return mgmt_respond_json(c, MHD_HTTP_OK, j);
    }
}

/* GET /api/exchanges/v/x/bindings/source|destination */
enum MHD_Result mgmt_api_exchange_bindings(struct mgmt_call *c)
{
    struct vhost *vh = mgmt_find_vhost(c, c->seg[1]);
    struct exchange *x = vh != NULL ? vhost_exchange_find(vh, mgmt_exchange_name(c->seg[2])) : NULL;
    enum MHD_Result answered;
    struct binding_list *l;

    if (x == NULL)
        return mgmt_not_found(c);
    if (!mgmt_may_see(c, vh, &answered))
        return answered;
    l = xcalloc(1, sizeof *l);
    if (wire_bytes_eq_cstr(c->seg[4], "source")) {
        if (x == vh->default_exchange)
            add_default_binding_names(&l->names, vh);
        for (const struct xbinding *xb = x->bindings; xb != NULL; xb = xb->next_in_source)
            add_binding_name(&l->names, xb);
    } else {
        /* In the order the exchange keeps them, not by source: no sort. */
        for (const struct xbinding *xb = x->incoming; xb != NULL; xb = xb->next_in_dest)
            add_binding_name(&l->names, xb);
        l->as_added = true;
    }
    return mgmt_respond_stream(c, &binding_list_ops, l);
}

/* Decodes "payload" with "payload_encoding" into *body (malloc'd). -1 after answering. */
static int decode_payload(struct mgmt_call *c, const json_t *obj, uint8_t **body, size_t *len,
                          enum MHD_Result *answered)
{
    const json_t *payload = json_object_get(obj, "payload");
    const json_t *encoding = json_object_get(obj, "payload_encoding");
    const char *enc;

    if (payload == NULL || encoding == NULL || !json_is_string(payload) ||
        !json_is_string(encoding)) {
        *answered = mgmt_bad_request(c, "payload and payload_encoding must be strings");
        return -1;
    }
    enc = json_string_value(encoding);
    if (strcmp(enc, "string") == 0) {
        *len = json_string_length(payload);
        *body = xmalloc(*len + 1);
        memcpy(*body, json_string_value(payload), *len);
        return 0;
    }
    if (strcmp(enc, "base64") == 0) {
        const char *text = json_string_value(payload);
        size_t tlen = json_string_length(payload);
        *body = xmalloc(tlen / 4 * 3 + 3);
        if (mgmt_base64_decode(text, tlen, *body, len) != 0) {
            free(*body);
            *body = NULL;
            *answered = mgmt_bad_request_term(c, "not_base64", json_string(text));
            return -1;
        }
        return 0;
    }
    *answered = mgmt_bad_request_term(c, "unsupported_encoding", json_string(enc));
    return -1;
}

/* POST /api/exchanges/v/x/publish */
enum MHD_Result mgmt_api_publish(struct mgmt_call *c)
{
    enum MHD_Result answered = MHD_NO;
    struct vhost *vh = mgmt_find_vhost(c, c->seg[1]);
    json_t *body, *j;
    const char *rk;
    size_t rk_len, body_len = 0;
    uint8_t *payload = NULL, *headers = NULL;
    struct wire_props props;
    char why[256];
    struct ops_error err;
    struct ops_actor actor = {.user = c->user};
    uint32_t routed;
    bool refused;

    if (vh == NULL)
        return mgmt_not_found(c);
    if ((body = mgmt_body_object(c, &answered)) == NULL)
        return answered;
    if ((rk = mgmt_body_string(c, body, "routing_key", NULL, &rk_len, &answered)) == NULL) {
        if (json_object_get(body, "routing_key") == NULL)
            answered = mgmt_bad_request(c, "routing_key is missing");
        goto out;
    }
    if (rk_len > 255) {
        answered = mgmt_bad_request(c, "routing_key is longer than 255 bytes");
        goto out;
    }
    if (decode_payload(c, body, &payload, &body_len, &answered) != 0)
        goto out;
    if (mgmt_json_to_props(json_object_get(body, "properties"), &props, &headers, why,
                           sizeof why) != 0) {
        answered = mgmt_bad_request(c, "%s", why);
        goto out;
    }
    if (!mgmt_permitted(c, vh, AUTH_OP_BASIC_PUBLISH, mgmt_exchange_name(c->seg[2]),
                        WIRE_BYTES_C(""), true, &answered))
        goto out;
    {
        /* Topic permissions, as basic.publish checks them. */
        struct exchange *x = vhost_exchange_find(vh, mgmt_exchange_name(c->seg[2]));
        struct wire_bytes key = {(const uint8_t *)rk, rk_len};
        if (x != NULL && strcmp(x->type->name, "topic") == 0 &&
            !auth_topic_permitted(c->m->srv->auth, wire_cstr(c->user), vh->name, x->name,
                                  AUTH_WRITE, key, NULL)) {
            char text[700];
            auth_topic_refusal_text(text, sizeof text, key, x->name, vh->name, wire_cstr(c->user));
            answered = mgmt_bad_request(c, "403 ACCESS_REFUSED - %s", text);
            goto out;
        }
    }
    if (ops_publish(c->m->srv, vh, &actor, mgmt_exchange_name(c->seg[2]),
                    (struct wire_bytes){(const uint8_t *)rk, rk_len}, &props,
                    (struct wire_bytes){payload, body_len}, &routed, &refused, &err) != 0) {
        char text[600];
        /* RabbitMQ publishes through a channel here, so its errors carry their code. */
        ops_error_format(&err, true, text, sizeof text);
        answered = mgmt_bad_request(c, "%s", text);
        goto out;
    }
    j = json_object();
    json_object_set_new(j, "routed", json_boolean(routed > 0));
    answered = mgmt_respond_json(c, MHD_HTTP_OK, j);
out:
    free(payload);
    free(headers);
    json_decref(body);
    return answered;
}

/* ---- Queues ---------------------------------------------------------------------------- */

static enum MHD_Result list_queues(struct mgmt_call *c, struct vhost *only)
{
    return list_objects(c, only, true);
}

static enum MHD_Result put_queue(struct mgmt_call *c, struct vhost *vh, struct wire_bytes name)
{
    enum MHD_Result answered = MHD_NO;
    json_t *body = mgmt_body_object(c, &answered);
    bool durable, auto_delete, exclusive, created;
    size_t args_len = 0;
    uint8_t *args = NULL;
    struct ops_error err;
    struct ops_actor actor = {.user = c->user};
    struct queue *q;

    if (body == NULL)
        return answered;
    if (mgmt_body_bool(c, body, "durable", false, &durable, &answered) != 0 ||
        mgmt_body_bool(c, body, "auto_delete", false, &auto_delete, &answered) != 0 ||
        mgmt_body_bool(c, body, "exclusive", false, &exclusive, &answered) != 0 ||
        mgmt_body_arguments(c, body, &args, &args_len, &answered) != 0)
        goto out;
    /* An exclusive queue belongs to the connection that declared it; a request has none. */
    if (exclusive) {
        answered = mgmt_bad_request(c, "exclusive queues can only be declared over AMQP, by the "
                                       "connection that will own them");
        goto out;
    }
    {
        struct wire_field dlx;
        bool has_dlx = wire_table_find((struct wire_table){.raw = {args, args_len}},
                                       "x-dead-letter-exchange", &dlx) &&
                       dlx.type == 'S';
        char *dlx_name = has_dlx ? xstrndup_bytes(dlx.v.bytes) : NULL;
        bool ok =
            mgmt_permitted(c, vh, has_dlx ? AUTH_OP_QUEUE_DECLARE_DLX : AUTH_OP_QUEUE_DECLARE, name,
                           has_dlx ? wire_cstr(dlx_name) : WIRE_BYTES_C(""), false, &answered);
        free(dlx_name);
        if (!ok)
            goto out;
    }
    {
        /* The vhost's max-queues holds for a new queue over HTTP too: RabbitMQ's API declares
         * through rabbit_channel, which checks it. */
        const struct auth_vhost *av = auth_vhost_find(c->m->srv->auth, vh->name);
        if (av != NULL && av->max_queues >= 0 && vhost_queue_find(vh, name) == NULL &&
            vh->queues.len >= (uint64_t)av->max_queues) {
            answered = mgmt_bad_request(
                c, "cannot declare queue '%.*s': queue limit in vhost '%.*s' (%lld) is reached",
                (int)name.len, (const char *)name.ptr, (int)vh->name.len,
                (const char *)vh->name.ptr, (long long)av->max_queues);
            goto out;
        }
    }
    if (ops_queue_declare(vh, &actor, name, false, durable, false, auto_delete,
                          (struct wire_bytes){args, args_len}, &q, &created, &err) != 0) {
        answered = mgmt_respond_ops_error(c, &err);
        goto out;
    }
    answered = mgmt_respond_empty(c, created ? MHD_HTTP_CREATED : MHD_HTTP_NO_CONTENT);
out:
    free(args);
    json_decref(body);
    return answered;
}

enum MHD_Result mgmt_api_queues(struct mgmt_call *c)
{
    struct vhost *vh = NULL;
    struct queue *q;
    struct ops_error err;
    struct ops_actor actor = {.user = c->user};
    enum MHD_Result answered;

    if (c->nseg >= 2 && (vh = mgmt_find_vhost(c, c->seg[1])) == NULL) {
        if (mgmt_method_is(c, MHD_HTTP_METHOD_PUT))
            return mgmt_respond_error(c, MHD_HTTP_NOT_FOUND, "not_found", "vhost_not_found");
        return mgmt_not_found(c);
    }
    if (vh != NULL && !mgmt_may_see(c, vh, &answered))
        return answered;
    if (c->nseg <= 2)
        return list_queues(c, vh);
    if (mgmt_method_is(c, MHD_HTTP_METHOD_PUT))
        return put_queue(c, vh, c->seg[2]);
    q = vhost_queue_find(vh, c->seg[2]);
    if (q == NULL)
        return mgmt_not_found(c);
    if (c->nseg == 4) { /* DELETE .../contents */
        if (!mgmt_permitted(c, vh, AUTH_OP_QUEUE_PURGE, q->name, WIRE_BYTES_C(""), false,
                            &answered))
            return answered;
        if (ops_queue_purge(vh, &actor, c->seg[2], NULL, &err) != 0)
            return mgmt_respond_ops_error(c, &err);
        return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    if (mgmt_method_is(c, MHD_HTTP_METHOD_DELETE)) {
        if (!mgmt_permitted(c, vh, AUTH_OP_QUEUE_DELETE, q->name, WIRE_BYTES_C(""), false,
                            &answered))
            return answered;
        if (ops_queue_delete(vh, &actor, c->seg[2], mgmt_query_true(c, "if-unused"),
                             mgmt_query_true(c, "if-empty"), true, NULL, &err) != 0)
            return mgmt_respond_ops_error(c, &err);
        return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
    }
    return mgmt_respond_json(c, MHD_HTTP_OK, mgmt_json_queue(&c->m->ctx, q, true));
}

/* GET /api/queues/v/q/bindings */
enum MHD_Result mgmt_api_queue_bindings(struct mgmt_call *c)
{
    struct vhost *vh = mgmt_find_vhost(c, c->seg[1]);
    struct queue *q = vh != NULL ? vhost_queue_find(vh, c->seg[2]) : NULL;
    enum MHD_Result answered;
    json_t *arr;

    if (q == NULL)
        return mgmt_not_found(c);
    if (!mgmt_may_see(c, vh, &answered))
        return answered;
    arr = json_array();
    json_array_append_new(arr, mgmt_json_default_binding(q));
    for (const struct xbinding *xb = q->bindings; xb != NULL; xb = xb->next_in_dest)
        json_array_append_new(arr, mgmt_json_binding(xb));
    return mgmt_respond_json(c, MHD_HTTP_OK, arr);
}

enum ackmode { ACK_REQUEUE, ACK_DROP, REJECT_REQUEUE, REJECT_DROP };

/* One message of a /get, as RabbitMQ shows it. */
static json_t *got_message(const struct qentry *e, uint32_t remaining, bool base64, long truncate)
{
    const struct message *m = e->msg;
    json_t *o = json_object();
    size_t shown = m->body_size;
    struct wire_bytes body;

    if (truncate >= 0 && (uint64_t)truncate < shown)
        shown = (size_t)truncate;
    body = (struct wire_bytes){.ptr = m->body, .len = shown};
    json_object_set_new(o, "payload_bytes", json_integer((json_int_t)m->body_size));
    json_object_set_new(o, "redelivered", json_boolean(e->redelivered));
    json_object_set_new(o, "exchange", mgmt_json_bytes(m->exchange));
    json_object_set_new(o, "routing_key", mgmt_json_bytes(m->routing_key));
    json_object_set_new(o, "message_count", json_integer(remaining));
    json_object_set_new(o, "properties", mgmt_json_from_props(&m->props));
    /* "auto" shows the body as a string when it is UTF-8, else as base64. */
    if (!base64) {
        json_t *s = json_stringn((const char *)body.ptr, body.len);
        if (s != NULL) {
            json_object_set_new(o, "payload", s);
            json_object_set_new(o, "payload_encoding", json_string("string"));
            return o;
        }
    }
    {
        char *text = xmalloc(body.len / 3 * 4 + 8);
        mgmt_base64_encode(body.ptr, body.len, text);
        json_object_set_new(o, "payload", json_string(text));
        json_object_set_new(o, "payload_encoding", json_string("base64"));
        free(text);
    }
    return o;
}

/* A number as rabbit_misc:parse_int/1 reads one: a JSON integer, a JSON number (its integer
 * part) or a string of decimal digits with an optional sign, as clients such as rabbitmqadmin
 * send them. Larger magnitudes than GET_INT_LIMIT are kept at it, for range checks to refuse. */
#define GET_INT_LIMIT 1000000000000000000LL

static bool parse_int(const json_t *v, json_int_t *out)
{
    const char *s;
    size_t len, i = 0;
    bool negative;
    json_int_t n = 0;

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        *out = d >= (double)GET_INT_LIMIT    ? GET_INT_LIMIT
               : d <= -(double)GET_INT_LIMIT ? -GET_INT_LIMIT
                                             : (json_int_t)d; /* toward zero, as trunc/1 */
        return true;
    }
    if (!json_is_string(v))
        return false;
    s = json_string_value(v);
    len = json_string_length(v);
    negative = len > 0 && s[0] == '-';
    if (len > 0 && (s[0] == '-' || s[0] == '+'))
        i++;
    if (i == len)
        return false;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        n = n >= GET_INT_LIMIT / 10 ? GET_INT_LIMIT : n * 10 + (s[i] - '0');
    }
    *out = negative ? -n : n;
    return true;
}

/* POST /api/queues/v/q/get: takes up to count messages, then acks, requeues or rejects them
 * all, as RabbitMQ does (so a requeueing get never shows one message twice). count and
 * truncate may be strings, as RabbitMQ reads them; a body it refuses is refused with its 400
 * reason (key_missing, not_integer), checked in its order. */
enum MHD_Result mgmt_api_get(struct mgmt_call *c)
{
    enum MHD_Result answered = MHD_NO;
    struct vhost *vh = mgmt_find_vhost(c, c->seg[1]);
    struct ops_actor actor = {.user = c->user};
    struct ops_error err;
    json_t *body, *arr, *v;
    const char *mode, *enc;
    enum ackmode ackmode;
    json_int_t count;
    long truncate = -1;
    struct queue *q;
    struct qentry *taken = NULL;
    size_t ntaken = 0;

    if (vh == NULL)
        return mgmt_not_found(c);
    if ((body = mgmt_body_object(c, &answered)) == NULL)
        return answered;
    {
        /* rabbit_mgmt_util:with_decode([ackmode, count, encoding], ...) */
        static const char *const keys[] = {"ackmode", "count", "encoding"};
        char missing[128] = "";
        size_t used = 0;
        for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
            if (json_object_get(body, keys[i]) == NULL)
                used += (size_t)snprintf(missing + used, sizeof missing - used,
                                         "%s{key_missing,%s}", used > 0 ? "," : "", keys[i]);
        }
        if (used > 0) {
            answered = mgmt_bad_request(c, "[%s]", missing);
            goto out;
        }
    }
    v = json_object_get(body, "count");
    if (!parse_int(v, &count)) {
        answered = mgmt_bad_request_term(c, "not_integer", json_deep_copy(v));
        goto out;
    }
    /* RabbitMQ takes any count (a negative one empties the queue); Warren keeps a bound. */
    if (count < 0 || count > MGMT_GET_MAX) {
        answered = mgmt_bad_request(c, "count must be an integer from 0 to %d", MGMT_GET_MAX);
        goto out;
    }
    enc = json_string_value(json_object_get(body, "encoding"));
    if (enc == NULL || (strcmp(enc, "auto") != 0 && strcmp(enc, "base64") != 0)) {
        answered = mgmt_bad_request(c, "Unsupported encoding. Please use auto or base64.");
        goto out;
    }
    if ((v = json_object_get(body, "truncate")) != NULL) {
        json_int_t n;
        if (!parse_int(v, &n)) {
            answered = mgmt_bad_request_term(c, "not_integer", json_deep_copy(v));
            goto out;
        }
        if (n < 0) {
            answered = mgmt_bad_request(c, "truncate must be a non-negative integer");
            goto out;
        }
        truncate = n > 0x7fffffff ? 0x7fffffff : (long)n;
    }
    mode = json_string_value(json_object_get(body, "ackmode"));
    if (mode != NULL && strcmp(mode, "ack_requeue_true") == 0)
        ackmode = ACK_REQUEUE;
    else if (mode != NULL && strcmp(mode, "ack_requeue_false") == 0)
        ackmode = ACK_DROP;
    else if (mode != NULL && strcmp(mode, "reject_requeue_true") == 0)
        ackmode = REJECT_REQUEUE;
    else if (mode != NULL && strcmp(mode, "reject_requeue_false") == 0)
        ackmode = REJECT_DROP;
    else {
        answered = mgmt_bad_request(c, "ackmode must be ack_requeue_true, ack_requeue_false, "
                                       "reject_requeue_true or reject_requeue_false");
        goto out;
    }
    if (!mgmt_permitted(c, vh, AUTH_OP_BASIC_GET, c->seg[2], WIRE_BYTES_C(""), true, &answered))
        goto out;
    if ((q = ops_queue_find(vh, &actor, c->seg[2], &err)) == NULL) {
        char text[600];
        ops_error_format(&err, false, text, sizeof text);
        answered = mgmt_respond_error(
            c, err.code == WIRE_NOT_FOUND ? MHD_HTTP_NOT_FOUND : MHD_HTTP_BAD_REQUEST,
            err.code == WIRE_NOT_FOUND ? "not_found" : "bad_request", "%s", text);
        goto out;
    }
    queue_ref(q);
    queue_touch(q);
    taken = xmalloc((size_t)count * sizeof *taken);
    arr = json_array();
    while (ntaken < (size_t)count && queue_pop(q, &taken[ntaken])) {
        json_array_append_new(arr, got_message(&taken[ntaken], queue_ready_count(q),
                                               strcmp(enc, "base64") == 0, truncate));
        ntaken++;
    }
    /* As a basic.get with an ack, a reject or a nack after it would (src/broker/channel.c). */
    for (size_t i = 0; i < ntaken; i++) {
        struct qentry *e = &taken[i];
        if (ackmode == ACK_DROP) {
            persist_left(q, e->msg);
            message_unref(e->msg);
            continue;
        }
        if (e->deliveries == 0 && !e->redelivered)
            persist_delivered(q, e->msg);
        if (ackmode == REJECT_DROP)
            queue_reject(q, e->msg);
        else
            queue_requeue(q, e->msg, e->seq, e->deliveries + 1, e->expires_at_ms);
    }
    if (ntaken > 0)
        queue_dispatch(q);
    queue_unref(q);
    free(taken);
    answered = mgmt_respond_json(c, MHD_HTTP_OK, arr);
out:
    json_decref(body);
    return answered;
}

/* ---- Bindings -------------------------------------------------------------------------- */

/* The bindings from source to the queue or exchange dest, with their properties keys. */
static json_t *bindings_between(struct vhost *vh, struct exchange *src, void *dest)
{
    json_t *arr = json_array();

    if (src == vh->default_exchange && destination_kind(dest) == DEST_QUEUE) {
        json_array_append_new(arr, mgmt_json_default_binding(dest));
        return arr;
    }
    for (const struct xbinding *xb = src->bindings; xb != NULL; xb = xb->next_in_source) {
        if (xb->b.destination == dest)
            json_array_append_new(arr, mgmt_json_binding(xb));
    }
    return arr;
}

/* /api/bindings[/v[/e/x/(q|e)/d[/props]]] */
enum MHD_Result mgmt_api_bindings(struct mgmt_call *c)
{
    struct vhost *vh = NULL;
    struct exchange *src;
    void *dest;
    bool to_exchange;
    json_t *arr;
    enum MHD_Result denied;

    if (c->nseg >= 2 && (vh = mgmt_find_vhost(c, c->seg[1])) == NULL)
        return mgmt_not_found(c);
    if (vh != NULL && !mgmt_may_see(c, vh, &denied))
        return denied;
    if (c->nseg <= 2) {
        size_t n;
        struct vhost **vhs = mgmt_vhosts_sorted(c->m->srv, vh, &n);
        struct binding_list *l = xcalloc(1, sizeof *l);
        for (size_t i = 0; i < n; i++) {
            if (mgmt_sees_objects_of(c, vhs[i]))
                add_binding_names_of(&l->names, vhs[i]);
        }
        free(vhs);
        return mgmt_respond_stream(c, &binding_list_ops, l);
    }
    to_exchange = wire_bytes_eq_cstr(c->seg[4], "e");
    if (!wire_bytes_eq_cstr(c->seg[2], "e") ||
        (!to_exchange && !wire_bytes_eq_cstr(c->seg[4], "q")))
        return mgmt_not_found(c);
    src = vhost_exchange_find(vh, mgmt_exchange_name(c->seg[3]));
    dest = to_exchange ? (void *)vhost_exchange_find(vh, mgmt_exchange_name(c->seg[5]))
                       : (void *)vhost_queue_find(vh, c->seg[5]);
    if (mgmt_method_is(c, MHD_HTTP_METHOD_POST)) {
        enum MHD_Result answered = MHD_NO;
        json_t *body = mgmt_body_object(c, &answered);
        const char *rk;
        size_t rk_len, args_len = 0;
        uint8_t *args = NULL;
        struct ops_error err;
        struct ops_actor actor = {.user = c->user};
        char key[1024], location[4096];

        if (body == NULL)
            return answered;
        if ((rk = mgmt_body_string(c, body, "routing_key", "", &rk_len, &answered)) == NULL ||
            mgmt_body_arguments(c, body, &args, &args_len, &answered) != 0)
            goto post_out;
        if (rk_len > 255) {
            answered = mgmt_bad_request(c, "routing_key is longer than 255 bytes");
            goto post_out;
        }
        if (!mgmt_permitted(c, vh, to_exchange ? AUTH_OP_EXCHANGE_BIND : AUTH_OP_QUEUE_BIND,
                            mgmt_exchange_name(c->seg[5]), mgmt_exchange_name(c->seg[3]), false,
                            &answered))
            goto post_out;
        if (ops_bind(vh, &actor, mgmt_exchange_name(c->seg[3]), mgmt_exchange_name(c->seg[5]),
                     to_exchange, (struct wire_bytes){(const uint8_t *)rk, rk_len},
                     (struct wire_bytes){args, args_len}, &err) != 0) {
            answered = mgmt_respond_ops_error(c, &err);
            goto post_out;
        }
        {
            struct MHD_Response *r =
                MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
            /* RabbitMQ answers with the new binding's URL relative to the request's, the
             * destination and the properties key percent-encoded (so "%" becomes "%25"). */
            size_t n;
            mgmt_binding_props_key((struct wire_bytes){(const uint8_t *)rk, rk_len},
                                   (struct wire_bytes){args, args_len}, key, sizeof key);
            n = mgmt_url_encode(c->seg[5], location, sizeof location / 2);
            location[n++] = '/';
            mgmt_url_encode(wire_cstr(key), location + n, sizeof location - n);
            MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
            answered = MHD_queue_response(c->conn, MHD_HTTP_CREATED, r);
            MHD_destroy_response(r);
        }
    post_out:
        free(args);
        json_decref(body);
        return answered;
    }
    if (src == NULL || dest == NULL)
        return mgmt_not_found(c);
    arr = bindings_between(vh, src, dest);
    if (c->nseg == 6)
        return mgmt_respond_json(c, MHD_HTTP_OK, arr);
    /* One binding, by its properties key. */
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *b = json_array_get(arr, i);
        const char *key = json_string_value(json_object_get(b, "properties_key"));
        uint8_t decoded[1024];
        /* The key is percent-encoded; a client may send it encoded once more (as in the
         * Location of a new binding) or not, so the segment, decoded once, may be either. */
        if (!wire_bytes_eq_cstr(c->seg[6], key) &&
            !wire_bytes_eq(c->seg[6], mgmt_url_decode(key, decoded, sizeof decoded)))
            continue;
        if (mgmt_method_is(c, MHD_HTTP_METHOD_DELETE)) {
            struct ops_error err;
            struct ops_actor actor = {.user = c->user};
            uint8_t *args = NULL;
            size_t args_len = 0;
            char why[256];
            int rc;

            if (src == vh->default_exchange) {
                json_decref(arr);
                return mgmt_access_refused(c);
            }
            if (!mgmt_permitted(c, vh, to_exchange ? AUTH_OP_EXCHANGE_UNBIND : AUTH_OP_QUEUE_UNBIND,
                                mgmt_exchange_name(c->seg[5]), src->name, false, &denied)) {
                json_decref(arr);
                return denied;
            }
            /* The binding's arguments are encoded again exactly as it was found. */
            mgmt_json_to_table(json_object_get(b, "arguments"), &args, &args_len, why, sizeof why);
            rc = ops_unbind(vh, &actor, src->name, c->seg[5], to_exchange,
                            mgmt_json_bytes_of(json_object_get(b, "routing_key")),
                            (struct wire_bytes){args, args_len}, true, &err);
            free(args);
            json_decref(arr);
            return rc == 0 ? mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT)
                           : mgmt_respond_ops_error(c, &err);
        }
        json_incref(b);
        json_decref(arr);
        return mgmt_respond_json(c, MHD_HTTP_OK, b);
    }
    json_decref(arr);
    return mgmt_not_found(c);
}
