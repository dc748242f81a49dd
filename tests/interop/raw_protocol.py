#!/usr/bin/python3
"""AMQP 0-9-1 spoken by hand over a socket: what the broker answers a client that breaks
the protocol, byte for byte.

Every expectation here (reply code, reply text, class and method ids, who closes and when)
was read from RabbitMQ 3.10.8, whose behaviour Warren copies. The texts that embed Erlang
terms ("<<0,20,0,10,0>>", "{frame_too_large,...}") are what RabbitMQ clients see and log.

Standard library only, so that nothing between this script and the socket can fix up a
malformed frame. Environment: AMQP_HOST and AMQP_PORT (lib.sh sets them);
WARREN_SLOW_TESTS=1 adds the checks that wait for the 10 s handshake timeout.
Prints one line per check; exits 1 if any failed.
"""

import concurrent.futures
import os
import socket
import struct
import sys
import time

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
SLOW = os.environ.get("WARREN_SLOW_TESTS") == "1"

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE

CONNECTION_START = (10, 10)
CONNECTION_START_OK = (10, 11)
CONNECTION_TUNE = (10, 30)
CONNECTION_TUNE_OK = (10, 31)
CONNECTION_OPEN = (10, 40)
CONNECTION_OPEN_OK = (10, 41)
CONNECTION_CLOSE = (10, 50)
CONNECTION_CLOSE_OK = (10, 51)
CHANNEL_OPEN = (20, 10)
CHANNEL_OPEN_OK = (20, 11)
CHANNEL_CLOSE = (20, 40)
CHANNEL_CLOSE_OK = (20, 41)
QUEUE_DECLARE = (50, 10)
QUEUE_DECLARE_OK = (50, 11)
BASIC_PUBLISH = (60, 40)
BASIC_GET = (60, 70)
BASIC_GET_OK = (60, 71)

FRAME_MAX = 131072  # RabbitMQ's default; the client accepts what the server proposes
CLIENT_PROPERTIES = {
    "product": "warren raw protocol test",
    # Without this capability RabbitMQ closes the socket on a failed login without a word.
    "capabilities": {"authentication_failure_close": True},
}

# Seconds to wait for a reply, and for the broker to close the socket. RabbitMQ waits 3 s
# before it closes a connection that failed during the handshake.
REPLY_TIMEOUT = 5.0
CLOSE_TIMEOUT = 8.0


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


# ---- encoding --------------------------------------------------------------------------


def shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    assert len(b) < 256
    return bytes([len(b)]) + b


def longstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def table_entries(fields):
    """The entries of a field table without its length prefix (an AMQPLAIN response)."""
    out = b""
    for name, value in fields.items():
        out += shortstr(name)
        if isinstance(value, bool):
            out += b"t" + bytes([value])
        elif isinstance(value, dict):
            out += b"F" + table(value)
        else:
            out += b"S" + longstr(value)
    return out


def table(fields):
    entries = table_entries(fields)
    return struct.pack(">I", len(entries)) + entries


def frame(ftype, channel, payload, end=FRAME_END):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])


def method(channel, class_method, args=b""):
    return frame(FRAME_METHOD, channel, struct.pack(">HH", *class_method) + args)


def start_ok(mechanism, response, properties=None):
    props = CLIENT_PROPERTIES if properties is None else properties
    return method(
        0,
        CONNECTION_START_OK,
        table(props) + shortstr(mechanism) + longstr(response) + shortstr("en_US"),
    )


def tune_ok(channel_max=2047, frame_max=FRAME_MAX, heartbeat=0):
    return method(0, CONNECTION_TUNE_OK, struct.pack(">HIH", channel_max, frame_max, heartbeat))


def connection_open(vhost="/"):
    return method(0, CONNECTION_OPEN, shortstr(vhost) + shortstr("") + b"\x00")


def connection_close_ok():
    return method(0, CONNECTION_CLOSE_OK)


