#!/usr/bin/python3
"""The management API does large work in slices (src/mgmt/mgmt_slice.h): while it lists
thousands of queues or imports thousands of definitions, AMQP clients keep their answers
within a few milliseconds, the answers are whole, and objects deleted while a list is being
written are left out of it, without harm.

An AMQP client pings the broker (rtt_probe.py: queue.declare passive, over and over, from a
process of its own) while the API works; the longest round trip must stay under
MAX_RTT_MS. That bound is generous (the broker aims at a few milliseconds); a machine shared
with other work stops any process now and then, so a timing check passes if one of three
attempts stays under it: a broker that stalls on the work stalls every time.

Environment: AMQP_HOST, AMQP_PORT and MGMT_URL (mgmt_lib.sh starts a warrend, and sets
WARREN=1); WARREND for the checks that start and stop brokers of their own (shutdown,
restart). Prints one line per check; exits 1 at the first failure.
"""

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rtt_probe  # noqa: E402

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
MGMT = urllib.parse.urlsplit(os.environ.get("MGMT_URL", "http://127.0.0.1:15672"))
AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()
QUEUES = 5000
MAX_RTT_MS = 100.0
ATTEMPTS = 3
PREFIX = "slices.%d" % os.getpid()
CHECKS = []


class CheckFailed(Exception):
    pass


def check(fn):
    CHECKS.append(fn)
    return fn


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def expect_eq(got, want, what):
    if got != want:
        raise CheckFailed("%s: got %r, expected %r" % (what, got, want))


def call(method, path, body=None, url=MGMT, timeout=120):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    headers = {"Authorization": AUTH}
    if body is not None:
        body = body if isinstance(body, (str, bytes)) else json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def get_json(path, url=MGMT):
    status, data = call("GET", path, url=url)
    expect_eq(status, 200, "GET %s (%r)" % (path, data[:200]))
    return json.loads(data)


def queue_docs(names, durable):
    return {"queues": [{"name": n, "vhost": "/", "durable": durable, "auto_delete": False,
                        "arguments": {}} for n in names]}


def import_definitions(doc, url=MGMT):
    status, data = call("POST", "/api/definitions", doc, url=url)
    expect_eq(status, 204, "POST /api/definitions (%r)" % data[:300])


def within_bound(what, attempt_fn):
    """attempt_fn(attempt) runs the work with a probe and returns its figures; passes when
    one attempt keeps the longest round trip under MAX_RTT_MS."""
    seen = []
    for attempt in range(ATTEMPTS):
        figures = attempt_fn(attempt)
        seen.append(figures["max_ms"])
        if figures["max_ms"] < MAX_RTT_MS:
            print("  %s: %d pings, p50 %.2f ms, p99 %.2f ms, max %.2f ms" % (
                what, figures["count"], figures["p50_ms"], figures["p99_ms"], figures["max_ms"]))
            return
    raise CheckFailed("%s: the longest AMQP round trip was %s ms in %d attempts (bound %d ms)" %
                      (what, seen, ATTEMPTS, MAX_RTT_MS))


def names_in(listing, prefix):
    return [o["name"] for o in listing if o["name"].startswith(prefix)]


# ---- A list read a little at a time --------------------------------------------------------


class SlowGet:
    """GET over a socket with a small receive buffer, read only when asked: the broker can
    write little of the answer ahead of the reader."""

    def __init__(self, path, url=MGMT):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(60)
        self.sock.connect((url.hostname, url.port))
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n" %
                           (path, AUTH)).encode())
        self.raw = bytearray()

    def read(self, at_least):
        while len(self.raw) < at_least:
            data = self.sock.recv(4096)
            if not data:
                break
            self.raw += data

    def body(self):
        """Reads to the end; the body (its chunks joined, if it came in chunks)."""
        # A window this small would now only slow the rest down (TCP sends it a little per
        # timer tick).
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        while b"\r\n\r\n" not in self.raw:
            self.read(len(self.raw) + 1)
        head, rest = self.raw.split(b"\r\n\r\n", 1)
        expect(head.startswith(b"HTTP/1.1 200"), "status line %r" % head[:40])
        if b"transfer-encoding: chunked" not in head.lower():
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            self.read(len(head) + 4 + length)
            self.sock.close()
            return bytes(self.raw[len(head) + 4:])
        while not self.raw.endswith(b"\r\n0\r\n\r\n"):
            data = self.sock.recv(65536)
            expect(data, "the connection closed before the end of the answer")
            self.raw += data
        self.sock.close()
        rest = bytes(self.raw).split(b"\r\n\r\n", 1)[1]
        body = b""
        while True:
            size_line, rest = rest.split(b"\r\n", 1)
            size = int(size_line, 16)
            if size == 0:
                return body
            body += rest[:size]
            rest = rest[size + 2:]


