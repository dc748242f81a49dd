#!/usr/bin/python3
"""RabbitMQ parity checks that need users made through the management API (issue 16), as pika
and an HTTP client see them. The same checks pass against RabbitMQ 3.10 with its management
plugin (AMQP_HOST, AMQP_PORT, MGMT_URL): they say what RabbitMQ does.

- the impersonator tag: a user with it may publish with a user-id other than its own; a user
  without it gets channel.close 406.

Prints one line per check; exits 1 at the first failure.
"""

import base64
import http.client
import json
import os
import sys
import urllib.parse

import pika
import pika.exceptions

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
MGMT = urllib.parse.urlsplit(os.environ.get("MGMT_URL", "http://127.0.0.1:15672"))
PREFIX = "parity.%d" % os.getpid()


def call(method, path, body=None, auth=("guest", "guest")):
    conn = http.client.HTTPConnection(MGMT.hostname, MGMT.port, timeout=10)
    token = base64.b64encode(("%s:%s" % auth).encode()).decode()
    headers = {"Authorization": "Basic " + token, "Content-Type": "application/json"}
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    r = conn.getresponse()
    status = r.status
    r.read()
    conn.close()
    return status


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


if __name__ == "__main__":
    impersonator_may_claim_another_user_id()
