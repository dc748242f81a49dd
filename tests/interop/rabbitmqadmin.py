#!/usr/bin/python3
"""rabbitmqadmin against the broker's management API: every command that has a Warren
counterpart (list, show, declare, delete, close, purge, publish, get, export, import), run as
an operator types it, with its output and its effect checked (through the HTTP API and pika).

Run with /usr/bin/python3 (Debian's pika). Environment: RABBITMQADMIN (the script),
AMQP_HOST, AMQP_PORT, MGMT_URL, optionally MGMT_USER/MGMT_PASS (guest/guest); WARREN=1 adds
the checks of what Warren does on purpose differently. Without WARREN the same checks run
against a RabbitMQ 3.10 with its management plugin, to check the checks. Prints one line per
check; exits 1 at the first failure.
"""

import base64
import hashlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

import pika
import pika.exceptions

from checks import CheckFailed, expect, expect_eq

ADMIN = os.environ["RABBITMQADMIN"]
AMQP_HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("AMQP_PORT", "5672"))
MGMT = urllib.parse.urlsplit(os.environ.get("MGMT_URL", "http://127.0.0.1:15672"))
USER = os.environ.get("MGMT_USER", "guest")
PASS = os.environ.get("MGMT_PASS", "guest")
WARREN = os.environ.get("WARREN") == "1"
PREFIX = "admin.%d" % os.getpid()
VHOST = PREFIX + ".v"  # most objects live here; deleting it at the end deletes them
USERS = []
TMP = tempfile.mkdtemp(prefix="warren-rabbitmqadmin.")


def q(s):
    return urllib.parse.quote(s, safe="")


# ---- Running rabbitmqadmin ------------------------------------------------------------


def admin(*args, vhost=None, fmt=None, stdin=None):
    """rabbitmqadmin's (exit status, stdout, stderr) for one command line."""
    cmd = ["/usr/bin/python3", ADMIN, "-H", MGMT.hostname, "-P", str(MGMT.port),
           "-u", USER, "-p", PASS]
    if vhost is not None:
        cmd += ["-V", vhost]
    if fmt is not None:
        cmd += ["-f", fmt]
    cmd += list(args)
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def ok(*args, **kw):
    """stdout of a command that must succeed."""
    status, out, err = admin(*args, **kw)
    if status != 0:
        raise CheckFailed("rabbitmqadmin %s: exit %d\n%s%s" % (" ".join(args), status, out, err))
    return out


def refused(want, *args, **kw):
    """A command that must fail (exit 1) saying want (rabbitmqadmin's '*** ' line)."""
    status, out, err = admin(*args, **kw)
    expect_eq((status, err.strip()), (1, "*** " + want), "rabbitmqadmin %s" % " ".join(args))


def says(want, *args, **kw):
    expect_eq(ok(*args, **kw).strip(), want, "rabbitmqadmin %s" % " ".join(args))


def rows(*args, **kw):
    """A listing in rabbitmqadmin's tsv format, as dicts of its columns (all strings)."""
    out = ok(*args, fmt="tsv", **kw)
    if out.strip() == "No items":
        return []
    lines = out.rstrip("\n").split("\n")
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"))) for line in lines[1:]]


def raw(*args, **kw):
    """A listing as the JSON rabbitmqadmin received (-f raw_json)."""
    return json.loads(ok(*args, fmt="raw_json", **kw))


# ---- The broker seen otherwise --------------------------------------------------------


def request(method, path, user=USER, password=PASS):
    conn = http.client.HTTPConnection(MGMT.hostname, MGMT.port, timeout=10)
    token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    conn.request(method, path, headers={"Authorization": "Basic " + token})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, (json.loads(body) if body else None)


def api(path):
    status, body = request("GET", path)
    expect_eq(status, 200, "GET %s" % path)
    return body


def amqp(vhost="/", name=None):
    props = {"connection_name": name} if name else None
    return pika.BlockingConnection(pika.ConnectionParameters(
        AMQP_HOST, AMQP_PORT, virtual_host=vhost, client_properties=props,
        credentials=pika.PlainCredentials(USER, PASS)))


