/* topic: binding keys are patterns of words separated by '.', where "*" matches exactly one
 * word and "#" matches zero or more. As in RabbitMQ, words may be empty ("a..b" has three,
 * "a." two, "." two) and the empty key has none at all, so "*" does not match "" but "#"
 * does; "*" matches the empty word in "a." ("a.*"). A word that merely contains '*' or '#'
 * ("a*") is an ordinary word.
 *
 * The bindings live in a trie of words: one node per distinct prefix of the bound patterns,
 * with a map from each literal word to its child, and separate "*" and "#" children. Routing
 * walks the trie along the key's words; it never looks at a binding that cannot match. */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "exchanges/binding_set.h"
#include "exchanges/bytes_map.h"
#include "exchanges/registry.h"
#include "exchanges/topic.h"
#include "exchanges/xalloc.h"

struct topic_node {
    struct bytes_map words;      /* literal word -> struct topic_node * */
    struct topic_node *star;     /* the child reached by "*" */
    struct topic_node *hash;     /* the child reached by "#" */
    struct binding_set bindings; /* the bindings whose pattern ends here */
    /* Memo of a "#" node for one route: in route number route_gen, this node has already
     * been queued at every position from route_low to the end of the key. */
    uint64_t route_gen;
    size_t route_low;
};

/* A state of the walk: the key's first pos words have been matched and lead to node. */
struct topic_frame {
    struct topic_node *node;
    size_t pos;
};

struct topic {
    struct topic_node root;
    uint64_t route_gen;
    /* Scratch space reused by every call, so routing allocates only while warming up. */
    struct wire_bytes *words;
    size_t words_cap;
    struct topic_frame *stack;
    size_t stack_cap;
    struct topic_node **path;
    size_t path_cap;
};

static const struct wire_bytes word_star = WIRE_BYTES_C("*");
static const struct wire_bytes word_hash = WIRE_BYTES_C("#");

/* Splits key at every '.' into t->words and returns how many there are: n dots make n + 1
 * words, except that the empty key has none (RabbitMQ: "" is not matched by "*"). */
static size_t split_words(struct topic *t, struct wire_bytes key)
{
    size_t n = 0, start = 0;

    if (key.len == 0)
        return 0;
    /* At most one word per byte, plus one. */
    if (t->words_cap < key.len + 1) {
        t->words_cap = key.len + 1;
        t->words = exch_xreallocarray(t->words, t->words_cap, sizeof *t->words);
    }
    for (size_t i = 0; i <= key.len; i++) {
        if (i == key.len || key.ptr[i] == '.') {
            t->words[n++] = (struct wire_bytes){.ptr = key.ptr + start, .len = i - start};
            start = i + 1;
        }
    }
    return n;
}

static void *reserve(void *array, size_t *cap, size_t need, size_t elem_size)
{
    if (*cap >= need)
        return array;
    *cap = need > 2 * *cap ? need : 2 * *cap;
    return exch_xreallocarray(array, *cap, elem_size);
}

/* The child of node for one pattern word, or NULL if there is none. */
static struct topic_node *child_get(const struct topic_node *node, struct wire_bytes word)
{
    if (wire_bytes_eq(word, word_star))
        return node->star;
    if (wire_bytes_eq(word, word_hash))
        return node->hash;
    return bytes_map_get(&node->words, word);
}

static struct topic_node *child_get_or_add(struct topic_node *node, struct wire_bytes word)
{
    struct topic_node *child = child_get(node, word);

    if (child != NULL)
        return child;
    child = exch_xcalloc(1, sizeof *child);
    if (wire_bytes_eq(word, word_star))
        node->star = child;
    else if (wire_bytes_eq(word, word_hash))
        node->hash = child;
    else
        bytes_map_put(&node->words, word, child);
    return child;
}

static void child_remove(struct topic_node *node, struct wire_bytes word)
{
    if (wire_bytes_eq(word, word_star))
        node->star = NULL;
    else if (wire_bytes_eq(word, word_hash))
        node->hash = NULL;
    else
        bytes_map_remove(&node->words, word);
}

static bool node_is_unused(const struct topic_node *node)
{
    return binding_set_is_empty(&node->bindings) && bytes_map_is_empty(&node->words) &&
           node->star == NULL && node->hash == NULL;
}

/* Frees a node's subtree (the depth is at most the number of words in a pattern). */
static void node_free_children(struct topic_node *node);

static void node_free(void *p)
{
    struct topic_node *node = p;

    if (node == NULL)
        return;
    node_free_children(node);
    free(node);
}