def channel_open(channel):
    return method(channel, CHANNEL_OPEN, shortstr(""))


def channel_close(channel):
    return method(channel, CHANNEL_CLOSE, struct.pack(">H", 200) + shortstr("") + b"\0\0\0\0")


def queue_declare(channel, name, passive=False, exclusive=False):
    flags = (1 if passive else 0) | (4 if exclusive else 0)
    return method(
        channel, QUEUE_DECLARE, b"\0\0" + shortstr(name) + bytes([flags]) + table({})
    )


def basic_publish(channel, routing_key):
    return method(channel, BASIC_PUBLISH, b"\0\0" + shortstr("") + shortstr(routing_key) + b"\0")


def basic_get(channel, queue):
    """basic.get with no-ack."""
    return method(channel, BASIC_GET, b"\0\0" + shortstr(queue) + b"\x01")


def content_header(channel, body_size):
    """A basic-class content header with no properties."""
    return frame(FRAME_HEADER, channel, struct.pack(">HHQH", 60, 0, body_size, 0))


PLAIN_GUEST = b"\0guest\0guest"


def amqplain(login, password):
    return table_entries({"LOGIN": login, "PASSWORD": password})


# ---- decoding --------------------------------------------------------------------------


class Reader:
    """Reads fields from one payload; running past its end is a failed check."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        expect(self.pos + n <= len(self.data), "field runs past the end of the payload")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def u8(self):
        return self.unpack(">B")[0]

    def u16(self):
        return self.unpack(">H")[0]

    def u32(self):
        return self.unpack(">I")[0]

    def shortstr(self):
        return self.take(self.u8()).decode()

    def longstr(self):
        return self.take(self.u32())

    def table(self):
        sub = Reader(self.longstr())
        out = {}
        while sub.pos < len(sub.data):
            name = sub.shortstr()
            out[name] = sub.value()
        return out

    def value(self):
        kind = chr(self.u8())
        fixed = {"t": ">B", "b": ">b", "B": ">B", "s": ">h", "u": ">H", "I": ">i", "i": ">I",
                 "l": ">q", "L": ">Q", "f": ">f", "d": ">d", "T": ">Q"}
        if kind in fixed:
            v = self.unpack(fixed[kind])[0]
            return bool(v) if kind == "t" else v
        if kind == "D":
            return self.unpack(">BI")
        if kind in "Sx":
            return self.longstr()
        if kind == "F":
            return self.table()
        if kind == "A":
            sub = Reader(self.longstr())
            items = []
            while sub.pos < len(sub.data):
                items.append(sub.value())
            return items
        if kind == "V":
            return None
        raise CheckFailed("unknown field type %r in a table" % kind)


class Peer:
    """One client socket, read frame by frame."""

    def __init__(self):
        self.sock = socket.create_connection((HOST, PORT), timeout=REPLY_TIMEOUT)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_if_open(self, data):
        """For a close-ok: the broker may already have dropped the socket, which is fine."""
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def _fill(self, deadline, what):
        """Reads more bytes; False at end of stream (or a reset)."""
        left = deadline - time.monotonic()
        expect(left > 0, "no %s within the timeout (have %r)" % (what, self.buf[:64]))
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise CheckFailed("no %s within the timeout (have %r)" % (what, self.buf[:64]))
        except ConnectionResetError:
            return False
        if not data:
            return False
        self.buf += data
        return True

    def read_exact(self, n, what, timeout=REPLY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            expect(self._fill(deadline, what), "connection closed, expected %s (got %r)"
                   % (what, self.buf))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def frame(self, what="a frame", timeout=REPLY_TIMEOUT):
        ftype, channel, size = struct.unpack(">BHI", self.read_exact(7, what, timeout))
        payload = self.read_exact(size + 1, what, timeout)
        expect(payload[-1] == FRAME_END, "frame-end octet is 0x%02x" % payload[-1])
        return ftype, channel, payload[:-1]

    def method(self, what, timeout=REPLY_TIMEOUT):
        """The next frame, which must be a method; returns (channel, (class, method), args)."""
        ftype, channel, payload = self.frame(what, timeout)
        expect(ftype == FRAME_METHOD, "expected %s, got a frame of type %d" % (what, ftype))
        r = Reader(payload)
        class_method = (r.u16(), r.u16())
        return channel, class_method, r

    def expect_method(self, channel, class_method, what, timeout=REPLY_TIMEOUT):
        got_channel, got, args = self.method(what, timeout)
        if got == CONNECTION_CLOSE and class_method != CONNECTION_CLOSE:
            code, text = args.u16(), args.shortstr()
            raise CheckFailed("expected %s, got connection.close %d %r" % (what, code, text))
        expect((got_channel, got) == (channel, class_method),
               "expected %s on channel %d, got method %s on channel %d"
               % (what, channel, got, got_channel))
        return args

    def expect_closed(self, timeout=CLOSE_TIMEOUT):
        """The broker closes the socket within timeout, sending nothing more."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline, "end of stream"):
            pass
        expect(self.buf == b"", "broker sent %r before closing" % self.buf[:64])

    def expect_connection_close(self, code, text, class_method=(0, 0)):
        """connection.close with exactly these fields; after our close-ok, the broker closes."""
        args = self.expect_method(0, CONNECTION_CLOSE, "connection.close %d" % code)
        got = (args.u16(), args.shortstr(), (args.u16(), args.u16()))
        expect(got == (code, text, class_method),
               "connection.close is %r, expected %r" % (got, (code, text, class_method)))
        self.send_if_open(connection_close_ok())
        self.expect_closed()


