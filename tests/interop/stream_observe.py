#!/usr/bin/python3
"""A stream as the operator sees it. Ten messages are published to a stream (offsets 0-9);
consumer A starts at offset 4 with a prefetch of 3 and does not ack (it gets 4, 5, 6: it reads
7 next, 3 behind the end), consumer B at offset 8 with a prefetch of 1 (reads 9 next, 1
behind); a classic queue has a consumer too. Then:

- the management API: the stream's first/last offset, messages (10 ready, 0 unacked, as
  RabbitMQ counts a stream), segments, bytes on disk (the size of its files in the data
  directory), members/online/readers; each consumer's stream_offset and stream_offset_lag,
  in the queue's consumer_details and in /api/consumers; none of these on the classic queue;
- warrenctl list_queues with the stream columns (empty for the classic queue),
  list_consumers stream_offset/stream_offset_lag, list_stream_consumers;
- /metrics/per-object: rabbitmq_stream_segments, warren_stream_{first_offset,next_offset,
  messages,disk_bytes}, rabbitmq_stream_consumer_max_offset_lag, and per consumer
  warren_stream_consumer_offset{,_lag} labelled with the channel's name and the tag (the
  stream's name has a quote and a backslash: the labels are escaped); /metrics/detailed's
  rabbitmq_detailed_stream_segments and _stream_consumer_max_offset_lag;
- after A acks its three, it gets 7, 8, 9: its offset becomes 10 and its lag 0 everywhere.

Environment: WARRENCTL, MGMT_URL, METRICS_URL, AMQP_HOST, AMQP_PORT, STREAM_DATA_DIR (the
broker's data directory). Prints one line per check; exits 1 at the first failure.
"""

import base64
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pika

from checks import CheckFailed, expect, expect_eq

WARRENCTL = os.environ.get("WARRENCTL", "warrenctl")
MGMT = urllib.parse.urlsplit(os.environ.get("MGMT_URL", "http://127.0.0.1:15672"))
METRICS = urllib.parse.urlsplit(os.environ.get("METRICS_URL", "http://127.0.0.1:15692"))
HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
DATA_DIR = os.environ.get("STREAM_DATA_DIR")
PREFIX = "obs.%d" % os.getpid()
STREAM = PREFIX + '.st"re\\am'
CLASSIC = PREFIX + ".classic"


def ok(what):
    print("ok: " + what)


def get(url, path):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    auth = base64.b64encode(b"guest:guest").decode()
    conn.request("GET", path, headers={"Authorization": "Basic " + auth})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    expect(r.status == 200, "GET %s: HTTP %d %r" % (path, r.status, data[:200]))
    return data.decode()


def api(path):
    return json.loads(get(MGMT, path))


def qpath(name):
    return "/api/queues/%2F/" + urllib.parse.quote(name, safe="")


def ctl(*args):
    env = dict(os.environ)
    env.pop("WARRENCTL_CONFIG", None)
    env["HOME"] = tempfile.gettempdir()
    p = subprocess.run([WARRENCTL, "--host", MGMT.hostname, "--port", str(MGMT.port)] +
                       list(args), capture_output=True, text=True, env=env, timeout=60)
    return p.returncode, p.stdout, p.stderr


def ctl_ok(*args):
    rc, out, err = ctl(*args)
    expect(rc == 0 and err == "", "warrenctl %s: exit %d, stderr %r" % (" ".join(args), rc, err))
    return out


def ctl_rows(*args):
    return json.loads(ctl_ok("--format", "json", *args))


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def scrape(path):
    """{(metric, ((label, value), ...)): value} of an exposition; checks every line parses."""
    out = {}
    for line in get(METRICS, path).splitlines():
        if line.startswith("#") or line == "":
            continue
        m = LINE.match(line)
        expect(m is not None, "%s: a line that does not parse: %r" % (path, line))
        labels = m.group(2) or ""
        pairs = LABEL.findall(labels)
        expect("".join('%s="%s",' % p for p in pairs).rstrip(",") == labels,
               "%s: labels that do not parse: %r" % (path, line))
        out[(m.group(1), tuple(sorted((k, unescape(v)) for k, v in pairs)))] = float(m.group(3))
    return out


