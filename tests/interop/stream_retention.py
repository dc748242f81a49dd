#!/usr/bin/python3
"""Retention of stream queues (x-queue-type=stream) through pika and the management API:
whole old segments go, the segment being written never does, and the offsets of what is
kept never change.

  stream_retention.py run WORKDIR      the checks below; saves what it saw in WORKDIR
  stream_retention.py verify WORKDIR   after a restart of the broker on the same data
  stream_retention.py cleanup WORKDIR  deletes what run made (a broker not restarted)

run:
- size: x-stream-max-segment-size-bytes 10000 and x-max-length-bytes 30000, 200 messages of
  1000 bytes: a consumer from first starts past 0, at the start of the oldest segment left,
  and reads every offset from there to 199 with its own body; on disk (DATA_DIR) the
  oldest segments' files are gone and what is left is a fraction of what was written.
- tiny: x-max-length-bytes 1: the segment being written stays (one message is readable, and
  after 50 the newest are).
- policies on existing streams: max-length-bytes and max-age remove old segments at once,
  stream-max-segment-size-bytes makes new segments roll at that size.
- age: x-max-age 2s, 50 messages, then no more publishes: within a few seconds past the age
  the old segments are gone (the broker's timer; without it they would stay until the next
  segment is full).
verify: every message still there has its offset and body, the first offset did not go back
(nor move where no retention can remove more), and the next publish continues after the
last offset.

RabbitMQ 3.10.8 passes the run checks but the one of max-age with no more publishes (it
applies retention when a segment is full, and at a policy change; STREAM_NO_AGE_TIMER=1
skips that check).

Environment: AMQP_HOST, AMQP_PORT, MGMT_URL (the management API, for policies; user guest).
With WARREN=1 also Warren's own queue fields (stream_first_offset, stream_segments, ...), and
with DATA_DIR the segment files in DATA_DIR/streams/<id>/. Exits 1 at the first failure.
"""

import base64
import json
import os
import sys
import time
import urllib.parse
import urllib.request

import pika
import pika.exceptions

from checks import CheckFailed, expect, expect_eq

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
MGMT_URL = os.environ["MGMT_URL"].rstrip("/")
WARREN = os.environ.get("WARREN") == "1"
DATA_DIR = os.environ.get("DATA_DIR")
BODY = 1000
SEGMENT = 10000
AGE_S = 2
# How long retention may take to show after it is due.
WAIT_S = 8