def connect(upto="open", frame_max=FRAME_MAX, properties=None):
    """A connection taken through the handshake as far as 'start', 'tune' or 'open'."""
    p = Peer()
    p.send(PROTOCOL_HEADER)
    p.expect_method(0, CONNECTION_START, "connection.start")
    if upto == "start":
        return p
    p.send(start_ok("PLAIN", PLAIN_GUEST, properties))
    p.expect_method(0, CONNECTION_TUNE, "connection.tune")
    if upto == "tune":
        return p
    p.send(tune_ok(frame_max=frame_max) + connection_open())
    p.expect_method(0, CONNECTION_OPEN_OK, "connection.open-ok")
    return p


_PRODUCT = []


def broker_is_warren():
    """Where Warren deliberately differs from RabbitMQ, a check asks which one it talks to:
    the product server property of connection.start says."""
    if not _PRODUCT:
        with Peer() as p:
            p.send(PROTOCOL_HEADER)
            args = p.expect_method(0, CONNECTION_START, "connection.start")
            args.u8(), args.u8()
            _PRODUCT.append(args.table().get("product", b""))
    return _PRODUCT[0] == b"Warren"


def opened_channel_1(frame_max=FRAME_MAX):
    p = connect(frame_max=frame_max)
    p.send(channel_open(1))
    p.expect_method(1, CHANNEL_OPEN_OK, "channel.open-ok")
    return p


# ---- checks ----------------------------------------------------------------------------

CHECKS = []


def check(slow=False):
    def register(fn):
        CHECKS.append((fn, slow))
        return fn

    return register


def expect_header_then_close(sent):
    with Peer() as p:
        p.send(sent)
        got = p.read_exact(8, "the protocol header")
        expect(got == PROTOCOL_HEADER, "broker answered %r" % got)
        p.expect_closed()