def sample(samples, metric, **labels):
    return samples.get((metric, tuple(sorted(labels.items()))))


def wait_for(what, fn, timeout_s=10):
    deadline = time.time() + timeout_s
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise CheckFailed("timed out waiting for " + what)
        time.sleep(0.2)


def disk_bytes():
    """The sizes of the segment files of the broker's streams (this broker has only ours);
    their .idx offset indexes (about 1% more) are not counted in stream_disk_bytes."""
    total = 0
    for root, _, files in os.walk(os.path.join(DATA_DIR, "streams")):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files if f.endswith(".seg"))
    return total


class Consumers:
    """A (offset 4, prefetch 3), B (offset 8, prefetch 1) on the stream, C on the classic."""

    def __init__(self):
        self.conn = pika.BlockingConnection(pika.ConnectionParameters(HOST, PORT))
        self.got = {"A": [], "B": [], "C": []}
        self.channels = {}
        for tag, queue, offset, prefetch in [("A", STREAM, 4, 3), ("B", STREAM, 8, 1),
                                             ("C", CLASSIC, None, 0)]:
            ch = self.conn.channel()
            ch.basic_qos(prefetch_count=prefetch)
            ch.basic_consume(queue, self.on_message(tag), consumer_tag=PREFIX + "." + tag,
                             arguments={"x-stream-offset": offset} if offset is not None else {})
            self.channels[tag] = ch

    def on_message(self, tag):
        def on_msg(ch, method, props, body):
            offset = (props.headers or {}).get("x-stream-offset")
            self.got[tag].append((offset, method.delivery_tag))
        return on_msg

    def wait(self, tag, offsets):
        deadline = time.time() + 10
        while [o for o, _ in self.got[tag]] != offsets and time.time() < deadline:
            self.conn.process_data_events(time_limit=0.2)
        expect_eq([o for o, _ in self.got[tag]], offsets, "offsets delivered to " + tag)

    def ack_all(self, tag):
        for _, delivery_tag in self.got[tag]:
            self.channels[tag].basic_ack(delivery_tag)


def check_api(node, offsets):
    """offsets: {tag: (stream_offset, lag)} of the stream's consumers."""
    q = api(qpath(STREAM))
    for key, want in [("type", "stream"), ("stream_first_offset", 0), ("stream_last_offset", 9),
                      ("stream_messages", 10), ("stream_segments", 1), ("messages", 10),
                      ("messages_ready", 10), ("messages_unacknowledged", 0),
                      ("members", [node]), ("online", [node]), ("readers", {node: 2})]:
        expect_eq(q.get(key), want, "the stream's " + key)
    expect(q["stream_disk_bytes"] > 0, "stream_disk_bytes > 0")
    expect_eq(q["stream_disk_bytes"], disk_bytes(), "stream_disk_bytes, the files' sizes")
    details = {c["consumer_tag"]: (c["stream_offset"], c["stream_offset_lag"])
               for c in q["consumer_details"]}
    expect_eq(details, {PREFIX + "." + t: v for t, v in offsets.items()},
              "consumer_details' stream_offset and stream_offset_lag")
    c = api(qpath(CLASSIC))
    expect_eq(sorted(k for k in c if k.startswith("stream_") or
                     k in ("members", "online", "readers")), [],
              "the classic queue's stream fields")
    expect_eq(["stream_offset" in x for x in c["consumer_details"]], [False],
              "the classic queue's consumer has no stream_offset")
    listed = {x["consumer_tag"]: (x.get("stream_offset"), x.get("stream_offset_lag"))
              for x in api("/api/consumers/%2F") if x["consumer_tag"].startswith(PREFIX)}
    want = {PREFIX + "." + t: v for t, v in offsets.items()}
    want[PREFIX + ".C"] = (None, None)
    expect_eq(listed, want, "/api/consumers' stream_offset and stream_offset_lag")
    ok("API: the stream's offsets, messages, segments, %d bytes on disk; consumers %r"
       % (q["stream_disk_bytes"], offsets))
    return q