def wait_for(what, fn, timeout_s=10):
    """fn() until it returns a true value; RabbitMQ's listings lag behind a few seconds."""
    deadline = time.time() + timeout_s
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise CheckFailed("timed out waiting for " + what)
        time.sleep(0.2)


def messages_of(queue, vhost=VHOST):
    return {r["name"]: r["messages"] for r in rows("list", "queues", "name", "messages",
                                                   vhost=vhost)}.get(queue)


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


# ---- The checks -----------------------------------------------------------------------


@check
def show_overview():
    lines = ok("show", "overview").splitlines()
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in (lines[1], lines[3])]
    o = api("/api/overview")
    expect_eq(cells, [["rabbitmq_version", "cluster_name", "queue_totals.messages",
                       "object_totals.queues"],
                      [o["rabbitmq_version"], o["cluster_name"],
                       str(o["queue_totals"]["messages"]), str(o["object_totals"]["queues"])]],
              "the table")
    refused_status = admin("list", "overview")[0]
    expect_eq(refused_status, 1, "list overview is not a command")


@check
def vhosts_users_and_permissions():
    says("vhost declared", "declare", "vhost", "name=" + VHOST)
    expect(VHOST in [r["name"] for r in rows("list", "vhosts", "name")], "vhost listed")
    says("vhost declared", "declare", "vhost", "name=" + VHOST, "tracing=false")
    if WARREN:
        refused("tracing is not supported: Warren has no firehose (amq.rabbitmq.trace)",
                "declare", "vhost", "name=" + PREFIX + ".traced", "tracing=true")

    u1, u2 = PREFIX + ".u1", PREFIX + ".u2"
    USERS.extend([u1, u2])
    says("user declared", "declare", "user", "name=" + u1, "password=p1",
         "tags=monitoring,management")
    salt = os.urandom(4)
    hashed = base64.b64encode(salt + hashlib.sha256(salt + b"secret").digest()).decode()
    says("user declared", "declare", "user", "name=" + u2, "password_hash=" + hashed,
         "hashing_algorithm=rabbit_password_hashing_sha256", "tags=")
    users = {r["name"]: r for r in rows("list", "users", "name", "tags")}
    expect_eq((users[u1]["tags"], users[u2]["tags"]), ("monitoring management", ""), "tags")
    expect_eq(request("GET", "/api/whoami", u1, "p1")[0], 200, "u1 logs in with its password")
    expect_eq(request("GET", "/api/whoami", u2, "secret")[0], 401, "u2 has no management tag")
    says("permission declared", "declare", "permission", "vhost=" + VHOST, "user=" + u2,
         "configure=.*", "write=^a", "read=")
    perms = [r for r in rows("list", "permissions", "vhost", "user", "configure", "write",
                             "read") if r["user"] == u2]
    expect_eq(perms, [{"vhost": VHOST, "user": u2, "configure": ".*", "write": "^a",
                       "read": ""}], "u2's permissions")
    # Its password hash was taken as given: u2 logs in over AMQP with "secret".
    pika.BlockingConnection(pika.ConnectionParameters(
        AMQP_HOST, AMQP_PORT, virtual_host=VHOST,
        credentials=pika.PlainCredentials(u2, "secret"))).close()
    says("permission deleted", "delete", "permission", "vhost=" + VHOST, "user=" + u2)
    expect_eq([r for r in rows("list", "permissions", "vhost", "user") if r["user"] == u2], [],
              "u2 has no permission left")
    says("user deleted", "delete", "user", "name=" + u2)
    USERS.remove(u2)
    expect(u2 not in [r["name"] for r in rows("list", "users", "name")], "u2 deleted")
    refused("Not found: /api/users/" + q(u2), "delete", "user", "name=" + u2)