@check()
def garbage_instead_of_header_gets_protocol_header_and_close():
    expect_header_then_close(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")


@check()
def header_0_9_0_gets_protocol_header_and_close():
    expect_header_then_close(b"AMQP\x00\x00\x09\x00")


@check()
def header_0_8_0_with_new_style_prefix_gets_protocol_header_and_close():
    expect_header_then_close(b"AMQP\x00\x00\x08\x00")


@check()
def header_0_10_gets_protocol_header_and_close():
    expect_header_then_close(b"AMQP\x00\x00\x0a\x00")


def expect_legacy_start(header, major, minor):
    if broker_is_warren() and (major, minor) == (8, 0):
        # Warren does not speak AMQP 0-8: its header gets the 0-9-1 header and a close, as
        # the spec asks (see README, "Differences from RabbitMQ"). 0-9 it takes as 0-9-1.
        expect_header_then_close(header)
        return
    with Peer() as p:
        p.send(header)
        args = p.expect_method(0, CONNECTION_START, "connection.start")
        got = (args.u8(), args.u8())
        expect(got == (major, minor), "connection.start has version %r" % (got,))


# RabbitMQ still speaks AMQP 0-8 and 0-9: it answers their headers with connection.start
# carrying that version, rather than with its own header.
@check()
def header_amqp_0_8_gets_connection_start_version_8_0():
    expect_legacy_start(b"AMQP\x01\x01\x08\x00", 8, 0)


@check()
def header_amqp_0_9_gets_connection_start_version_0_9():
    expect_legacy_start(b"AMQP\x01\x01\x00\x09", 0, 9)


@check()
def plain_handshake_gets_rabbitmq_start_tune_and_open_ok():
    with Peer() as p:
        p.send(PROTOCOL_HEADER)
        args = p.expect_method(0, CONNECTION_START, "connection.start")
        version = (args.u8(), args.u8())
        expect(version == (0, 9), "connection.start version %r" % (version,))
        props = args.table()
        mechanisms = args.longstr().decode().split()
        locales = args.longstr().decode().split()
        expect({"PLAIN", "AMQPLAIN"} <= set(mechanisms), "mechanisms %r" % mechanisms)
        expect("en_US" in locales, "locales %r" % locales)
        # Clients test these before they use an extension (pika: publisher_confirms).
        caps = props.get("capabilities", {})
        wanted = ["publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                  "consumer_cancel_notify", "connection.blocked", "consumer_priorities",
                  "authentication_failure_close", "per_consumer_qos", "direct_reply_to"]
        for cap in wanted:
            expect(caps.get(cap) is True, "capability %s is %r" % (cap, caps.get(cap)))
        for key in ("product", "version", "platform"):
            expect(isinstance(props.get(key), bytes), "server property %s is %r"
                   % (key, props.get(key)))

        p.send(start_ok("PLAIN", PLAIN_GUEST))
        args = p.expect_method(0, CONNECTION_TUNE, "connection.tune")
        tune = args.unpack(">HIH")
        expect(tune == (2047, 131072, 60), "tune (channel_max, frame_max, heartbeat) %r"
               % (tune,))

        p.send(tune_ok() + connection_open())
        args = p.expect_method(0, CONNECTION_OPEN_OK, "connection.open-ok")
        expect(args.shortstr() == "", "open-ok reserved field is not empty")
        p.send(channel_open(1))
        args = p.expect_method(1, CHANNEL_OPEN_OK, "channel.open-ok")
        expect(args.longstr() == b"", "channel.open-ok reserved field is not empty")


@check()
def amqplain_handshake_succeeds():
    with Peer() as p:
        p.send(PROTOCOL_HEADER)
        p.expect_method(0, CONNECTION_START, "connection.start")
        p.send(start_ok("AMQPLAIN", amqplain("guest", "guest")))
        p.expect_method(0, CONNECTION_TUNE, "connection.tune")
        p.send(tune_ok() + connection_open())
        p.expect_method(0, CONNECTION_OPEN_OK, "connection.open-ok")


def refused_login(mechanism, response, properties=None):
    p = Peer()
    p.send(PROTOCOL_HEADER)
    p.expect_method(0, CONNECTION_START, "connection.start")
    p.send(start_ok(mechanism, response, properties))
    return p


@check()
def wrong_password_with_plain_gets_403():
    with refused_login("PLAIN", b"\0guest\0wrong") as p:
        p.expect_connection_close(
            403,
            "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
            "For details see the broker logfile.",
        )


@check()
def unknown_user_with_plain_gets_403():
    with refused_login("PLAIN", b"\0nobody.interop\0guest") as p:
        p.expect_connection_close(
            403,
            "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
            "For details see the broker logfile.",
        )


@check()
def wrong_password_with_amqplain_gets_403():
    with refused_login("AMQPLAIN", amqplain("guest", "wrong")) as p:
        p.expect_connection_close(
            403,
            "ACCESS_REFUSED - Login was refused using authentication mechanism AMQPLAIN. "
            "For details see the broker logfile.",
        )


@check()
def wrong_password_without_failure_close_capability_is_a_silent_close():
    with refused_login("PLAIN", b"\0guest\0wrong", {"product": "old client"}) as p:
        p.expect_closed()


@check()
def unknown_mechanism_is_a_silent_close():
    with refused_login("NOT-A-MECHANISM", b"x") as p:
        p.expect_closed()


@check()
def malformed_plain_response_is_a_silent_close():
    with refused_login("PLAIN", b"no NUL separators") as p:
        p.expect_closed()


@check()
def frame_over_4096_before_tune_is_a_silent_close():
    # Until tune-ok only frames of 4096 octets are allowed: a start-ok padded past that
    # must not be answered with connection.tune.
    with Peer() as p:
        p.send(PROTOCOL_HEADER)
        p.expect_method(0, CONNECTION_START, "connection.start")
        props = dict(CLIENT_PROPERTIES, padding="x" * 5000)
        big = start_ok("PLAIN", PLAIN_GUEST, props)
        expect(len(big) - 8 > 4096, "test frame is not over 4096 octets")
        p.send(big)
        p.expect_closed()


@check()
def open_of_missing_vhost_gets_530():
    with connect(upto="tune") as p:
        p.send(tune_ok() + connection_open("interop-no-such-vhost"))
        p.expect_connection_close(
            530, "NOT_ALLOWED - vhost interop-no-such-vhost not found", CONNECTION_OPEN
        )


@check()
def frame_over_frame_max_gets_501():
    # The frame header alone is enough: its size is checked before any payload is read.
    with connect() as p:
        p.send(struct.pack(">BHI", FRAME_METHOD, 0, 200000))
        p.expect_connection_close(
            501, "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,200000,131064}"
        )


@check()
def rest_of_a_frame_over_frame_max_is_dropped_without_a_reset():
    # A client that goes on sending its oversized frame after the 501: the broker drops the
    # rest unread rather than resetting the socket under the client's writes (which then fail
    # with a broken pipe), and closes once the client has closed its side.
    with connect() as p:
        p.send(struct.pack(">BHI", FRAME_METHOD, 0, 1000000))
        args = p.expect_method(0, CONNECTION_CLOSE, "connection.close 501")
        expect(args.u16() == 501, "a 501")
        for _ in range(16):
            p.send(b"\x00" * 65536)
            time.sleep(0.02)
        p.sock.shutdown(socket.SHUT_WR)
        p.expect_closed()


@check()
def body_frame_over_small_frame_max_gets_501():
    with opened_channel_1(frame_max=4096) as p:
        p.send(basic_publish(1, "interop.raw.nowhere") + content_header(1, 5000))
        p.send(struct.pack(">BHI", FRAME_BODY, 1, 5000))
        p.expect_connection_close(
            501, "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,5000,4088}"
        )


@check()
def frame_of_exactly_frame_max_is_accepted():
    # frame_max counts the whole frame: 7 octets of header, payload, frame-end.
    with opened_channel_1(frame_max=4096) as p:
        body = frame(FRAME_BODY, 1, b"x" * (4096 - 8))
        expect(len(body) == 4096, "test frame is not 4096 octets")
        p.send(basic_publish(1, "interop.raw.nowhere") + content_header(1, 4096 - 8) + body)
        p.send(channel_close(1))
        p.expect_method(1, CHANNEL_CLOSE_OK, "channel.close-ok")


@check()
def bad_frame_end_gets_501():
    with connect() as p:
        p.send(frame(FRAME_METHOD, 1, struct.pack(">HH", *CHANNEL_OPEN) + b"\0", end=0))
        p.expect_connection_close(
            501, "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}"
        )


@check()
def large_body_frame_with_bad_end_gets_501_naming_its_first_16_octets():
    # Payloads over 16 octets are shown by their first 16, and Erlang's ~p breaks the line
    # that would pass column 80 (RabbitMQ 3.10.8's text, byte for byte). Sent in pieces, so
    # Warren reads most of the payload straight into the message before it sees the end.
    body = bytes((i * 7) & 0xFF for i in range(20000))
    data = frame(FRAME_BODY, 1, body, end=0)
    with opened_channel_1() as p:
        p.send(basic_publish(1, "interop.raw.nowhere") + content_header(1, len(body)))
        for i in range(0, len(data), 6000):
            p.send(data[i:i + 6000])
            time.sleep(0.02)
        p.expect_connection_close(
            501,
            "FRAME_ERROR - type 3, first 16 octets = "
            "<<0,7,14,21,28,35,42,49,56,63,70,77,84,91,98,105>>: {invalid_frame_end_marker,\n"
            + " " * 79 + "0}",
        )


@check()
def frame_error_with_long_binary_is_broken_over_lines_as_rabbitmq_does():
    with opened_channel_1() as p:
        p.send(basic_publish(1, "interop.raw.nowhere") + content_header(1, 16))
        p.send(frame(FRAME_BODY, 1, bytes([128] * 16), end=0))
        p.expect_connection_close(
            501,
            "FRAME_ERROR - type 3, all octets = <<128,128,128,128,128,128,128,128,128,128,128,"
            "128,128,128,\n" + " " * 23 + "128,128>>: {invalid_frame_end_marker,0}",
        )


@check()
def unknown_frame_type_with_bad_end_gets_the_end_marker_error():
    # RabbitMQ reads the whole frame and checks its end octet before its type.
    with connect() as p:
        p.send(frame(9, 0, b"\x01\x02", end=0xCF))
        p.expect_connection_close(
            501, "FRAME_ERROR - type 9, all octets = <<1,2>>: {invalid_frame_end_marker,207}"
        )


def get_body(p, channel, queue):
    """basic.get (no-ack) of one message; returns its body."""
    p.send(basic_get(channel, queue))
    p.expect_method(channel, BASIC_GET_OK, "basic.get-ok")
    ftype, _, payload = p.frame("content header")
    expect(ftype == FRAME_HEADER, "expected a content header, got frame type %d" % ftype)
    size = struct.unpack(">Q", payload[4:12])[0]
    body = b""
    while len(body) < size:
        ftype, _, payload = p.frame("body frame")
        expect(ftype == FRAME_BODY, "expected a body frame, got frame type %d" % ftype)
        body += payload
    return body


@check()
def large_body_frames_sent_in_odd_pieces_arrive_intact():
    # Warren reads a large body frame into its message as it arrives: the frame header split,
    # the end octet alone, the next frame's start glued to the previous payload, a small
    # message right behind a large one. Every byte must come back.
    q = "interop.raw.large-%d" % os.getpid()
    big = bytes((i * 131 + 7) & 0xFF for i in range(300000))
    frames = b"".join(
        frame(FRAME_BODY, 1, big[i:i + 100000]) for i in range(0, len(big), 100000))
    stream = (basic_publish(1, q) + content_header(1, len(big)) + frames
              + basic_publish(1, q) + content_header(1, 5) + frame(FRAME_BODY, 1, b"small"))
    cuts = [3, 60, 71, 5000, 50000, 100050, 100055, 100056, 150000, 200063, 200064, 299000]
    with opened_channel_1() as p:
        p.send(queue_declare(1, q, exclusive=True))
        p.expect_method(1, QUEUE_DECLARE_OK, "queue.declare-ok")
        last = 0
        for cut in cuts + [len(stream)]:
            cut = min(cut, len(stream))
            p.send(stream[last:cut])
            last = cut
            time.sleep(0.02)
        got = get_body(p, 1, q)
        expect(len(got) == len(big), "got %d octets of %d" % (len(got), len(big)))
        expect(got == big, "the large body came back changed")
        expect(get_body(p, 1, q) == b"small", "the small message behind it changed")


@check()
def client_gone_in_the_middle_of_a_large_body_leaves_the_broker_serving():
    body_size = 500000
    with opened_channel_1() as p:
        p.send(basic_publish(1, "interop.raw.nowhere") + content_header(1, body_size))
        p.send(struct.pack(">BHI", FRAME_BODY, 1, 100000) + b"x" * 30000)
        time.sleep(0.05)
    with opened_channel_1() as p:
        p.send(channel_close(1))
        p.expect_method(1, CHANNEL_CLOSE_OK, "channel.close-ok")


@check()
def method_on_channel_never_opened_gets_504():
    with connect() as p:
        p.send(queue_declare(3, "interop.raw.q"))
        p.expect_connection_close(504, "CHANNEL_ERROR - expected 'channel.open'", QUEUE_DECLARE)


@check()
def second_channel_open_gets_504():
    with opened_channel_1() as p:
        p.send(channel_open(1))
        p.expect_connection_close(504, "CHANNEL_ERROR - second 'channel.open' seen", CHANNEL_OPEN)


@check()
def queue_method_on_channel_0_gets_504():
    with connect() as p:
        p.send(queue_declare(0, "interop.raw.q"))
        p.expect_connection_close(
            504, "CHANNEL_ERROR - unexpected method in connection state running", QUEUE_DECLARE
        )


# RabbitMQ 3.10.8 has no reply for a method it cannot look up: the connection process
# crashes and the socket is closed without a connection.close. Warren answers 540 with the
# ids it did not know, so the client learns why.
def expect_unknown_method_refused(class_method):
    with opened_channel_1() as p:
        p.send(method(1, class_method))
        if broker_is_warren():
            p.expect_connection_close(
                540, "NOT_IMPLEMENTED - unknown method: class %d, method %d" % class_method,
                class_method)
        else:
            p.expect_closed()


@check()
def unknown_method_id_is_refused():
    expect_unknown_method_refused((60, 99))


@check()
def unknown_class_id_is_refused():
    expect_unknown_method_refused((99, 10))


@check()
def content_header_without_publish_gets_505():
    with opened_channel_1() as p:
        p.send(content_header(1, 5))
        p.expect_connection_close(
            505, "UNEXPECTED_FRAME - expected method frame, got non method frame instead"
        )


@check()
def content_body_without_publish_gets_505():
    with opened_channel_1() as p:
        p.send(frame(FRAME_BODY, 1, b"hello"))
        p.expect_connection_close(
            505, "UNEXPECTED_FRAME - expected method frame, got non method frame instead"
        )


@check()
def method_instead_of_content_header_gets_505():
    with opened_channel_1() as p:
        p.send(basic_publish(1, "interop.raw.nowhere") + queue_declare(1, "interop.raw.q"))
        p.expect_connection_close(
            505,
            "UNEXPECTED_FRAME - expected content header for class 60, "
            "got non content header frame instead",
            BASIC_PUBLISH,
        )


@check()
def content_header_on_channel_0_gets_505():
    with connect() as p:
        p.send(content_header(0, 5))
        p.expect_connection_close(
            505, "UNEXPECTED_FRAME - type 2, all octets = <<0,60,0,0,0,0,0,0,0,0,0,5,0,0>>"
        )


@check()
def truncated_method_gets_501():
    with opened_channel_1() as p:
        # queue.declare cut after its first field (reserved-1).
        p.send(method(1, QUEUE_DECLARE, b"\0\0"))
        p.expect_connection_close(501, "FRAME_ERROR - cannot decode <<0,0>>", QUEUE_DECLARE)


@check()
def heartbeat_on_channel_1_gets_505():
    with opened_channel_1() as p:
        p.send(frame(FRAME_HEARTBEAT, 1, b""))
        p.expect_connection_close(505, "UNEXPECTED_FRAME - type 8, all octets = <<>>")


@check()
def heartbeat_on_channel_0_is_accepted():
    with connect() as p:
        p.send(frame(FRAME_HEARTBEAT, 0, b"") + channel_open(1))
        p.expect_method(1, CHANNEL_OPEN_OK, "channel.open-ok")


@check()
def unknown_frame_type_gets_501():
    with connect() as p:
        p.send(frame(9, 0, b""))
        p.expect_connection_close(501, "FRAME_ERROR - type 9, all octets = <<>>: unknown_frame")


@check()
def passive_declare_of_missing_queue_closes_channel_with_404():
    with opened_channel_1() as p:
        p.send(queue_declare(1, "interop.raw.missing", passive=True))
        args = p.expect_method(1, CHANNEL_CLOSE, "channel.close")
        got = (args.u16(), args.shortstr(), args.unpack(">HH"))
        expected = (404, "NOT_FOUND - no queue 'interop.raw.missing' in vhost '/'", QUEUE_DECLARE)
        expect(got == expected, "channel.close is %r, expected %r" % (got, expected))
        # The connection lives on, and the channel number can be used again.
        p.send(method(1, CHANNEL_CLOSE_OK) + channel_open(1))
        p.expect_method(1, CHANNEL_OPEN_OK, "channel.open-ok after the channel error")


# Here the client closes the socket after close-ok (RabbitMQ waits 30 s for it to do so).
@check()
def client_connection_close_gets_close_ok():
    with connect() as p:
        p.send(method(0, CONNECTION_CLOSE, struct.pack(">H", 200) + shortstr("bye") + b"\0" * 4))
        p.expect_method(0, CONNECTION_CLOSE_OK, "connection.close-ok")


def expect_handshake_timeout(p, started):
    p.expect_closed(timeout=15)
    waited = time.monotonic() - started
    expect(waited >= 9, "closed after %.1f s, before the 10 s handshake timeout" % waited)


@check(slow=True)
def silent_client_is_dropped_after_handshake_timeout():
    with Peer() as p:
        expect_handshake_timeout(p, time.monotonic())


@check(slow=True)
def client_silent_after_start_is_dropped_after_handshake_timeout():
    with Peer() as p:
        started = time.monotonic()
        p.send(PROTOCOL_HEADER)
        p.expect_method(0, CONNECTION_START, "connection.start")
        expect_handshake_timeout(p, started)


def run(check_and_slow):
    fn, slow = check_and_slow
    if slow and not SLOW:
        return "skip %s (set WARREN_SLOW_TESTS=1 to wait for the handshake timeout)" % (
            fn.__name__), True
    started = time.monotonic()
    try:
        fn()
    except (CheckFailed, OSError) as e:
        return "FAIL %s: %s" % (fn.__name__, e), False
    return "ok   %s (%.1f s)" % (fn.__name__, time.monotonic() - started), True


def main():
    # The checks are independent, and several wait seconds for the broker to close a
    # socket, so they run side by side; the report keeps their order.
    print("raw protocol checks against %s:%d" % (HOST, PORT))
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, CHECKS))
    for line, _ in results:
        print(line)
    failed = sum(1 for _, passed in results if not passed)
    print("%d checks, %d failed" % (len(results), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
