#!/usr/bin/python3
"""Every endpoint of RabbitMQ 3.10's HTTP API reference that Warren serves, one table row each:
the status every kind of user gets (administrator, monitoring, management, policymaker, a
management user without access to the test vhost, no credentials) and the JSON keys of the
answer. The same table runs against Warren and against RabbitMQ 3.10.8, so that a row is
RabbitMQ's behaviour, not our guess of it; a row that differs on purpose says so with
rabbitmq= (what RabbitMQ answers) or warren_only.

Run with /usr/bin/python3 (Debian's pika). Environment: AMQP_HOST, AMQP_PORT, MGMT_URL (the
broker and its management API), optionally MGMT_USER/MGMT_PASS (an administrator,
guest/guest); WARREN=1 when the broker is Warren. Prints one line per row; exits 1 if any
row failed.
"""

import base64
import http.client
import json
import os
import sys
import time
import urllib.parse

import pika

AMQP_HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("AMQP_PORT", "5672"))
MGMT = urllib.parse.urlsplit(os.environ.get("MGMT_URL", "http://127.0.0.1:15672"))
ADMIN = (os.environ.get("MGMT_USER", "guest"), os.environ.get("MGMT_PASS", "guest"))
WARREN = os.environ.get("WARREN") == "1"
TAG = "ep%d" % os.getpid()
V = TAG + ".vh"  # the test vhost
PASSWORD = "ep-pass"
# The users of the table, by role: their tags, and whether they have permissions in V.
ROLES = {
    "admin": None,  # the administrator of the environment
    "mon": ("monitoring", True),
    "mgmt": ("management", True),
    "pm": ("policymaker", True),
    "outsider": ("management", False),
    "anon": None,  # no credentials
}


def q(s):
    return urllib.parse.quote(s, safe="")


def user_of(role):
    return ADMIN[0] if role == "admin" else "%s.%s" % (TAG, role)


def call(method, path, body=None, role="admin"):
    """(status, decoded JSON or None) of one request."""
    conn = http.client.HTTPConnection(MGMT.hostname, MGMT.port, timeout=20)
    headers = {}
    if role != "anon":
        auth = ADMIN if role == "admin" else (user_of(role), PASSWORD)
        headers["Authorization"] = "Basic " + base64.b64encode(
            ("%s:%s" % auth).encode()).decode()
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    try:
        return r.status, (json.loads(raw) if raw else None)
    except ValueError:
        return r.status, raw


def must(method, path, body=None, ok=(200, 201, 204)):
    status, reply = call(method, path, body)
    if status not in ok:
        raise SystemExit("set-up: %s %s answered %d %r" % (method, path, status, reply))
    return reply


# ---- The table -----------------------------------------------------------------------------
#
# Each row: method, path ({V} the test vhost, {node}, {port} the AMQP port, {conn} the test
# connection, {u} the management user, {x} {x2} {q} test exchanges and queue), the status
# for each role (a dict; "others" for the roles not named), the keys the administrator's
# answer must have (of the object, or of each element of a list, which must not be empty
# then), and options: body, rabbitmq (role -> status where RabbitMQ 3.10.8 answers
# otherwise, a bug of its own), warren_only.

ALL_OK = {"others": 200, "anon": 401}
ADMIN_ONLY = {"admin": 200, "others": 401}
MONITOR = {"admin": 200, "mon": 200, "others": 401}
POLICY = {"admin": 200, "pm": 200, "others": 401}
IN_VHOST = {"admin": 200, "mon": 200, "mgmt": 200, "pm": 200, "outsider": 401, "anon": 401}
HEALTH_503 = {"others": 503, "anon": 401}

