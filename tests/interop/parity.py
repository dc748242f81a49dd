#!/usr/bin/python3
"""RabbitMQ parity checks that need users made through the management API (issue 16), as pika
and an HTTP client see them. The same checks pass against RabbitMQ 3.10 with its management
plugin (AMQP_HOST, AMQP_PORT, MGMT_URL): they say what RabbitMQ does.

- the impersonator tag: a user with it may publish with a user-id other than its own; a user
  without it gets channel.close 406.
- connections carry every client property the client sent, and the name it gave the connection
  as user_provided_name, in the API and in warrenctl list_connections.
- set_vm_memory_high_watermark at runtime (Warren only: RabbitMQ does it through rabbitmqctl,
  Warren through its API and warrenctl): publishers are blocked at once under a watermark
  below what the broker uses, and unblocked when it is raised again.

Prints one line per check; exits 1 at the first failure.
"""

import base64
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse

import pika
import pika.exceptions

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
MGMT = urllib.parse.urlsplit(os.environ.get("MGMT_URL", "http://127.0.0.1:15672"))
PREFIX = "parity.%d" % os.getpid()
WARRENCTL = os.environ.get("WARRENCTL", "warrenctl")


def call_json(method, path, body=None, auth=("guest", "guest")):
    conn = http.client.HTTPConnection(MGMT.hostname, MGMT.port, timeout=10)
    token = base64.b64encode(("%s:%s" % auth).encode()).decode()
    headers = {"Authorization": "Basic " + token, "Content-Type": "application/json"}
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    r = conn.getresponse()
    status, data = r.status, r.read()
    conn.close()
    return status, (json.loads(data) if data else None)


def call(method, path, body=None, auth=("guest", "guest")):
    return call_json(method, path, body, auth)[0]


def expect(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)


def make_user(name, tags):
    expect(call("PUT", "/api/users/" + name, {"password": "pw", "tags": tags}) in (201, 204),
           "create user %s" % name)
    expect(call("PUT", "/api/permissions/%2F/" + name,
                {"configure": ".*", "write": ".*", "read": ".*"}) in (201, 204),
           "permissions of %s" % name)


def publish_as(user, claimed, queue):
    """Publishes to queue as user with user-id claimed; None if delivered, else the close."""
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        HOST, PORT, credentials=pika.PlainCredentials(user, "pw")))
    ch = conn.channel()
    ch.confirm_delivery()
    try:
        ch.basic_publish("", queue, b"hello", pika.BasicProperties(user_id=claimed))
        conn.close()
        return None
    except pika.exceptions.ChannelClosedByBroker as e:
        conn.close()
        return (e.reply_code, e.reply_text)


def impersonator_may_claim_another_user_id():
    relay, plain = PREFIX + ".relay", PREFIX + ".plain"
    queue = PREFIX + ".q"
    make_user(relay, "impersonator")
    make_user(plain, "")
    try:
        conn = pika.BlockingConnection(pika.ConnectionParameters(HOST, PORT))
        ch = conn.channel()
        ch.queue_declare(queue)
        expect(publish_as(relay, "someone-else", queue) is None,
               "an impersonator's publish with another user-id is refused")
        m = ch.basic_get(queue, auto_ack=True)
        expect(m[0] is not None and m[1].user_id == "someone-else",
               "the impersonator's message arrives with the user-id it claimed: %r" % (m,))
        closed = publish_as(plain, "someone-else", queue)
        expect(closed is not None and closed[0] == 406 and
               closed[1] == "PRECONDITION_FAILED - user_id property set to 'someone-else' but "
                            "authenticated user was '%s'" % plain,
               "a user without the tag claiming another user-id: %r" % (closed,))
        ch.queue_delete(queue)
        conn.close()
    finally:
        call("DELETE", "/api/users/" + relay)
        call("DELETE", "/api/users/" + plain)
    print("ok impersonator_may_claim_another_user_id")


