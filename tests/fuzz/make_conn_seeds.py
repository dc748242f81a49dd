#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_conn: whole client sessions, byte for byte as a client
sends them (protocol header, handshake, then a scenario). Run from the top of the tree:
    python3 tests/fuzz/make_conn_seeds.py tests/fuzz/corpus/conn
"""
import os
import struct
import sys

def shortstr(s):
    b = s.encode()
    return struct.pack('>B', len(b)) + b

def longstr(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack('>I', len(b)) + b

def table(entries):
    out = b''
    for k, (t, v) in entries.items():
        out += shortstr(k) + t.encode()
        if t == 'S':
            out += longstr(v)
        elif t == 't':
            out += struct.pack('>B', 1 if v else 0)
        elif t == 'l':
            out += struct.pack('>q', v)
        elif t == 'I':
            out += struct.pack('>i', v)
        elif t == 'F':
            out += table(v)
        elif t == 'A':
            arr = b''.join(b'S' + longstr(x) for x in v)
            out += struct.pack('>I', len(arr)) + arr
    return struct.pack('>I', len(out)) + out

def frame(kind, channel, payload):
    return struct.pack('>BHI', kind, channel, len(payload)) + payload + b'\xce'

def method(channel, cls, mth, args=b''):
    return frame(1, channel, struct.pack('>HH', cls, mth) + args)

def bits(*flags):
    v = 0
    for i, f in enumerate(flags):
        v |= (1 if f else 0) << i
    return struct.pack('>B', v)

def publish(channel, exchange, key, body, headers=None, mandatory=False, expiration=None):
    out = method(channel, 60, 40, struct.pack('>H', 0) + shortstr(exchange) + shortstr(key) +
                 bits(mandatory, False))
    flags, props = 0, b''
    if headers is not None:
        flags |= 1 << 13
        props += table(headers)
    flags |= 1 << 12
    props += struct.pack('>B', 2)
    if expiration is not None:
        flags |= 1 << 8
        props += shortstr(expiration)
    out += frame(2, channel, struct.pack('>HHQH', 60, 0, len(body), flags) + props)
    if body:
        out += frame(3, channel, body)
    return out

def handshake():
    caps = {'capabilities': ('F', {'consumer_cancel_notify': ('t', True),
                                   'authentication_failure_close': ('t', True)})}
    out = b'AMQP\x00\x00\x09\x01'
    out += method(0, 10, 11, table(caps) + shortstr('PLAIN') + longstr('\0guest\0guest') +
                  shortstr('en_US'))
    out += method(0, 10, 31, struct.pack('>HIH', 2047, 131072, 0))
    out += method(0, 10, 40, shortstr('/') + shortstr('') + bits(False))
    out += method(1, 20, 10, shortstr(''))
    return out

def queue_declare(name, args=None, exclusive=False):
    return method(1, 50, 10, struct.pack('>H', 0) + shortstr(name) +
                  bits(False, False, exclusive, False, False) + table(args or {}))

SEEDS = {
    'publish_get': handshake() + queue_declare('q') + publish(1, '', 'q', b'hello') +
        method(1, 60, 70, struct.pack('>H', 0) + shortstr('q') + bits(False)) +
        method(1, 60, 80, struct.pack('>Q', 1) + bits(False)),
    'consume_ack': handshake() + queue_declare('q') +
        method(1, 60, 10, struct.pack('>IHB', 0, 10, 0)) +
        method(1, 60, 20, struct.pack('>H', 0) + shortstr('q') + shortstr('c1') +
               bits(False, False, False, False) + table({})) +
        publish(1, '', 'q', b'one') + publish(1, '', 'q', b'two') +
        method(1, 60, 80, struct.pack('>Q', 2) + bits(True)) +
        method(1, 60, 120, struct.pack('>Q', 0) + bits(True, True)),
    'topic_confirm': handshake() + method(1, 85, 10, bits(False)) +
        method(1, 40, 10, struct.pack('>H', 0) + shortstr('t') + shortstr('topic') +
               bits(False, False, False, False, False) + table({})) +
        queue_declare('', exclusive=True) +
        method(1, 50, 20, struct.pack('>H', 0) + shortstr('') + shortstr('t') + shortstr('a.#') +
               bits(False) + table({})) +
        publish(1, 't', 'a.b.c', b'x' * 300, headers={'CC': ('A', ['a.z'])}, mandatory=True),
    'deadletter': handshake() +
        queue_declare('dlq') +
        queue_declare('work', {'x-dead-letter-exchange': ('S', ''),
                               'x-dead-letter-routing-key': ('S', 'dlq'),
                               'x-message-ttl': ('I', 0), 'x-max-length': ('l', 2)}) +
        publish(1, '', 'work', b'a', expiration='0') + publish(1, '', 'work', b'b') +
        method(1, 90, 10) + publish(1, '', 'work', b'c') + method(1, 90, 20),
    'errors': handshake() + method(1, 50, 10, struct.pack('>H', 0) + shortstr('missing') +
                                   bits(True) + table({})) +
        method(1, 20, 41) + method(2, 60, 80, struct.pack('>Q', 9) + bits(False)) +
        method(0, 10, 50, struct.pack('>H', 200) + shortstr('bye') + struct.pack('>HH', 0, 0)),
}

def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'tests/fuzz/corpus/conn'
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)

if __name__ == '__main__':
    main()
