/* The methods that declare and remove what a vhost holds, as a channel handles them: the
 * exchange class (declare, delete, bind, unbind) and the queue class (declare, bind, unbind,
 * purge, delete), with RabbitMQ's checks, texts and name shortcuts. The dispatch table and
 * everything about deliveries stay in channel.c. */
#include "src/broker/channel_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchanges/erl_term.h"
#include "exchanges/registry.h"
#include "src/base/config.h"
#include "src/base/util.h"
#include "src/broker/channel.h"
#include "src/broker/conn.h"
#include "src/broker/exchange.h"
#include "src/broker/message.h"
#include "src/broker/persist.h"
#include "src/broker/publish.h"
#include "src/broker/queue.h"
#include "src/broker/server.h"
#include "src/broker/vhost.h"
#include "src/security/auth.h"

/* ---- exchange class -------------------------------------------------------------------- */

int channel_handle_exchange_declare(struct channel *ch, const struct wire_method *m)
{
    int rc;
    const struct wire_exchange_declare *a = &m->u.exchange_declare;
    struct vhost *vh = ch->conn->vhost;
    const struct exchange_type *type;
    struct exchange *x;
    uint8_t name_buf[NAME_BUF_SIZE];
    struct wire_bytes name = channel_strip_cr_lf(a->exchange, name_buf);

    if (name.len == 0)
        return channel_fail(ch, WIRE_ACCESS_REFUSED,
                            "operation not permitted on the default exchange");
    x = vhost_exchange_find(vh, name);
    if (a->passive) {
        if (x == NULL)
            return channel_find_exchange(ch, name) ? 0 : -1;
        goto ok;
    }
    {
        struct wire_field ae;
        bool has_ae = wire_table_find(a->arguments, "alternate-exchange", &ae) && ae.type == 'S';
        if (channel_permit(ch, has_ae ? AUTH_OP_EXCHANGE_DECLARE_AE : AUTH_OP_EXCHANGE_DECLARE,
                   name, has_ae ? ae.v.bytes : (struct wire_bytes){0}) != 0)
            return -1;
    }
    type = exchange_type_find(a->type);
    if (type == NULL)
        /* RabbitMQ says "invalid" for names its runtime knows as atoms, the empty one among
         * them, and "unknown" for the rest. */
        return channel_fail(ch, WIRE_COMMAND_INVALID, "%s exchange type " NAME_FMT,
                            a->type.len == 0 ? "invalid" : "unknown", NAME_ARG(a->type));
    {
        struct wire_field ae;
        if (wire_table_find(a->arguments, "alternate-exchange", &ae) && ae.type != 'S')
            return channel_fail(ch, WIRE_PRECONDITION_FAILED,
                                "invalid type '%s' for arg 'alternate-exchange' in exchange " NAME_FMT
                                " in vhost " NAME_FMT,
                                erl_term_type_name(ae.type), NAME_ARG(name), VHOST_ARG(ch));
    }
    if (x == NULL) {
        if (exchange_name_is_reserved(name))
            return channel_fail(ch, WIRE_ACCESS_REFUSED,
                                "exchange name " NAME_FMT " contains reserved prefix 'amq.*'",
                                NAME_ARG(name));
        x = exchange_new(vh, name, type, a->durable, a->auto_delete, a->internal,
                         a->arguments.raw);
        vhost_exchange_add(vh, x);
        if ((rc = persist_exchange_added(x)) != 0) {
            /* It would not survive a restart: not declared (the log never had it). */
            vhost_exchange_delete(vh, x);
            return channel_fail(ch, WIRE_RESOURCE_ERROR,
                                "cannot store exchange " NAME_FMT " in vhost " NAME_FMT ": %s",
                                NAME_ARG(name), VHOST_ARG(ch), strerror(-rc));
        }
        goto ok;
    }
    if (x->type != type)
        return channel_fail(ch, WIRE_PRECONDITION_FAILED,
                            "inequivalent arg 'type' for exchange " NAME_FMT " in vhost " NAME_FMT
                            ": received '%.*s' but current is '%s'",
                            NAME_ARG(name), VHOST_ARG(ch), NAME_ARG(a->type),
                            x->type->name);
    {
        /* The flags RabbitMQ compares, in its order. */
        const struct {
            const char *name;
            bool received, current;
        } flags[] = {
            {"durable", a->durable, x->durable},
            {"auto_delete", a->auto_delete, x->auto_delete},
            {"internal", a->internal, x->internal},
        };
        for (size_t i = 0; i < ARRAY_LEN(flags); i++) {
            if (flags[i].received != flags[i].current)
                return channel_fail(ch, WIRE_PRECONDITION_FAILED,
                                    "inequivalent arg '%s' for exchange " NAME_FMT
                                    " in vhost " NAME_FMT ": received '%s' but current is '%s'",
                                    flags[i].name, NAME_ARG(name), VHOST_ARG(ch),
                                    channel_bool_text(flags[i].received), channel_bool_text(flags[i].current));
        }
    }
ok:
    if (!a->nowait)
        conn_send_method(ch->conn, ch->id, WIRE_EXCHANGE_DECLARE_OK,
                         &(struct wire_exchange_declare_ok){0});
    return 0;
}