@check
def exchanges_queues_and_bindings():
    v = {"vhost": VHOST}
    says("exchange declared", "declare", "exchange", "name=x", "type=topic", **v)
    says("exchange declared", "declare", "exchange", "name=x2", "type=fanout", "durable=false",
         "internal=true", **v)
    says("queue declared", "declare", "queue", "name=q", "durable=false",
         "arguments={\"x-max-length\": 10}", **v)
    says("queue declared", "declare", "queue", "name=q2", "queue_type=classic",
         "auto_delete=false", **v)
    xs = {r["name"]: r for r in rows("list", "exchanges", "name", "type", "durable", "internal",
                                     **v)}
    expect_eq((xs["x"]["type"], xs["x"]["durable"], xs["x2"]["durable"], xs["x2"]["internal"]),
              ("topic", "True", "False", "True"), "exchanges")
    qd = api("/api/queues/%s/q" % q(VHOST))
    expect_eq((qd["durable"], qd["arguments"]), (False, {"x-max-length": 10}), "queue q")
    qd = api("/api/queues/%s/q2" % q(VHOST))
    expect_eq((qd["durable"], qd["arguments"].get("x-queue-type")), (True, "classic"),
              "queue q2")
    says("binding declared", "declare", "binding", "source=x", "destination=q",
         "routing_key=a.*", **v)
    says("binding declared", "declare", "binding", "source=x", "destination=x2",
         "destination_type=exchange", "routing_key=k", **v)
    says("binding declared", "declare", "binding", "source=x", "destination=q", **v)

    def bindings():
        return sorted((r["source"], r["destination"], r["destination_type"], r["routing_key"])
                      for r in rows("list", "bindings", "source", "destination",
                                    "destination_type", "routing_key", **v) if r["source"])
    expect_eq(bindings(), [("x", "q", "queue", ""), ("x", "q", "queue", "a.*"),
                           ("x", "x2", "exchange", "k")], "bindings")
    says("binding deleted", "delete", "binding", "source=x", "destination_type=queue",
         "destination=q", "properties_key=a.*", **v)
    says("binding deleted", "delete", "binding", "source=x", "destination_type=queue",
         "destination=q", **v)  # properties_key ~: the empty routing key
    says("binding deleted", "delete", "binding", "source=x", "destination_type=exchange",
         "destination=x2", "properties_key=k", **v)
    expect_eq(bindings(), [], "bindings deleted")
    says("binding declared", "declare", "binding", "source=x", "destination=q",
         "routing_key=a.*", **v)
    says("queue deleted", "delete", "queue", "name=q2", **v)
    says("exchange deleted", "delete", "exchange", "name=x2", **v)
    expect_eq(sorted(r["name"] for r in rows("list", "queues", "name", **v)), ["q"],
              "q2 deleted")
    refused("Not found: /api/queues/%s/nosuch" % q(VHOST), "delete", "queue", "name=nosuch",
            **v)


@check
def publish_get_and_purge():
    v = {"vhost": VHOST}
    says("Message published", "publish", "exchange=x", "routing_key=a.b", "payload=hello",
         "properties={\"content_type\": \"text/plain\", \"headers\": {\"h\": \"v\"},"
         " \"delivery_mode\": 2}", **v)
    says("Message published but NOT routed", "publish", "exchange=x", "routing_key=b.c",
         "payload=lost", **v)
    says("Message published", "publish", "routing_key=q", stdin="from stdin", **v)
    wait_for("2 messages in q", lambda: messages_of("q") == "2")

    got = rows("get", "queue=q", **v)  # count "1", ackmode ack_requeue_true
    expect_eq([(m["payload"], m["redelivered"], m["exchange"], m["routing_key"],
                m["message_count"], m["payload_bytes"], m["payload_encoding"]) for m in got],
              [("hello", "False", "x", "a.b", "1", "5", "string")], "get")
    got = raw("get", "queue=q", "count=2", "ackmode=ack_requeue_false", **v)
    expect_eq([(m["payload"], m["redelivered"]) for m in got],
              [("hello", True), ("from stdin", False)], "get count=2")
    expect_eq((got[0]["properties"]["content_type"], got[0]["properties"]["headers"],
               got[0]["properties"]["delivery_mode"]), ("text/plain", {"h": "v"}, 2),
              "properties")
    says("No items", "get", "queue=q", **v)

    for body in ("one", "two", "three"):
        ok("publish", "routing_key=q", "payload=" + body, **v)
    got = rows("get", "queue=q", "count=1", "ackmode=reject_requeue_true", "encoding=base64",
               **v)
    expect_eq([(m["payload"], m["payload_encoding"]) for m in got],
              [(base64.b64encode(b"one").decode(), "base64")], "get encoding=base64")
    path = os.path.join(TMP, "payload")
    got = rows("get", "queue=q", "payload_file=" + path, "ackmode=ack_requeue_false", **v)
    expect_eq([(m["routing_key"], m["payload_bytes"], m["redelivered"]) for m in got],
              [("q", "3", "True")], "get payload_file")
    with open(path, "rb") as f:
        expect_eq(f.read(), b"one", "the payload file")
    refused("['not_integer', 'ten']", "get", "queue=q", "count=ten", **v)
    says("queue purged", "purge", "queue", "name=q", **v)
    wait_for("q purged", lambda: messages_of("q") == "0")


