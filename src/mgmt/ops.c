/* Broker operations outside a channel, with channel.c's checks and RabbitMQ's texts. */
#include "src/mgmt/ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/method.h"
#include "exchanges/erl_term.h"
#include "exchanges/registry.h"
#include "src/base/util.h"
#include "src/broker/channel.h"
#include "src/broker/exchange.h"
#include "src/broker/message.h"
#include "src/broker/persist.h"
#include "src/broker/publish.h"
#include "src/broker/queue.h"
#include "src/broker/server.h"
#include "src/broker/vhost.h"
#include "src/security/auth.h"

/* Names in reasons are shortstr (or at least short): print them with this. */
#define NAME_FMT    "'%.*s'"
#define NAME_ARG(b) (int)(b).len, (const char *)(b).ptr

static int fail(struct ops_error *err, uint16_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct ops_error *err, uint16_t code, const char *fmt, ...)
{
    va_list ap;

    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
    return -1;
}

void ops_error_format(const struct ops_error *err, bool with_code, char *out, size_t out_size)
{
    const char *name = wire_reply_code_name(err->code);

    if (with_code)
        snprintf(out, out_size, "%u %s - %s", err->code, name ? name : "ERROR", err->text);
    else
        snprintf(out, out_size, "%s - %s", name ? name : "ERROR", err->text);
}

static const char *bool_text(bool b)
{
    return b ? "true" : "false";
}

static struct exchange *find_exchange(struct vhost *vh, struct wire_bytes name,
                                      struct ops_error *err)
{
    struct exchange *x = vhost_exchange_find(vh, name);

    if (x == NULL)
        fail(err, WIRE_NOT_FOUND, "no exchange " NAME_FMT " in vhost " NAME_FMT, NAME_ARG(name),
             NAME_ARG(vh->name));
    return x;
}

/* ---- Exchanges ------------------------------------------------------------------------- */

int ops_exchange_declare(struct vhost *vh, struct wire_bytes name, struct wire_bytes type_name,
                         bool passive, bool durable, bool auto_delete, bool internal,
                         struct wire_bytes arguments, bool *created, struct ops_error *err)
{
    int rc;
    const struct exchange_type *type;
    struct exchange *x;
    struct wire_field ae;
    const char *what = NULL;
    bool got = false, have = false;

    if (created != NULL)
        *created = false;
    if (name.len == 0)
        return fail(err, WIRE_ACCESS_REFUSED, "operation not permitted on the default exchange");
    x = vhost_exchange_find(vh, name);
    if (passive)
        return x != NULL || find_exchange(vh, name, err) != NULL ? 0 : -1;
    type = exchange_type_find(type_name);
    if (type == NULL)
        /* RabbitMQ says "invalid" for names its runtime knows as atoms, the empty one among
         * them, and "unknown" for the rest (see exchanges/registry.h). */
        return fail(err, WIRE_COMMAND_INVALID, "%s exchange type " NAME_FMT,
                    type_name.len == 0 ? "invalid" : "unknown", NAME_ARG(type_name));
    if (wire_table_find((struct wire_table){.raw = arguments}, "alternate-exchange", &ae) &&
        ae.type != 'S')
        return fail(err, WIRE_PRECONDITION_FAILED,
                    "invalid type '%s' for arg 'alternate-exchange' in exchange " NAME_FMT
                    " in vhost " NAME_FMT,
                    erl_term_type_name(ae.type), NAME_ARG(name), NAME_ARG(vh->name));
    if (x == NULL) {
        if (exchange_name_is_reserved(name))
            return fail(err, WIRE_ACCESS_REFUSED,
                        "exchange name " NAME_FMT " contains reserved prefix 'amq.*'",
                        NAME_ARG(name));
        x = exchange_new(vh, name, type, durable, auto_delete, internal, arguments);
        vhost_exchange_add(vh, x);
        if ((rc = persist_exchange_added(x)) != 0) {
            vhost_exchange_delete(vh, x);
            return fail(err, WIRE_RESOURCE_ERROR,
                        "cannot store exchange " NAME_FMT " in vhost " NAME_FMT ": %s",
                        NAME_ARG(name), NAME_ARG(vh->name), strerror(-rc));
        }
        if (created != NULL)
            *created = true;
        return 0;
    }
    if (x->type != type)
        return fail(err, WIRE_PRECONDITION_FAILED,
                    "inequivalent arg 'type' for exchange " NAME_FMT " in vhost " NAME_FMT
                    ": received " NAME_FMT " but current is '%s'",
                    NAME_ARG(name), NAME_ARG(vh->name), NAME_ARG(type_name), x->type->name);
    if (x->durable != durable)
        what = "durable", got = durable, have = x->durable;
    else if (x->auto_delete != auto_delete)
        what = "auto_delete", got = auto_delete, have = x->auto_delete;
    else if (x->internal != internal)
        what = "internal", got = internal, have = x->internal;
    if (what != NULL)
        return fail(err, WIRE_PRECONDITION_FAILED,
                    "inequivalent arg '%s' for exchange " NAME_FMT " in vhost " NAME_FMT
                    ": received '%s' but current is '%s'",
                    what, NAME_ARG(name), NAME_ARG(vh->name), bool_text(got), bool_text(have));
    return 0;
}

