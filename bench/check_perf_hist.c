/* The latency figures warren-perf prints come from perf_hist: these tests pin down that a
 * percentile is the value of the right sample, to within the histogram's stated 1/128. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "bench/perf_hist.h"

static struct perf_hist h;

START_TEST(values_below_128_ns_are_exact)
{
    perf_hist_reset(&h);
    for (uint64_t v = 0; v < 128; v++)
        perf_hist_record(&h, v);
    /* 128 samples 0..127: the k-th smallest (k from 1) is k - 1. */
    ck_assert_uint_eq(perf_hist_quantile(&h, 1.0 / 128), 0);
    ck_assert_uint_eq(perf_hist_quantile(&h, 0.5), 63);
    ck_assert_uint_eq(perf_hist_quantile(&h, 100.0 / 128), 99);
    ck_assert_uint_eq(perf_hist_quantile(&h, 1.0), 127);
}
END_TEST

START_TEST(every_value_lands_in_a_bucket_whose_upper_edge_is_within_1_in_128)
{
    /* Every power of two and its neighbours, and values in between, up to 2^40. */
    for (uint64_t base = 1; base <= (1ull << 40); base <<= 1) {
        uint64_t probes[] = {base - 1, base, base + 1, base + base / 3, base * 2 - 1};
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
            uint64_t v = probes[i];
            unsigned idx = perf_hist_index(v);
            uint64_t up = perf_hist_upper(idx);

            ck_assert_uint_lt(idx, PERF_HIST_BUCKETS);
            ck_assert_uint_ge(up, v);
            ck_assert_uint_le(up - v, v / 128);
            /* The bucket below ends before v: v is in this bucket and no other. */
            if (idx > 0)
                ck_assert_uint_lt(perf_hist_upper(idx - 1), v);
        }
    }
}
END_TEST

START_TEST(bucket_order_follows_value_order)
{
    unsigned last = 0;

    for (uint64_t v = 0; v < (1ull << 41); v += v / 300 + 1) {
        unsigned idx = perf_hist_index(v);
        ck_assert_uint_ge(idx, last);
        ck_assert_uint_le(idx, last + 1); /* no bucket is skipped: none is unreachable */
        last = idx;
    }
    ck_assert_uint_eq(last, PERF_HIST_BUCKETS - 1);
}
END_TEST

START_TEST(values_beyond_the_range_go_to_the_last_bucket_and_max_stays_exact)
{
    perf_hist_reset(&h);
    perf_hist_record(&h, UINT64_MAX);
    ck_assert_uint_eq(perf_hist_index(UINT64_MAX), PERF_HIST_BUCKETS - 1);
    ck_assert_uint_eq(h.max_ns, UINT64_MAX);
    ck_assert_uint_eq(perf_hist_quantile(&h, 0.5), perf_hist_upper(PERF_HIST_BUCKETS - 1));
}
END_TEST

START_TEST(percentiles_of_a_uniform_spread_are_within_one_percent)
{
    perf_hist_reset(&h);
    /* 1 .. 1,000,000 ns, each once, shuffled order does not matter for a histogram. */
    for (uint64_t v = 1; v <= 1000000; v++)
        perf_hist_record(&h, v);
    ck_assert_uint_eq(h.count, 1000000);
    ck_assert_uint_eq(h.max_ns, 1000000);
    struct {
        double q;
        uint64_t exact;
    } cases[] = {{0.5, 500000}, {0.99, 990000}, {0.999, 999000}, {1.0, 1000000}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t got = perf_hist_quantile(&h, cases[i].q);
        ck_assert_uint_ge(got, cases[i].exact);
        ck_assert_uint_le(got, cases[i].exact + cases[i].exact / 100);
    }
}
END_TEST

START_TEST(a_single_slow_sample_shows_in_p999_only_when_it_is_one_in_a_thousand)
{
    perf_hist_reset(&h);
    for (int i = 0; i < 999; i++)
        perf_hist_record(&h, 1000);
    perf_hist_record(&h, 5000000);
    /* 1000 samples: p99.9 is the 999th, still fast; the max is the slow one. */
    ck_assert_uint_le(perf_hist_quantile(&h, 0.999), 1000 + 1000 / 128);
    ck_assert_uint_eq(perf_hist_quantile(&h, 1.0), 5000000);
    perf_hist_record(&h, 5000000);
    /* 1001 samples: the 1000th (ceil of 0.999 * 1001) is slow. */
    ck_assert_uint_ge(perf_hist_quantile(&h, 0.999), 5000000);
}
END_TEST

START_TEST(merge_adds_counts_and_keeps_the_larger_max)
{
    static struct perf_hist a, b;

    perf_hist_reset(&a);
    perf_hist_reset(&b);
    perf_hist_record(&a, 10);
    perf_hist_record(&a, 20);
    perf_hist_record(&b, 3000);
    perf_hist_merge(&a, &b);
    ck_assert_uint_eq(a.count, 3);
    ck_assert_uint_eq(a.max_ns, 3000);
    ck_assert_uint_eq(perf_hist_quantile(&a, 0.5), 20);
    ck_assert_uint_eq(perf_hist_quantile(&a, 1.0), 3000);
}
END_TEST

START_TEST(an_empty_histogram_reports_zero)
{
    perf_hist_reset(&h);
    ck_assert_uint_eq(perf_hist_quantile(&h, 0.5), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("perf_hist");
    TCase *tc = tcase_create("hist");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, values_below_128_ns_are_exact);
    tcase_add_test(tc, every_value_lands_in_a_bucket_whose_upper_edge_is_within_1_in_128);
    tcase_add_test(tc, bucket_order_follows_value_order);
    tcase_add_test(tc, values_beyond_the_range_go_to_the_last_bucket_and_max_stays_exact);
    tcase_add_test(tc, percentiles_of_a_uniform_spread_are_within_one_percent);
    tcase_add_test(tc, a_single_slow_sample_shows_in_p999_only_when_it_is_one_in_a_thousand);
    tcase_add_test(tc, merge_adds_counts_and_keeps_the_larger_max);
    tcase_add_test(tc, an_empty_histogram_reports_zero);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
