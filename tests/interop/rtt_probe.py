#!/usr/bin/python3
"""How long one AMQP client waits for the broker while something else keeps it busy: a
client that sends queue.declare (passive) and waits for declare-ok, over and over, and
reports the round trips.

Standard library only, and a process of its own (start it with start(), stop it with
Probe.stop()), so that the client making the load, which parses JSON in Python, does not
delay the pings through the interpreter lock.

As a script: rtt_probe.py HOST PORT QUEUE [USER PASS]. It declares QUEUE (auto-delete),
prints "ready" once it pings, pings until a line (or end of file) arrives on stdin, then
prints one JSON object: {"count": pings, "p50_ms": ..., "p99_ms": ..., "max_ms": ...}.
Exit status 1 if the broker closed the connection or stopped answering for 30 s.
"""

import json
import os
import select
import socket
import struct
import subprocess
import sys
import time

FRAME_METHOD = 1
FRAME_END = b"\xce"
REPLY_TIMEOUT_S = 30.0


def _shortstr(s):
    b = s.encode()
    return bytes([len(b)]) + b


def _longstr(b):
    return struct.pack(">I", len(b)) + b


def _method(channel, class_id, method_id, args=b""):
    payload = struct.pack(">HH", class_id, method_id) + args
    return struct.pack(">BHI", FRAME_METHOD, channel, len(payload)) + payload + FRAME_END


class Client:
    """One AMQP connection with channel 1 open, read a frame at a time."""

    def __init__(self, host, port, user="guest", password="guest"):
        self.sock = socket.create_connection((host, port), timeout=REPLY_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        self.expect(10, 10)  # connection.start
        response = ("\0%s\0%s" % (user, password)).encode()
        self.sock.sendall(_method(0, 10, 11, _longstr(b"") + _shortstr("PLAIN") +
                                  _longstr(response) + _shortstr("en_US")))
        tune = self.expect(10, 30)
        channel_max, frame_max, _ = struct.unpack(">HIH", tune[:8])
        self.sock.sendall(_method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0)))
        self.sock.sendall(_method(0, 10, 40, _shortstr("/") + _shortstr("") + b"\0"))
        self.expect(10, 41)
        self.sock.sendall(_method(1, 20, 10, _shortstr("")))
        self.expect(20, 11)

    def frame(self):
        """The next frame's (type, channel, payload)."""
        while True:
            if len(self.buf) >= 7:
                ftype, channel, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= 8 + size:
                    payload = self.buf[7 : 7 + size]
                    self.buf = self.buf[8 + size :]
                    return ftype, channel, payload
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the broker closed the connection")
            self.buf += data

    def expect(self, class_id, method_id):
        """The arguments of the next method, which must be class_id.method_id."""
        ftype, _, payload = self.frame()
        got = struct.unpack(">HH", payload[:4]) if ftype == FRAME_METHOD else None
        if got != (class_id, method_id):
            raise ConnectionError("expected method %d.%d, got frame type %d %r" %
                                  (class_id, method_id, ftype, payload[:80]))
        return payload[4:]

    def declare(self, queue, passive):
        flags = 1 if passive else 8  # passive, or auto-delete
        return _method(1, 50, 10, b"\0\0" + _shortstr(queue) + bytes([flags]) +
                       struct.pack(">I", 0))


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, int(round(p / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[k]


def run(host, port, queue, user, password, out):
    c = Client(host, port, user, password)
    c.sock.sendall(c.declare(queue, passive=False))
    c.expect(50, 11)
    ping = c.declare(queue, passive=True)
    rtts = []
    out.write("ready\n")
    out.flush()
    while True:
        readable, _, _ = select.select([sys.stdin], [], [], 0)
        if readable:
            break
        t0 = time.perf_counter()
        c.sock.sendall(ping)
        c.expect(50, 11)
        rtts.append((time.perf_counter() - t0) * 1000.0)
    rtts.sort()
    out.write(json.dumps({
        "count": len(rtts),
        "p50_ms": round(percentile(rtts, 50), 3),
        "p99_ms": round(percentile(rtts, 99), 3),
        "max_ms": round(rtts[-1] if rtts else 0.0, 3),
    }) + "\n")
    out.flush()


class Probe:
    """A running probe process (see start())."""

    def __init__(self, proc):
        self.proc = proc

    def stop(self):
        """Ends the pings; their figures as a dict (count, p50_ms, p99_ms, max_ms)."""
        out, _ = self.proc.communicate("stop\n", timeout=REPLY_TIMEOUT_S + 10)
        if self.proc.returncode != 0:
            raise RuntimeError("rtt_probe failed (status %d): %s" % (self.proc.returncode, out))
        return json.loads(out.splitlines()[-1])


def start(host, port, queue, user="guest", password="guest"):
    """Starts pinging from a process of its own; returns once the first ping can go."""
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), host, str(port), queue,
                             user, password],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        proc.wait()
        raise RuntimeError("rtt_probe did not start: %r" % line)
    return Probe(proc)


if __name__ == "__main__":
    if len(sys.argv) not in (4, 6):
        sys.stderr.write("usage: rtt_probe.py HOST PORT QUEUE [USER PASS]\n")
        sys.exit(2)
    user, password = (sys.argv[4], sys.argv[5]) if len(sys.argv) == 6 else ("guest", "guest")
    try:
        run(sys.argv[1], int(sys.argv[2]), sys.argv[3], user, password, sys.stdout)
    except (OSError, ConnectionError) as e:
        sys.stdout.write("error: %s\n" % e)
        sys.exit(1)