int ops_exchange_delete(struct vhost *vh, struct wire_bytes name, bool if_unused, bool must_exist,
                        struct ops_error *err)
{
    struct exchange *x;

    if (name.len == 0 || exchange_name_is_reserved(name))
        return fail(err, WIRE_ACCESS_REFUSED, "operation not permitted on the default exchange");
    x = vhost_exchange_find(vh, name);
    if (x == NULL)
        return must_exist ? (find_exchange(vh, name, err), -1) : 0;
    if (if_unused && x->binding_count > 0)
        return fail(err, WIRE_PRECONDITION_FAILED,
                    "exchange " NAME_FMT " in vhost " NAME_FMT " in use", NAME_ARG(name),
                    NAME_ARG(vh->name));
    vhost_exchange_delete(vh, x);
    return 0;
}

/* ---- Queues ---------------------------------------------------------------------------- */

struct queue *ops_queue_find(struct vhost *vh, const struct ops_actor *actor,
                             struct wire_bytes name, struct ops_error *err)
{
    struct queue *q;

    if (name.len == 0) {
        fail(err, WIRE_NOT_FOUND, "no previously declared queue");
        return NULL;
    }
    q = vhost_queue_find(vh, name);
    if (q == NULL) {
        fail(err, WIRE_NOT_FOUND, "no queue " NAME_FMT " in vhost " NAME_FMT, NAME_ARG(name),
             NAME_ARG(vh->name));
        return NULL;
    }
    if (actor->conn != NULL && q->exclusive && q->owner != actor->conn) {
        fail(err, WIRE_RESOURCE_LOCKED,
             "cannot obtain exclusive access to locked queue " NAME_FMT " in vhost " NAME_FMT
             ". It could be originally declared on another connection or the exclusive "
             "property value does not match that of the original declaration.",
             NAME_ARG(name), NAME_ARG(vh->name));
        return NULL;
    }
    return q;
}

static int check_queue_equivalent(const struct queue *q, bool durable, bool exclusive,
                                  bool auto_delete, struct wire_bytes arguments,
                                  struct ops_error *err)
{
    const char *what = NULL;
    bool got = false, have = false;

    if (q->durable != durable)
        what = "durable", got = durable, have = q->durable;
    else if (q->auto_delete != auto_delete)
        what = "auto_delete", got = auto_delete, have = q->auto_delete;
    else if (q->exclusive != exclusive)
        what = "exclusive", got = exclusive, have = q->exclusive;
    if (what != NULL)
        return fail(err, WIRE_PRECONDITION_FAILED,
                    "inequivalent arg '%s' for queue " NAME_FMT " in vhost " NAME_FMT
                    ": received '%s' but current is '%s'",
                    what, NAME_ARG(q->name), NAME_ARG(q->vhost->name), bool_text(got),
                    bool_text(have));
    if (!wire_bytes_eq(q->arguments, arguments))
        return fail(err, WIRE_PRECONDITION_FAILED,
                    "inequivalent arguments for queue " NAME_FMT " in vhost " NAME_FMT,
                    NAME_ARG(q->name), NAME_ARG(q->vhost->name));
    return 0;
}

int ops_queue_declare(struct vhost *vh, const struct ops_actor *actor, struct wire_bytes name,
                      bool passive, bool durable, bool exclusive, bool auto_delete,
                      struct wire_bytes arguments, struct queue **out, bool *created,
                      struct ops_error *err)
{
    int rc;
    char generated[64];
    struct queue_args args;
    struct queue *q;

