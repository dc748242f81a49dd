/* Micro-benchmark of the codec on the broker's two hot paths:
 *
 *   decode_publish: split and decode what a publisher sends, basic.publish method frame +
 *     content header (content-type, delivery-mode) + 16-octet body frame, from one large
 *     buffer, as the connection does after a big read;
 *   encode_deliver: write what a consumer receives, basic.deliver + content header + body,
 *     into a buffer, as the channel does before a writev.
 *
 * Prints one machine-readable line per case:
 *   codec decode_publish frames_per_s=... msgs_per_s=... ns_per_msg=...
 * Usage: codec_bench [SECONDS_PER_CASE] (default 1). Single-threaded; each case runs whole
 * passes until the time is spent. Time is the process's CPU time, not wall time, so that
 * figures taken on a busy machine (CI, a shared host) count only the codec's own work. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "amqp/frame.h"

#define MSGS_PER_PASS 4096
#define BODY_BYTES    16
#define FRAME_MAX     131072u

/* CPU time of this process, in seconds. */
static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const uint8_t body[BODY_BYTES] = "0123456789abcdef";

static const struct wire_content_header header = {
    .class_id = WIRE_CLASS_BASIC,
    .body_size = BODY_BYTES,
    .props = {.flags = WIRE_PROP_CONTENT_TYPE | WIRE_PROP_DELIVERY_MODE,
              .content_type = WIRE_BYTES_C("text/plain"),
              .delivery_mode = 2},
};

/* MSGS_PER_PASS publishes as a client would send them. */
static size_t build_publishes(uint8_t *buf, size_t cap)
{
    struct wire_writer w = wire_writer_init(buf, cap);
    struct wire_basic_publish p = {.exchange = WIRE_BYTES_C("amq.direct"),
                                   .routing_key = WIRE_BYTES_C("bench.queue")};

    for (int i = 0; i < MSGS_PER_PASS; i++) {
        wire_frame_put_method(&w, 1, WIRE_BASIC_PUBLISH, &p);
        wire_frame_put_header(&w, 1, &header);
        wire_frame_put_body(&w, 1, (struct wire_bytes){body, sizeof body}, FRAME_MAX);
    }
    if (wire_writer_overflowed(&w)) {
        fprintf(stderr, "codec_bench: publish buffer too small\n");
        exit(1);
    }
    return wire_writer_used(&w);
}

/* One pass: split every frame and decode methods and headers; returns the frames seen. */
static size_t decode_pass(const uint8_t *buf, size_t len, uint64_t *check)
{
    size_t off = 0, frames = 0, consumed;
    struct wire_frame f;
    struct wire_method m;
    struct wire_content_header h;

    while (off < len) {
        if (wire_frame_parse(buf + off, len - off, FRAME_MAX, &f, &consumed) != WIRE_OK)
            abort();
        switch (f.type) {
        case WIRE_FRAME_METHOD:
            if (wire_method_decode(f.payload, &m) != WIRE_OK || m.id != WIRE_BASIC_PUBLISH)
                abort();
            *check += m.u.basic_publish.routing_key.len;
            break;
        case WIRE_FRAME_HEADER:
            if (wire_content_header_decode(f.payload, &h) != WIRE_OK)
                abort();
            *check += h.body_size;
            break;
        default:
            *check += f.payload.ptr[0];
            break;
        }
        off += consumed;
        frames++;
    }
    return frames;
}

/* One pass: MSGS_PER_PASS deliveries written into buf; returns the frames written. */
static size_t encode_pass(uint8_t *buf, size_t cap, uint64_t tag, uint64_t *check)
{
    struct wire_writer w = wire_writer_init(buf, cap);
    struct wire_basic_deliver d = {.consumer_tag = WIRE_BYTES_C("amq.ctag-0123456789abcdef"),
                                   .exchange = WIRE_BYTES_C("amq.direct"),
                                   .routing_key = WIRE_BYTES_C("bench.queue")};

    for (int i = 0; i < MSGS_PER_PASS; i++) {
        d.delivery_tag = tag + (uint64_t)i;
        wire_frame_put_method(&w, 1, WIRE_BASIC_DELIVER, &d);
        wire_frame_put_header(&w, 1, &header);
        wire_frame_put_body(&w, 1, (struct wire_bytes){body, sizeof body}, FRAME_MAX);
    }
    if (wire_writer_overflowed(&w))
        abort();
    *check += buf[wire_writer_used(&w) / 2];
    return 3 * (size_t)MSGS_PER_PASS;
}

static void report(const char *name, size_t frames, size_t msgs, double secs)
{
    printf("codec %s frames_per_s=%.0f msgs_per_s=%.0f ns_per_msg=%.1f\n", name,
           (double)frames / secs, (double)msgs / secs, secs * 1e9 / (double)msgs);
}

int main(int argc, char **argv)
{
    double budget = argc > 1 ? atof(argv[1]) : 1.0;
    size_t cap = (size_t)MSGS_PER_PASS * 256;
    uint8_t *buf = malloc(cap);
    size_t len, frames = 0, msgs = 0;
    uint64_t check = 0;
    double start, secs;

    if (buf == NULL || budget <= 0) {
        fprintf(stderr, "usage: codec_bench [SECONDS_PER_CASE]\n");
        return 1;
    }

    len = build_publishes(buf, cap);
    decode_pass(buf, len, &check); /* warm the caches */
    start = now_s();
    do {
        frames += decode_pass(buf, len, &check);
        msgs += MSGS_PER_PASS;
    } while ((secs = now_s() - start) < budget);
    report("decode_publish", frames, msgs, secs);

    frames = msgs = 0;
    start = now_s();
    do {
        frames += encode_pass(buf, cap, msgs, &check);
        msgs += MSGS_PER_PASS;
    } while ((secs = now_s() - start) < budget);
    report("encode_deliver", frames, msgs, secs);

    /* The checksum keeps the compiler from dropping work whose result is unused. */
    fprintf(stderr, "codec_bench: checksum %llu\n", (unsigned long long)check);
    free(buf);
    return 0;
}
