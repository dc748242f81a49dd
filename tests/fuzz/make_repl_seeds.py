#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_repl: one payload per frame type (mode byte 1: type and
payload, no crc) and whole streams of framed messages as a leader and a follower send them
(mode byte 0). Run from the top of the tree:
    python3 tests/fuzz/make_repl_seeds.py tests/fuzz/corpus/repl
"""
import os
import struct
import sys

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF

def shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack('>B', len(b)) + b

def frame(t, payload):
    head = struct.pack('>BI', t, len(payload))
    return head + struct.pack('>I', crc32c(head + payload)) + payload

HELLO, CHALLENGE, AUTH, CREATE, APPEND, TRUNCATE, UNLINK, REPLACE, EPOCH, HEARTBEAT, ACK, ERROR, \
    APPEND_LZ4 = range(1, 14)
SEG_HEADER = b'WRNSEG\r\n' + struct.pack('>II', 1, 3)

def history(entries):
    return struct.pack('>I', len(entries)) + b''.join(struct.pack('>QI', e, s) for e, s in entries)

payloads = {
    'hello': (HELLO, b'WRNREPL\n' + struct.pack('>H', 1) + shortstr('node-b') +
              struct.pack('>Q', 7) + bytes(range(32)) + history([(5, 1), (7, 3)]) +
              struct.pack('>I', 2) + struct.pack('>IQ', 1, 16384) + struct.pack('>IQ', 3, 100) +
              struct.pack('>QI', 2048, 0x12345678)),
    'hello_v2': (HELLO, b'WRNREPL\n' + struct.pack('>H', 2)),
    'challenge': (CHALLENGE, struct.pack('>Q', 7) + bytes(32) + bytes(range(32)) + shortstr('leader')),
    'auth': (AUTH, bytes(range(32, 64))),
    'create': (CREATE, struct.pack('>QI', 10, 3) + SEG_HEADER),
    'append': (APPEND, struct.pack('>QBIQ', 20, 0, 3, 16) + b'\0\0\0\x05abcd\x01hello'),
    # An LZ4 block by hand: literals "abc", a match 3 back of 12 bytes, 5 literals: 20 bytes.
    'append_lz4': (APPEND_LZ4, struct.pack('>QBIQI', 22, 0, 3, 16, 20) +
                   b'\x38abc\x03\x00\x50xyzwv'),
    'append_defs': (APPEND, struct.pack('>QBIQ', 21, 1, 0, 16) + b'defs record'),
    'truncate': (TRUNCATE, struct.pack('>QBIQ', 30, 0, 3, 16)),
    'unlink': (UNLINK, struct.pack('>QI', 40, 2)),
    'replace': (REPLACE, struct.pack('>QQQ', 50, 10, 4) + b'abcdef'),
    'replace_empty': (REPLACE, struct.pack('>QQQ', 51, 0, 0)),
    'epoch': (EPOCH, struct.pack('>Q', 7) + history([(5, 1), (7, 3)])),
    'heartbeat': (HEARTBEAT, struct.pack('>QQB', 60, 50, 3)),
    'ack': (ACK, struct.pack('>Q', 55)),
    'error': (ERROR, struct.pack('>H', 3) + shortstr('leader epoch is stale')),
}

def main(out):
    os.makedirs(out, exist_ok=True)
    for name, (t, p) in payloads.items():
        with open(os.path.join(out, 'payload_' + name), 'wb') as f:
            f.write(b'\x01' + bytes([t]) + p)
    leader = [CHALLENGE, CREATE, APPEND, APPEND_LZ4, TRUNCATE, UNLINK, REPLACE, EPOCH, HEARTBEAT]
    stream = b''.join(frame(t, p) for t, p in (v for v in payloads.values() if v[0] in leader))
    with open(os.path.join(out, 'stream_leader'), 'wb') as f:
        f.write(b'\x00' + stream)
    follower = [payloads['hello'], payloads['auth'], payloads['ack'], payloads['error']]
    with open(os.path.join(out, 'stream_follower'), 'wb') as f:
        f.write(b'\x00' + b''.join(frame(t, p) for t, p in follower))

if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'tests/fuzz/corpus/repl')
