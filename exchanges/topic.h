/* What the topic exchange shows beyond struct exchange_type (tests, metrics). */
#ifndef WARREN_EXCHANGES_TOPIC_H
#define WARREN_EXCHANGES_TOPIC_H

#include <stddef.h>

/* Trie nodes below the root of a topic exchange's state: one per distinct non-empty prefix
 * of the bound patterns, so 0 once every binding is gone. */
size_t topic_node_count(const void *state);

#endif