@check
def policies():
    v = {"vhost": VHOST}
    says("policy declared", "declare", "policy", "name=p", "pattern=^q$",
         "definition={\"max-length\": 1}", "priority=3", "apply-to=queues", **v)
    ps = [r for r in rows("list", "policies", "name", "pattern", "definition", "priority",
                          "apply-to", **v) if r.get("name") == "p"]
    expect_eq(ps, [{"name": "p", "pattern": "^q$", "definition": "{\"max-length\": 1}",
                    "priority": "3", "apply-to": "queues"}], "the policy")
    for body in ("a", "b"):
        ok("publish", "routing_key=q", "payload=" + body, **v)
    wait_for("q at its max-length 1", lambda: messages_of("q") == "1")
    expect_eq([m["payload"] for m in raw("get", "queue=q", "count=5", **v)], ["b"],
              "the policy dropped the head")
    says("policy deleted", "delete", "policy", "name=p", **v)
    expect_eq([r for r in rows("list", "policies", "name", **v) if r.get("name") == "p"], [],
              "policy deleted")

    says("operator_policy declared", "declare", "operator_policy", "name=op", "pattern=^q$",
         "definition={\"max-length\": 100}", "apply-to=queues", **v)
    ops = [r for r in rows("list", "operator_policies", "name", "vhost", "definition", **v)
           if r.get("name") == "op"]
    expect_eq(ops, [{"name": "op", "vhost": VHOST, "definition": "{\"max-length\": 100}"}],
              "the operator policy")
    says("operator_policy deleted", "delete", "operator_policy", "name=op", **v)
    ok("purge", "queue", "name=q", **v)


def refused_login(vhost):
    try:
        amqp(vhost).close()
    except pika.exceptions.AMQPError:
        return True
    return False


@check
def vhost_limits_and_parameters():
    says("vhost_limit declared", "declare", "vhost_limit", "vhost=" + VHOST,
         "name=max-connections", "value=0")
    says("vhost_limit declared", "declare", "vhost_limit", "vhost=" + VHOST, "name=max-queues",
         "value=20")
    lim = [r for r in rows("list", "vhost_limits") if r["vhost"] == VHOST]
    expect_eq([json.loads(r["value"]) for r in lim], [{"max-connections": 0, "max-queues": 20}],
              "the vhost's limits")
    expect(refused_login(VHOST), "max-connections 0 refuses a connection")
    params = [r for r in rows("list", "parameters") if r["vhost"] == VHOST]
    expect_eq([(r["component"], r["name"], json.loads(r["value"])) for r in params],
              [("vhost-limits", "limits", {"max-connections": 0, "max-queues": 20})],
              "the vhost-limits parameter")
    says("vhost_limit deleted", "delete", "vhost_limit", "vhost=" + VHOST,
         "name=max-connections")
    expect(not refused_login(VHOST), "no max-connections any more")
    refused("Validation failed\n\nmax-queues should be a number, actually was <<\"x\">>",
            "declare", "vhost_limit", "vhost=" + VHOST, "name=max-queues", "value=\"x\"")
    # Warren has no federation: refused as RabbitMQ refuses it without its plugin.
    refused("Validation failed\n\ncomponent federation-upstream not found",
            "declare", "parameter", "component=federation-upstream", "name=up",
            "value={\"uri\": \"amqp://\"}", vhost=VHOST)
    says("parameter declared", "declare", "parameter", "component=vhost-limits", "name=limits",
         "value={\"max-queues\": 5}", vhost=VHOST)
    lim = [r for r in rows("list", "vhost_limits") if r["vhost"] == VHOST]
    expect_eq([json.loads(r["value"]) for r in lim], [{"max-queues": 5}],
              "limits set through the parameter")
    says("parameter deleted", "delete", "parameter", "component=vhost-limits", "name=limits",
         vhost=VHOST)
    expect_eq([r for r in rows("list", "vhost_limits") if r["vhost"] == VHOST], [],
              "no limits left")