def http(method, path, body=None):
    req = urllib.request.Request(MGMT_URL + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        data = resp.read()
        return json.loads(data) if data else None


def queue_info(name):
    return http("GET", "/api/queues/%2F/" + urllib.parse.quote(name, safe=""))


def set_policy(name, pattern, definition):
    http("PUT", "/api/policies/%2F/" + name,
         {"pattern": pattern, "definition": definition, "apply-to": "queues", "priority": 0})


def connect():
    return pika.BlockingConnection(pika.ConnectionParameters(HOST, PORT))


def body(i):
    return (b"%06d" % i).ljust(BODY, b".")


def declare(name, **args):
    a = {"x-queue-type": "stream"}
    a.update(args)
    conn = connect()
    conn.channel().queue_declare(name, durable=True, arguments=a)
    conn.close()


def publish(name, start, count):
    """count messages with confirms, one at a time: each is a chunk of its own in RabbitMQ."""
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    for i in range(start, start + count):
        ch.basic_publish("", name, body(i), mandatory=True)
    conn.close()


def consume(name, offset="first", limit=100000):
    """(x-stream-offset, body) of everything a consumer from offset reads until it is quiet
    for half a second (at most limit deliveries)."""
    conn = connect()
    ch = conn.channel()
    # The limit-th delivery is not acked, so no more come: pika would reject at the close
    # what it holds undelivered, which a stream refuses (540).
    ch.basic_qos(prefetch_count=min(100, limit))
    got = []

    def on_msg(c, m, p, b):
        got.append((p.headers["x-stream-offset"], b))
        if len(got) < limit:
            c.basic_ack(m.delivery_tag)

    ch.basic_consume(name, on_msg, arguments={"x-stream-offset": offset})
    quiet_since = time.time()
    seen = 0
    deadline = time.time() + 30
    while time.time() < deadline and len(got) < limit:
        conn.process_data_events(time_limit=0.1)
        if len(got) != seen:
            seen, quiet_since = len(got), time.time()
        elif time.time() - quiet_since > 0.5:
            break
    conn.close()  # no basic.cancel: pika would reject what it holds, which a stream refuses
    return got[:limit]


def first_offset(name):
    got = consume(name, "first", 1)
    expect(got, "%s: a consumer from first got nothing" % name)
    return got[0][0]


def index(b):
    return int(b[:6])


def check_kept(name, got, last):
    """got (a consumer from first) holds the messages from some index up to last, in order,
    each with its own body, at increasing offsets; on Warren each at the offset equal to its
    index (RabbitMQ's offsets have gaps: each segment starts with a tracking chunk that takes
    an offset). Returns the first offset and the first index."""
    expect(got, "%s: nothing consumed" % name)
    idx = [index(b) for _, b in got]
    expect_eq(idx, list(range(idx[0], last + 1)), "%s: messages from first" % name)
    for _, b in got:
        expect_eq(b, body(index(b)), "%s: body of message %d" % (name, index(b)))
    offs = [g[0] for g in got]
    expect(all(a < b for a, b in zip(offs, offs[1:])), "%s: offsets increase: %r"
           % (name, offs))
    if WARREN:
        expect_eq(offs, idx, "%s: offsets are the messages' indexes" % name)
    return offs[0], idx[0]


def remember(state, name, got, last):
    state[name] = {"last": last, "pairs": [[off, index(b)] for off, b in got]}


def stream_dir(name, before):
    """The directory of the stream created since `before` (a set of names)."""
    if not DATA_DIR:
        return None
    new = set(os.listdir(os.path.join(DATA_DIR, "streams"))) - before
    expect_eq(len(new), 1, "%s: new directories under DATA_DIR/streams" % name)
    return os.path.join(DATA_DIR, "streams", new.pop())


def stream_dirs():
    if not DATA_DIR:
        return set()
    d = os.path.join(DATA_DIR, "streams")
    return set(os.listdir(d)) if os.path.isdir(d) else set()


def segments(d):
    """(first offset, bytes) of each segment file, oldest first."""
    out = []
    for f in sorted(os.listdir(d)):
        if f.endswith(".seg"):
            out.append((int(f[:-4]), os.path.getsize(os.path.join(d, f))))
    return out


def warren_fields(name):
    q = queue_info(name)
    return {k: q.get(k) for k in ("stream_first_offset", "stream_last_offset",
                                  "stream_messages", "stream_segments", "stream_disk_bytes")}


def check_size(name, state):
    before = stream_dirs()
    declare(name, **{"x-stream-max-segment-size-bytes": SEGMENT, "x-max-length-bytes": 30000})
    publish(name, 0, 200)
    got = consume(name)
    first, first_idx = check_kept(name, got, 199)
    expect(first > 0, "%s: the first offset advanced (got %d)" % (name, first))
    # 30000 bytes in segments of 10000 keep some 20 to 30 messages of 1000 bytes: the oldest
    # segment goes while the total is over the limit (RabbitMQ kept messages 180..199 in
    # segments of 10409 bytes; Warren's rule is the same).
    expect(165 <= first_idx <= 185, "%s: first message %d after keeping about 30000 bytes"
           % (name, first_idx))
    d = stream_dir(name, before)
    if WARREN:
        f = warren_fields(name)
        expect_eq(f["stream_first_offset"], first, "%s: stream_first_offset" % name)
        expect_eq(f["stream_last_offset"], 199, "%s: stream_last_offset" % name)
        expect_eq(f["stream_messages"], 200 - first, "%s: stream_messages" % name)
        expect(2 <= f["stream_segments"] <= 4, "%s: stream_segments %r" % (name, f))
    if d:
        segs = segments(d)
        expect_eq(segs[0][0], first, "%s: the oldest segment file starts at the first offset"
                  % name)
        expect(all(s[0] > 0 for s in segs), "%s: segment 0 is gone" % name)
        total = sum(s[1] for s in segs)
        expect(30000 - SEGMENT - 2000 <= total <= 30000 + SEGMENT,
               "%s: %d bytes on disk for 30000 kept (200000 written)" % (name, total))
        if WARREN:
            expect_eq(len(segs), f["stream_segments"], "%s: segment files" % name)
            expect_eq(total, f["stream_disk_bytes"], "%s: bytes of the segment files" % name)
        state["dir." + name] = d
    remember(state, name, got, 199)
    print("ok size retention: first offset %d (message %d), the rest up to message 199"
          % (first, first_idx))


def check_tiny(name, state):
    declare(name, **{"x-stream-max-segment-size-bytes": SEGMENT, "x-max-length-bytes": 1})
    publish(name, 0, 1)
    expect_eq([g[0] for g in consume(name)], [0], "%s: one message over the limit is kept"
              % name)
    publish(name, 1, 49)
    got = consume(name)
    first, _ = check_kept(name, got, 49)
    expect(first > 0, "%s: old segments went" % name)
    expect_eq([index(g[1]) for g in consume(name, "last", 1)], [49], "%s: from last" % name)
    if WARREN:
        f = warren_fields(name)
        # The full segment before the one being written goes at the next roll.
        expect(1 <= f["stream_segments"] <= 2, "%s: segments left %r" % (name, f))
    remember(state, name, got, 49)
    print("ok max-length-bytes 1: the segment being written stays (messages %d..49)"
          % index(got[0][1]))


def check_policies(prefix, state):
    # max-length-bytes by policy on a stream that has only a segment size.
    name = prefix + ".pol-bytes"
    declare(name, **{"x-stream-max-segment-size-bytes": SEGMENT})
    publish(name, 0, 100)
    expect_eq(first_offset(name), 0, "%s: nothing removed before the policy" % name)
    set_policy(name, "^%s$" % name.replace(".", "\\."), {"max-length-bytes": 20000})
    deadline = time.time() + WAIT_S
    while first_offset(name) == 0 and time.time() < deadline:
        time.sleep(0.2)
    got = consume(name)
    _, first_idx = check_kept(name, got, 99)
    expect(first_idx >= 70, "%s: a max-length-bytes policy of 20000 left messages %d..99"
           % (name, first_idx))
    remember(state, name, got, 99)

    # max-age by policy, once the messages are older than it.
    name = prefix + ".pol-age"
    declare(name, **{"x-stream-max-segment-size-bytes": SEGMENT})
    publish(name, 0, 50)
    time.sleep(1.5)
    expect_eq(first_offset(name), 0, "%s: nothing removed before the policy" % name)
    set_policy(name, "^%s$" % name.replace(".", "\\."), {"max-age": "1s"})
    deadline = time.time() + WAIT_S
    while first_offset(name) == 0 and time.time() < deadline:
        time.sleep(0.2)
    got = consume(name)
    _, first_idx = check_kept(name, got, 49)
    expect(first_idx >= 40, "%s: a max-age policy of 1s left messages %d..49 (the segment "
           "being written)" % (name, first_idx))
    remember(state, name, got, 49)

    # stream-max-segment-size-bytes by policy: new segments roll at that size.
    name = prefix + ".pol-seg"
    before = stream_dirs()
    declare(name)
    set_policy(name, "^%s$" % name.replace(".", "\\."),
               {"stream-max-segment-size-bytes": 5000})
    time.sleep(0.5)
    publish(name, 0, 30)
    got = consume(name)
    check_kept(name, got, 29)
    expect_eq(index(got[0][1]), 0, "%s: nothing removed" % name)
    d = stream_dir(name, before)
    if d:
        n = len(segments(d))
        expect(n >= 5, "%s: 30000 bytes in segments of 5000 made %d segments" % (name, n))
    remember(state, name, got, 29)
    print("ok policies: max-length-bytes and max-age apply to existing streams, "
          "stream-max-segment-size-bytes to new segments")


def check_age(name, state):
    declare(name, **{"x-stream-max-segment-size-bytes": SEGMENT, "x-max-age": "%ds" % AGE_S})
    started = time.time()
    publish(name, 0, 50)
    published = time.time()
    # A segment goes once the next one's first message is older than the age: not before
    # started + AGE_S, and every full one by published + AGE_S.
    first = first_offset(name)
    if time.time() < started + AGE_S:
        expect_eq(first, 0, "%s: nothing is old yet" % name)
    # No more publishes: only the broker's own timer can remove the old segments.
    deadline = published + AGE_S + WAIT_S
    first_idx = 0
    while time.time() < deadline:
        time.sleep(0.5)
        first_idx = index(consume(name, "first", 1)[0][1])
        if first_idx >= 40:
            break
    expect(first_idx >= 40, "%s: old segments still there %.1f s after the publishes, max-age "
           "%ds (first message %d)" % (name, time.time() - published, AGE_S, first_idx))
    got = consume(name)
    first, first_idx = check_kept(name, got, 49)
    expect(first_idx >= 40, "%s: only the segment being written is left (messages %d..49)"
           % (name, first_idx))
    if WARREN:
        f = warren_fields(name)
        expect_eq(f["stream_segments"], 1, "%s: segments left" % name)
        expect_eq(f["stream_first_offset"], first, "%s: stream_first_offset" % name)
    remember(state, name, got, 49)
    print("ok max-age with no more publishes: old segments gone after %.1f s, first message %d"
          % (time.time() - published, first_idx))


def run(work, prefix):
    state = {"prefix": prefix}
    check_size(prefix + ".size", state)
    check_tiny(prefix + ".tiny", state)
    check_policies(prefix, state)
    if os.environ.get("STREAM_NO_AGE_TIMER") == "1":
        print("skipped max-age with no more publishes (STREAM_NO_AGE_TIMER=1)")
    else:
        check_age(prefix + ".age", state)
    with open(os.path.join(work, "state.json"), "w") as f:
        json.dump(state, f)


def verify(work):
    with open(os.path.join(work, "state.json")) as f:
        state = json.load(f)
    prefix = state["prefix"]
    for name in sorted(state):
        if not name.startswith(prefix + "."):
            continue
        before = dict((off, i) for off, i in state[name]["pairs"])
        got = consume(name)
        now_first, _ = check_kept(name, got, state[name]["last"])
        # Every message seen before the restart from the new first offset on is there, at
        # its offset. Retention applies again when the log is opened: the segments after the
        # oldest may have grown since it last ran, so more may go; a stream down to the
        # segment being written (age) or without limits (pol-seg) must start where it did.
        expect_eq([[off, index(b)] for off, b in got],
                  [[off, i] for off, i in sorted(before.items()) if off >= now_first],
                  "%s: offsets and messages after the restart" % name)
        if name.endswith(".age") or name.endswith(".pol-seg"):
            expect_eq(now_first, min(before), "%s: first offset after the restart" % name)
        else:
            expect(now_first >= min(before), "%s: first offset %d after the restart, %d before"
                   % (name, now_first, min(before)))
    name = prefix + ".size"
    publish(name, 200, 1)
    got = consume(name, "last", 1)
    expect_eq(index(got[0][1]), 200, "%s: last message after a publish" % name)
    expect(got[0][0] > max(off for off, _ in state[name]["pairs"]),
           "%s: a publish after the restart continues the offsets (got %d)" % (name, got[0][0]))
    if WARREN:
        expect_eq(got[0][0], 200, "%s: offset of the publish after the restart" % name)
    if "dir." + name in state:
        expect_eq(segments(state["dir." + name])[0][0], first_offset(name),
                  "%s: oldest segment file after the restart" % name)
    print("ok after a restart every stream has its first offset, offsets and bodies")
    cleanup(prefix)


def cleanup(prefix):
    conn = connect()
    ch = conn.channel()
    for suffix in ("size", "tiny", "pol-bytes", "pol-age", "pol-seg", "age"):
        ch.queue_delete(prefix + "." + suffix)
        if suffix.startswith("pol-"):
            try:
                http("DELETE", "/api/policies/%2F/" + prefix + "." + suffix)
            except urllib.error.HTTPError:
                pass
    conn.close()


def main():
    mode, work = sys.argv[1], sys.argv[2]
    prefix = "interop.retention.%d" % os.getpid()
    try:
        if mode == "run":
            run(work, prefix)
        elif mode == "verify":
            verify(work)
        else:  # cleanup, for a broker the test does not restart
            with open(os.path.join(work, "state.json")) as f:
                cleanup(json.load(f)["prefix"])
            return
    except CheckFailed as e:
        print("FAIL: %s" % e)
        if mode == "run":
            cleanup(prefix)
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
