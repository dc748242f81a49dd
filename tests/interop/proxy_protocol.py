#!/usr/bin/python3
"""PROXY protocol v1 headers, as a follower relaying a client sends them to the leader: a
warrend configured with cluster.proxy_peers = 127.0.0.2 takes the header from connections
made from 127.0.0.2 and names the client by it (in the management API's connections, in
warrenctl list_connections); the same bytes from 127.0.0.1, not a listed peer, get what any
bad protocol header gets, as on a single node ("AMQP" 0 0 9 1, then the socket closes); a
malformed header from a peer closes the connection without a byte, and says why in the log.

Environment: AMQP_HOST, AMQP_PORT, MGMT_URL (mgmt_lib.sh), WARREND_LOG (warrend's log),
WARRENCTL (warrenctl, optional). Prints one line per check; exits 1 at the first failure.
"""

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import traceback
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawclient  # noqa: E402

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
MGMT = urllib.parse.urlsplit(os.environ.get("MGMT_URL", "http://127.0.0.1:15672"))
LOG = os.environ.get("WARREND_LOG", "")
WARRENCTL = os.environ.get("WARRENCTL", "")
PEER = "127.0.0.2"  # cluster.proxy_peers
HEADER = b"PROXY TCP4 10.1.2.3 127.0.0.1 5555 5672\r\n"


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def connect_from(source):
    return socket.create_connection((HOST, PORT), timeout=10, source_address=(source, 0))


class ProxiedClient(rawclient.Client):
    """rawclient's client, from a chosen source address and with bytes before its own."""

    def __init__(self, source, prefix):  # pylint: disable=super-init-not-called
        self.sock = connect_from(source)
        self.buf = b""
        self.send(prefix + rawclient.PROTOCOL_HEADER)
        self.expect_method(rawclient.CONNECTION_START, 10.0)
        self.send(rawclient.start_ok())
        self.expect_method(rawclient.CONNECTION_TUNE, 10.0)
        self.send(rawclient.tune_ok() + rawclient.connection_open())
        self.expect_method(rawclient.CONNECTION_OPEN_OK, 10.0)


def read_until_closed(sock, timeout=10.0):
    """Everything the broker sends until it closes the socket."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return data
        except socket.timeout:
            raise CheckFailed("the broker kept the socket open (after %r)" % data)
        if not chunk:
            return data
        data += chunk


def api(path):
    conn = http.client.HTTPConnection(MGMT.hostname, MGMT.port, timeout=10)
    auth = base64.b64encode(b"guest:guest").decode()
    conn.request("GET", path, headers={"Authorization": "Basic " + auth})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    expect(r.status == 200, "GET %s: %d %s" % (path, r.status, body[:200]))
    return json.loads(body)


def check_header_from_a_peer_names_the_client():
    c = ProxiedClient(PEER, HEADER)
    try:
        c.channel_open(1)
        deadline = time.monotonic() + 5
        while True:
            conns = [x for x in api("/api/connections") if x.get("peer_host") == "10.1.2.3"]
            if conns or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        expect(len(conns) == 1, "no connection with peer_host 10.1.2.3 in %r"
               % api("/api/connections"))
        expect(conns[0]["peer_port"] == 5555, "peer_port: %r" % conns[0]["peer_port"])
        expect(conns[0]["name"].startswith("10.1.2.3:5555 -> "), "name: %r" % conns[0]["name"])
        one = api("/api/connections/" + urllib.parse.quote(conns[0]["name"], safe=""))
        expect(one["peer_host"] == "10.1.2.3" and one["peer_port"] == 5555,
               "GET /api/connections/NAME: %r" % one)
        if WARRENCTL and os.access(WARRENCTL, os.X_OK):
            p = subprocess.run([WARRENCTL, "--host", MGMT.hostname, "--port", str(MGMT.port),
                                "--user", "guest", "--password", "guest", "list_connections",
                                "peer_host", "peer_port"], capture_output=True, text=True,
                               timeout=60)
            expect(p.returncode == 0, "warrenctl: %s" % p.stderr)
            expect(any(line.split() == ["10.1.2.3", "5555"] for line in p.stdout.splitlines()),
                   "warrenctl list_connections: %r" % p.stdout)
        else:
            print("  (no warrenctl at %r: list_connections not checked)" % WARRENCTL)
    finally:
        c.close()


def check_header_from_a_stranger_is_a_bad_protocol_header():
    s = connect_from("127.0.0.1")
    s.sendall(HEADER + rawclient.PROTOCOL_HEADER)
    got = read_until_closed(s)
    s.close()
    expect(got == b"AMQP\x00\x00\x09\x01", "answer: %r" % got)


def check_malformed_header_from_a_peer_is_closed():
    s = connect_from(PEER)
    s.sendall(b"PROXY TCP4 10.1.2.3 127.0.0.1 5555\r\n" + rawclient.PROTOCOL_HEADER)
    got = read_until_closed(s)
    s.close()
    expect(got == b"", "answer: %r" % got)
    if LOG:
        deadline = time.monotonic() + 5
        while True:
            with open(LOG, errors="replace") as f:
                found = "malformed PROXY protocol header" in f.read()
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        expect(found, "no 'malformed PROXY protocol header' line in %s" % LOG)


def check_a_peer_may_connect_without_a_header():
    c = ProxiedClient(PEER, b"")
    c.close()


CHECKS = [
    check_header_from_a_peer_names_the_client,
    check_header_from_a_stranger_is_a_bad_protocol_header,
    check_malformed_header_from_a_peer_is_closed,
    check_a_peer_may_connect_without_a_header,
]


def main():
    for check in CHECKS:
        try:
            check()
        except Exception:  # pylint: disable=broad-except
            print("FAIL %s" % check.__name__)
            traceback.print_exc()
            return 1
        print("ok   %s" % check.__name__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