ROWS = [
    ("GET", "/api/overview", ALL_OK, {"management_version", "cluster_name", "node",
                                      "listeners", "exchange_types", "object_totals"}),
    ("GET", "/api/cluster-name", ALL_OK, {"name"}),
    ("GET", "/api/nodes", MONITOR, {"name", "type", "running", "mem_used", "mem_limit",
                                    "mem_alarm", "disk_free", "disk_free_limit",
                                    "disk_free_alarm", "fd_used", "fd_total", "sockets_used",
                                    "sockets_total", "uptime", "processors", "exchange_types",
                                    "os_pid", "partitions", "auth_mechanisms", "contexts"}),
    ("GET", "/api/nodes/{node}", MONITOR, {"name", "running", "uptime", "mem_used"}),
    ("GET", "/api/nodes/no-such-node@nowhere", {"admin": 404, "mon": 404, "others": 401}, set(),
     {"rabbitmq": {"admin": 500, "mon": 500}}),
    ("GET", "/api/extensions", ALL_OK, set()),
    ("GET", "/api/auth", {"others": 200}, {"enable_uaa", "uaa_client_id", "uaa_location"}),
    ("GET", "/api/definitions", ADMIN_ONLY, {"users", "vhosts", "permissions",
                                             "topic_permissions", "parameters",
                                             "global_parameters", "policies", "queues",
                                             "exchanges", "bindings"}),
    ("GET", "/api/definitions/{V}", ADMIN_ONLY, {"queues", "exchanges", "bindings",
                                                 "policies", "parameters"}),
    ("GET", "/api/connections", ALL_OK, set()),
    ("GET", "/api/vhosts/{V}/connections", IN_VHOST, {"name", "vhost", "user", "state",
                                                      "channels", "peer_host", "peer_port"}),
    ("GET", "/api/vhosts/no-such-vhost/connections", {"others": 404, "anon": 401}, set()),
    ("GET", "/api/connections/username/{u}", {"admin": 200, "mon": 200, "mgmt": 200,
                                              "others": 401},
     {"name", "user", "vhost"}, {"rabbitmq": {"mgmt": 500, "pm": 500, "outsider": 500}}),
    ("GET", "/api/connections/{conn}", {"admin": 200, "mon": 200, "mgmt": 200, "others": 401},
     {"name", "user", "vhost", "channels"}),
    ("GET", "/api/connections/{conn}/channels", {"admin": 200, "mon": 200, "mgmt": 200,
                                                 "others": 401},
     {"name", "number", "consumer_count", "prefetch_count"}),
    ("GET", "/api/channels", ALL_OK, set()),
    ("GET", "/api/vhosts/{V}/channels", IN_VHOST, {"name", "number", "vhost", "user"}),
    ("GET", "/api/consumers", ALL_OK, set()),
    ("GET", "/api/consumers/{V}", {"outsider": 200, "others": 200, "anon": 401}, {"consumer_tag", "queue", "channel_details",
                                             "ack_required", "prefetch_count"}),
    ("GET", "/api/exchanges", ALL_OK, {"name", "vhost", "type", "durable", "auto_delete",
                                       "internal", "arguments"}),
    ("GET", "/api/exchanges/{V}", IN_VHOST, {"name", "vhost", "type"}),
    ("GET", "/api/exchanges/{V}/{x}", IN_VHOST, {"name", "vhost", "type", "incoming",
                                                 "outgoing"}),
    ("GET", "/api/exchanges/{V}/{x}/bindings/source", IN_VHOST,
     {"source", "vhost", "destination", "destination_type", "routing_key", "arguments",
      "properties_key"}),
    ("GET", "/api/exchanges/{V}/{x2}/bindings/destination", IN_VHOST,
     {"source", "destination", "destination_type", "properties_key"}),
    ("GET", "/api/queues", ALL_OK, {"name", "vhost", "durable", "auto_delete", "exclusive",
                                    "arguments"}),
    ("GET", "/api/queues/{V}", IN_VHOST, {"name", "vhost"}),
    ("GET", "/api/queues/{V}/{q}", IN_VHOST, {"name", "vhost", "consumer_details"}),
    ("GET", "/api/queues/{V}/{q}/bindings", IN_VHOST, {"source", "destination",
                                                       "routing_key"}),
    ("GET", "/api/bindings", ALL_OK, {"source", "destination", "destination_type"}),
    ("GET", "/api/bindings/{V}", IN_VHOST, {"source", "destination", "destination_type"}),
    ("GET", "/api/bindings/{V}/e/{x}/q/{q}", IN_VHOST, {"source", "destination",
                                                         "properties_key"}),
    ("GET", "/api/bindings/{V}/e/{x}/e/{x2}", IN_VHOST, {"source", "destination",
                                                          "destination_type",
                                                          "properties_key"}),
    ("GET", "/api/bindings/{V}/e/{x}/e/{x2}/k1", IN_VHOST, {"source", "destination",
                                                             "routing_key", "arguments"}),
    ("GET", "/api/bindings/{V}/e/{x}/e/{x2}/nokey", {"others": 404, "outsider": 401,
                                                     "anon": 401}, set()),
    ("GET", "/api/vhosts", ALL_OK, {"name", "description", "tags", "tracing",
                                    "cluster_state"}),
    ("GET", "/api/vhosts/{V}", ADMIN_ONLY, {"name", "tracing"}),
    ("GET", "/api/vhosts/{V}/permissions", ADMIN_ONLY, {"user", "vhost", "configure", "write",
                                                        "read"}),
    ("GET", "/api/vhosts/{V}/topic-permissions", ADMIN_ONLY, {"user", "vhost", "exchange",
                                                              "write", "read"}),
    ("GET", "/api/users", ADMIN_ONLY, {"name", "password_hash", "hashing_algorithm", "tags",
                                       "limits"}),
    ("GET", "/api/users/without-permissions", ADMIN_ONLY, {"name", "tags", "limits"}),
    ("GET", "/api/users/{u}", ADMIN_ONLY, {"name", "tags", "limits"}),
    ("GET", "/api/users/{u}/permissions", ADMIN_ONLY, {"user", "vhost", "configure"}),
    ("GET", "/api/users/{u}/topic-permissions", ADMIN_ONLY, {"user", "vhost", "exchange",
                                                             "write", "read"}),
    ("GET", "/api/users/no-such-user/topic-permissions", {"admin": 404, "others": 401}, set()),
    ("GET", "/api/user-limits", ALL_OK, {"user", "value"}),
    ("GET", "/api/user-limits/{u}", ALL_OK, {"user", "value"}),
    ("GET", "/api/user-limits/no-such-user", {"others": 404, "anon": 401}, set()),
    ("GET", "/api/whoami", ALL_OK, {"name", "tags"}),
    ("GET", "/api/permissions", ADMIN_ONLY, {"user", "vhost", "configure", "write", "read"}),
    ("GET", "/api/permissions/{V}/{u}", ADMIN_ONLY, {"user", "vhost", "configure"}),
    ("GET", "/api/topic-permissions", ADMIN_ONLY, {"user", "vhost", "exchange", "write",
                                                   "read"}),
    ("GET", "/api/topic-permissions/{V}/{u}", ADMIN_ONLY, {"user", "vhost", "exchange"}),
    ("GET", "/api/parameters", POLICY, set()),
    ("GET", "/api/parameters/vhost-limits", POLICY, {"vhost", "component", "name", "value"}),
    ("GET", "/api/parameters/vhost-limits/{V}", POLICY, {"vhost", "component", "name",
                                                          "value"}),
    ("GET", "/api/parameters/vhost-limits/{V}/limits", POLICY, {"vhost", "component",
                                                                "name", "value"}),
    ("GET", "/api/global-parameters", POLICY, {"name", "value"}),
    ("GET", "/api/global-parameters/{TAG}.param", POLICY, {"name", "value"}),
    ("GET", "/api/global-parameters/{TAG}.none", {"admin": 404, "pm": 404, "others": 401},
     set()),
    ("GET", "/api/policies", ALL_OK, set()),
    ("GET", "/api/policies/{V}", IN_VHOST, set()),
    ("GET", "/api/operator-policies", ALL_OK, set()),
    ("GET", "/api/operator-policies/{V}", IN_VHOST, set()),
    ("GET", "/api/aliveness-test/{V}", IN_VHOST, {"status"}),
    ("GET", "/api/health/checks/alarms", ALL_OK, {"status"}),
    ("GET", "/api/health/checks/local-alarms", ALL_OK, {"status"}),
    ("GET", "/api/health/checks/certificate-expiration/1/days", ALL_OK, {"status"}),
    ("GET", "/api/health/checks/certificate-expiration/x/days",
     {"others": 400, "anon": 401}, {"error", "reason"}),
    ("GET", "/api/health/checks/certificate-expiration/-99999999999999999999999/years", ALL_OK,
     {"status"}),
    ("GET", "/api/health/checks/certificate-expiration/1/fortnights",
     {"others": 400, "anon": 401}, {"error", "reason"}),
    ("GET", "/api/health/checks/port-listener/{port}", ALL_OK, {"status", "port"}),
    ("GET", "/api/health/checks/port-listener/1", HEALTH_503, {"status", "reason", "missing",
                                                               "ports"}),
    ("GET", "/api/health/checks/port-listener/abc", {"others": 400, "anon": 401},
     {"error", "reason"}),
    ("GET", "/api/health/checks/protocol-listener/amqp", ALL_OK, {"status", "protocol"}),
    ("GET", "/api/health/checks/protocol-listener/amqp0-9-1", ALL_OK, {"status", "protocol"}),
    ("GET", "/api/health/checks/protocol-listener/http", ALL_OK, {"status", "protocol"}),
    ("GET", "/api/health/checks/protocol-listener/mqtt", HEALTH_503,
     {"status", "reason", "missing", "protocols"}),
    ("GET", "/api/health/checks/virtual-hosts", ALL_OK, {"status"}),
    ("GET", "/api/health/checks/node-is-quorum-critical", ALL_OK, {"status", "reason"}),
    ("GET", "/api/health/checks/node-is-mirror-sync-critical", ALL_OK, {"status", "reason"}),
    ("GET", "/api/vhost-limits", ALL_OK, {"vhost", "value"}),
    ("GET", "/api/vhost-limits/{V}", IN_VHOST, {"vhost", "value"}),
    ("GET", "/api/vm-memory-high-watermark", ADMIN_ONLY, {"relative", "limit"},
     {"warren_only": True}),
    # Changes: each is undone by the next row, so every role meets the same state.
    ("PUT", "/api/cluster-name", {"admin": 204, "others": 401}, set(),
     {"body": {"name": "{TAG}.cluster"}}),
    ("PUT", "/api/global-parameters/{TAG}.gp", {"admin": 201, "pm": 204, "others": 401}, set(),
     {"body": {"value": {"a": 1}}}),
    ("DELETE", "/api/global-parameters/{TAG}.gp", {"admin": 204, "pm": 404, "others": 401},
     set()),
    ("PUT", "/api/user-limits/{u}/max-channels", {"admin": 204, "others": 401}, set(),
     {"body": {"value": 50}}),
    ("DELETE", "/api/user-limits/{u}/max-channels", {"admin": 204, "others": 401}, set()),
    ("PUT", "/api/topic-permissions/{V}/{u}", {"admin": 204, "others": 401}, set(),
     {"body": {"exchange": "amq.direct", "write": ".*", "read": ".*"}}),
    ("POST", "/api/bindings/{V}/e/{x}/e/{x2}", {"admin": 201, "mgmt": 201, "pm": 201,
                                                "mon": 201, "outsider": 401, "anon": 401},
     set(), {"body": {"routing_key": "k2"}}),
    ("DELETE", "/api/bindings/{V}/e/{x}/e/{x2}/k2", {"admin": 204, "mgmt": 404, "pm": 404,
                                                     "mon": 404, "outsider": 401, "anon": 401},
     set()),
    ("POST", "/api/users/bulk-delete", {"admin": 400, "others": 401}, {"error", "reason"},
     {"body": {"users": ["{TAG}.no-such-user"]}}),
    # Cluster operations: nothing to do on one node, answered as RabbitMQ's single node does.
    ("POST", "/api/rebalance/queues", {"admin": 204, "others": 401}, set(), {"body": {}}),
    ("POST", "/api/vhosts/{V}/start/{node}", {"admin": 204, "others": 401}, set(),
     {"body": {}}),
    ("POST", "/api/vhosts/{V}/start/other%40nowhere", {"admin": 400, "others": 401},
     {"error", "reason"}, {"body": {}}),
    ("POST", "/api/queues/{V}/{q}/actions", {"admin": 204, "others": 401}, set(),
     {"body": {"action": "sync"}}),
    ("POST", "/api/queues/{V}/{q}/actions", {"admin": 400, "others": 401}, {"error", "reason"},
     {"body": {"action": "resync"}}),
]


