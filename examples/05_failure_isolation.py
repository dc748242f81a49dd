#!/usr/bin/python3
"""Scenario 5: failure isolation.

Three workers share a queue of orders. One of them crashes in the middle of its work: its
process is killed (SIGKILL, no goodbye) while it holds orders it has not acknowledged. The
broker notices the dropped connection and puts those orders back in the queue, marked
`redelivered`, and the surviving workers handle them. The producer, publishing all along with
publisher confirms, never notices: none of its publishes fails. Nothing is lost, and an order
finished (acknowledged) before the crash is not handled again.

The crashing worker is a second process (this script with --crashing-worker), so that its
death is a real one: the kernel closes its socket, as after a crash or a power cut.

Run: /usr/bin/python3 examples/05_failure_isolation.py
"""

import os
import signal
import subprocess
import sys
import threading
import time

import pika

from common import check, connect, log, result

QUEUE = "ex05.orders"
ORDERS = int(os.environ.get("ORDERS", "200"))
PUBLISH_RATE = float(os.environ.get("PUBLISH_RATE", "200"))
SURVIVORS = 2
WORK_MS = 5
DONE_BEFORE_CRASH = 3  # orders the crashing worker finishes and acknowledges
HELD_AT_CRASH = 5  # orders it holds, unacknowledged, when it dies (its prefetch)


def crashing_worker():
    """Runs in its own process. Finishes DONE_BEFORE_CRASH orders, then takes HELD_AT_CRASH
    more and dies before acknowledging them. Tells the parent what it did on stdout."""
    conn = connect()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=HELD_AT_CRASH)
    print("READY", flush=True)
    done, held = [], []
    for method, props, _body in ch.consume(QUEUE):
        if len(done) < DONE_BEFORE_CRASH:
            ch.basic_ack(method.delivery_tag)
            done.append(props.message_id)
            if len(done) == DONE_BEFORE_CRASH:
                # A synchronous round trip: once it returns the broker has the acks, so
                # these orders really are finished before the crash.
                ch.basic_qos(prefetch_count=HELD_AT_CRASH)
                for order in done:
                    print("DONE " + order, flush=True)
            continue
        held.append(props.message_id)
        print("HELD " + props.message_id, flush=True)
        if len(held) == HELD_AT_CRASH:
            print("CRASHING", flush=True)
            time.sleep(3600)  # "working" on them until the parent kills the process


handled = {}  # order id -> list of (who, redelivered)
handled_lock = threading.Lock()


def survivor(name, stop):
    conn = connect()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=5)

    def on_order(ch, method, props, body):
        time.sleep(WORK_MS / 1000.0)
        with handled_lock:
            handled.setdefault(props.message_id, []).append((name, method.redelivered))
        ch.basic_ack(method.delivery_tag)

    ch.basic_consume(QUEUE, on_order)
    while not stop.is_set():
        conn.process_data_events(time_limit=0.05)
    conn.close()


publish_errors = []
confirmed = 0


def producer():
    """Publishes ORDERS persistent orders at PUBLISH_RATE, each confirmed by the broker."""
    global confirmed
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    start = time.monotonic()
    for i in range(ORDERS):
        delay = start + i / PUBLISH_RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            ch.basic_publish(
                "",
                QUEUE,
                b"order %d" % i,
                pika.BasicProperties(message_id="order-%d" % i, delivery_mode=2),
            )
            confirmed += 1  # basic_publish returns once the broker confirmed it
        except Exception as e:  # the producer would notice here; it must not happen
            publish_errors.append(repr(e))
    conn.close()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--crashing-worker":
        crashing_worker()
        return

    setup = connect()
    ch = setup.channel()
    ch.queue_delete(QUEUE)
    ch.queue_declare(QUEUE, durable=True)

    crasher = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--crashing-worker"],
        stdout=subprocess.PIPE,
        text=True,
    )
    check(crasher.stdout.readline().strip() == "READY", "the crashing worker must start")
    stop = threading.Event()
    survivors = [
        threading.Thread(target=survivor, args=("survivor-%d" % (i + 1), stop))
        for i in range(SURVIVORS)
    ]
    for t in survivors:
        t.start()
    prod = threading.Thread(target=producer)
    prod.start()

    done_by_crasher, held_by_crasher = [], []
    for line in crasher.stdout:
        word, _, order = line.strip().partition(" ")
        if word == "DONE":
            done_by_crasher.append(order)
        elif word == "HELD":
            held_by_crasher.append(order)
        elif word == "CRASHING":
            break
    os.kill(crasher.pid, signal.SIGKILL)
    crasher.wait()
    log(
        "worker-3 (pid %d) finished %d orders, then was killed holding %d unacknowledged: %s"
        % (crasher.pid, len(done_by_crasher), len(held_by_crasher), " ".join(held_by_crasher))
    )

    prod.join()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with handled_lock:
            if len(handled) + len(done_by_crasher) >= ORDERS:
                break
        time.sleep(0.05)
    stop.set()
    for t in survivors:
        t.join()
    left = ch.queue_declare(QUEUE, passive=True).method.message_count
    ch.queue_delete(QUEUE)
    setup.close()

    redelivered = [o for o in held_by_crasher if any(r for _, r in handled.get(o, []))]
    redelivered_all = [o for o, hs in handled.items() if any(r for _, r in hs)]
    log("the survivors got them back, redelivered: %s" % " ".join(redelivered))
    times = {o: len(hs) for o, hs in handled.items()}  # how often each order was handled
    for o in done_by_crasher:
        times[o] = times.get(o, 0) + 1
    once = sum(1 for n in times.values() if n == 1)
    twice = sum(1 for n in times.values() if n > 1)
    per = {"worker-3": len(done_by_crasher)}
    for hs in handled.values():
        for who, _ in hs:
            per[who] = per.get(who, 0) + 1
    log("orders finished per worker: %s" % ", ".join("%s %d" % kv for kv in sorted(per.items())))
    log(
        "producer: %d published, %d confirmed, %d errors"
        % (ORDERS, confirmed, len(publish_errors))
    )

    result(
        orders=ORDERS,
        handled_once=once,
        handled_twice=twice,
        lost=ORDERS - len(times),
        crashed_done=len(done_by_crasher),
        crashed_held=len(held_by_crasher),
        held_came_back_redelivered=len(redelivered),
        redelivered=len(redelivered_all),
        confirmed=confirmed,
        publish_errors=len(publish_errors),
        left_in_queue=left,
    )
    check(not publish_errors, "the producer must not notice: %s" % publish_errors[:3])
    check(once == ORDERS and twice == 0, "every order handled exactly once")
    check(
        sorted(redelivered_all) == sorted(held_by_crasher),
        "exactly the held orders come back, marked redelivered",
    )


if __name__ == "__main__":
    main()
