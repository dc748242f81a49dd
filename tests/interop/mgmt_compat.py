#!/usr/bin/python3
"""Management API requests as RabbitMQ's own clients send them, through plain HTTP: what
RabbitMQ 3.10's handlers accept (numbers given as strings, as rabbitmqadmin sends them) and
what they refuse, with their 400 reasons. rabbitmqadmin itself is driven by rabbitmqadmin.sh.

Run with /usr/bin/python3 (Debian's pika). Environment: AMQP_HOST, AMQP_PORT (the broker),
MGMT_URL (http://127.0.0.1:15672, its management API), optionally MGMT_USER/MGMT_PASS
(guest/guest).
WARREN=1 adds the checks of what Warren does on purpose differently; without it the same
checks run against a RabbitMQ with its management plugin, to check the checks. Prints one
line per check; exits 1 at the first failure.
"""

import base64
import http.client
import json
import os
import sys
import traceback
import urllib.parse

import pika
import pika.exceptions

AMQP_HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("AMQP_PORT", "5672"))
MGMT = urllib.parse.urlsplit(os.environ.get("MGMT_URL", "http://127.0.0.1:15672"))
USER = os.environ.get("MGMT_USER", "guest")
PASS = os.environ.get("MGMT_PASS", "guest")
WARREN = os.environ.get("WARREN") == "1"
PREFIX = "compat.%d" % os.getpid()
CREATED = []  # (kind, name): vhosts, users, or queues of the vhost /; deleted at the end


class CheckFailed(Exception):
    pass


def expect_eq(got, want, what):
    if got != want:
        raise CheckFailed("%s: got %r, expected %r" % (what, got, want))


def q(s):
    return urllib.parse.quote(s, safe="")


def call(method, path, body=None, auth=(USER, PASS)):
    """(status, decoded JSON or None) of one request."""
    conn = http.client.HTTPConnection(MGMT.hostname, MGMT.port, timeout=10)
    token = base64.b64encode(("%s:%s" % auth).encode()).decode()
    headers = {"Authorization": "Basic " + token}
    data = None
    if body is not None:
        data = body if isinstance(body, str) else json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    return r.status, (json.loads(raw) if raw else None)


def expect_ok(method, path, body=None, status=(200, 201, 204)):
    got, reply = call(method, path, body)
    if got not in status:
        raise CheckFailed("%s %s: %d %r" % (method, path, got, reply))
    return reply


def expect_bad_request(method, path, body, reason, what):
    got, reply = call(method, path, body)
    expect_eq((got, reply), (400, {"error": "bad_request", "reason": reason}), what)


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def publish(queue, payload):
    reply = expect_ok("POST", "/api/exchanges/%2F/amq.default/publish",
                      {"properties": {}, "routing_key": queue, "payload": payload,
                       "payload_encoding": "string"})
    expect_eq(reply, {"routed": True}, "publish to %s" % queue)


