/* Small helpers every broker module uses: allocation that cannot return NULL, owned byte
 * strings, container_of and the monotonic clock. */
#ifndef WARREN_SRC_BASE_UTIL_H
#define WARREN_SRC_BASE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "amqp/wire.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Memory stays bounded by limits checked before allocating, so running out of it is fatal:
 * these log and abort instead of returning NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* A NUL-terminated copy of b (names from the wire are shortstr, so never long). */
char *xstrndup_bytes(struct wire_bytes b);

/* An owned copy of b; free with bytes_free. The copy is NUL-terminated (not counted in len),
 * so names can be printed with %s. */
struct wire_bytes bytes_dup(struct wire_bytes b);
void bytes_free(struct wire_bytes *b);

/* Milliseconds, and microseconds, of the monotonic clock. */
uint64_t now_ms(void);
uint64_t now_us(void);
/* Milliseconds of the wall clock since the epoch: only for what must outlive the process
 * (stored expiry deadlines); durations use now_ms(). */
uint64_t now_wall_ms(void);
/* Seconds since the epoch (AMQP timestamps). */
uint64_t now_epoch_s(void);

/* Fills out[0..len) with random bytes from the kernel (falls back to a PRNG on failure). */
void random_bytes(void *out, size_t len);
/* prefix followed by 22 characters of URL-safe base64 of 16 random bytes, as RabbitMQ names
 * server-generated queues ("amq.gen-") and consumer tags ("amq.ctag-"). */
void random_name(char *out, size_t out_size, const char *prefix);

#endif