static void node_free_children(struct topic_node *node)
{
    bytes_map_free(&node->words, node_free);
    node_free(node->star);
    node_free(node->hash);
    binding_set_free(&node->bindings);
}

static void *topic_create(void)
{
    return exch_xcalloc(1, sizeof(struct topic));
}

static void topic_destroy(void *state)
{
    struct topic *t = state;

    if (t == NULL)
        return;
    node_free_children(&t->root);
    free(t->words);
    free(t->stack);
    free(t->path);
    free(t);
}

static void topic_bind(void *state, struct binding *b)
{
    struct topic *t = state;
    size_t n = split_words(t, b->routing_key);
    struct topic_node *node = &t->root;

    for (size_t i = 0; i < n; i++)
        node = child_get_or_add(node, t->words[i]);
    binding_set_add(&node->bindings, b);
}

static void topic_unbind(void *state, struct binding *b)
{
    struct topic *t = state;
    size_t n = split_words(t, b->routing_key);

    /* path[i] is the node after the first i words; path[n] holds the binding. */
    t->path = reserve(t->path, &t->path_cap, n + 1, sizeof *t->path);
    t->path[0] = &t->root;
    for (size_t i = 0; i < n; i++) {
        t->path[i + 1] = child_get(t->path[i], t->words[i]);
        assert(t->path[i + 1] != NULL);
    }
    binding_set_remove(&t->path[n]->bindings, b);

    /* Prune the nodes that no longer lead to any binding, deepest first, so the trie never
     * holds more than the bound patterns need. The root stays. */
    for (size_t i = n; i > 0 && node_is_unused(t->path[i]); i--) {
        child_remove(t->path[i - 1], t->words[i - 1]);
        free(t->path[i]);
    }
}

static void push(struct topic *t, size_t *len, struct topic_node *node, size_t pos)
{
    t->stack = reserve(t->stack, &t->stack_cap, *len + 1, sizeof *t->stack);
    t->stack[(*len)++] = (struct topic_frame){.node = node, .pos = pos};
}

/* A "#" node entered after pos words may swallow any number of the following ones, so it is
 * a state at every position from pos to the end. Patterns such as "#.#.#.#.a" reach the same
 * "#" node at the same position along many paths; without the memo the walk would be
 * exponential in the number of "#". With it, each (node, position) is visited at most once:
 * a later entry at or after route_low is already covered, an earlier one adds only the
 * positions below route_low. */
static void enter_hash(struct topic *t, size_t *len, struct topic_node *h, size_t pos, size_t n)
{
    size_t end = n + 1;

    if (h->route_gen == t->route_gen) {
        if (pos >= h->route_low)
            return;
        end = h->route_low;
    }
    h->route_gen = t->route_gen;
    h->route_low = pos;
    for (size_t j = pos; j < end; j++)
        push(t, len, h, j);
}

static void topic_route(void *state, const struct route_msg *m, struct route_out *out)
{
    struct topic *t = state;
    size_t n = split_words(t, m->routing_key);
    size_t len = 0;

    t->route_gen++;
    push(t, &len, &t->root, 0);
    while (len > 0) {
        struct topic_frame f = t->stack[--len];
        struct topic_node *node = f.node;

        if (f.pos == n) {
            binding_set_route(&node->bindings, out);
        } else {
            struct topic_node *child = bytes_map_get(&node->words, t->words[f.pos]);

            if (child != NULL)
                push(t, &len, child, f.pos + 1);
            if (node->star != NULL)
                push(t, &len, node->star, f.pos + 1);
        }
        if (node->hash != NULL)
            enter_hash(t, &len, node->hash, f.pos, n);
    }
}

static size_t subtree_count(const struct topic_node *node);

static void add_subtree_count(void *child, void *total)
{
    *(size_t *)total += 1 + subtree_count(child);
}

static size_t subtree_count(const struct topic_node *node)
{
    size_t n = 0;

    bytes_map_each(&node->words, add_subtree_count, &n);
    if (node->star != NULL)
        n += 1 + subtree_count(node->star);
    if (node->hash != NULL)
        n += 1 + subtree_count(node->hash);
    return n;
}

size_t topic_node_count(const void *state)
{
    return subtree_count(&((const struct topic *)state)->root);
}

const struct exchange_type exchange_type_topic = {
    .name = "topic",
    .create = topic_create,
    .destroy = topic_destroy,
    .validate = NULL,
    .bind = topic_bind,
    .unbind = topic_unbind,
    .route = topic_route,
};