@check
def get_takes_numbers_as_strings():
    """rabbit_mgmt_wm_queue_get reads count and truncate with rabbit_misc:parse_int/1."""
    qn = PREFIX + ".get"
    expect_ok("PUT", "/api/queues/%2F/" + q(qn), {"durable": False})
    CREATED.append(("queues", qn))
    for i in range(4):
        publish(qn, "message %d" % i)
    path = "/api/queues/%%2F/%s/get" % q(qn)
    got = expect_ok("POST", path, {"count": "2", "ackmode": "ack_requeue_false",
                                   "encoding": "auto"})
    expect_eq([m["payload"] for m in got], ["message 0", "message 1"], "count \"2\"")
    got = expect_ok("POST", path, {"count": "+1", "ackmode": "ack_requeue_true",
                                   "encoding": "auto", "truncate": "3"})
    expect_eq([(m["payload"], m["payload_bytes"]) for m in got], [("mes", 9)],
              "count \"+1\", truncate \"3\"")
    got = expect_ok("POST", path, {"count": 1.9, "ackmode": "ack_requeue_true",
                                   "encoding": "auto"})
    expect_eq(len(got), 1, "count 1.9 is 1 (its integer part)")
    got = expect_ok("POST", path, {"count": "0", "ackmode": "ack_requeue_false",
                                   "encoding": "auto"})
    expect_eq(got, [], "count \"0\" takes nothing")
    # What rabbitmqadmin sends for `get queue=... count=10`.
    got = expect_ok("POST", path, json.dumps({"count": "10", "ackmode": "ack_requeue_false",
                                              "encoding": "auto", "vhost": "/",
                                              "queue": qn}))
    expect_eq([m["payload"] for m in got], ["message 2", "message 3"], "rabbitmqadmin's body")
    for bad in ("ten", "", "1.5", " 1", [], None, True):
        expect_bad_request("POST", path, {"count": bad, "ackmode": "ack_requeue_true",
                                          "encoding": "auto"}, ["not_integer", bad],
                           "count %r" % (bad,))
    expect_bad_request("POST", path, {"count": 1, "ackmode": "ack_requeue_true",
                                      "encoding": "auto", "truncate": "x"},
                       ["not_integer", "x"], "truncate \"x\"")
    expect_bad_request("POST", path, {"count": "1"},
                       "[{key_missing,ackmode},{key_missing,encoding}]", "missing keys")
    expect_bad_request("POST", path, {"count": "1", "ackmode": "ack_requeue_true",
                                      "encoding": "utf8"},
                       "Unsupported encoding. Please use auto or base64.", "bad encoding")


@check
def warren_bounds_a_get():
    """RabbitMQ takes any count, a negative one meaning every message; Warren keeps a bound."""
    if not WARREN:
        return
    qn = PREFIX + ".get"
    path = "/api/queues/%%2F/%s/get" % q(qn)
    for bad in ("-1", 10001):
        expect_bad_request("POST", path, {"count": bad, "ackmode": "ack_requeue_true",
                                          "encoding": "auto"},
                           "count must be an integer from 0 to 10000", "count %r" % bad)


def expect_refused_login(vhost, what):
    """An AMQP connection to vhost is refused (its max-connections is 0)."""
    params = pika.ConnectionParameters(AMQP_HOST, AMQP_PORT, virtual_host=vhost,
                                       credentials=pika.PlainCredentials(USER, PASS))
    try:
        pika.BlockingConnection(params).close()
    except pika.exceptions.AMQPError:
        return
    raise CheckFailed("%s: the connection was accepted" % what)


