/* A published message: one refcounted block shared by every queue it was routed to.
 * Fan-out to N queues is N references to one body, never N copies. */
#ifndef WARREN_SRC_BROKER_MESSAGE_H
#define WARREN_SRC_BROKER_MESSAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "amqp/props.h"
#include "src/store/store.h"

struct message {
    uint32_t refs;
    struct wire_bytes exchange;    /* as published */
    struct wire_bytes routing_key; /* as published */
    /* The content-header payload as the publisher sent it: deliveries resend these bytes
     * unchanged, so properties and headers reach consumers exactly as published. */
    struct wire_bytes header;
    struct wire_props props; /* decoded from header, borrowing it */
    uint8_t *body;
    uint64_t body_size;
    uint64_t body_received; /* while the body frames arrive */
    /* A persistent message written to the store: where, for every durable queue holding it
     * (src/broker/persist.h). */
    struct store_loc loc;
    bool stored;
};

/* A message with room for body_size bytes of body, to be filled by message_append_body.
 * header is the content-header payload, which has decoded before (a channel, the store, a
 * spill file): it is copied into the message and decoded there. The caller holds the one
 * reference. */
struct message *message_new(struct wire_bytes exchange, struct wire_bytes routing_key,
                            struct wire_bytes header, uint64_t body_size);

/* The same, for a caller that decoded header already (into props, borrowing header): the
 * properties are moved onto the copy instead of being decoded a second time. */
struct message *message_new_decoded(struct wire_bytes exchange, struct wire_bytes routing_key,
                                    struct wire_bytes header, const struct wire_props *props,
                                    uint64_t body_size);

/* Appends a body frame; false if it would run past body_size. */
bool message_append_body(struct message *m, struct wire_bytes chunk);

static inline bool message_complete(const struct message *m)
{
    return m->body_received == m->body_size;
}

static inline struct message *message_ref(struct message *m)
{
    m->refs++;
    return m;
}

void message_unref(struct message *m);

/* A copy of m with other properties (props may borrow m's header): the header is encoded
 * anew and the body copied. Used where RabbitMQ changes a message on its way (BCC removed,
 * direct reply-to address filled in). */
struct message *message_rewrite(const struct message *m, const struct wire_props *props);
/* The same, also giving the message another exchange and routing key (dead-lettering). */
struct message *message_rewrite_to(const struct message *m, struct wire_bytes exchange,
                                   struct wire_bytes routing_key, const struct wire_props *props);

/* The expiration property as milliseconds; false if absent. The channel refused messages
 * whose expiration does not parse, so a present one does. */
bool message_expiration_ms(const struct message *m, int64_t *ms);
/* Parses an expiration property as RabbitMQ does (Erlang's string:to_integer: an optional
 * sign, then digits, nothing after; 0 .. 4294967295 ms). Returns 0, or -1 with RabbitMQ's
 * text in why ("invalid expiration 'x': " and no_integer, {leftover_string,".5"},
 * {value_negative,-1} or {value_too_large,N}); why holds 3 * 255 + 64 bytes at most. */
int expiration_parse(struct wire_bytes s, int64_t *ms, char *why, size_t why_size);
/* True if s parses as an expiration property (see expiration_parse). */
bool expiration_is_valid(struct wire_bytes s);

/* A copy of table t without the entries called name, encoded into out (at least t.raw.len
 * bytes); returns the new table, which borrows out. */
struct wire_table table_without(struct wire_table t, const char *name, uint8_t *out);

/* Bytes the message accounts for (its body), for byte limits and statistics. */
static inline uint64_t message_bytes(const struct message *m)
{
    return m->body_size;
}

#endif
