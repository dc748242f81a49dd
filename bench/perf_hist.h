/* A latency histogram in the manner of HdrHistogram: log-linear buckets, fixed size, so that
 * recording a sample is a few instructions and never allocates.
 *
 * Values are nanoseconds. Below 2^PERF_HIST_SUB_BITS every value has its own bucket; above,
 * each power of two is cut into 2^PERF_HIST_SUB_BITS equal buckets, so a reported percentile
 * is within 1/128 (0.8 %) of the true value. Values past 2^PERF_HIST_MAX_EXP ns (about 18
 * minutes) land in the last bucket; the exact maximum is kept aside. */
#ifndef WARREN_BENCH_PERF_HIST_H
#define WARREN_BENCH_PERF_HIST_H

#include <stdint.h>

#define PERF_HIST_SUB_BITS 7
#define PERF_HIST_SUB      (1u << PERF_HIST_SUB_BITS)
#define PERF_HIST_MAX_EXP  40
#define PERF_HIST_BUCKETS  (PERF_HIST_SUB * (PERF_HIST_MAX_EXP - PERF_HIST_SUB_BITS + 2))

struct perf_hist {
    uint64_t count;
    uint64_t max_ns;
    uint64_t buckets[PERF_HIST_BUCKETS];
};

void perf_hist_reset(struct perf_hist *h);
void perf_hist_record(struct perf_hist *h, uint64_t ns);
/* Adds every sample of from into into. */
void perf_hist_merge(struct perf_hist *into, const struct perf_hist *from);
/* The smallest value v such that at least a fraction q (0 < q <= 1) of the samples are <= v,
 * as the upper edge of its bucket, capped at the exact maximum; 0 when there is no sample. */
uint64_t perf_hist_quantile(const struct perf_hist *h, double q);

/* Bucket arithmetic, exposed for the test of the tool's own numbers. */
unsigned perf_hist_index(uint64_t ns);
uint64_t perf_hist_upper(unsigned index); /* largest value that lands in bucket index */

#endif
