#!/usr/bin/python3
"""Lists of the management API sorted as RabbitMQ sorts them (?sort=, ?sort_reverse=true),
with and without pages, and the confirm count and rate of publisher confirms.

A handful of queues get known numbers of messages (published through the API); then:
  - sort=messages orders by the number, ties by name; sort_reverse=true reverses the whole
    order, ties included, and pages are taken from the sorted list;
  - sort=name compares bytes ("C" before "a", "e10" before "e9");
  - a dotted path (message_stats.publish, message_bytes) and a field no queue has (every
    queue counts it as 0: the order by name, reversed with sort_reverse);
  - a list answered whole (/api/vhosts) and a streamed one (/api/channels) sort too;
  - use_regex=true filters by a case-insensitive pattern; a malformed one is a 400;
  - publishing with confirms raises message_stats.confirm in /api/overview and on the
    channel, and after two samples the overview's confirm rate.

Passes against RabbitMQ 3.10.8 too (AMQP_HOST, AMQP_PORT, MGMT_URL; WARREN unset). Prints
one line per check; exits 1 at the first failure.
"""

import base64
import http.client
import json
import os
import sys
import time
import traceback
import urllib.parse

import pika

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
MGMT = urllib.parse.urlsplit(os.environ.get("MGMT_URL", "http://127.0.0.1:15672"))
AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()
PREFIX = "sort%d." % os.getpid()
# name -> messages: names chosen so that byte order and number order differ
QUEUES = {"b": 3, "a": 1, "C": 0, "d": 5, "e10": 2, "e9": 1}
CHECKS = []


class CheckFailed(Exception):
    pass


def check(fn):
    CHECKS.append(fn)
    return fn


def expect_eq(got, want, what):
    if got != want:
        raise CheckFailed("%s: got %r, expected %r" % (what, got, want))


def call(method, path, body=None):
    conn = http.client.HTTPConnection(MGMT.hostname, MGMT.port, timeout=60)
    headers = {"Authorization": AUTH}
    if body is not None:
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def get_json(path):
    status, data = call("GET", path)
    expect_eq(status, 200, "GET %s (%r)" % (path, data[:200]))
    return json.loads(data)


def ours(items):
    """The short names of our queues, in the order listed."""
    return [q["name"][len(PREFIX):] for q in items if q["name"].startswith(PREFIX)]


def listed(query):
    return ours(get_json("/api/queues/%2F?" + query))


def paged(query, page, size):
    r = get_json("/api/queues/%%2F?%s&page=%d&page_size=%d&name=%s" % (query, page, size, PREFIX))
    return r, ours(r["items"])


def by_number_then_name(reverse=False):
    names = sorted(QUEUES, key=lambda n: (QUEUES[n], n.encode()))
    return names[::-1] if reverse else names


@check
def setup():
    for name, n in QUEUES.items():
        status, data = call("PUT", "/api/queues/%2F/" + PREFIX + name, {"durable": False})
        expect_eq(status in (201, 204), True, "PUT queue %s (%s %r)" % (name, status, data))
        for i in range(n):
            status, data = call("POST", "/api/exchanges/%2F/amq.default/publish", {
                "routing_key": PREFIX + name, "payload": "x" * (i + 1), "properties": {},
                "payload_encoding": "string"})
            expect_eq(status, 200, "publish (%r)" % data)
    # RabbitMQ shows queue figures as its statistics are emitted (every 5 s): wait for them.
    deadline = time.time() + 30
    while True:
        queues = get_json("/api/queues/%2F")
        seen = {q["name"][len(PREFIX):]: (q.get("messages"), q.get("message_stats", {}).get("publish", 0))
                for q in queues if q["name"].startswith(PREFIX)}
        if seen == {n: (k, k) for n, k in QUEUES.items()}:
            break
        if time.time() > deadline:
            raise CheckFailed("queue figures: %r" % seen)
        time.sleep(0.5)


@check
def sort_by_number_ties_by_name():
    expect_eq(listed("sort=messages"), by_number_then_name(), "sort=messages")
    expect_eq(listed("sort=messages&sort_reverse=true"), by_number_then_name(True),
              "sort=messages&sort_reverse=true")


@check
def sort_by_name_compares_bytes():
    expect_eq(listed("sort=name"), ["C", "a", "b", "d", "e10", "e9"], "sort=name")
    expect_eq(listed("sort=name&sort_reverse=true"), ["e9", "e10", "d", "b", "a", "C"],
              "sort=name reversed")
    expect_eq(listed("sort=name&sort_reverse=false"), ["C", "a", "b", "d", "e10", "e9"],
              "sort_reverse=false")