    *out = NULL;
    if (created != NULL)
        *created = false;
    if (passive) {
        *out = ops_queue_find(vh, actor, name, err);
        goto touch;
    }
    if (name.len == 0) {
        random_name(generated, sizeof generated, "amq.gen-");
        name = wire_cstr(generated);
    } else if (exchange_name_is_reserved(name)) {
        return fail(err, WIRE_ACCESS_REFUSED,
                    "queue name " NAME_FMT " contains reserved prefix 'amq.*'", NAME_ARG(name));
    }
    if (queue_args_parse(arguments, name, vh->name, vh->default_delivery_limit, &args, err->text,
                         sizeof err->text) != 0) {
        err->code = WIRE_PRECONDITION_FAILED;
        return -1;
    }
    if (args.stream && vh->refuse_streams)
        return fail(err, WIRE_NOT_IMPLEMENTED,
                    "stream queues are not replicated by a Warren cluster yet: queue " NAME_FMT
                    " cannot be declared",
                    NAME_ARG(name));
    q = vhost_queue_find(vh, name);
    if (q != NULL) {
        if (q->exclusive && actor->conn != NULL && q->owner != actor->conn)
            return ops_queue_find(vh, actor, name, err) != NULL ? 0 : -1; /* 405 */
        if (check_queue_equivalent(q, durable, exclusive, auto_delete, arguments, err) != 0)
            return -1;
        *out = q;
        goto touch;
    }
    q = queue_new(vh, name, durable, exclusive, auto_delete, arguments);
    if (exclusive)
        q->owner = actor->conn;
    vhost_queue_add(vh, q);
    if ((rc = persist_queue_added(q)) != 0) {
        queue_delete(q);
        return fail(err, WIRE_RESOURCE_ERROR,
                    "cannot store queue " NAME_FMT " in vhost " NAME_FMT ": %s", NAME_ARG(name),
                    NAME_ARG(vh->name), strerror(-rc));
    }
    *out = q;
    if (created != NULL)
        *created = true;
touch:
    if (*out == NULL)
        return -1;
    queue_touch(*out);
    return 0;
}

int ops_queue_delete(struct vhost *vh, const struct ops_actor *actor, struct wire_bytes name,
                     bool if_unused, bool if_empty, bool must_exist, uint32_t *count,
                     struct ops_error *err)
{
    struct queue *q;

    if (count != NULL)
        *count = 0;
    if (vhost_queue_find(vh, name) == NULL && !must_exist)
        return 0;
    if ((q = ops_queue_find(vh, actor, name, err)) == NULL)
        return -1;
    if (if_unused && q->consumer_count > 0)
        return fail(err, WIRE_PRECONDITION_FAILED,
                    "queue " NAME_FMT " in vhost " NAME_FMT " in use", NAME_ARG(name),
                    NAME_ARG(vh->name));
    if (if_empty && queue_ready_count(q) > 0)
        return fail(err, WIRE_PRECONDITION_FAILED,
                    "queue " NAME_FMT " in vhost " NAME_FMT " not empty", NAME_ARG(name),
                    NAME_ARG(vh->name));
    {
        uint32_t n = queue_delete(q);
        if (count != NULL)
            *count = n;
    }
    return 0;
}

int ops_queue_purge(struct vhost *vh, const struct ops_actor *actor, struct wire_bytes name,
                    uint32_t *count, struct ops_error *err)
{
    struct queue *q = ops_queue_find(vh, actor, name, err);
    uint32_t n;

    if (q == NULL)
        return -1;
    n = queue_purge(q);
    if (count != NULL)
        *count = n;
    return 0;
}

/* ---- Bindings -------------------------------------------------------------------------- */

/* The source exchange and the destination (queue or exchange) of a binding, looked up in the
 * order channel.c looks them up, so the first error is the one a client would see. */
static int binding_ends(struct vhost *vh, const struct ops_actor *actor, struct wire_bytes source,
                        struct wire_bytes destination, bool to_exchange, struct exchange **src,
                        void **dest, struct ops_error *err)
{
    if (to_exchange) {
        if (source.len == 0 || destination.len == 0)
            return fail(err, WIRE_ACCESS_REFUSED,
                        "operation not permitted on the default exchange");
        if ((*dest = find_exchange(vh, destination, err)) == NULL ||
            (*src = find_exchange(vh, source, err)) == NULL)
            return -1;
        return 0;
    }
    if ((*dest = ops_queue_find(vh, actor, destination, err)) == NULL)
        return -1;
    if (source.len == 0)
        return fail(err, WIRE_ACCESS_REFUSED, "operation not permitted on the default exchange");
    if ((*src = find_exchange(vh, source, err)) == NULL)
        return -1;
    return 0;
}

int ops_bind(struct vhost *vh, const struct ops_actor *actor, struct wire_bytes source,
             struct wire_bytes destination, bool to_exchange, struct wire_bytes routing_key,
             struct wire_bytes arguments, struct ops_error *err)
{
    uint16_t code;
    struct exchange *src = NULL;
    void *dest = NULL;
    char why[256];

