/* A connection's output buffer with message bodies left in place (src/broker/outbuf.c): whatever
 * mix of encoded bytes and body spans was added, the iovecs give exactly that stream, in
 * order, from any point a partial write stopped at; a span keeps its message alive until it
 * is written, and moving the buffer's bytes never moves a span out of its place. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "src/broker/message.h"
#include "src/broker/outbuf.h"

/* A message with this body (and no properties). */
static struct message *msg(const char *body)
{
    /* basic class, weight 0, body size (filled below), no property flags */
    uint8_t header[14] = {0, 60, 0, 0};
    size_t len = strlen(body);
    struct message *m;

    for (int i = 0; i < 8; i++)
        header[4 + i] = (uint8_t)(len >> (56 - 8 * i));
    m = message_new(wire_cstr(""), wire_cstr("rk"), (struct wire_bytes){header, sizeof header},
                    len);
    ck_assert(message_append_body(m, wire_cstr(body)));
    return m;
}

/* The unwritten output, as the iovecs give it (at most max of them at a time). */
static size_t gather(const struct outbuf *o, int max, char *out, size_t cap)
{
    struct iovec iov[64];
    int n = outbuf_iov(o, iov, max);
    size_t len = 0;

    ck_assert(n <= max);
    for (int i = 0; i < n; i++) {
        ck_assert_uint_gt(iov[i].iov_len, 0);
        ck_assert_uint_le(len + iov[i].iov_len, cap);
        memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    return len;
}

/* "AB" [xyz] "CD" [uv] "E": two spans of two messages between encoded bytes. */
static void fill(struct outbuf *o, struct message *m1, struct message *m2)
{
    outbuf_put(o, "AB", 2);
    outbuf_add_span(o, m1, m1->body, 3);
    outbuf_put(o, "CD", 2);
    outbuf_add_span(o, m2, m2->body, 2);
    outbuf_put(o, "E", 1);
}

START_TEST(bytes_and_spans_come_out_in_the_order_they_were_added)
{
    struct message *m1 = msg("xyz"), *m2 = msg("uv");
    struct outbuf o = {0};
    char got[64];
    struct iovec iov[8];

    fill(&o, m1, m2);
    ck_assert_uint_eq(outbuf_pending(&o), 10);
    ck_assert_int_eq(outbuf_iov(&o, iov, 8), 5);
    ck_assert_uint_eq(gather(&o, 64, got, sizeof got), 10);
    ck_assert(memcmp(got, "ABxyzCDuvE", 10) == 0);
    /* The spans point into the messages: nothing was copied. */
    ck_assert_ptr_eq(iov[1].iov_base, m1->body);
    ck_assert_ptr_eq(iov[3].iov_base, m2->body);
    outbuf_free(&o);
    message_unref(m1);
    message_unref(m2);
}
END_TEST

START_TEST(every_partial_write_leaves_exactly_the_rest)
{
    const char *stream = "ABxyzCDuvE";

    /* Writes of every size from 1 to 4, so that every stop falls on every boundary. */
    for (size_t step = 1; step <= 4; step++) {
        struct message *m1 = msg("xyz"), *m2 = msg("uv");
        struct outbuf o = {0};
        size_t done = 0;

        fill(&o, m1, m2);
        while (done < 10) {
            char got[64];
            size_t n = 10 - done < step ? 10 - done : step;

            ck_assert_uint_eq(outbuf_pending(&o), 10 - done);
            ck_assert_uint_eq(gather(&o, 64, got, sizeof got), 10 - done);
            ck_assert(memcmp(got, stream + done, 10 - done) == 0);
            outbuf_consumed(&o, n);
            done += n;
        }
        ck_assert_uint_eq(outbuf_pending(&o), 0);
        ck_assert_int_eq(outbuf_iov(&o, (struct iovec[1]){{0}}, 1), 0);
        /* Written spans gave their references back. */
        ck_assert_uint_eq(m1->refs, 1);
        ck_assert_uint_eq(m2->refs, 1);
        outbuf_free(&o);
        message_unref(m1);
        message_unref(m2);
    }
}
END_TEST

START_TEST(few_iovecs_at_a_time_still_give_the_whole_stream)
{
    struct message *m1 = msg("xyz"), *m2 = msg("uv");
    struct outbuf o = {0};
    char all[64];
    size_t len = 0;

    fill(&o, m1, m2);
    while (outbuf_pending(&o) > 0) {
        size_t n = gather(&o, 2, all + len, sizeof all - len);
        ck_assert_uint_gt(n, 0);
        outbuf_consumed(&o, n);
        len += n;
    }
    ck_assert_uint_eq(len, 10);
    ck_assert(memcmp(all, "ABxyzCDuvE", 10) == 0);
    outbuf_free(&o);
    message_unref(m1);
    message_unref(m2);
}
END_TEST

START_TEST(a_span_holds_its_message_until_written)
{
    struct message *m = msg("body");
    struct outbuf o = {0};
    char got[16];

    outbuf_add_span(&o, m, m->body, 4);
    outbuf_add_span(&o, m, m->body, 4); /* the same message to two consumers */
    ck_assert_uint_eq(m->refs, 3);
    message_unref(m); /* the queues let go: the output still has it */
    ck_assert_uint_eq(gather(&o, 8, got, sizeof got), 8);
    ck_assert(memcmp(got, "bodybody", 8) == 0);
    outbuf_consumed(&o, 6);
    ck_assert_uint_eq(m->refs, 1);
    ck_assert_uint_eq(gather(&o, 8, got, sizeof got), 2);
    ck_assert(memcmp(got, "dy", 2) == 0);
    outbuf_free(&o); /* drops the last reference (ASan reports a leak otherwise) */
}
END_TEST

START_TEST(moving_the_bytes_keeps_spans_in_place)
{
    struct message *m1 = msg("xyz"), *m2 = msg("uv");
    struct outbuf o = {0};
    char got[70000];
    size_t n;

    fill(&o, m1, m2);
    outbuf_consumed(&o, 2); /* "AB" written: the buffer has sent bytes at its front */
    /* Room for far more than the buffer has: its bytes move to the front (and it grows). */
    outbuf_reserve(&o, 65536);
    ck_assert_uint_eq(o.bytes.sent, 0);
    outbuf_put(&o, "F", 1);
    n = gather(&o, 64, got, sizeof got);
    ck_assert_uint_eq(n, 9);
    ck_assert(memcmp(got, "xyzCDuvEF", 9) == 0);
    /* A span at the very front, after every byte before it was written. */
    outbuf_consumed(&o, 1);
    outbuf_reserve(&o, 1 << 20);
    n = gather(&o, 64, got, sizeof got);
    ck_assert(n == 8 && memcmp(got, "yzCDuvEF", 8) == 0);
    outbuf_free(&o);
    message_unref(m1);
    message_unref(m2);
}
END_TEST

START_TEST(empty_span_adds_nothing)
{
    struct message *m = msg("x");
    struct outbuf o = {0};

    outbuf_add_span(&o, m, m->body, 0);
    ck_assert_uint_eq(outbuf_pending(&o), 0);
    ck_assert_uint_eq(m->refs, 1);
    outbuf_free(&o);
    message_unref(m);
}
END_TEST

START_TEST(many_spans_grow_the_ring_in_order)
{
    struct message *m = msg("0123456789");
    struct outbuf o = {0};
    char want[4000], got[4000];
    size_t len = 0;

    /* Wrap the ring: consume some, add more, many times. */
    for (int round = 0; round < 100; round++) {
        outbuf_put(&o, "-", 1);
        outbuf_add_span(&o, m, m->body + round % 10, 10 - round % 10);
        memcpy(want + len, "-", 1);
        memcpy(want + len + 1, "0123456789" + round % 10, 10 - round % 10);
        len += 11 - round % 10;
        if (round % 3 == 2) {
            size_t n = gather(&o, 64, got, sizeof got);
            ck_assert_uint_eq(n, len);
            ck_assert(memcmp(got, want, n) == 0);
            outbuf_consumed(&o, n / 2);
            memmove(want, want + n / 2, len - n / 2);
            len -= n / 2;
        }
    }
    /* The rest, a few iovecs at a time, is exactly what is still wanted. */
    ck_assert_uint_eq(outbuf_pending(&o), len);
    for (size_t done = 0; done < len;) {
        size_t n = gather(&o, 3, got, sizeof got);
        ck_assert_uint_gt(n, 0);
        ck_assert(memcmp(got, want + done, n) == 0);
        outbuf_consumed(&o, n);
        done += n;
    }
    ck_assert_uint_eq(outbuf_pending(&o), 0);
    outbuf_free(&o);
    ck_assert_uint_eq(m->refs, 1);
    message_unref(m);
}
END_TEST

static Suite *outbuf_suite(void)
{
    Suite *s = suite_create("outbuf");
    TCase *tc = tcase_create("outbuf");

    tcase_add_test(tc, bytes_and_spans_come_out_in_the_order_they_were_added);
    tcase_add_test(tc, every_partial_write_leaves_exactly_the_rest);
    tcase_add_test(tc, few_iovecs_at_a_time_still_give_the_whole_stream);
    tcase_add_test(tc, a_span_holds_its_message_until_written);
    tcase_add_test(tc, moving_the_bytes_keeps_spans_in_place);
    tcase_add_test(tc, empty_span_adds_nothing);
    tcase_add_test(tc, many_spans_grow_the_ring_in_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(outbuf_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