int channel_handle_exchange_delete(struct channel *ch, const struct wire_method *m)
{
    const struct wire_exchange_delete *a = &m->u.exchange_delete;
    struct vhost *vh = ch->conn->vhost;
    struct exchange *x;
    uint8_t name_buf[NAME_BUF_SIZE];
    struct wire_bytes name = channel_strip_cr_lf(a->exchange, name_buf);

    if (name.len == 0 || exchange_name_is_reserved(name))
        return channel_fail(ch, WIRE_ACCESS_REFUSED,
                            "operation not permitted on the default exchange");
    if (channel_permit(ch, AUTH_OP_EXCHANGE_DELETE, name, (struct wire_bytes){0}) != 0)
        return -1;
    x = vhost_exchange_find(vh, name);
    if (x != NULL) {
        if (a->if_unused && x->binding_count > 0)
            return channel_fail(ch, WIRE_PRECONDITION_FAILED,
                                "exchange " NAME_FMT " in vhost " NAME_FMT " in use",
                                NAME_ARG(name), VHOST_ARG(ch));
        vhost_exchange_delete(vh, x);
    }
    /* Deleting an exchange that does not exist succeeds, as in RabbitMQ 3.x. */
    if (!a->nowait)
        conn_send_method(ch->conn, ch->id, WIRE_EXCHANGE_DELETE_OK,
                         &(struct wire_exchange_delete_ok){0});
    return 0;
}

/* ---- queue class ----------------------------------------------------------------------- */

/* Every successful queue.declare, passive or not, names the channel's last declared queue
 * (a queue named "" would mean none, as in RabbitMQ). Its name came in a short string. */
static void remember_declared(struct channel *ch, struct wire_bytes name)
{
    assert(name.len < sizeof ch->last_queue);
    memcpy(ch->last_queue, name.ptr, name.len);
    ch->last_queue_len = (uint8_t)name.len;
}

static void send_declare_ok(struct channel *ch, const struct queue *q)
{
    struct wire_queue_declare_ok ok = {
        .queue = q->name,
        .message_count = queue_ready_count(q),
        .consumer_count = (uint32_t)q->consumer_count,
    };
    conn_send_method(ch->conn, ch->id, WIRE_QUEUE_DECLARE_OK, &ok);
}

/* A redeclared queue: its durable and auto-delete flags and its arguments must be those of
 * the declaration (406 with RabbitMQ's text). */