@check
def vhost_limits_and_their_parameter():
    """/api/vhost-limits sets one limit at a time, /api/parameters/vhost-limits/v/limits all
    of them; both are the same limits, with rabbit_vhost_limit's validation texts."""
    v = PREFIX + ".limits"
    expect_ok("PUT", "/api/vhosts/" + q(v), {})
    CREATED.append(("vhosts", v))
    base = "/api/vhost-limits/" + q(v)
    expect_eq(expect_ok("GET", base), [], "no limits yet")
    expect_ok("PUT", base + "/max-connections", {"value": 10})
    # What rabbitmqadmin sends for `declare vhost_limit vhost=v name=max-queues value=3`.
    expect_ok("PUT", base + "/max-queues", {"vhost": v, "name": "max-queues", "value": 3})
    both = {"max-connections": 10, "max-queues": 3}
    expect_eq(expect_ok("GET", base), [{"vhost": v, "value": both}], "limits of the vhost")
    expect_eq([e for e in expect_ok("GET", "/api/vhost-limits") if e["vhost"] == v],
              [{"vhost": v, "value": both}], "listed")
    param = {"vhost": v, "component": "vhost-limits", "name": "limits", "value": both}
    ppath = "/api/parameters/vhost-limits/%s/limits" % q(v)
    expect_eq(expect_ok("GET", ppath), param, "the vhost-limits parameter")
    expect_eq(expect_ok("GET", "/api/parameters/vhost-limits/" + q(v)), [param],
              "parameters of the component in the vhost")
    expect_eq([p for p in expect_ok("GET", "/api/parameters") if p["vhost"] == v], [param],
              "all parameters")
    expect_eq(expect_ok("GET", "/api/parameters/federation-upstream"), [],
              "a component without parameters")
    if WARREN:  # RabbitMQ 3.10 repeats the limits in each vhost's export as [name, value]
        exported = expect_ok("GET", "/api/definitions")["parameters"]
        expect_eq([p for p in exported if p["vhost"] == v], [param], "exported")

    expect_bad_request("PUT", base + "/max-foo", {"value": 3},
                       "Validation failed\n\nUnrecognised terms [{<<\"max-foo\">>,3}] in "
                       "limits\n", "an unknown limit")
    expect_bad_request("PUT", base + "/max-queues", {"value": "x"},
                       "Validation failed\n\nmax-queues should be a number, actually was "
                       "<<\"x\">>\n", "a limit that is not a number")
    expect_bad_request("PUT", base + "/max-queues", {}, "[{key_missing,value}]",
                       "no value")
    expect_bad_request("PUT", ppath, {"value": 5}, "Validation failed\n\nlimits not a list 5\n",
                       "a parameter value that is not an object")
    expect_bad_request("PUT", "/api/parameters/federation-upstream/%s/up" % q(v),
                       {"value": {"uri": "amqp://"}},
                       "Validation failed\n\ncomponent federation-upstream not found\n",
                       "a plugin's component")
    expect_eq(call("PUT", "/api/vhost-limits/%s.none/max-queues" % q(v), {"value": 1}),
              (404, {"error": "not_found", "reason": "vhost_not_found"}), "a missing vhost")

    expect_ok("DELETE", base + "/max-connections")
    expect_eq(expect_ok("GET", base), [{"vhost": v, "value": {"max-queues": 3}}],
              "one limit deleted, the other kept")
    expect_ok("PUT", ppath, {"value": {"max-connections": 0}})
    expect_eq(expect_ok("GET", base), [{"vhost": v, "value": {"max-connections": 0}}],
              "the parameter sets all limits at once")
    expect_refused_login(v, "max-connections 0")
    expect_ok("DELETE", ppath)
    expect_eq(expect_ok("GET", base), [], "no limits after the parameter is deleted")
    expect_eq(call("GET", ppath)[0], 404, "no parameter left")
    expect_eq(call("DELETE", ppath)[0], 404, "deleting it again")
    params = pika.ConnectionParameters(AMQP_HOST, AMQP_PORT, virtual_host=v,
                                       credentials=pika.PlainCredentials(USER, PASS))
    pika.BlockingConnection(params).close()


@check
def max_queues_holds_over_http():
    """RabbitMQ declares an HTTP PUT of a queue through rabbit_channel, which checks the
    vhost's max-queues for a new queue (not for one that exists)."""
    v = PREFIX + ".maxq"
    expect_ok("PUT", "/api/vhosts/" + q(v), {})
    CREATED.append(("vhosts", v))
    expect_ok("PUT", "/api/vhost-limits/%s/max-queues" % q(v), {"value": 1})
    expect_eq(call("PUT", "/api/queues/%s/a" % q(v), {"durable": "false"})[0], 201, "first queue")
    expect_bad_request("PUT", "/api/queues/%s/b" % q(v), {"durable": "false"},
                       "cannot declare queue 'b': queue limit in vhost '%s' (1) is reached" % v,
                       "second queue")
    expect_eq(call("PUT", "/api/queues/%s/a" % q(v), {"durable": "false"})[0], 204,
              "the first queue again")


