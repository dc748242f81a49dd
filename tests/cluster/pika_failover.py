"""pika through a cluster failover, for tests/cluster/clients_failover.py: the same job as
JavaFailover.java. pika has no automatic recovery, so each of its two connections (a publisher
in confirm mode, a consumer with manual acks, both on one durable queue) runs the reconnect
loop pika's documentation recommends: catch the connection errors, connect again through the
list of nodes, declare again, go on.

  pika_failover.py QUEUE OUTDIR FIRST ADDRESSES

FIRST (host:port) is the only address of the first connections, a follower's; ADDRESSES
(host:port,...) are all three nodes, tried in turn on every reconnect. Files written in OUTDIR,
one line each, as the Java client's (pika.confirmed, pika.unknown, pika.nacked, pika.received,
pika.events, whose ROLE is "publisher" or "consumer"). Stops when its standard input closes:
no more publishing, consumes until the queue has been idle for 2 s, exits 0.
"""

import sys
import threading
import time

import pika

IDLE_TO_STOP_S = 2.0
STOP_DEADLINE_S = 20.0
PAUSE_S = 0.005  # between synchronous confirms: about 150 messages a second


def now_ms():
    return int(time.time() * 1000)


class Log:
    """One log file, written line by line and flushed at once."""

    def __init__(self, path):
        self.f = open(path, "w")
        self.lock = threading.Lock()

    def line(self, s):
        with self.lock:
            self.f.write(s + "\n")
            self.f.flush()


def params(host_port):
    host, port = host_port.rsplit(":", 1)
    return pika.ConnectionParameters(host, int(port), connection_attempts=1, socket_timeout=2,
                                     blocked_connection_timeout=10, heartbeat=10)


class Client:
    def __init__(self, queue, outdir, first, addresses):
        self.queue = queue
        self.first = [params(first)]
        self.all = [params(a) for a in addresses]
        self.logs = {k: Log("%s/pika.%s" % (outdir, k))
                     for k in ("confirmed", "unknown", "nacked", "received", "events")}
        self.stopping = threading.Event()
        self.last_delivery = time.monotonic()
        self.connects = 0

    def event(self, what):
        self.logs["events"].line("%d %s" % (now_ms(), what))

    def connect(self, role, attempt):
        """The follower on the first attempt; afterwards every node, starting with a
        different one each time (BlockingConnection tries a list in order)."""
        if attempt == 0:
            plist = self.first
        else:
            k = attempt % len(self.all)
            plist = self.all[k:] + self.all[:k]
        c = pika.BlockingConnection(plist)
        self.event("connected %s %s:%d" % (role, c._impl.params.host, c._impl.params.port))
        ch = c.channel()
        ch.queue_declare(self.queue, durable=True)
        return c, ch

    def publisher(self):
        next_id = 0
        attempt = 0
        while not self.stopping.is_set():
            try:
                c, ch = self.connect("publisher", attempt)
                ch.confirm_delivery()
                while not self.stopping.is_set():
                    mid = next_id
                    next_id += 1
                    try:
                        ch.basic_publish("", self.queue, str(mid).encode(),
                                         pika.BasicProperties(delivery_mode=2))
                    except pika.exceptions.NackError:
                        self.logs["nacked"].line("%d %d" % (mid, now_ms()))
                        continue
                    except Exception:
                        self.logs["unknown"].line("%d %d" % (mid, now_ms()))
                        raise
                    self.logs["confirmed"].line("%d %d" % (mid, now_ms()))
                    time.sleep(PAUSE_S)
                c.close()
            except Exception as e:
                self.event("lost publisher %s" % (repr(e) or type(e).__name__))
                attempt += 1
                time.sleep(0.1)

    def consumer(self):
        attempt = 0
        while True:
            try:
                c, ch = self.connect("consumer", attempt)
                ch.basic_qos(prefetch_count=50)
                for method, _props, body in ch.consume(self.queue, inactivity_timeout=0.2):
                    if method is None:
                        if self.stopping.is_set() and self.idle_long_enough():
                            c.close()
                            return
                        continue
                    self.last_delivery = time.monotonic()
                    self.logs["received"].line("%s %d %d" % (body.decode(),
                                                             1 if method.redelivered else 0,
                                                             now_ms()))
                    ch.basic_ack(method.delivery_tag)
            except Exception as e:
                self.event("lost consumer %s" % (repr(e) or type(e).__name__))
                if self.stopping.is_set() and self.idle_long_enough():
                    return
                attempt += 1
                time.sleep(0.1)

    def idle_long_enough(self):
        t = time.monotonic()
        return (t - self.last_delivery >= IDLE_TO_STOP_S
                or t - self.stopped_at >= STOP_DEADLINE_S)

    def run(self):
        pub = threading.Thread(target=self.publisher, daemon=True)
        con = threading.Thread(target=self.consumer, daemon=True)
        pub.start()
        con.start()
        sys.stdin.read()  # until the driver closes it
        self.stopped_at = time.monotonic()
        self.stopping.set()
        pub.join(15)
        con.join(STOP_DEADLINE_S + 5)
        self.event("stopping client")


def main():
    if len(sys.argv) != 5:
        sys.stderr.write("usage: pika_failover.py QUEUE OUTDIR FIRST HOST:PORT,...\n")
        return 2
    Client(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
