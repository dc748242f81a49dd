#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_stream_log: logs of one to four segments of valid records
(as src/store/stream_log.c writes them), some with their index files, a torn tail, a corrupt
record, a gap between segments, timestamps that step back. The input format is described at
the top of tests/fuzz/fuzz_stream_log.c. Run from the top of the tree:
    python3 tests/fuzz/make_stream_log_seeds.py tests/fuzz/corpus/stream_log
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

def shortstr(b):
    return struct.pack('>B', len(b)) + b

def record(offset, ts, body_len, filt=None):
    body = (struct.pack('>BQQ', 1, offset, ts) + shortstr(b'ex') + shortstr(b'rk') +
            struct.pack('>B', 1 if filt else 0) + shortstr(filt or b'') +
            struct.pack('>I', 3) + b'hdr' + bytes([offset & 0xff]) * body_len)
    head = struct.pack('>I', len(body))
    return head + struct.pack('>I', crc32c(head + body)) + body

def segment(first, stamps, sizes):
    """The bytes after the file header, and the index the log would write for them."""
    data, entries, pos, last_pos, max_ts = b'', [], 16, 0, None
    for i, (ts, size) in enumerate(zip(stamps, sizes)):
        rec = record(first + i, ts, size)
        if last_pos == 0 or pos - last_pos >= 4096:
            entries.append((first + i, pos, max_ts or 0, struct.unpack('>I', rec[4:8])[0],
                            2 if max_ts is not None else 0))
            last_pos = pos
        max_ts = ts if max_ts is None else max(max_ts, ts)
        data += rec
        pos += len(rec)
    entries.append((first + len(stamps), pos, max_ts or 0, 0, 1 | (2 if max_ts is not None else 0)))
    return data, entries

def index_bytes(first, entries):
    out = b''
    for e in entries:
        raw = struct.pack('>QQQII', *e)
        out += raw + struct.pack('>I', crc32c(struct.pack('>Q', first) + raw))
    return out

def sizes(n, seed):
    return [(i * 7919 + seed) % 900 + 1 if i % 9 else 3000 for i in range(n)]

def stamps(n, base=1700000000000, back_at=None):
    return [base + i // 2 - (40 if back_at is not None and i >= back_at else 0) for i in range(n)]

def main(path):
    os.makedirs(path, exist_ok=True)
    seeds = {
        'empty': struct.pack('>BB', 0, 0) + struct.pack('>H', 0),
        'one_segment': None,
        'three_segments': None,
        'torn_tail': None,
        'clock_back': None,
        'with_index': None,
        'append_reopen': None,
        'corrupt_sealed': None,
        'raw_header': None,
        'gap': None,
    }
    def segs(k, n, seed=0, back_at=None):
        return [(stamps(n, 1700000000000 + 100 * j, back_at), sizes(n, seed + j)) for j in range(k)]

    def multi(flags, k, n, gap_extra=0, **kw):
        # Segment j+1 is named after segment j's last offset (+ gap_extra).
        parts = segs(k, n, kw.pop('seed', 0), kw.pop('back_at', None))
        gaps = [0] + [n + gap_extra] * (k - 1)
        return build(flags, parts, gaps, **kw)

    def build(flags, parts, gaps, first=0, cut=None, flip=None, header=None):
        index = flags & 8
        out = struct.pack('>BB', flags, first)
        off = first
        for i, (st, sz) in enumerate(parts):
            if i > 0:
                off += gaps[i]
                out += struct.pack('>H', gaps[i])
            data, entries = segment(off, st, sz)
            if cut is not None and i == len(parts) - 1:
                data = data[:cut]
            if flip is not None and i == flip[0]:
                b = bytearray(data)
                b[flip[1]] ^= 0x5a
                data = bytes(b)
            assert len(data) < 65536
            out += struct.pack('>H', len(data))
            if header is not None and i == 0:
                out += header
            out += data
            if index and i + 1 < len(parts):
                idx = index_bytes(off, entries)
                out += struct.pack('>H', len(idx)) + idx
        return out

    hdr = b'WRNSTRM\n' + struct.pack('>II', 1, 0)
    seeds['one_segment'] = build(0, segs(1, 30), [0], first=5)
    seeds['three_segments'] = multi(2, 3, 25)
    seeds['torn_tail'] = multi(1, 2, 25, cut=5000)
    seeds['clock_back'] = multi(2, 3, 25, back_at=12)
    seeds['with_index'] = multi(8 | 2, 3, 25)
    seeds['append_reopen'] = multi(16 | 1, 2, 25)
    seeds['corrupt_sealed'] = multi(1, 2, 25, flip=(0, 6000))
    seeds['raw_header'] = build(4, segs(1, 10), [0], header=hdr)
    seeds['gap'] = multi(3, 4, 12, gap_extra=7)
    for name, data in seeds.items():
        with open(os.path.join(path, name), 'wb') as f:
            f.write(data)

if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'tests/fuzz/corpus/stream_log')