@check
def vhost_tracing_is_a_boolean():
    """rabbit_mgmt_wm_vhost reads tracing with parse_bool ("true"/"false" as strings too, as
    rabbitmqadmin sends it). Warren has no firehose: tracing true is refused, not ignored."""
    v = PREFIX + ".tracing"
    expect_eq(call("PUT", "/api/vhosts/" + q(v), {"tracing": "false"})[0], 201, "tracing \"false\"")
    CREATED.append(("vhosts", v))
    expect_eq(call("PUT", "/api/vhosts/" + q(v), {"tracing": False})[0], 204, "tracing false")
    expect_bad_request("PUT", "/api/vhosts/" + q(v), {"tracing": "yes"}, ["not_boolean", "yes"],
                       "tracing \"yes\"")
    if WARREN:
        for on in (True, "true"):
            expect_bad_request("PUT", "/api/vhosts/" + q(v + ".on"), {"tracing": on},
                               "tracing is not supported: Warren has no firehose "
                               "(amq.rabbitmq.trace)", "tracing %r" % on)
        expect_eq(call("GET", "/api/vhosts/" + q(v + ".on"))[0], 404, "no vhost made")


@check
def vhost_definitions_carry_policies_and_limits():
    """GET /api/definitions/v (rabbitmqadmin -V v export) has the vhost's policies and its
    vhost-limits parameter, and POSTing it back (rabbitmqadmin -V v import) restores them."""
    v = PREFIX + ".defs"
    expect_ok("PUT", "/api/vhosts/" + q(v), {})
    CREATED.append(("vhosts", v))
    # RabbitMQ 3.10.8 writes the vhost in these two sections only.
    policy = {"vhost": v, "name": "ttl", "pattern": "^t\\.", "apply-to": "queues",
              "definition": {"message-ttl": 1000}, "priority": 2}
    expect_ok("PUT", "/api/policies/%s/ttl" % q(v),
              {k: policy[k] for k in ("pattern", "apply-to", "definition", "priority")})
    expect_ok("PUT", "/api/vhost-limits/%s/max-queues" % q(v), {"value": 7})
    limits = {"value": {"max-queues": 7}, "vhost": v, "component": "vhost-limits",
              "name": "limits"}
    defs = expect_ok("GET", "/api/definitions/" + q(v))
    expect_eq((defs["policies"], defs["parameters"]), ([policy], [limits]), "exported")
    expect_ok("DELETE", "/api/policies/%s/ttl" % q(v))
    expect_ok("DELETE", "/api/vhost-limits/%s/max-queues" % q(v))
    expect_ok("POST", "/api/definitions/" + q(v), defs)
    got = expect_ok("GET", "/api/definitions/" + q(v))
    expect_eq((got["policies"], got["parameters"]), ([policy], [limits]), "imported back")


@check
def nodes_list_this_node():
    """rabbitmqadmin list nodes: GET /api/nodes, for administrators and monitoring users."""
    node = expect_ok("GET", "/api/overview")["node"]
    nodes = expect_ok("GET", "/api/nodes")
    expect_eq([(n["name"], n["type"], n["running"]) for n in nodes], [(node, "disc", True)],
              "the nodes")
    n = nodes[0]
    for key in ("mem_used", "mem_limit", "disk_free_limit", "fd_used", "sockets_used"):
        if not isinstance(n.get(key), int) or isinstance(n.get(key), bool):
            raise CheckFailed("%s: %r is not a number" % (key, n.get(key)))
    expect_eq((n["mem_alarm"], n["disk_free_alarm"], n["partitions"]), (False, False, []),
              "no alarm, no partition")
    one = expect_ok("GET", "/api/nodes/" + q(node))
    expect_eq((one["name"], one["type"], one["running"]), (node, "disc", True), "the node")
    if WARREN:  # RabbitMQ 3.10 answers 500 for a node it does not know
        expect_eq(call("GET", "/api/nodes/other%40host")[0], 404, "another node")
    user = PREFIX + ".manager"
    expect_ok("PUT", "/api/users/" + q(user), {"password": "secret", "tags": "management"})
    CREATED.append(("users", user))
    got = call("GET", "/api/nodes", auth=(user, "secret"))
    expect_eq(got, (401, {"error": "not_authorised", "reason": "Not monitor user"}),
              "a management user")


def connect(vhost, user, password):
    return pika.BlockingConnection(pika.ConnectionParameters(
        AMQP_HOST, AMQP_PORT, virtual_host=vhost,
        credentials=pika.PlainCredentials(user, password)))


