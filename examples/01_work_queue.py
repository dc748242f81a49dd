#!/usr/bin/python3
"""Scenario 1: an asynchronous work queue (point to point).

A web request must not wait while an email is sent: it puts a "send this email" job on a
queue and returns at once. Workers compete for the jobs: the broker hands each job to one
worker, the worker acknowledges it when done, so every job is handled exactly once even with
several workers. Adding workers raises throughput, without touching the web side.

The run has two rounds of JOBS jobs each: first one worker, then WORKERS workers (3). Each
job takes WORK_MS (20 ms) of "sending". Run: /usr/bin/python3 examples/01_work_queue.py
"""

import os
import threading
import time
import uuid

import pika

from common import check, connect, log, result

QUEUE = "ex01.email-jobs"
JOBS = int(os.environ.get("JOBS", "90"))
WORKERS = int(os.environ.get("WORKERS", "3"))
WORK_MS = int(os.environ.get("WORK_MS", "20"))

handled = {}  # job id -> names of the workers that sent it; one name per job is the promise
handled_lock = threading.Lock()


def web_request(channel, job_id, address):
    """What a request handler does: describe the job, hand it over, return. The job is
    persistent and the queue durable, so a broker restart does not lose it; the publish does
    not wait for any worker."""
    channel.basic_publish(
        exchange="",  # the default exchange routes by queue name
        routing_key=QUEUE,
        body=address.encode(),
        properties=pika.BasicProperties(message_id=job_id, delivery_mode=2),
    )


def worker(name, stop):
    conn = connect()
    ch = conn.channel()
    # prefetch 1: a worker holds one job at a time, so a free worker gets the next job
    # instead of it waiting behind a busy worker's backlog (fair dispatch).
    ch.basic_qos(prefetch_count=1)

    def on_job(ch, method, props, body):
        time.sleep(WORK_MS / 1000.0)  # "send the email"
        with handled_lock:
            handled.setdefault(props.message_id, []).append(name)
        # The ack after the work: if the worker died before it, the job would go to another.
        ch.basic_ack(method.delivery_tag)

    ch.basic_consume(QUEUE, on_job)
    while not stop.is_set():
        conn.process_data_events(time_limit=0.05)
    conn.close()


def round_with(workers, web_channel, label):
    """Publishes JOBS jobs, lets `workers` workers handle them, returns (jobs/s, seconds the
    slowest web request spent handing its job over)."""
    stop = threading.Event()
    threads = [
        threading.Thread(target=worker, args=("%s.worker-%d" % (label, i + 1), stop))
        for i in range(workers)
    ]
    with handled_lock:
        before = len(handled)
    for t in threads:
        t.start()
    start = time.monotonic()
    slowest_request = 0.0
    for i in range(JOBS):
        t0 = time.monotonic()
        web_request(web_channel, str(uuid.uuid4()), "user%d@example.com" % i)
        slowest_request = max(slowest_request, time.monotonic() - t0)
    while True:
        with handled_lock:
            done = len(handled) - before
        if done >= JOBS or time.monotonic() - start > 60:
            break
        time.sleep(0.01)
    elapsed = time.monotonic() - start
    stop.set()
    for t in threads:
        t.join()
    return done / elapsed, slowest_request


def main():
    web = connect()
    ch = web.channel()
    ch.queue_delete(QUEUE)
    ch.queue_declare(QUEUE, durable=True)

    rate_1, slowest_1 = round_with(1, ch, "round1")
    log("1 worker:  %d jobs at %.0f jobs/s" % (JOBS, rate_1))
    rate_n, slowest_n = round_with(WORKERS, ch, "round2")
    log("%d workers: %d jobs at %.0f jobs/s" % (WORKERS, JOBS, rate_n))

    per_worker = {}
    for names in handled.values():
        for n in names:
            per_worker[n] = per_worker.get(n, 0) + 1
    log("jobs per worker: %s" % ", ".join("%s %d" % kv for kv in sorted(per_worker.items())))
    slowest_ms = 1000 * max(slowest_1, slowest_n)
    log("slowest web request spent %.1f ms handing its job over" % slowest_ms)

    left = ch.queue_declare(QUEUE, passive=True).method.message_count
    ch.queue_delete(QUEUE)
    web.close()

    once = sum(1 for names in handled.values() if len(names) == 1)
    twice = sum(1 for names in handled.values() if len(names) > 1)
    workers_used = len([n for n in per_worker if n.startswith("round2.")])
    result(
        jobs=2 * JOBS,
        handled_once=once,
        duplicates=twice,
        left_in_queue=left,
        workers=WORKERS,
        workers_used=workers_used,
        rate_1_worker=round(rate_1),
        rate_n_workers=round(rate_n),
        speedup=round(rate_n / rate_1, 2),
    )
    check(once == 2 * JOBS and twice == 0, "every job must be handled exactly once")
    check(left == 0, "no job may stay in the queue")
    check(workers_used == WORKERS, "every worker of round 2 must have taken jobs")
    check(rate_n > rate_1 * 1.5, "more workers must raise throughput")


if __name__ == "__main__":
    main()
