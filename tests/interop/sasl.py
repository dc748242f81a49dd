#!/usr/bin/python3
"""SASL as a RabbitMQ test node offers it (issue 16): auth_mechanisms.N sets the list in
connection.start, and RABBIT-CR-DEMO logs in by challenge and response:

    start-ok  mechanism RABBIT-CR-DEMO, response = the user name
    secure    challenge "Please tell me your password"
    secure-ok response "My password is <password>"
    tune      (or, with a wrong password, the socket closes: the client did not announce
              authentication_failure_close)

Raw frames over a socket, since no client library here speaks RABBIT-CR-DEMO. Environment:
AMQP_HOST, AMQP_PORT, and SASL_MECHANISMS, the list the broker was configured to offer.
"""

import os
import socket
import struct
import sys

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
EXPECTED = os.environ.get("SASL_MECHANISMS", "PLAIN AMQPLAIN RABBIT-CR-DEMO")


def expect(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_method(s):
    """(class, method, arguments) of the next frame, or None if the socket closed."""
    head = recv_exact(s, 7)
    if head is None:
        return None
    ftype, channel, size = struct.unpack(">BHI", head)
    payload = recv_exact(s, size + 1)
    expect(payload is not None and payload[-1] == 0xCE, "frame end")
    expect(ftype == 1 and channel == 0, "a method frame on channel 0, got type %d" % ftype)
    cls, meth = struct.unpack(">HH", payload[:4])
    return cls, meth, payload[4:-1]


def send_method(s, cls, meth, args):
    payload = struct.pack(">HH", cls, meth) + args
    s.sendall(struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce")


def shortstr(b):
    return struct.pack(">B", len(b)) + b


def longstr(b):
    return struct.pack(">I", len(b)) + b


def start(s):
    s.sendall(b"AMQP\x00\x00\x09\x01")
    cls, meth, args = read_method(s)
    expect((cls, meth) == (10, 10), "connection.start")
    (table_len,) = struct.unpack(">I", args[2:6])
    pos = 6 + table_len
    (mech_len,) = struct.unpack(">I", args[pos:pos + 4])
    return args[pos + 4:pos + 4 + mech_len].decode()


def cr_demo(user, password):
    s = socket.create_connection((HOST, PORT), timeout=10)
    mechanisms = start(s)
    send_method(s, 10, 11, longstr(b"") + shortstr(b"RABBIT-CR-DEMO") + longstr(user) +
                shortstr(b"en_US"))
    cls, meth, args = read_method(s)
    expect((cls, meth) == (10, 20), "connection.secure after start-ok, got %d.%d" % (cls, meth))
    (n,) = struct.unpack(">I", args[:4])
    expect(args[4:4 + n] == b"Please tell me your password", "the challenge: %r" % args[4:4 + n])
    send_method(s, 10, 21, longstr(b"My password is " + password))
    reply = read_method(s)
    s.close()
    return mechanisms, reply


def main():
    mechanisms, reply = cr_demo(b"guest", b"guest")
    expect(mechanisms == EXPECTED, "mechanisms offered: %r, configured %r" % (mechanisms, EXPECTED))
    print("ok mechanisms offered as configured: %s" % mechanisms)
    expect(reply is not None and reply[:2] == (10, 30), "connection.tune after the right password")
    print("ok RABBIT-CR-DEMO with the right password gets connection.tune")
    _, reply = cr_demo(b"guest", b"wrong")
    expect(reply is None, "a wrong password closes the socket, got %r" % (reply,))
    print("ok RABBIT-CR-DEMO with a wrong password is refused")


if __name__ == "__main__":
    main()