def new_user_in(v, name, tags=""):
    """A user with every permission in vhost v; its name."""
    user = PREFIX + "." + name
    expect_ok("PUT", "/api/users/" + q(user), {"password": "secret", "tags": tags})
    CREATED.append(("users", user))
    expect_ok("PUT", "/api/permissions/%s/%s" % (q(v), q(user)),
              {"configure": ".*", "write": ".*", "read": ".*"})
    return user


def expect_closed(fn, code, text, what):
    """fn() must fail with the broker closing the channel or connection with code and text."""
    try:
        fn()
    except (pika.exceptions.ChannelClosedByBroker,
            pika.exceptions.ConnectionClosedByBroker) as e:
        expect_eq((e.reply_code, e.reply_text), (code, text), what)
        return
    except pika.exceptions.ProbableAccessDeniedError as e:
        cause = e.args[0] if e.args else ""
        want = "(%d) %s" % (code, json.dumps(text))
        if want not in str(cause):
            raise CheckFailed("%s: %r, expected %s" % (what, cause, want))
        return
    raise CheckFailed("%s: not refused" % what)


@check
def user_limits_are_enforced():
    """PUT /api/user-limits/u/max-connections and max-channels: the broker refuses the
    connection and the channel past them with RabbitMQ's 530 texts; DELETE lifts them."""
    v = PREFIX + ".ulimits"
    expect_ok("PUT", "/api/vhosts/" + q(v), {})
    CREATED.append(("vhosts", v))
    user = new_user_in(v, "limited")
    base = "/api/user-limits/" + q(user)
    expect_ok("PUT", base + "/max-connections", {"value": 1})
    expect_ok("PUT", base + "/max-channels", {"value": 1})
    expect_eq(expect_ok("GET", base), [{"user": user, "value": {"max-connections": 1,
                                                               "max-channels": 1}}],
              "the limits")
    expect_eq(expect_ok("GET", "/api/users/" + q(user))["limits"],
              {"max-connections": 1, "max-channels": 1}, "the user's limits")
    first = connect(v, user, "secret")
    try:
        expect_closed(lambda: connect(v, user, "secret"), 530,
                      "NOT_ALLOWED - connection refused for user '%s': user connection limit "
                      "(1) is reached" % user, "a second connection")
        first.channel()
        expect_closed(first.channel, 530,
                      "NOT_ALLOWED - number of channels opened for user '%s' has reached the "
                      "maximum allowed user limit of (1)" % user, "a second channel")
    finally:
        if first.is_open:
            first.close()
    expect_bad_request("PUT", base + "/max-channels", {"value": "3"},
                       "max-channels should be a number, actually was <<\"3\">>",
                       "a numeric string")
    expect_bad_request("PUT", base + "/max-foo", {"value": 3},
                       "Unrecognised terms [{<<\"max-foo\">>,3}] in user-limits",
                       "an unknown limit")
    expect_bad_request("PUT", "/api/user-limits/%s.none/max-channels" % q(user), {"value": 3},
                       ["no_such_user", user + ".none"], "no such user")
    expect_ok("DELETE", base + "/max-connections")
    expect_ok("DELETE", base + "/max-channels")
    expect_eq(expect_ok("GET", base), [], "no limits left")
    connect(v, user, "secret").close()
    connect(v, user, "secret").close()


