#include "exchanges/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void out_of_memory(size_t count, size_t size)
{
    fprintf(stderr, "warren: out of memory allocating %zu x %zu bytes for exchange routing\n",
            count, size);
    abort();
}

void *exch_xmalloc(size_t size)
{
    void *p = malloc(size != 0 ? size : 1);

    if (p == NULL)
        out_of_memory(1, size);
    return p;
}

void *exch_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count != 0 ? count : 1, size != 0 ? size : 1);

    if (p == NULL)
        out_of_memory(count, size);
    return p;
}

void *exch_xreallocarray(void *p, size_t count, size_t size)
{
    void *q;

    if (size != 0 && count > SIZE_MAX / size)
        out_of_memory(count, size);
    q = realloc(p, count * size != 0 ? count * size : 1);
    if (q == NULL)
        out_of_memory(count, size);
    return q;
}
