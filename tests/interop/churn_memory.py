#!/usr/bin/python3
"""Memory after connection churn, as an operator sees it: the broker's resident memory
(what the memory alarm watches) comes back down once the connections are gone.

600 connections, 200 at a time, each declare an exclusive queue, publish three messages of
300 KiB to it and close: the queue, its messages and the connection's buffers are freed.
That must raise the broker's resident memory by at least 16 MiB at some point (or the test
proved nothing); within 8 s of the end, no more than a quarter of that rise may remain
(the broker gives free memory back at most every 5 s). Before, most of it stayed: 24 to
73 MB of a 9 MB broker.

Environment: AMQP_HOST, AMQP_PORT, WARREND_PID (the wrapper sets them). Prints one line per
check; exits 1 if any failed.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawclient  # noqa: E402

HOST, PORT = rawclient.broker_address()
PID = int(os.environ["WARREND_PID"])
PARALLEL = 200
PER_THREAD = 3
MESSAGES = 3
BODY = os.urandom(300 * 1024)

failures = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        failures.append(what)


def churn(peak, errors):
    try:
        for i in range(PER_THREAD):
            c = rawclient.Client(HOST, PORT)
            c.channel_open(1)
            name = "churn.%d.%d" % (threading.get_ident(), i)
            c.queue_declare(1, name, exclusive=True)
            for _ in range(MESSAGES):
                c.publish(1, name, BODY)
            c.queue_declare(1, name, exclusive=True)  # a round trip: the publishes are in
            peak[0] = max(peak[0], rawclient.process_rss_kib(PID))
            c.close()
    except (rawclient.Closed, OSError) as e:
        errors.append(str(e))


def main():
    rawclient.Client(HOST, PORT).close()  # the first connection's one-off allocations
    before = rawclient.process_rss_kib(PID)
    peak, errors = [before], []
    threads = [threading.Thread(target=churn, args=(peak, errors)) for _ in range(PARALLEL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, "%d connections churned without error %s"
          % (PARALLEL * PER_THREAD, errors[:3]))
    rise = peak[0] - before
    check(rise >= 16 * 1024, "the churn raised resident memory from %d to %d KiB"
          % (before, peak[0]))
    deadline = time.monotonic() + 8.0
    while True:
        after = rawclient.process_rss_kib(PID)
        if after - before <= rise / 4 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    check(after - before <= rise / 4, "after the churn resident memory is back to %d KiB "
          "(%d KiB more than before, at most %d allowed)" % (after, after - before, rise / 4))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