@check
def topic_permissions_set_over_http_are_enforced():
    """PUT /api/topic-permissions/v/u: a publish to the topic exchange with a routing key its
    write pattern refuses closes the channel with 403; the lists show the permission; DELETE
    lifts it."""
    v = PREFIX + ".topic"
    expect_ok("PUT", "/api/vhosts/" + q(v), {})
    CREATED.append(("vhosts", v))
    user = new_user_in(v, "topical")
    path = "/api/topic-permissions/%s/%s" % (q(v), q(user))
    expect_eq(call("PUT", path, {"exchange": "amq.topic", "write": "^allowed\\.",
                                 "read": ".*"})[0], 201, "set")
    perm = {"user": user, "vhost": v, "exchange": "amq.topic", "write": "^allowed\\.",
            "read": ".*"}
    expect_eq(expect_ok("GET", path), [perm], "the user's in the vhost")
    expect_eq(expect_ok("GET", "/api/users/%s/topic-permissions" % q(user)), [perm],
              "the user's")
    expect_eq(expect_ok("GET", "/api/vhosts/%s/topic-permissions" % q(v)), [perm],
              "the vhost's")
    expect_eq([p for p in expect_ok("GET", "/api/topic-permissions") if p["vhost"] == v],
              [perm], "all")
    expect_bad_request("PUT", path, {"write": "x", "read": "y"}, "[{key_missing,exchange}]",
                       "no exchange")
    expect_bad_request("PUT", "/api/topic-permissions/%s/%s.none" % (q(v), q(user)),
                       {"exchange": "amq.topic", "write": "x", "read": "y"},
                       "vhost_or_user_not_found", "no such user")
    conn = connect(v, user, "secret")
    try:
        ch = conn.channel()
        ch.basic_publish("amq.topic", "allowed.key", b"m")
        ch.basic_publish("amq.topic", "other.key", b"m")
        expect_closed(lambda: ch.queue_declare("", exclusive=True), 403,
                      "ACCESS_REFUSED - access to topic 'other.key' in exchange 'amq.topic' in "
                      "vhost '%s' refused for user '%s'" % (v, user), "a refused routing key")
    finally:
        if conn.is_open:
            conn.close()
    expect_ok("DELETE", path)
    expect_eq(call("GET", path)[0], 404, "none left")
    conn = connect(v, user, "secret")
    ch = conn.channel()
    ch.basic_publish("amq.topic", "other.key", b"m")
    ch.queue_declare("", exclusive=True)
    conn.close()


@check
def connections_of_a_vhost_and_of_a_user():
    """/api/vhosts/v/connections and /channels list v's only; /api/connections/username/u
    lists the user's, and DELETE closes them all with CONNECTION_FORCED."""
    v = PREFIX + ".conns"
    expect_ok("PUT", "/api/vhosts/" + q(v), {})
    CREATED.append(("vhosts", v))
    user = new_user_in(v, "closed")
    conns = [connect(v, user, "secret") for _ in range(2)]
    for c in conns:
        c.channel()
    other = connect("/", USER, PASS)
    try:
        listed = []
        for _ in range(60):  # RabbitMQ lists a connection once its statistics are in
            listed = expect_ok("GET", "/api/vhosts/%s/connections" % q(v))
            channels = expect_ok("GET", "/api/vhosts/%s/channels" % q(v))
            if len(listed) == 2 and len(channels) == 2:
                break
            conns[0].process_data_events(time_limit=0.5)
        expect_eq(sorted((c["vhost"], c["user"]) for c in listed), [(v, user), (v, user)],
                  "the vhost's connections")
        expect_eq(sorted((c["vhost"], c["user"]) for c in channels), [(v, user), (v, user)],
                  "the vhost's channels")
        expect_eq(sorted(c["vhost"] for c in
                         expect_ok("GET", "/api/connections/username/" + q(user))),
                  [v, v], "the user's connections")
        expect_eq(expect_ok("GET", "/api/connections/username/%s.none" % q(user)), [],
                  "a user without connections")
        expect_ok("DELETE", "/api/connections/username/" + q(user))
        for c in conns:
            try:
                for _ in range(50):
                    c.process_data_events(time_limit=0.1)
                raise CheckFailed("a connection of the user was not closed")
            except pika.exceptions.ConnectionClosedByBroker as e:
                expect_eq((e.reply_code, e.reply_text),
                          (320, "CONNECTION_FORCED - Closed via management plugin"),
                          "the user's connection")
        other.channel()  # another user's connection is still open
    finally:
        for c in conns + [other]:
            if c.is_open:
                c.close()