static int check_queue_equivalent(struct channel *ch, const struct queue *q,
                                  const struct wire_queue_declare *a)
{
    const char *what = NULL;
    bool got = false, have = false;

    if (q->durable != a->durable)
        what = "durable", got = a->durable, have = q->durable;
    else if (q->auto_delete != a->auto_delete)
        what = "auto_delete", got = a->auto_delete, have = q->auto_delete;
    if (what != NULL)
        return channel_fail(ch, WIRE_PRECONDITION_FAILED,
                            "inequivalent arg '%s' for queue " NAME_FMT " in vhost " NAME_FMT
                            ": received '%s' but current is '%s'",
                            what, NAME_ARG(q->name), VHOST_ARG(ch), channel_bool_text(got),
                            channel_bool_text(have));
    {
        char err[512];
        if (queue_args_equivalent(q->arguments, a->arguments.raw, q->name, ch->conn->vhost->name,
                                  err, sizeof err) != 0)
            return channel_fail(ch, WIRE_PRECONDITION_FAILED, "%s", err);
    }
    return 0;
}

int channel_handle_queue_declare(struct channel *ch, const struct wire_method *m)
{
    int rc;
    const struct wire_queue_declare *a = &m->u.queue_declare;
    struct vhost *vh = ch->conn->vhost;
    char generated[64];
    uint8_t name_buf[NAME_BUF_SIZE];
    struct wire_bytes name = channel_strip_cr_lf(a->queue, name_buf);
    struct queue *q;

    if (a->passive) {
        /* An RPC server may check that the requester is still there: a reply address is
         * a queue with one consumer while its channel consumes replies, as in RabbitMQ. */
        if (publish_is_reply_address(name) && server_reply_channel(ch->conn->srv, name) != NULL) {
            struct wire_queue_declare_ok ok = {.queue = name, .consumer_count = 1};
            remember_declared(ch, name);
            if (!a->nowait)
                conn_send_method(ch->conn, ch->id, WIRE_QUEUE_DECLARE_OK, &ok);
            return 0;
        }
        if ((q = channel_find_queue(ch, name)) == NULL)
            return -1;
        goto ok;
    }
    if (name.len == 0) {
        random_name(generated, sizeof generated, "amq.gen-");
        name = wire_cstr(generated);
    } else if (exchange_name_is_reserved(name)) {
        return channel_fail(ch, WIRE_ACCESS_REFUSED,
                            "queue name " NAME_FMT " contains reserved prefix 'amq.*'",
                            NAME_ARG(name));
    }
    {
        struct wire_field dlx;
        bool has_dlx =
            wire_table_find(a->arguments, "x-dead-letter-exchange", &dlx) && dlx.type == 'S';
        if (channel_permit(ch, has_dlx ? AUTH_OP_QUEUE_DECLARE_DLX : AUTH_OP_QUEUE_DECLARE, name,
                   has_dlx ? dlx.v.bytes : (struct wire_bytes){0}) != 0)
            return -1;
    }
    /* An existing queue is compared with the declaration; only a new one is validated, as
     * in RabbitMQ. */
    q = vhost_queue_find(vh, name);
    if (q != NULL) {
        /* A declare claims the queue for this connection (exclusive) or for none, and the
         * claim must match its owner exactly: a shared queue redeclared exclusive, or an
         * exclusive one redeclared shared, is 405 like another connection's exclusive queue,
         * checked before the other flags (rabbit_amqqueue:assert_equivalence, strict). */
        if (q->exclusive != a->exclusive || (q->exclusive && q->owner != ch->conn))
            return channel_fail_locked(ch, name);
        if (check_queue_equivalent(ch, q, a) != 0)
            return -1;
        goto ok;
    }
    {
        struct queue_args args;
        char err[400];
        if (queue_args_parse(a->arguments.raw, name, vh->name, vh->default_delivery_limit, &args,
                             err, sizeof err) != 0)
            return channel_fail(ch, WIRE_PRECONDITION_FAILED, "%s", err);
        if (args.stream && vh->refuse_streams)
            return channel_fail(ch, WIRE_NOT_IMPLEMENTED,
                                "stream queues are not replicated by a Warren cluster yet: "
                                "queue " NAME_FMT " in vhost " NAME_FMT " cannot be declared",
                                NAME_ARG(name), VHOST_ARG(ch));
        /* A stream is durable, shared and kept (RabbitMQ's texts, in its order). */
        if (args.stream && (!a->durable || a->exclusive || a->auto_delete))
            return channel_fail(ch, WIRE_PRECONDITION_FAILED,
                                "invalid property '%s' for queue " NAME_FMT " in vhost " NAME_FMT,
                                !a->durable    ? "non-durable"
                                : a->exclusive ? "exclusive-owner"
                                               : "auto-delete",
                                NAME_ARG(name), VHOST_ARG(ch));
    }
    {
        const struct auth_vhost *av = auth_vhost_find(ch->conn->srv->auth, vh->name);
        if (av != NULL && av->max_queues >= 0 && vh->queues.len >= (uint64_t)av->max_queues)
            return channel_fail(ch, WIRE_PRECONDITION_FAILED,
                                "cannot declare queue " NAME_FMT ": queue limit in vhost " NAME_FMT
                                " (%lld) is reached",
                                NAME_ARG(name), VHOST_ARG(ch), (long long)av->max_queues);
    }
    q = queue_new(vh, name, a->durable, a->exclusive, a->auto_delete, a->arguments.raw);
    if (a->exclusive)
        q->owner = ch->conn;
    vhost_queue_add(vh, q);
    if ((rc = persist_queue_added(q)) != 0) {
        /* It would not survive a restart: not declared (the log never had it). */
        queue_delete(q);
        return channel_fail(ch, WIRE_RESOURCE_ERROR,
                            "cannot store queue " NAME_FMT " in vhost " NAME_FMT ": %s",
                            NAME_ARG(name), VHOST_ARG(ch), strerror(-rc));
    }
ok:
    queue_touch(q);
    remember_declared(ch, q->name);
    if (!a->nowait)
        send_declare_ok(ch, q);
    return 0;
}

