/* Inside the channel (src/broker/channel.h), for src/broker/channel*.c alone: the lookups
 * every method handler shares (in channel.c) and the handlers of the exchange and queue
 * classes and of exchange-to-exchange bindings (in channel_decl.c), which channel.c's
 * dispatch table names. */
#ifndef WARREN_SRC_BROKER_CHANNEL_INTERNAL_H
#define WARREN_SRC_BROKER_CHANNEL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "amqp/method.h"
#include "src/security/auth.h"

struct channel;
struct exchange;
struct queue;

/* Names in reply texts are shortstr: print them with this. */
#define NAME_FMT      "'%.*s'"
#define NAME_ARG(b)   (int)(b).len, (const char *)(b).ptr
#define VHOST_ARG(ch) NAME_ARG((ch)->conn->vhost->name)
#define NAME_BUF_SIZE 256 /* a short string, the longest name a method carries */

/* channel.c: each is described where it is defined. */
int channel_fail_locked(struct channel *ch, struct wire_bytes name);
int channel_expand_queue_name(struct channel *ch, struct wire_bytes *name);
struct queue *channel_find_queue(struct channel *ch, struct wire_bytes name);
struct exchange *channel_find_exchange(struct channel *ch, struct wire_bytes name);
struct wire_bytes channel_strip_cr_lf(struct wire_bytes name, uint8_t buf[NAME_BUF_SIZE]);
int channel_permit(struct channel *ch, enum auth_op op, struct wire_bytes primary,
                   struct wire_bytes secondary);
int channel_permit_topic(struct channel *ch, const struct exchange *x, unsigned access,
                         struct wire_bytes routing_key);
const char *channel_bool_text(bool b);

/* channel_decl.c: exchange.declare/delete/bind/unbind, queue.declare/bind/unbind/purge/
 * delete. Each returns 0, or -1 after channel_fail(). */
int channel_handle_exchange_declare(struct channel *ch, const struct wire_method *m);
int channel_handle_exchange_delete(struct channel *ch, const struct wire_method *m);
int channel_handle_exchange_bind(struct channel *ch, const struct wire_method *m);
int channel_handle_exchange_unbind(struct channel *ch, const struct wire_method *m);
int channel_handle_queue_declare(struct channel *ch, const struct wire_method *m);
int channel_handle_queue_bind(struct channel *ch, const struct wire_method *m);
int channel_handle_queue_unbind(struct channel *ch, const struct wire_method *m);
int channel_handle_queue_purge(struct channel *ch, const struct wire_method *m);
int channel_handle_queue_delete(struct channel *ch, const struct wire_method *m);

#endif