# ---- Set-up --------------------------------------------------------------------------------

def set_up():
    must("PUT", "/api/vhosts/" + q(V), {})
    must("PUT", "/api/permissions/%s/%s" % (q(V), q(ADMIN[0])),
         {"configure": ".*", "write": ".*", "read": ".*"})
    for role, spec in ROLES.items():
        if spec is None:
            continue
        tags, in_vhost = spec
        must("PUT", "/api/users/" + q(user_of(role)), {"password": PASSWORD, "tags": tags})
        if in_vhost:
            must("PUT", "/api/permissions/%s/%s" % (q(V), q(user_of(role))),
                 {"configure": ".*", "write": ".*", "read": ".*"})
    u = user_of("mgmt")
    must("PUT", "/api/exchanges/%s/%s.x" % (q(V), TAG), {"type": "topic"})
    must("PUT", "/api/exchanges/%s/%s.x2" % (q(V), TAG), {"type": "fanout"})
    must("PUT", "/api/queues/%s/%s.q" % (q(V), TAG), {"durable": False})
    must("POST", "/api/bindings/%s/e/%s.x/q/%s.q" % (q(V), TAG, TAG), {"routing_key": "a.#"})
    must("POST", "/api/bindings/%s/e/%s.x/e/%s.x2" % (q(V), TAG, TAG), {"routing_key": "k1"})
    must("PUT", "/api/topic-permissions/%s/%s" % (q(V), q(u)),
         {"exchange": TAG + ".x", "write": "^a", "read": ".*"})
    must("PUT", "/api/user-limits/%s/max-connections" % q(u), {"value": 10})
    must("PUT", "/api/vhost-limits/%s/max-queues" % q(V), {"value": 100})
    must("PUT", "/api/global-parameters/%s.param" % TAG, {"value": "x"})
    old_name = must("GET", "/api/cluster-name")["name"]
    # A connection of the management user in V, with a consumer, for the lists.
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        AMQP_HOST, AMQP_PORT, virtual_host=V, credentials=pika.PlainCredentials(u, PASSWORD)))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=5)
    ch.basic_consume(TAG + ".q", lambda *args: None)
    # RabbitMQ lists a connection once its statistics have been collected (5 s).
    deadline = time.time() + 30
    names = []
    while time.time() < deadline:
        names = [c["name"] for c in must("GET", "/api/vhosts/%s/connections" % q(V))]
        channels = must("GET", "/api/vhosts/%s/channels" % q(V))
        consumers = must("GET", "/api/consumers/%s" % q(V))
        if names and channels and consumers:
            break
        conn.process_data_events(time_limit=0.5)
    if not names:
        raise SystemExit("set-up: the test connection is not listed")
    node = must("GET", "/api/overview")["node"]
    values = {"V": q(V), "node": q(node), "port": str(AMQP_PORT), "conn": q(names[0]),
              "u": q(u), "x": q(TAG + ".x"), "x2": q(TAG + ".x2"), "q": q(TAG + ".q"),
              "TAG": TAG}
    return conn, values, old_name