int channel_handle_queue_bind(struct channel *ch, const struct wire_method *m)
{
    uint16_t code;
    const struct wire_queue_bind *a = &m->u.queue_bind;
    uint8_t queue_buf[NAME_BUF_SIZE], exchange_buf[NAME_BUF_SIZE];
    struct wire_bytes queue = a->queue, key = a->routing_key;
    struct wire_bytes exchange = channel_strip_cr_lf(a->exchange, exchange_buf);
    struct queue *q;
    struct exchange *x;
    char err[256];

    if (channel_expand_queue_name(ch, &queue) != 0)
        return -1;
    queue = channel_strip_cr_lf(queue, queue_buf);
    /* No queue and no key: bound by the last declared queue's name, as the spec says. */
    if (a->queue.len == 0 && key.len == 0)
        key = queue;
    if (channel_permit(ch, AUTH_OP_QUEUE_BIND, queue, exchange) != 0)
        return -1;
    if ((q = channel_find_queue(ch, queue)) == NULL)
        return -1;
    if (exchange.len == 0)
        return channel_fail(ch, WIRE_ACCESS_REFUSED,
                            "operation not permitted on the default exchange");
    if ((x = channel_find_exchange(ch, exchange)) == NULL ||
        channel_permit_topic(ch, x, AUTH_READ, key) != 0)
        return -1;
    if (exchange_bind(x, q, key, a->arguments.raw, &code, err, sizeof err) == NULL)
        return channel_fail(ch, code, "%s", err);
    if (!a->nowait)
        conn_send_method(ch->conn, ch->id, WIRE_QUEUE_BIND_OK, &(struct wire_queue_bind_ok){0});
    return 0;
}

