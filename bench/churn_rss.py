#!/usr/bin/python3
"""Memory after connection churn: how much of what closed connections used warrend gives
back to the system.

Starts warrend (the binary named by WARREND, or the first argument) on a free port with a
temporary data directory, then runs CONNECTIONS connections, PARALLEL at a time: each
declares an exclusive queue, publishes MESSAGES messages of BODY_KB KiB to it and closes
(the queue and its messages go with it). Prints the broker's resident memory before, at
the peak and after the churn (after SETTLE_S seconds of quiet), one line for scripts:

  churn_rss mode=exclusive connections=2000 parallel=50 messages=3 body_kb=300 before_kib=... peak_kib=...
    after_kib=... seconds=...

Environment (defaults): CONNECTIONS (2000), PARALLEL (50), MESSAGES (3), BODY_KB (300),
SETTLE_S (3), MODE (exclusive; unroutable publishes to a key no queue has). Usage: bench/churn_rss.py [WARREND]   (from a build directory: src/warrend)
"""

import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "interop"))
import rawclient  # noqa: E402

CONNECTIONS = int(os.environ.get("CONNECTIONS", "2000"))
PARALLEL = int(os.environ.get("PARALLEL", "50"))
MESSAGES = int(os.environ.get("MESSAGES", "3"))
BODY_KB = int(os.environ.get("BODY_KB", "300"))
SETTLE_S = float(os.environ.get("SETTLE_S", "3"))
# exclusive: to a queue of the connection's own, deleted with it; unroutable: to a routing
# key no queue has (dropped at once).
MODE = os.environ.get("MODE", "exclusive")


def start_broker(warrend, tmp):
    conf = os.path.join(tmp, "warren.conf")
    with open(conf, "w") as f:
        f.write("management.tcp.port = 0\nprometheus.tcp.port = 0\nlog.level = info\n")
    log = open(os.path.join(tmp, "warrend.log"), "w+")
    proc = subprocess.Popen([warrend, "-c", conf, "--port", "0", "--data-dir",
                             os.path.join(tmp, "data")], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        time.sleep(0.1)
        with open(log.name) as f:
            m = re.search(r"ready: listening on \S*:(\d+)", f.read())
        if m:
            return proc, int(m.group(1))
    proc.kill()
    sys.exit("warrend did not start; see " + log.name)


def churn(port, count, body, peak, pid):
    for _ in range(count):
        c = rawclient.Client("127.0.0.1", port)
        c.channel_open(1)
        name = "churn.%d.%d" % (threading.get_ident(), time.monotonic_ns())
        c.queue_declare(1, name, exclusive=True)
        for _ in range(MESSAGES):
            c.publish(1, name if MODE == "exclusive" else name + ".nowhere", body)
        c.queue_declare(1, name, exclusive=True)  # a round trip: the publishes were handled
        peak[0] = max(peak[0], rawclient.process_rss_kib(pid))
        c.close()


def main():
    warrend = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("WARREND", "src/warrend")
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_broker(warrend, tmp)
        try:
            before = rawclient.process_rss_kib(proc.pid)
            body = os.urandom(BODY_KB * 1024)
            peak = [before]
            start = time.monotonic()
            per = CONNECTIONS // PARALLEL
            threads = [threading.Thread(target=churn, args=(port, per, body, peak, proc.pid))
                       for _ in range(PARALLEL)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            seconds = time.monotonic() - start
            time.sleep(SETTLE_S)
            after = rawclient.process_rss_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
    print("churn_rss mode=%s connections=%d parallel=%d messages=%d body_kb=%d before_kib=%d "
          "peak_kib=%d after_kib=%d seconds=%.1f" % (MODE, per * PARALLEL, PARALLEL, MESSAGES,
                                                      BODY_KB, before, peak[0], after, seconds))


if __name__ == "__main__":
    main()