def connections_show_client_properties():
    conn_name = PREFIX + ".orders-service"
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        HOST, PORT, client_properties={"connection_name": conn_name, "team": "payments"}))
    found = None
    for _ in range(50):  # RabbitMQ lists a connection after a stats interval
        status, conns = call_json("GET", "/api/connections")
        found = [c for c in conns or [] if c.get("user_provided_name") == conn_name]
        if found:
            break
        time.sleep(0.2)
    expect(found, "no connection with user_provided_name %s in /api/connections" % conn_name)
    props = found[0]["client_properties"]
    expect(props.get("connection_name") == conn_name and props.get("team") == "payments",
           "client_properties carry what the client sent: %r" % props)
    expect(props.get("product") == "Pika Python Client Library" and
           props.get("capabilities", {}).get("connection.blocked") is True,
           "pika's own properties and capabilities: %r" % props)
    if os.environ.get("WARREN") == "1":
        p = warrenctl("list_connections", "user_provided_name", "user")
        expect(p.returncode == 0 and conn_name in p.stdout,
               "warrenctl list_connections user_provided_name: %r" % (p,))
    conn.close()
    print("ok connections_show_client_properties")


def warrenctl(*args):
    base = [WARRENCTL, "--host", MGMT.hostname, "--port", str(MGMT.port), "--user", "guest",
            "--password", "guest"]
    return subprocess.run(base + list(args), capture_output=True, text=True, timeout=30)


def memory_watermark_changes_at_runtime():
    blocked = []
    conn = pika.BlockingConnection(pika.ConnectionParameters(HOST, PORT))
    conn.add_on_connection_blocked_callback(lambda c, m: blocked.append(True))
    conn.add_on_connection_unblocked_callback(lambda c, m: blocked.append(False))
    ch = conn.channel()
    # A watermark far below what the broker uses: the alarm is set at once.
    p = warrenctl("set_vm_memory_high_watermark", "absolute", "1MB")
    expect(p.returncode == 0, "warrenctl set_vm_memory_high_watermark absolute 1MB: %r" % (p,))
    status, w = call_json("GET", "/api/vm-memory-high-watermark")
    expect(status == 200 and w["absolute"] == 1000000 and w["alarm"] is True,
           "the watermark and the alarm after absolute 1MB: %r" % (w,))
    ch.basic_publish("", PREFIX + ".none", b"makes this connection a publisher")
    for _ in range(50):
        conn.process_data_events(time_limit=0.1)
        if blocked:
            break
    expect(blocked[:1] == [True], "connection.blocked under the lowered watermark: %r" % blocked)
    # Raised again: unblocked at once.
    p = warrenctl("set_vm_memory_high_watermark", "0.9")
    expect(p.returncode == 0, "warrenctl set_vm_memory_high_watermark 0.9: %r" % (p,))
    for _ in range(50):
        conn.process_data_events(time_limit=0.1)
        if blocked[-1:] == [False]:
            break
    expect(blocked[-1:] == [False], "connection.unblocked once raised: %r" % blocked)
    status, w = call_json("GET", "/api/vm-memory-high-watermark")
    expect(w["relative"] == 0.9 and w["absolute"] is None and w["alarm"] is False,
           "the watermark after 0.9: %r" % (w,))
    conn.close()
    # Bad values: a usage error from warrenctl, 400 from the API.
    p = warrenctl("set_vm_memory_high_watermark", "1.5")
    expect(p.returncode != 0 and "from 0 to 1" in p.stderr, "fraction 1.5 refused: %r" % (p,))
    p = warrenctl("set_vm_memory_high_watermark", "absolute", "lots")
    expect(p.returncode != 0, "absolute lots refused: %r" % (p,))
    expect(call("PUT", "/api/vm-memory-high-watermark", {"relative": "high"}) == 400,
           "relative 'high' refused with 400")
    expect(call("PUT", "/api/vm-memory-high-watermark", {}) == 400, "an empty body refused")
    expect(call("PUT", "/api/vm-memory-high-watermark", {"relative": 0.4}) == 204, "back to 0.4")
    print("ok memory_watermark_changes_at_runtime")


if __name__ == "__main__":
    impersonator_may_claim_another_user_id()
    connections_show_client_properties()
    if os.environ.get("WARREN") == "1":
        memory_watermark_changes_at_runtime()
