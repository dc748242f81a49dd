"""A small AMQP 0-9-1 client over a plain socket, for the tests and scripts that need many
connections, their own heartbeats or a look at the broker process (fd_exhaustion.py,
broker_stall.py, churn_memory.py): no client library between the test and the socket, the
standard library only.

Client(host, port, heartbeat=0) connects and logs in as guest/guest on "/" (tune-ok asks
for `heartbeat` seconds), after which channels can be opened and messages published; with
login=False it only connects, and the caller sends PROTOCOL_HEADER, start_ok(), tune_ok()
and connection_open() when it likes. Frames are read with read_frame(timeout); heartbeat()
sends a heartbeat frame. Nothing here checks what the broker says beyond what the handshake
needs: the caller asserts. process_cpu_seconds() and process_rss_kib() look at a process
through /proc.
"""

import os
import socket
import struct
import time

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_MAX = 131072

CONNECTION_START = (10, 10)
CONNECTION_TUNE = (10, 30)
CONNECTION_OPEN_OK = (10, 41)
CONNECTION_CLOSE = (10, 50)
CONNECTION_CLOSE_OK = (10, 51)
CHANNEL_OPEN_OK = (20, 11)
QUEUE_DECLARE_OK = (50, 11)


class Closed(Exception):
    """The broker closed the socket, or sent connection.close."""


def shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    return bytes([len(b)]) + b


def longstr(b):
    return struct.pack(">I", len(b)) + b


def frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([FRAME_END])


def method(channel, class_method, args=b""):
    return frame(FRAME_METHOD, channel, struct.pack(">HH", *class_method) + args)


def start_ok():
    """connection.start-ok: PLAIN as guest/guest."""
    return method(0, (10, 11), longstr(b"") + shortstr("PLAIN") + longstr(b"\0guest\0guest")
                  + shortstr("en_US"))


def tune_ok(heartbeat=0):
    return method(0, (10, 31), struct.pack(">HIH", 2047, FRAME_MAX, heartbeat))


def connection_open():
    return method(0, (10, 40), shortstr("/") + shortstr("") + b"\0")


def broker_address():
    return os.environ.get("AMQP_HOST", "127.0.0.1"), int(os.environ.get("AMQP_PORT", "5672"))


class Client:
    def __init__(self, host, port, heartbeat=0, timeout=10.0, login=True):
        """Connects; with login, goes through the handshake to connection.open-ok."""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        if not login:
            return
        self.send(PROTOCOL_HEADER)
        self.expect_method(CONNECTION_START, timeout)
        self.send(start_ok())
        self.expect_method(CONNECTION_TUNE, timeout)
        self.send(tune_ok(heartbeat) + connection_open())
        self.expect_method(CONNECTION_OPEN_OK, timeout)

    def send(self, data):
        self.sock.sendall(data)

    def heartbeat(self):
        self.send(frame(FRAME_HEARTBEAT, 0, b""))

    def read_frame(self, timeout):
        """The next frame as (type, channel, payload), or None if none came in time."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 7:
                ftype, channel, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= 8 + size:
                    payload = self.buf[7 : 7 + size]
                    self.buf = self.buf[8 + size :]
                    return ftype, channel, payload
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError as e:
                raise Closed(str(e))
            if not data:
                raise Closed("the broker closed the socket")
            self.buf += data

    def expect_method(self, class_method, timeout):
        """Waits for this method, skipping heartbeats and content; returns its arguments."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(max(0.0, deadline - time.monotonic()))
            if f is None:
                raise Closed("no %r within %.1f s" % (class_method, timeout))
            ftype, _, payload = f
            if ftype != FRAME_METHOD:
                continue
            got = struct.unpack(">HH", payload[:4])
            if got == CONNECTION_CLOSE and class_method != CONNECTION_CLOSE:
                code = struct.unpack(">H", payload[4:6])[0]
                raise Closed("connection.close %d %s" % (code, payload[7 : 7 + payload[6]]))
            if got == class_method:
                return payload[4:]

    def channel_open(self, channel=1):
        self.send(method(channel, (20, 10), shortstr("")))
        self.expect_method(CHANNEL_OPEN_OK, 10.0)

    def queue_declare(self, channel, name, exclusive=False, auto_delete=False):
        flags = (4 if exclusive else 0) | (8 if auto_delete else 0)
        self.send(method(channel, (50, 10), b"\0\0" + shortstr(name) + bytes([flags])
                         + struct.pack(">I", 0)))
        self.expect_method(QUEUE_DECLARE_OK, 10.0)

    def publish(self, channel, routing_key, body):
        """basic.publish to the default exchange, no properties; the body in frames of at
        most FRAME_MAX."""
        out = [
            method(channel, (60, 40), b"\0\0" + shortstr("") + shortstr(routing_key) + b"\0"),
            frame(FRAME_HEADER, channel, struct.pack(">HHQH", 60, 0, len(body), 0)),
        ]
        room = FRAME_MAX - 8
        for at in range(0, len(body), room):
            out.append(frame(FRAME_BODY, channel, body[at : at + room]))
        self.send(b"".join(out))

    def close(self, timeout=10.0):
        """connection.close, then waits for close-ok; the socket is closed in any case."""
        try:
            self.send(method(0, CONNECTION_CLOSE, struct.pack(">H", 200) + shortstr("")
                             + b"\0\0\0\0"))
            self.expect_method(CONNECTION_CLOSE_OK, timeout)
        except (Closed, OSError):
            pass
        self.sock.close()


def process_cpu_seconds(pid):
    """utime + stime of process pid, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_kib(pid):
    """VmRSS of process pid in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1
