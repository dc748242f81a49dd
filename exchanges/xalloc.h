/* Allocation for the exchange types. Routing state grows with the bindings the broker asks
 * for, and the broker bounds those by its own limits; running out of memory here is not
 * something a binding could recover from, so these print the size asked for and abort, like
 * the broker's xmalloc(). exchanges/ depends on nothing in src/, hence its own copy. */
#ifndef WARREN_EXCHANGES_XALLOC_H
#define WARREN_EXCHANGES_XALLOC_H

#include <stddef.h>

void *exch_xmalloc(size_t size);
void *exch_xcalloc(size_t count, size_t size);
/* Resizes p to count * size bytes; the product is checked for overflow. */
void *exch_xreallocarray(void *p, size_t count, size_t size);

#endif