int channel_handle_queue_unbind(struct channel *ch, const struct wire_method *m)
{
    const struct wire_queue_unbind *a = &m->u.queue_unbind;
    struct vhost *vh = ch->conn->vhost;
    uint8_t queue_buf[NAME_BUF_SIZE], exchange_buf[NAME_BUF_SIZE];
    struct wire_bytes queue = a->queue, key = a->routing_key;
    struct wire_bytes exchange = channel_strip_cr_lf(a->exchange, exchange_buf);
    struct queue *q;
    struct exchange *x;
    struct xbinding *xb;

    if (channel_expand_queue_name(ch, &queue) != 0)
        return -1;
    queue = channel_strip_cr_lf(queue, queue_buf);
    if (a->queue.len == 0 && key.len == 0)
        key = queue; /* as queue.bind */
    if (channel_permit(ch, AUTH_OP_QUEUE_UNBIND, queue, exchange) != 0)
        return -1;
    if (exchange.len == 0)
        return channel_fail(ch, WIRE_ACCESS_REFUSED,
                            "operation not permitted on the default exchange");
    x = vhost_exchange_find(vh, exchange);
    if (x != NULL && channel_permit_topic(ch, x, AUTH_READ, key) != 0)
        return -1;
    /* Unbinding what is not bound succeeds, and so does unbinding a queue or an exchange
     * that does not exist, as in RabbitMQ 3.x (rabbit_binding:remove fails only for a queue
     * on a node that is down). Another connection's exclusive queue is refused only when
     * there is a binding to remove: RabbitMQ checks exclusive access after the lookup. */
    q = vhost_queue_find(vh, queue);
    xb = q != NULL && x != NULL ? exchange_find_binding(x, q, key, a->arguments.raw) : NULL;
    if (xb != NULL) {
        if (q->exclusive && q->owner != ch->conn)
            return channel_fail_locked(ch, q->name);
        exchange_unbind(xb);
    }
    conn_send_method(ch->conn, ch->id, WIRE_QUEUE_UNBIND_OK, &(struct wire_queue_unbind_ok){0});
    return 0;
}

int channel_handle_queue_purge(struct channel *ch, const struct wire_method *m)
{
    const struct wire_queue_purge *a = &m->u.queue_purge;
    struct wire_bytes queue = a->queue;
    struct queue *q;
    struct wire_queue_purge_ok ok;

    if (channel_expand_queue_name(ch, &queue) != 0 ||
        channel_permit(ch, AUTH_OP_QUEUE_PURGE, queue, (struct wire_bytes){0}) != 0)
        return -1;
    if ((q = channel_find_queue(ch, queue)) == NULL)
        return -1;
    if (q->stream != NULL)
        return channel_fail(ch, WIRE_NOT_IMPLEMENTED,
                            "queue.purge not supported by stream queues queue " NAME_FMT
                            " in vhost " NAME_FMT,
                            NAME_ARG(q->name), VHOST_ARG(ch));
    ok.message_count = queue_purge(q);
    if (!a->nowait)
        conn_send_method(ch->conn, ch->id, WIRE_QUEUE_PURGE_OK, &ok);
    return 0;
}

int channel_handle_queue_delete(struct channel *ch, const struct wire_method *m)
{
    const struct wire_queue_delete *a = &m->u.queue_delete;
    struct wire_queue_delete_ok ok = {0};
    struct wire_bytes queue = a->queue;
    uint8_t queue_buf[NAME_BUF_SIZE];
    struct queue *q;

    if (channel_expand_queue_name(ch, &queue) != 0)
        return -1;
    queue = channel_strip_cr_lf(queue, queue_buf);
    if (channel_permit(ch, AUTH_OP_QUEUE_DELETE, queue, (struct wire_bytes){0}) != 0)
        return -1;
    /* Deleting a queue that does not exist succeeds with a count of 0, as in RabbitMQ 3.x. */
    q = vhost_queue_find(ch->conn->vhost, queue);
    if (q != NULL) {
        if (channel_find_queue(ch, queue) == NULL)
            return -1;
        if (a->if_unused && q->consumer_count > 0)
            return channel_fail(ch, WIRE_PRECONDITION_FAILED,
                                "queue " NAME_FMT " in vhost " NAME_FMT " in use",
                                NAME_ARG(queue), VHOST_ARG(ch));
        if (a->if_empty && queue_ready_count(q) > 0)
            return channel_fail(ch, WIRE_PRECONDITION_FAILED,
                                "queue " NAME_FMT " in vhost " NAME_FMT " not empty",
                                NAME_ARG(queue), VHOST_ARG(ch));
        ok.message_count = queue_delete(q);
    }
    if (!a->nowait)
        conn_send_method(ch->conn, ch->id, WIRE_QUEUE_DELETE_OK, &ok);
    return 0;
}

