/* Log-linear latency histogram; see perf_hist.h. */
#include "bench/perf_hist.h"

#include <math.h>
#include <string.h>

void perf_hist_reset(struct perf_hist *h)
{
    memset(h, 0, sizeof *h);
}

unsigned perf_hist_index(uint64_t ns)
{
    unsigned exp, shift;

    if (ns < PERF_HIST_SUB)
        return (unsigned)ns;
    exp = 63u - (unsigned)__builtin_clzll(ns); /* ns in [2^exp, 2^(exp+1)) */
    if (exp > PERF_HIST_MAX_EXP)
        return PERF_HIST_BUCKETS - 1;
    shift = exp - PERF_HIST_SUB_BITS;
    /* The top PERF_HIST_SUB_BITS + 1 bits, minus the leading one, pick the sub-bucket. */
    return PERF_HIST_SUB * (shift + 1) + (unsigned)((ns >> shift) - PERF_HIST_SUB);
}

uint64_t perf_hist_upper(unsigned index)
{
    unsigned shift, sub;

    if (index < PERF_HIST_SUB)
        return index;
    shift = index / PERF_HIST_SUB - 1;
    sub = index % PERF_HIST_SUB;
    return (((uint64_t)PERF_HIST_SUB + sub + 1) << shift) - 1;
}

void perf_hist_record(struct perf_hist *h, uint64_t ns)
{
    h->buckets[perf_hist_index(ns)]++;
    h->count++;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

void perf_hist_merge(struct perf_hist *into, const struct perf_hist *from)
{
    for (unsigned i = 0; i < PERF_HIST_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
    into->count += from->count;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
}

uint64_t perf_hist_quantile(const struct perf_hist *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->count == 0)
        return 0;
    /* The rank of the sample at quantile q, counting from 1 (q = 0.5 of 10 samples: the 5th). */
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    for (unsigned i = 0; i < PERF_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = perf_hist_upper(i);
            return v < h->max_ns ? v : h->max_ns;
        }
    }
    return h->max_ns;
}