def check_warrenctl(node, q, offsets):
    cols = ["name", "type", "leader", "members", "online", "stream_first_offset",
            "stream_last_offset", "stream_messages", "stream_disk_bytes", "stream_segments",
            "messages"]
    got = {r["name"]: r for r in ctl_rows("list_queues", *cols)}
    expect_eq(got[STREAM], {"name": STREAM, "type": "stream", "leader": node, "members": [node],
                            "online": [node], "stream_first_offset": 0, "stream_last_offset": 9,
                            "stream_messages": 10, "stream_disk_bytes": q["stream_disk_bytes"],
                            "stream_segments": 1, "messages": 10},
              "warrenctl list_queues: the stream")
    expect_eq(got[CLASSIC], dict({c: None for c in cols}, name=CLASSIC, type="classic",
                                 messages=0), "warrenctl list_queues: the classic queue")
    tsv = [line.split("\t") for line in
           ctl_ok("-q", "--format", "tsv", "list_queues", *cols).splitlines()]
    expect_eq([r for r in tsv if r[0] == STREAM],
              [[STREAM, "stream", node, node, node, "0", "9", "10",
                str(q["stream_disk_bytes"]), "1", "10"]], "list_queues tsv: the stream")
    expect_eq([r for r in tsv if r[0] == CLASSIC],
              [[CLASSIC, "classic", "", "", "", "", "", "", "", "", "0"]],
              "list_queues tsv: the classic queue's stream columns are empty")
    got = {r["consumer_tag"]: (r["stream_offset"], r["stream_offset_lag"]) for r in
           ctl_rows("list_consumers", "consumer_tag", "stream_offset", "stream_offset_lag")}
    want = {PREFIX + "." + t: v for t, v in offsets.items()}
    want[PREFIX + ".C"] = (None, None)
    expect_eq(got, want, "warrenctl list_consumers stream_offset stream_offset_lag")
    rows = ctl_rows("list_stream_consumers")
    channels = {c["consumer_tag"]: c["channel_details"]["name"] for c in q["consumer_details"]}
    expect_eq(sorted(rows, key=lambda r: r["consumer_tag"]),
              [{"stream": STREAM, "channel": channels[PREFIX + "." + t],
                "consumer_tag": PREFIX + "." + t, "offset": offsets[t][0],
                "offset_lag": offsets[t][1]} for t in sorted(offsets)],
              "warrenctl list_stream_consumers (default columns)")
    table = ctl_ok("list_stream_consumers", "consumer_tag", "offset", "offset_lag").splitlines()
    expect_eq(table[0], "Listing stream consumers for vhost / ...", "the table's first line")
    expect_eq([line.split() for line in table[1:]],
              [["consumer_tag", "offset", "offset_lag"]] +
              [[PREFIX + "." + t, str(offsets[t][0]), str(offsets[t][1])]
               for t in sorted(offsets)], "warrenctl list_stream_consumers as a table")
    rc, _, err = ctl("list_stream_consumers", "credits")
    expect(rc == 2 and "unknown column 'credits'" in err, "an unknown column: %d %r" % (rc, err))
    ok("warrenctl: list_queues' stream columns, list_consumers' and list_stream_consumers' "
       "offsets")