/* ---- exchange-to-exchange bindings ---------------------------------------------------- */

int channel_handle_exchange_bind(struct channel *ch, const struct wire_method *m)
{
    uint16_t code;
    const struct wire_exchange_bind *a = &m->u.exchange_bind;
    struct exchange *src, *dst;
    uint8_t source_buf[NAME_BUF_SIZE], destination_buf[NAME_BUF_SIZE];
    struct wire_bytes source = channel_strip_cr_lf(a->source, source_buf);
    struct wire_bytes destination = channel_strip_cr_lf(a->destination, destination_buf);
    char err[256];

    if (source.len == 0 || destination.len == 0)
        return channel_fail(ch, WIRE_ACCESS_REFUSED,
                            "operation not permitted on the default exchange");
    if (channel_permit(ch, AUTH_OP_EXCHANGE_BIND, destination, source) != 0)
        return -1;
    if ((dst = channel_find_exchange(ch, destination)) == NULL ||
        (src = channel_find_exchange(ch, source)) == NULL ||
        channel_permit_topic(ch, src, AUTH_READ, a->routing_key) != 0)
        return -1;
    if (exchange_bind(src, dst, a->routing_key, a->arguments.raw, &code, err, sizeof err) == NULL)
        return channel_fail(ch, code, "%s", err);
    if (!a->nowait)
        conn_send_method(ch->conn, ch->id, WIRE_EXCHANGE_BIND_OK,
                         &(struct wire_exchange_bind_ok){0});
    return 0;
}

int channel_handle_exchange_unbind(struct channel *ch, const struct wire_method *m)
{
    const struct wire_exchange_unbind *a = &m->u.exchange_unbind;
    struct vhost *vh = ch->conn->vhost;
    struct exchange *src, *dst;
    uint8_t source_buf[NAME_BUF_SIZE], destination_buf[NAME_BUF_SIZE];
    struct wire_bytes source = channel_strip_cr_lf(a->source, source_buf);
    struct wire_bytes destination = channel_strip_cr_lf(a->destination, destination_buf);
    struct xbinding *xb;

    if (source.len == 0 || destination.len == 0)
        return channel_fail(ch, WIRE_ACCESS_REFUSED,
                            "operation not permitted on the default exchange");
    if (channel_permit(ch, AUTH_OP_EXCHANGE_UNBIND, destination, source) != 0)
        return -1;
    src = vhost_exchange_find(vh, source);
    if (src != NULL && channel_permit_topic(ch, src, AUTH_READ, a->routing_key) != 0)
        return -1;
    /* As queue.unbind: a missing binding, source or destination is not an error. */
    dst = vhost_exchange_find(vh, destination);
    xb = src != NULL && dst != NULL
             ? exchange_find_binding(src, dst, a->routing_key, a->arguments.raw)
             : NULL;
    if (xb != NULL)
        exchange_unbind(xb);
    if (!a->nowait)
        conn_send_method(ch->conn, ch->id, WIRE_EXCHANGE_UNBIND_OK,
                         &(struct wire_exchange_unbind_ok){0});
    return 0;
}
