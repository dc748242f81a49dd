/* The exchange types Warren knows, by name. */
#ifndef WARREN_EXCHANGES_REGISTRY_H
#define WARREN_EXCHANGES_REGISTRY_H

#include "amqp/wire.h"
#include "exchanges/exchange_type.h"

/* The type called name (case-sensitive, as in RabbitMQ), or NULL if there is none.
 *
 * For a type it does not know, RabbitMQ 3.10 closes the connection (not the channel) with
 * 503 COMMAND_INVALID "unknown exchange type 'qwerty'". The text says "invalid exchange type
 * 'foo'" instead when the name happens to be an atom the Erlang VM already knows ("foo",
 * "bar", the empty name ""): an accident of its implementation that no clone can follow
 * exactly. Answer "unknown ...", and "invalid exchange type ''" for the empty name. */
const struct exchange_type *exchange_type_find(struct wire_bytes name);

/* The built-in types, each defined in its own file. */
extern const struct exchange_type exchange_type_direct;  /* direct.c */
extern const struct exchange_type exchange_type_fanout;  /* fanout.c */
extern const struct exchange_type exchange_type_topic;   /* topic.c */
extern const struct exchange_type exchange_type_headers; /* headers.c */

#endif
