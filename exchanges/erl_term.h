/* Field-table values as RabbitMQ sees them: once decoded, a value is an Erlang term, and
 * RabbitMQ compares and prints those terms, not wire bytes. Two places need to be exact
 * about it: the headers exchange, which matches values with Erlang's ==, and reply texts,
 * which print a value with io_lib's ~p (e.g. "Invalid x-match field type signedint (value
 * 1); expected longstr").
 *
 * How a value decodes (RabbitMQ 3.10): integers of every width become integers ('L' as a
 * signed long, 'T' unsigned), 'f' and 'd' become floats (a 32-bit float widened exactly),
 * 'S' and 'x' binaries, 't' true/false, 'D' the tuple {Scale, Value}, 'V' undefined, an
 * array the list [{Type, Value}], a table the list [{Name, Type, Value}] in wire order,
 * where Type is RabbitMQ's name for the letter (erl_term_type_name). */
#ifndef WARREN_EXCHANGES_ERL_TERM_H
#define WARREN_EXCHANGES_ERL_TERM_H

#include <stdbool.h>
#include <stddef.h>

#include "amqp/table.h"

/* RabbitMQ's name for a field type letter ("signedint" for 'I', "long" for both 'l' and
 * 'L', "binary" for 'x', ...); "unknown" for a letter outside table.h. */
const char *erl_term_type_name(uint8_t type);

/* Erlang's a == b on the decoded values: numbers compare by value whatever their width or
 * integer/float kind (so 'I' 1 == 'l' 1 == 'd' 1.0, exactly: 2^53 + 1 != 2.0^53); 'S' and
 * 'x' compare their bytes; a decimal equals only the same {Scale, Value}. Inside arrays and
 * tables the type names take part ([{signedint,1}] != [{long,1}]), and tables compare in
 * wire order. An empty array equals an empty table (both are []). */
bool erl_term_equal(const struct wire_field *a, const struct wire_field *b);

/* A bounded text buffer: appends past size are counted in len but not stored, and buf
 * stays NUL-terminated (when size > 0), like snprintf. */
struct erl_out {
    char *buf;
    size_t size;
    size_t len;
};

void erl_out_str(struct erl_out *o, const char *s);
/* Appends v as io_lib:format("~p") prints the decoded term, on one line: a printable
 * binary as <<"a\"b">>, another as <<1,2>>, a float in Erlang's shortest round-trip form
 * (0.1, 1.0e10, 1.0e-5), a decimal as {2,150}, void as undefined, an array as
 * [{signedint,1},{longstr,<<"a">>}]. RabbitMQ's pretty printer breaks a term that does not
 * fit in 80 columns over several lines; this one never does. */
void erl_out_term(struct erl_out *o, const struct wire_field *v);
/* Appends a binary as ~p prints it (<<"abc">>, <<1,2>>, <<>>). */
void erl_out_binary(struct erl_out *o, struct wire_bytes bin);
/* The same, for a binary that ~p starts printing at column col (0 = the first) of a text
 * of RabbitMQ's: as its pretty printer, a list of numbers that would reach column 80 goes
 * on over the next lines, each indented under the first number. */
void erl_out_binary_at(struct erl_out *o, struct wire_bytes bin, size_t col);
/* Appends a float as ~p prints it. */
void erl_out_float(struct erl_out *o, double x);

#endif