@check
def users_bulk_delete_and_without_permissions():
    """/api/users/without-permissions lists users with no permissions (topic ones do not
    count); POST /api/users/bulk-delete deletes in order and stops at the first name that is
    no user, with those before it deleted, as RabbitMQ does."""
    a, b = PREFIX + ".bulk-a", PREFIX + ".bulk-b"
    for u in (a, b):
        expect_ok("PUT", "/api/users/" + q(u), {"password": "x", "tags": ""})
        CREATED.append(("users", u))
    expect_ok("PUT", "/api/permissions/%%2F/%s" % q(b),
              {"configure": "", "write": "", "read": ""})
    names = [u["name"] for u in expect_ok("GET", "/api/users/without-permissions")]
    if a not in names or b in names:
        raise CheckFailed("without-permissions: %r" % names)
    expect_bad_request("POST", "/api/users/bulk-delete", {"users": [a, a + ".none", b]},
                       ["no_such_user", a + ".none"], "a name that is no user")
    expect_eq((call("GET", "/api/users/" + q(a))[0], call("GET", "/api/users/" + q(b))[0]),
              (404, 200), "the first deleted, the last kept")
    expect_bad_request("POST", "/api/users/bulk-delete", {"user": [b]},
                       "[{key_missing,users}]", "no users key")
    expect_eq(call("POST", "/api/users/bulk-delete", {"users": [b]})[0], 204, "deleted")
    expect_eq(call("GET", "/api/users/" + q(b))[0], 404, "gone")


@check
def cluster_name_and_global_parameters():
    """PUT /api/cluster-name names the cluster in the overview and is the global parameter
    cluster_name, which the definitions export; other global parameters too."""
    old = expect_ok("GET", "/api/cluster-name")["name"]
    name = PREFIX + ".cluster"
    gp = PREFIX + ".gp"
    try:
        expect_eq(call("PUT", "/api/cluster-name", {"name": name})[0], 204, "renamed")
        expect_eq(expect_ok("GET", "/api/cluster-name"), {"name": name}, "the name")
        expect_eq(expect_ok("GET", "/api/overview")["cluster_name"], name, "in the overview")
        expect_eq(expect_ok("GET", "/api/global-parameters/cluster_name")["value"], name,
                  "the global parameter")
        expect_bad_request("PUT", "/api/cluster-name", {"nam": "x"}, "[{key_missing,name}]",
                           "no name")
        expect_eq(call("PUT", "/api/global-parameters/" + q(gp), {"value": {"a": [1, 2]}})[0],
                  201, "a new global parameter")
        expect_eq(call("PUT", "/api/global-parameters/" + q(gp), {"value": {"a": [3]}})[0],
                  204, "replaced")
        got = expect_ok("GET", "/api/global-parameters/" + q(gp))
        expect_eq((got["name"], got["value"]), (gp, {"a": [3]}), "the parameter")
        exported = expect_ok("GET", "/api/definitions")["global_parameters"]
        for want in ({"name": "cluster_name", "value": name}, {"name": gp, "value": {"a": [3]}}):
            if want not in exported:
                raise CheckFailed("%r is not in the export: %r" % (want, exported))
        expect_bad_request("PUT", "/api/global-parameters/" + q(gp), {"valu": 1},
                           "[{key_missing,value}]", "no value")
        expect_eq(call("DELETE", "/api/global-parameters/" + q(gp))[0], 204, "deleted")
        expect_eq(call("DELETE", "/api/global-parameters/" + q(gp))[0], 404, "deleted again")
        # An import sets them, as rabbitmqctl import_definitions does.
        expect_ok("POST", "/api/definitions",
                  {"global_parameters": [{"name": gp, "value": "imported"}]})
        expect_eq(expect_ok("GET", "/api/global-parameters/" + q(gp))["value"], "imported",
                  "imported")
    finally:
        call("DELETE", "/api/global-parameters/" + q(gp))
        call("PUT", "/api/cluster-name", {"name": old})


def cleanup():
    for kind, n in reversed(CREATED):
        try:
            if kind in ("vhosts", "users"):
                call("DELETE", "/api/%s/%s" % (kind, q(n)))
            else:
                call("DELETE", "/api/%s/%%2F/%s" % (kind, q(n)))
        except OSError:
            pass


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