@check
def connections_channels_consumers_and_close():
    conn = amqp(VHOST, PREFIX + ".conn")
    ch = conn.channel()
    ch.basic_consume("q", lambda *a: None, consumer_tag=PREFIX + ".ctag")

    def mine():
        return [r for r in rows("list", "connections", "name", "user", "channels", "vhost",
                                "user_provided_name")
                if r["user_provided_name"] == PREFIX + ".conn"]
    # RabbitMQ counts the channel once its statistics are in.
    conns = wait_for("the connection listed with its channel",
                     lambda: [r for r in mine() if r["channels"] == "1"])
    expect_eq([(r["user"], r["channels"], r["vhost"]) for r in conns], [(USER, "1", VHOST)],
              "the connection")
    chans = [r for r in rows("list", "channels", "name", "user")
             if r["name"].startswith(conns[0]["name"])]
    expect_eq(len(chans), 1, "its channel")
    cons = [r for r in rows("list", "consumers", "consumer_tag", "queue.name", "ack_required",
                            vhost=VHOST) if r["consumer_tag"] == PREFIX + ".ctag"]
    expect_eq([(r["queue.name"], r["ack_required"]) for r in cons], [("q", "True")],
              "its consumer")
    says("connection closed", "close", "connection", "name=" + conns[0]["name"])
    try:
        conn.process_data_events(time_limit=5)
        raise CheckFailed("the connection stayed open")
    except pika.exceptions.ConnectionClosedByBroker as e:
        expect_eq(e.reply_code, 320, "connection.close code")
    wait_for("the connection gone", lambda: not mine())


@check
def nodes():
    node = api("/api/overview")["node"]
    expect_eq([(r["name"], r["type"]) for r in rows("list", "nodes")], [(node, "disc")],
              "the node")
    # The figures monitoring scripts read, with rabbitmqadmin's columns.
    cols = ("running", "uptime", "mem_used", "mem_limit", "fd_used", "fd_total",
            "sockets_used", "sockets_total", "disk_free", "disk_free_limit", "processors")
    got = rows("list", "nodes", "name", *cols)
    expect_eq(len(got), 1, "one node")
    expect_eq(got[0]["running"], "True", "running")
    for col in cols[1:]:
        expect(got[0][col].isdigit(), "%s is a number: %r" % (col, got[0][col]))
    expect(int(got[0]["mem_used"]) < int(got[0]["mem_limit"]), "memory under its limit")
    expect(int(got[0]["fd_used"]) <= int(got[0]["fd_total"]), "descriptors under their limit")


