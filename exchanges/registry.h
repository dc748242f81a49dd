/* The exchange types Warren knows, by name. */
#ifndef WARREN_EXCHANGES_REGISTRY_H
#define WARREN_EXCHANGES_REGISTRY_H

#include "amqp/wire.h"
#include "exchanges/exchange_type.h"

/* The type called name, or NULL if there is none (exchange.declare answers 503
 * COMMAND_INVALID "invalid exchange type 'x'" as RabbitMQ does). */
const struct exchange_type *exchange_type_find(struct wire_bytes name);

#endif