def tear_down(conn, old_name):
    try:
        conn.close()
    except Exception:  # the broker may have closed it
        pass
    call("PUT", "/api/cluster-name", {"name": old_name})
    call("DELETE", "/api/global-parameters/%s.param" % TAG)
    call("DELETE", "/api/global-parameters/%s.gp" % TAG)
    call("DELETE", "/api/vhosts/" + q(V))
    for role, spec in ROLES.items():
        if spec is not None:
            call("DELETE", "/api/users/" + q(user_of(role)))


# ---- Checking ------------------------------------------------------------------------------

def fill(template, values):
    if isinstance(template, str):
        for k, v in values.items():
            template = template.replace("{%s}" % k, v)
        return template
    if isinstance(template, list):
        return [fill(t, values) for t in template]
    if isinstance(template, dict):
        return {k: fill(t, values) for k, t in template.items()}
    return template


def check_row(row, values):
    """A list of the row's faults."""
    method, path, statuses, keys = row[:4]
    opts = row[4] if len(row) > 4 else {}
    if opts.get("warren_only") and not WARREN:
        return None
    path = fill(path, values)
    # Body values keep their names unquoted.
    raw = dict(values, V=V, u=user_of("mgmt"), x=TAG + ".x", x2=TAG + ".x2")
    body = fill(opts.get("body"), raw)
    faults = []
    order = ["admin", "mon", "mgmt", "pm", "outsider", "anon"]
    for role in order:
        want = statuses.get(role, statuses.get("others"))
        if not WARREN and role in opts.get("rabbitmq", {}):
            want = opts["rabbitmq"][role]
        status, reply = call(method, path, body, role)
        if status != want:
            faults.append("%s: %d (expected %d) %s" % (role, status, want,
                                                       json.dumps(reply)[:200]))
            continue
        if role != "admin" or not keys:
            continue
        items = reply if isinstance(reply, list) else [reply]
        if not items:
            faults.append("admin: an empty list, expected elements with %s" % sorted(keys))
        for item in items[:3]:
            missing = keys - set(item) if isinstance(item, dict) else keys
            if missing:
                faults.append("admin: keys %s missing in %s" % (sorted(missing),
                                                                  json.dumps(item)[:200]))
                break
    return faults


