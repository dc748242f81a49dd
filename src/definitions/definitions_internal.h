/* Inside src/definitions/ (the public part is definitions.h): the helpers its files share.
 * definitions.c holds struct definitions, its builders and these helpers; json_table.c converts
 * JSON to AMQP field tables and back; import.c checks a document and applies it; export.c
 * writes one. */
#ifndef WARREN_SRC_DEFINITIONS_DEFINITIONS_INTERNAL_H
#define WARREN_SRC_DEFINITIONS_DEFINITIONS_INTERNAL_H

#include <stddef.h>

#include "amqp/table.h"

/* Formats a reason into err[0..err_size); does nothing when err is NULL or err_size is 0. */
void definitions_set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Frees a table's raw bytes (malloc'd, as the builders and definitions_json_to_table make
 * them) and leaves it empty. */
void definitions_table_free(struct wire_table *t);

#endif