    if (binding_ends(vh, actor, source, destination, to_exchange, &src, &dest, err) != 0)
        return -1;
    if (exchange_bind(src, dest, routing_key, arguments, &code, why, sizeof why) == NULL)
        return fail(err, code, "%s", why);
    return 0;
}

int ops_unbind(struct vhost *vh, const struct ops_actor *actor, struct wire_bytes source,
               struct wire_bytes destination, bool to_exchange, struct wire_bytes routing_key,
               struct wire_bytes arguments, bool must_exist, struct ops_error *err)
{
    struct exchange *src = NULL;
    void *dest = NULL;
    struct xbinding *xb;

    if (binding_ends(vh, actor, source, destination, to_exchange, &src, &dest, err) != 0)
        return -1;
    xb = exchange_find_binding(src, dest, routing_key, arguments);
    if (xb == NULL && must_exist)
        return fail(err, WIRE_NOT_FOUND,
                    "no binding " NAME_FMT " between exchange " NAME_FMT " in vhost " NAME_FMT
                    " and %s " NAME_FMT " in vhost " NAME_FMT,
                    NAME_ARG(routing_key), NAME_ARG(source), NAME_ARG(vh->name),
                    to_exchange ? "exchange" : "queue", NAME_ARG(destination), NAME_ARG(vh->name));
    if (xb != NULL)
        exchange_unbind(xb);
    return 0;
}

/* ---- Publish --------------------------------------------------------------------------- */

/* The content-header payload for props and a body of body_size bytes. */
static struct wire_bytes encode_header(const struct wire_props *props, uint64_t body_size,
                                       uint8_t **storage)
{
    struct wire_content_header h = {
        .class_id = WIRE_CLASS_BASIC, .body_size = body_size, .props = *props};
    size_t need = 512 + props->headers.raw.len;
    struct wire_writer w;

    for (;;) {
        *storage = xmalloc(need);
        w = wire_writer_init(*storage, need);
        wire_content_header_encode(&w, &h);
        if (!wire_writer_overflowed(&w))
            return (struct wire_bytes){.ptr = *storage, .len = wire_writer_used(&w)};
        need = wire_writer_used(&w);
        free(*storage);
    }
}

int ops_publish(struct server *s, struct vhost *vh, const struct ops_actor *actor,
                struct wire_bytes exchange, struct wire_bytes routing_key,
                const struct wire_props *props, struct wire_bytes body, uint32_t *routed,
                bool *refused, struct ops_error *err)
{
    struct exchange *x;
    struct message *msg;
    struct publish_result result;
    uint8_t *header_storage;
    struct wire_bytes header;

    *routed = 0;
    *refused = false;
    if ((x = find_exchange(vh, exchange, err)) == NULL)
        return -1;
    if (x->internal)
        return fail(err, WIRE_ACCESS_REFUSED,
                    "cannot publish to internal exchange " NAME_FMT " in vhost " NAME_FMT,
                    NAME_ARG(exchange), NAME_ARG(vh->name));
    /* Validated user-id: a message may only claim the user that published it, unless that
     * user is an impersonator. */
    if ((props->flags & WIRE_PROP_USER_ID) && actor->user != NULL &&
        !wire_bytes_eq_cstr(props->user_id, actor->user) &&
        (s == NULL || !auth_may_claim_user_id(s->auth, actor->user, props->user_id)))
        return fail(err, WIRE_PRECONDITION_FAILED,
                    "user_id property set to " NAME_FMT " but authenticated user was '%s'",
                    NAME_ARG(props->user_id), actor->user);
    if ((props->flags & WIRE_PROP_EXPIRATION) && !expiration_is_valid(props->expiration))
        return fail(err, WIRE_PRECONDITION_FAILED, "invalid expiration " NAME_FMT,
                    NAME_ARG(props->expiration));
    /* Only a channel can consume replies, so a publish from outside one cannot ask for
     * them. */
    if ((props->flags & WIRE_PROP_REPLY_TO) &&
        wire_bytes_eq_cstr(props->reply_to, "amq.rabbitmq.reply-to"))
        return fail(err, WIRE_PRECONDITION_FAILED, "fast reply consumer does not exist");

    header = encode_header(props, body.len, &header_storage);
    msg = message_new(exchange, routing_key, header, body.len);
    free(header_storage);
    message_append_body(msg, body);

    server_publish(s, vh, x, &msg, &result);
    *routed = (uint32_t)result.routed;
    *refused = result.refused;
    message_unref(msg);
    return 0;
}
