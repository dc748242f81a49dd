/* Inside the connection (src/broker/conn.h), for src/broker/conn*.c alone: the handshake's
 * methods (conn_handshake.c), and what they share with conn.c. */
#ifndef WARREN_SRC_BROKER_CONN_INTERNAL_H
#define WARREN_SRC_BROKER_CONN_INTERNAL_H

#include <stdint.h>

#include "amqp/method.h"

struct conn;

/* conn_fail() with a format: closes the connection with code and the text; returns -1. */
int conn_failf(struct conn *c, uint16_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The last word is said: the connection closes once its output is written. */
void conn_close_after_flush(struct conn *c);

/* conn_handshake.c: connection.start once the protocol header is read, then the methods of
 * the handshake as channel 0 receives them (0, or -1 once the connection is failing). */
void conn_send_start(struct conn *c);
int conn_handle_start_ok(struct conn *c, const struct wire_connection_start_ok *m);
int conn_handle_secure_ok(struct conn *c, const struct wire_connection_secure_ok *m);
int conn_handle_tune_ok(struct conn *c, const struct wire_connection_tune_ok *m);
int conn_handle_open(struct conn *c, const struct wire_connection_open *m);
int conn_handle_update_secret(struct conn *c, const struct wire_connection_update_secret *m);

#endif