@check
def cluster_name_in_the_overview():
    """PUT /api/cluster-name (rabbitmqadmin 3.10 has no command for it): `show overview`
    shows the new name."""
    old = api("/api/cluster-name")["name"]
    name = PREFIX + ".cluster"
    conn = http.client.HTTPConnection(MGMT.hostname, MGMT.port, timeout=10)

    def put(n):
        token = base64.b64encode(("%s:%s" % (USER, PASS)).encode()).decode()
        conn.request("PUT", "/api/cluster-name", body=json.dumps({"name": n}),
                     headers={"Authorization": "Basic " + token,
                              "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        expect_eq(r.status, 204, "PUT /api/cluster-name")
    put(name)
    try:
        lines = ok("show", "overview").splitlines()
        expect(name in lines[3], "the cluster's name in %r" % lines[3])
    finally:
        put(old)
        conn.close()


@check
def export_and_import():
    path = os.path.join(TMP, "defs.json")
    says('Exported definitions for %s to "%s"' % (MGMT.hostname, path), "export", path)
    with open(path) as f:
        defs = json.load(f)
    expect(VHOST in [v["name"] for v in defs["vhosts"]], "the vhost exported")
    expect_eq([(x["name"], x["vhost"]) for x in defs["queues"] if x["vhost"] == VHOST],
              [("q", VHOST)], "its queue exported")
    ok("declare", "policy", "name=p", "pattern=^q$", "definition={\"max-length\": 5}",
       vhost=VHOST)
    vpath = os.path.join(TMP, "vhost.json")
    ok("export", vpath, vhost=VHOST)
    with open(vpath) as f:
        vdefs = json.load(f)
    expect_eq(([x["name"] for x in vdefs["queues"]], [p["name"] for p in vdefs["policies"]]),
              (["q"], ["p"]), "the vhost's export")
    ok("delete", "queue", "name=q", vhost=VHOST)
    ok("delete", "policy", "name=p", vhost=VHOST)
    ok("delete", "exchange", "name=x", vhost=VHOST)
    expect(ok("import", vpath, vhost=VHOST).startswith('Uploaded definitions from "'),
           "import of the vhost's definitions")
    expect_eq(([r["name"] for r in rows("list", "queues", "name", vhost=VHOST)],
               [r["name"] for r in rows("list", "policies", "name", vhost=VHOST)]),
              (["q"], ["p"]), "queue and policy back")
    ok("delete", "queue", "name=q", vhost=VHOST)
    ok("import", path)
    expect_eq([r["name"] for r in rows("list", "queues", "name", vhost=VHOST)], ["q"],
              "queue back from the whole export")
    expect(("x", "q", "a.*") in [(r["source"], r["destination"], r["routing_key"])
                                 for r in rows("list", "bindings", "source", "destination",
                                               "routing_key", vhost=VHOST)],
           "binding back")


@check
def output_formats():
    v = {"vhost": VHOST}
    expect_eq(ok("list", "queues", "name", "messages", fmt="kvp", **v), 'name="q" messages="0"\n',
              "kvp")
    expect_eq(ok("list", "queues", fmt="bash", **v), "q\n", "bash")
    out = ok("list", "queues", "name", fmt="long", **v)
    expect("name: q" in out, "long: %r" % out)
    expect_eq([x["name"] for x in json.loads(ok("list", "queues", fmt="pretty_json", **v))],
              ["q"], "pretty_json")
    table = ok("list", "queues", **v).splitlines()
    expect_eq(table[1], "| name | messages |", "table head")
    expect_eq(table[3], "| q    | 0        |", "table row")


@check
def delete_the_vhost():
    says("vhost deleted", "delete", "vhost", "name=" + VHOST)
    expect(VHOST not in [r["name"] for r in rows("list", "vhosts", "name")], "vhost deleted")
    refused("Not found: /api/vhosts/" + q(VHOST), "delete", "vhost", "name=" + VHOST)


def cleanup():
    for u in USERS:
        try:
            request("DELETE", "/api/users/" + q(u))
        except OSError:
            pass
    try:
        request("DELETE", "/api/vhosts/" + q(VHOST))
    except OSError:
        pass
    for name in os.listdir(TMP):
        os.unlink(os.path.join(TMP, name))
    os.rmdir(TMP)


def main():
    failed = False
    try:
        for fn in CHECKS:
            fn()
            print("ok: %s" % fn.__name__)
    except CheckFailed as e:
        print("FAIL: %s: %s" % (fn.__name__, e))
        failed = True
    except Exception:  # a broken reply (no JSON, a missing field) fails the check too
        print("FAIL: %s:" % fn.__name__)
        traceback.print_exc(file=sys.stdout)
        failed = True
    finally:
        cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