def check_expiring_certificate(values):
    """With a TLS listener whose certificates expire within weeks (EXPECT_EXPIRING_CERT, set by
    mgmt_endpoints.sh): 503 within a year listing the listener as RabbitMQ lists it, 200
    within a day; and the TLS listener counts for the port and protocol checks."""
    faults = []
    status, reply = call("GET", "/api/health/checks/certificate-expiration/1/years")
    expired = reply.get("expired") if isinstance(reply, dict) else None
    if status != 503 or reply.get("status") != "failed" or \
            reply.get("reason") != "Certificates expiring" or not expired:
        return ["within a year: %d %s" % (status, json.dumps(reply)[:300])]
    entry = expired[0]
    keys = {"node", "protocol", "interface", "port", "certfile", "cacertfile",
            "certfile_expires_on", "cacertfile_expires_on"}
    if keys - set(entry) or entry["protocol"] != "amqp/ssl" or \
            not entry["certfile_expires_on"] or not entry["cacertfile_expires_on"]:
        faults.append("the expiring listener: %s" % json.dumps(entry))
    status, reply = call("GET", "/api/health/checks/certificate-expiration/1/days")
    if status != 200:
        faults.append("within a day: %d %s" % (status, json.dumps(reply)))
    status, reply = call("GET", "/api/health/checks/port-listener/%d" % entry["port"])
    if status != 200:
        faults.append("port-listener of the TLS port: %d %s" % (status, json.dumps(reply)))
    status, reply = call("GET", "/api/health/checks/protocol-listener/amqps")
    if status != 200 or reply != {"status": "ok", "protocol": "amqp/ssl"}:
        faults.append("protocol-listener amqps: %d %s" % (status, json.dumps(reply)))
    return faults


def main():
    conn, values, old_name = set_up()
    failed = 0
    try:
        if os.environ.get("EXPECT_EXPIRING_CERT") == "1":
            faults = check_expiring_certificate(values)
            if faults:
                failed += 1
                print("FAIL certificate-expiration with a TLS listener\n    " +
                      "\n    ".join(faults))
            else:
                print("ok   certificate-expiration with a TLS listener")
        for row in ROWS:
            faults = check_row(row, values)
            name = "%s %s" % (row[0], row[1])
            if faults is None:
                print("skip %s (Warren's own)" % name)
            elif faults:
                failed += 1
                print("FAIL %s\n    %s" % (name, "\n    ".join(faults)))
            else:
                print("ok   %s" % name)
    finally:
        tear_down(conn, old_name)
    print("%d of %d rows failed against %s" % (failed, len(ROWS),
                                               "Warren" if WARREN else MGMT.geturl()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