@check
def sort_by_dotted_path_and_missing_field():
    expect_eq(listed("sort=message_stats.publish"), by_number_then_name(),
              "sort=message_stats.publish")
    # Each message i of a queue has i+1 bytes: totals 6, 1, 0, 15, 3, 1.
    expect_eq(listed("sort=message_bytes&sort_reverse=true"), ["d", "b", "e10", "e9", "a", "C"],
              "sort=message_bytes reversed")
    # A field no queue has counts as 0 for all: the order by name, and reversed.
    expect_eq(listed("sort=no_such.field"), ["C", "a", "b", "d", "e10", "e9"], "missing field")
    expect_eq(listed("sort=no_such_field&sort_reverse=true"),
              ["e9", "e10", "d", "b", "a", "C"], "missing field reversed")


@check
def sorted_before_paged():
    want = by_number_then_name(True)
    got = []
    for page in (1, 2, 3):
        r, names = paged("sort=messages&sort_reverse=true", page, 2)
        expect_eq((r["filtered_count"], r["item_count"], r["page"], r["page_count"],
                   r["page_size"]), (6, 2, page, 3, 2), "page %d's figures" % page)
        got += names
    expect_eq(got, want, "three pages of two, sorted by messages, reversed")
    r, names = paged("sort=name", 2, 4)
    expect_eq((names, r["item_count"], r["page_count"]), (["e10", "e9"], 2, 2),
              "page 2 of 4, sorted by name")


@check
def other_lists_sort():
    vhosts = [v["name"] for v in get_json("/api/vhosts?sort=name&sort_reverse=true")]
    expect_eq(vhosts, sorted(vhosts, key=str.encode, reverse=True), "/api/vhosts sorted")
    xs = [x["name"] for x in get_json("/api/exchanges/%2F?sort=type&page=1&page_size=100")["items"]
          if x["name"].startswith("amq.")]
    types = [get_json("/api/exchanges/%2F/" + n)["type"] for n in xs]
    expect_eq(types, sorted(types), "exchanges sorted by type")


@check
def regex_filter():
    r = get_json("/api/queues/%%2F?page=1&page_size=10&use_regex=true&name=%s"
                 % urllib.parse.quote("^" + PREFIX.replace(".", "\\.") + "[a-c]$"))
    expect_eq(sorted(ours(r["items"]), key=str.encode), ["C", "a", "b"], "use_regex, caseless")
    status, data = call("GET", "/api/queues/%2F?page=1&page_size=10&use_regex=true&name=(")
    expect_eq(status, 400, "a malformed pattern (%r)" % data[:200])


@check
def confirms_are_counted():
    before = get_json("/api/overview").get("message_stats", {}).get("confirm", 0)
    conn = pika.BlockingConnection(pika.ConnectionParameters(HOST, PORT))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for _ in range(20):
            ch.basic_publish("", PREFIX + "C", b"confirmed")
        deadline = time.time() + 30
        while True:
            ms = get_json("/api/overview")["message_stats"]
            channels = [c for c in get_json("/api/channels?sort=name")
                        if c.get("confirm") and c.get("message_stats", {}).get("confirm", 0) >= 20]
            if ms.get("confirm", 0) >= before + 20 and channels:
                break
            if time.time() > deadline:
                raise CheckFailed("confirm count: overview %r (was %r), channels %r" %
                                  (ms.get("confirm"), before, channels))
            time.sleep(0.5)
        expect_eq("rate" in ms.get("confirm_details", {}), True, "confirm_details.rate")
        # A rate needs two samples with confirms between them (RabbitMQ samples every 5 s).
        deadline = time.time() + 30
        while ms["confirm_details"]["rate"] <= 0:
            ch.basic_publish("", PREFIX + "C", b"confirmed")
            if time.time() > deadline:
                raise CheckFailed("no confirm rate: %r" % ms)
            time.sleep(0.5)
            ms = get_json("/api/overview")["message_stats"]
        print("  confirm %d, rate %.1f/s" % (ms["confirm"], ms["confirm_details"]["rate"]))
    finally:
        conn.close()


def cleanup():
    for name in QUEUES:
        call("DELETE", "/api/queues/%2F/" + PREFIX + name)


def main():
    failed = False
    fn = None
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