def check_metrics(q, offsets):
    s = scrape("/metrics/per-object")
    labels = {"vhost": "/", "queue": STREAM}
    for metric, want in [("rabbitmq_stream_segments", 1), ("warren_stream_first_offset", 0),
                         ("warren_stream_next_offset", 10), ("warren_stream_messages", 10),
                         ("warren_stream_disk_bytes", q["stream_disk_bytes"]),
                         ("rabbitmq_stream_consumer_max_offset_lag",
                          max(lag for _, lag in offsets.values())),
                         ("rabbitmq_queue_messages_ready", 10),
                         ("rabbitmq_queue_messages_unacked", 0)]:
        expect_eq(sample(s, metric, **labels), want, metric)
        expect_eq(sample(s, metric, vhost="/", queue=CLASSIC),
                  0 if metric.startswith("rabbitmq_queue") else None,
                  metric + " of the classic queue")
    for c in q["consumer_details"]:
        tag = c["consumer_tag"]
        cl = dict(labels, channel=c["channel_details"]["name"], consumer_tag=tag)
        want = offsets[tag[len(PREFIX) + 1:]]
        expect_eq((sample(s, "warren_stream_consumer_offset", **cl),
                   sample(s, "warren_stream_consumer_offset_lag", **cl)), want,
                  "warren_stream_consumer_offset and _lag of " + tag)
    expect_eq(len([k for k in s if k[0] == "warren_stream_consumer_offset"]), len(offsets),
              "one warren_stream_consumer_offset per stream consumer")
    d = scrape("/metrics/detailed?family=stream_consumer_metrics&family=queue_metrics")
    expect_eq(sample(d, "rabbitmq_detailed_stream_segments", **labels), 1,
              "rabbitmq_detailed_stream_segments")
    expect_eq(sample(d, "rabbitmq_detailed_stream_consumer_max_offset_lag", **labels),
              max(lag for _, lag in offsets.values()),
              "rabbitmq_detailed_stream_consumer_max_offset_lag")
    other = scrape("/metrics/detailed?family=stream_consumer_metrics&vhost=other")
    expect_eq([k for k in other if "stream" in k[0]], [], "another vhost's detailed streams")
    # Warren's /metrics has the per-object series too (prometheus.return_per_object_metrics
    # defaults to true).
    plain = scrape("/metrics")
    expect_eq({k: v for k, v in plain.items() if "stream" in k[0]},
              {k: v for k, v in s.items() if "stream" in k[0]}, "/metrics' stream series")
    ok("Prometheus: per-object and detailed stream series, consumers %r" % offsets)


def main():
    node = api("/api/overview")["node"]
    conn = pika.BlockingConnection(pika.ConnectionParameters(HOST, PORT))
    ch = conn.channel()
    ch.queue_declare(STREAM, durable=True, arguments={"x-queue-type": "stream"})
    ch.queue_declare(CLASSIC, durable=True)
    ch.confirm_delivery()
    for i in range(10):
        ch.basic_publish("", STREAM, b"m%d" % i)
    conn.close()
    consumers = Consumers()
    consumers.wait("A", [4, 5, 6])
    consumers.wait("B", [8])
    offsets = {"A": (7, 3), "B": (9, 1)}
    q = check_api(node, offsets)
    check_warrenctl(node, q, offsets)
    check_metrics(q, offsets)
    # A gives its credit back and gets the rest: it is at the end.
    consumers.ack_all("A")
    consumers.wait("A", [4, 5, 6, 7, 8, 9])
    offsets["A"] = (10, 0)
    wait_for("A at offset 10 in the API",
             lambda: {c["consumer_tag"]: c["stream_offset"] for c in
                      api(qpath(STREAM))["consumer_details"]}.get(PREFIX + ".A") == 10)
    q = check_api(node, offsets)
    check_warrenctl(node, q, offsets)
    check_metrics(q, offsets)
    consumers.conn.close()
    conn = pika.BlockingConnection(pika.ConnectionParameters(HOST, PORT))
    conn.channel().queue_delete(STREAM)
    conn.channel().queue_delete(CLASSIC)
    conn.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckFailed as e:
        print("FAIL: %s" % e)
        sys.exit(1)