class Amqp(rtt_probe.Client):
    """Queues deleted in a burst (no-wait), then a round trip to know they are gone."""

    def delete_queues(self, names):
        frames = b"".join(rtt_probe._method(1, 50, 40, b"\0\0" + rtt_probe._shortstr(n) +
                                            bytes([4])) for n in names)
        self.sock.sendall(frames)
        self.sock.sendall(self.declare(PREFIX + ".sync", passive=False))
        self.expect(50, 11)


# ---- Brokers of the checks' own ------------------------------------------------------------


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class OwnBroker:
    """A warrend in a directory of its own, for the checks that stop or restart it."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="warren-slices-")
        self.proc = None

    def start(self):
        mgmt_port = free_port()
        conf = os.path.join(self.tmp, "warren.conf")
        with open(conf, "w") as f:
            f.write("management.tcp.port = %d\nmanagement.tcp.ip = 127.0.0.1\n"
                    "prometheus.tcp.port = 0\nlog.level = info\n" % mgmt_port)
        self.log_path = os.path.join(self.tmp, "warrend.log")
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([os.environ["WARREND"], "-c", conf, "--port", "0",
                                      "--data-dir", os.path.join(self.tmp, "data")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.url = urllib.parse.urlsplit("http://127.0.0.1:%d" % mgmt_port)
        deadline = time.time() + 20
        while True:
            expect(self.proc.poll() is None, "warrend exited with %r" % self.proc.returncode)
            expect(time.time() < deadline, "warrend did not start")
            try:
                if call("GET", "/api/overview", url=self.url, timeout=5)[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)

    def stop(self, within_s=5):
        """SIGTERM: warrend must exit 0 within within_s, with a clean log."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=within_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            status = "still running after %d s" % within_s
        self.proc = None
        self.log.close()
        text = open(self.log_path).read()
        if status != 0 or "[error]" in text or "Sanitizer" in text or "runtime error" in text:
            raise CheckFailed("warrend: exit %r, log:\n%s" % (status, text[-3000:]))

    def remove(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- The checks ------------------------------------------------------------------------------


@check
def list_of_5000_queues_is_whole_while_amqp_keeps_answering():
    names = ["%s.q.%05d" % (PREFIX, i) for i in range(QUEUES)]
    import_definitions(queue_docs(names, False))

    def attempt(n):
        probe = rtt_probe.start(HOST, PORT, "%s.probe" % PREFIX)
        try:
            status, data = call("GET", "/api/queues")
        finally:
            figures = probe.stop()
        expect_eq(status, 200, "GET /api/queues")
        listed = names_in(json.loads(data), PREFIX + ".q.")
        expect_eq(listed, names, "every queue, once, in name order")
        return figures

    within_bound("GET /api/queues of %d queues" % QUEUES, attempt)
    # The other lists written in slices: whole too.
    listed = names_in(get_json("/api/queues/%2F"), PREFIX + ".q.")
    expect_eq(len(listed), QUEUES, "GET /api/queues/%2F")
    page = get_json("/api/queues?page=2&page_size=500&name=%s.q." % PREFIX)
    expect_eq((page["filtered_count"], page["item_count"], page["page_count"]),
              (QUEUES, 500, QUEUES // 500), "a page of the filtered queues")
    expect_eq([o["name"] for o in page["items"]], names[500:1000], "the second page")
    default = [b for b in get_json("/api/bindings/%2F") if b["source"] == ""]
    expect_eq(len(names_in([{"name": b["destination"]} for b in default], PREFIX + ".q.")),
              QUEUES, "a default binding per queue")


@check
def consumers_and_channels_are_listed_while_amqp_keeps_answering():
    names = ["%s.q.%05d" % (PREFIX, i) for i in range(QUEUES)]
    amqp = Amqp(HOST, PORT)
    channels = range(2, 1002)
    amqp.sock.sendall(b"".join(rtt_probe._method(ch, 20, 10, rtt_probe._shortstr(""))
                               for ch in channels))
    for _ in channels:
        amqp.expect(20, 11)
    # basic.consume, no-wait: a consumer on every queue, five to a channel.
    amqp.sock.sendall(b"".join(
        rtt_probe._method(channels[i % len(channels)], 60, 20,
                          b"\0\0" + rtt_probe._shortstr(n) + rtt_probe._shortstr("c.%s" % n) +
                          bytes([2 | 8]) + b"\0\0\0\0") for i, n in enumerate(names)))
    amqp.sock.sendall(amqp.declare(PREFIX + ".sync", passive=False))
    amqp.expect(50, 11)

    def attempt(n):
        probe = rtt_probe.start(HOST, PORT, "%s.probe" % PREFIX)
        try:
            consumers = get_json("/api/consumers")
            listed_channels = get_json("/api/channels")
            connections = get_json("/api/connections")
        finally:
            figures = probe.stop()
        tags = sorted(c["consumer_tag"] for c in consumers if c["consumer_tag"].startswith("c."))
        expect_eq(tags, sorted("c." + n for n in names), "every consumer, once")
        numbers = [c["number"] for c in listed_channels if c["consumer_count"] == 5]
        expect_eq(sorted(numbers), list(channels), "every channel with its consumers, once")
        expect(len(connections) >= 2, "the connections")
        return figures

    try:
        within_bound("GET /api/consumers, /api/channels, /api/connections", attempt)
    finally:
        amqp.sock.close()


@check
def export_of_5000_queues_and_their_bindings_keeps_amqp_answering():
    names = ["%s.q.%05d" % (PREFIX, i) for i in range(QUEUES)]
    # Fifty exchanges: a binding looks for its twin among its exchange's bindings.
    exchanges = ["%s.x.%02d" % (PREFIX, i) for i in range(50)]
    import_definitions({
        "exchanges": [{"name": x, "vhost": "/", "type": "direct", "durable": False,
                       "auto_delete": False, "internal": False, "arguments": {}}
                      for x in exchanges],
        "bindings": [{"source": exchanges[i % 50], "vhost": "/", "destination": n,
                      "destination_type": "queue", "routing_key": "%s.%d" % (n, k),
                      "arguments": {}} for i, n in enumerate(names) for k in range(2)]})

    def attempt(n):
        probe = rtt_probe.start(HOST, PORT, "%s.probe" % PREFIX)
        try:
            exported = get_json("/api/definitions")
        finally:
            figures = probe.stop()
        expect_eq(names_in(exported["queues"], PREFIX + ".q."), names, "every queue exported")
        keys = [b["routing_key"] for b in exported["bindings"]
                if b["destination"].startswith(PREFIX + ".q.")]
        expect_eq(len(keys), 2 * QUEUES, "every binding exported")
        expect_eq(exported["product_name"], "Warren", "the end of the export")
        return figures

    within_bound("GET /api/definitions of %d queues and %d bindings" % (QUEUES, 2 * QUEUES),
                 attempt)
    per_vhost = get_json("/api/definitions/%2F")
    expect_eq(names_in(per_vhost["queues"], PREFIX + ".q."), names, "the vhost's export")


@check
def import_of_5000_durable_queues_keeps_amqp_answering():
    def attempt(n):
        names = ["%s.d%d.%05d" % (PREFIX, n, i) for i in range(QUEUES)]
        doc = json.dumps(queue_docs(names, True))
        probe = rtt_probe.start(HOST, PORT, "%s.probe" % PREFIX)
        try:
            status, data = call("POST", "/api/definitions", doc)
        finally:
            figures = probe.stop()
        expect_eq(status, 204, "POST /api/definitions (%r)" % data[:300])
        page = get_json("/api/queues?page=1&page_size=1&name=%s.d%d." % (PREFIX, n))
        expect_eq(page["filtered_count"], QUEUES, "every queue imported")
        return figures

    within_bound("POST /api/definitions of %d durable queues" % QUEUES, attempt)


@check
def queues_deleted_while_their_list_is_written_are_left_out():
    names = ["%s.q.%05d" % (PREFIX, i) for i in range(QUEUES)]
    expect_eq(get_json("/api/queues?page=1&page_size=1&name=%s.q." % PREFIX)["filtered_count"],
              QUEUES, "the queues of the first check")
    slow = SlowGet("/api/queues")
    slow.read(32 * 1024)
    amqp = Amqp(HOST, PORT)
    amqp.delete_queues(names)
    listing = json.loads(slow.body())
    listed = names_in(listing, PREFIX + ".q.")
    expect_eq(len(set(listed)), len(listed), "no queue listed twice")
    expect(set(listed) <= set(names), "only queues that existed")
    expect(len(listed) < QUEUES,
           "the queues deleted before the list reached them are left out (%d listed)" %
           len(listed))
    expect_eq(names_in(get_json("/api/queues"), PREFIX + ".q."), [], "all deleted")


@check
def vhost_deleted_while_its_queues_are_listed():
    vhost = PREFIX + ".v"
    expect_eq(call("PUT", "/api/vhosts/" + urllib.parse.quote(vhost, safe=""))[0], 201,
              "the vhost")
    doc = {"queues": [{"name": "vq.%05d" % i, "vhost": vhost, "durable": False,
                       "auto_delete": False, "arguments": {}} for i in range(1000)],
           "permissions": [{"user": "guest", "vhost": vhost, "configure": ".*", "write": ".*",
                            "read": ".*"}]}
    import_definitions(doc)
    slow = SlowGet("/api/queues")
    slow.read(32 * 1024)
    status, _ = call("DELETE", "/api/vhosts/" + urllib.parse.quote(vhost, safe=""))
    expect_eq(status, 204, "DELETE the vhost")
    listing = json.loads(slow.body())
    expect(len([o for o in listing if o["vhost"] == vhost]) < 1000,
           "the queues of the deleted vhost are left out")
    expect_eq([o for o in get_json("/api/queues") if o["vhost"] == vhost], [], "all gone")


@check
def two_imports_at_once():
    docs = [json.dumps(queue_docs(["%s.t%d.%04d" % (PREFIX, k, i) for i in range(1000)], True))
            for k in range(2)]
    conns = []
    for doc in docs:
        conn = http.client.HTTPConnection(MGMT.hostname, MGMT.port, timeout=120)
        conn.request("POST", "/api/definitions", body=doc,
                     headers={"Authorization": AUTH, "Content-Type": "application/json"})
        conns.append(conn)
    for k, conn in enumerate(conns):
        r = conn.getresponse()
        expect_eq(r.status, 204, "import %d (%r)" % (k, r.read()[:300]))
        conn.close()
        page = get_json("/api/queues?page=1&page_size=1&name=%s.t%d." % (PREFIX, k))
        expect_eq(page["filtered_count"], 1000, "every queue of import %d" % k)
    status, data = call("POST", "/api/definitions", "{\"queues\": [")
    expect_eq((status, json.loads(data)), (400, {"error": "bad_request", "reason": "not_json"}),
              "a document that is not JSON")


@check
def imported_durable_definitions_survive_a_restart():
    """Each slice of an import is written to the definitions log at once."""
    if not os.environ.get("WARREND"):
        print("skip: needs WARREND")
        return
    b = OwnBroker()
    try:
        b.start()
        doc = queue_docs(["dq.%05d" % i for i in range(3000)], True)
        doc["exchanges"] = [{"name": "dx", "vhost": "/", "type": "topic", "durable": True,
                             "auto_delete": False, "internal": False, "arguments": {}}]
        doc["bindings"] = [{"source": "dx", "vhost": "/", "destination": "dq.%05d" % i,
                            "destination_type": "queue", "routing_key": "k.%d" % i,
                            "arguments": {}} for i in range(0, 3000, 7)]
        import_definitions(doc, url=b.url)
        b.stop()
        b.start()
        queues = get_json("/api/queues?page=1&page_size=1&name=dq.", url=b.url)
        expect_eq(queues["filtered_count"], 3000, "the queues after a restart")
        bindings = get_json("/api/exchanges/%2F/dx/bindings/source", url=b.url)
        expect_eq(len(bindings), len(range(0, 3000, 7)), "the bindings after a restart")
        b.stop()
    finally:
        b.remove()


@check
def stopping_while_an_import_and_a_list_are_in_progress():
    """MHD may not stop with a connection suspended: every suspended request is resumed
    first, and warrend exits 0 at once."""
    if not os.environ.get("WARREND"):
        print("skip: needs WARREND")
        return
    b = OwnBroker()
    try:
        b.start()
        import_definitions(queue_docs(["sq.%05d" % i for i in range(2000)], False), url=b.url)
        slow = SlowGet("/api/queues", url=b.url)
        slow.read(16 * 1024)
        conn = http.client.HTTPConnection(b.url.hostname, b.url.port, timeout=60)
        conn.request("POST", "/api/definitions",
                     body=json.dumps(queue_docs(["iq.%05d" % i for i in range(20000)], True)),
                     headers={"Authorization": AUTH, "Content-Type": "application/json"})
        time.sleep(0.3)
        b.stop()
        conn.close()
        slow.sock.close()
    finally:
        b.remove()


def cleanup():
    """What the checks left on a broker that outlives them (the one mgmt_lib.sh started,
    WARREN=1, goes with them)."""
    if os.environ.get("WARREN") == "1":
        return
    try:
        names = names_in(get_json("/api/queues/%2F"), PREFIX)
        Amqp(HOST, PORT).delete_queues(names + [PREFIX + ".sync"])
    except (OSError, ConnectionError, CheckFailed, ValueError):
        pass


def main():
    failed = False
    try:
        for fn in CHECKS:
            start = time.time()
            fn()
            print("ok: %s (%.1f s)" % (fn.__name__, time.time() - start))
    except CheckFailed as e:
        print("FAIL: %s: %s" % (fn.__name__, e))
        failed = True
    except Exception:
        print("FAIL: %s:" % fn.__name__)
        traceback.print_exc(file=sys.stdout)
        failed = True
    finally:
        cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
