#!/usr/bin/python3
"""Scenario 4: flow control with a token bucket.

A gateway must not pass more than TOKEN_RATE requests per second to a fragile backend, with
bursts of at most CAPACITY, however fast requests arrive. The bucket is a queue: its length is
capped (x-max-length = CAPACITY), and a token generator publishes one token every
1/TOKEN_RATE seconds. When the bucket is full a new token is discarded: with x-overflow
drop-head the oldest token is dropped to make room; with reject-publish the new one is refused
(the generator, using publisher confirms, sees a basic.nack). The gateway takes a token with
basic.get before admitting a request and rejects the request (HTTP 429) when the queue is
empty. Several gateways can share one bucket: the broker hands each token to one of them.

The generator first runs alone for a moment, filling the bucket; then requests arrive at
REQUEST_RATE (200/s) for DURATION seconds (3). Admitted requests = the bucket's initial
content + TOKEN_RATE x DURATION, whatever REQUEST_RATE is.

Run: /usr/bin/python3 examples/04_token_bucket.py   (TOKEN_OVERFLOW=reject-publish for the
other overflow mode; TOKEN_RATE, CAPACITY, REQUEST_RATE, DURATION to vary it)
"""

import os
import threading
import time

import pika
import pika.exceptions

from common import check, connect, log, result

QUEUE = "ex04.tokens"
TOKEN_RATE = float(os.environ.get("TOKEN_RATE", "20"))
CAPACITY = int(os.environ.get("CAPACITY", "5"))
REQUEST_RATE = float(os.environ.get("REQUEST_RATE", "200"))
DURATION = float(os.environ.get("DURATION", "3"))
OVERFLOW = os.environ.get("TOKEN_OVERFLOW", "drop-head")

tokens_made = 0
tokens_refused = 0  # reject-publish: the broker said no to a token (the bucket was full)


def token_generator(stop):
    """One token every 1/TOKEN_RATE seconds, on a fixed schedule (a late tick does not push
    the later ones back, so the average rate holds)."""
    global tokens_made, tokens_refused
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()  # so that a token refused by reject-publish comes back as a nack
    next_at = time.monotonic()
    while not stop.is_set():
        try:
            ch.basic_publish("", QUEUE, b"token")
        except pika.exceptions.NackError:
            tokens_refused += 1
        tokens_made += 1
        next_at += 1.0 / TOKEN_RATE
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
    conn.close()


def main():
    conn = connect()
    gateway = conn.channel()
    gateway.queue_delete(QUEUE)
    gateway.queue_declare(QUEUE, arguments={"x-max-length": CAPACITY, "x-overflow": OVERFLOW})

    stop = threading.Event()
    generator = threading.Thread(target=token_generator, args=(stop,))
    generator.start()
    time.sleep(2.0 * CAPACITY / TOKEN_RATE)  # long enough to overfill the bucket
    in_bucket = gateway.queue_declare(QUEUE, passive=True).method.message_count
    log(
        "bucket: %d tokens after %d were made (x-max-length %d, x-overflow %s)"
        % (in_bucket, tokens_made, CAPACITY, OVERFLOW)
    )

    admitted = rejected = 0
    per_second = []  # [requests, admitted] per second of the run
    start = time.monotonic()
    n = 0
    while True:
        # Requests arrive on a fixed schedule, REQUEST_RATE per second.
        at = start + n / REQUEST_RATE
        if at - start >= DURATION:
            break
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        second = int(at - start)
        while len(per_second) <= second:
            per_second.append([0, 0])
        per_second[second][0] += 1
        # The gateway's whole rule: no token, no entry. auto_ack: a token taken is spent.
        method, _props, _body = gateway.basic_get(QUEUE, auto_ack=True)
        if method is not None:
            admitted += 1
            per_second[second][1] += 1
        else:
            rejected += 1  # answer 429 Too Many Requests
        n += 1
    elapsed = time.monotonic() - start
    stop.set()
    generator.join()

    for i, (req, adm) in enumerate(per_second):
        log("second %d: %3d requests, %3d admitted" % (i + 1, req, adm))
    # The first second includes the bucket's initial content (the allowed burst).
    admitted_rate = (admitted - in_bucket) / elapsed
    log(
        "admitted %d of %d requests: %.1f/s beyond the initial burst of %d, token rate %.0f/s"
        % (admitted, n, admitted_rate, in_bucket, TOKEN_RATE)
    )
    left = gateway.queue_declare(QUEUE, passive=True).method.message_count
    gateway.queue_delete(QUEUE)
    conn.close()

    result(
        overflow=OVERFLOW,
        token_rate=round(TOKEN_RATE),
        capacity=CAPACITY,
        initial_bucket=in_bucket,
        request_rate=round(REQUEST_RATE),
        duration_s=round(elapsed, 2),
        requests=n,
        admitted=admitted,
        rejected=rejected,
        admitted_rate=round(admitted_rate, 1),
        tokens_made=tokens_made,
        tokens_refused=tokens_refused,
        tokens_left=left,
        tokens_dropped=tokens_made - tokens_refused - admitted - left,  # by drop-head
    )
    check(in_bucket == CAPACITY, "the bucket holds at most CAPACITY tokens")
    check(admitted + rejected == n, "every request is admitted or rejected")
    check(admitted + left <= tokens_made - tokens_refused, "no request admitted without a token")
    # The rate holds within a generous margin: the machine may be busy, so the generator can
    # fall behind (fewer tokens), never ahead.
    check(admitted_rate <= TOKEN_RATE * 1.1 + 1, "the admitted rate must not exceed the token rate")
    check(admitted_rate >= TOKEN_RATE * 0.5, "the admitted rate must follow the token rate")


if __name__ == "__main__":
    main()
