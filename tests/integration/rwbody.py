#!/usr/bin/env python3
"""Builds remote-write 1.0 request bodies for the integration tests.

    rwbody.py SPEC > body.snappy

SPEC is JSON: {"series": [{"labels": [["__name__","up"],["job","x"]],
                           "samples": [[value, ts_ms], ...]}, ...],
               "metadata": [[type, family, help, unit], ...]}
Labels are written in the order given (so unsorted or duplicate labels can be
sent on purpose). "now" in a timestamp position means the current time in ms, and
"now-N" / "now+N" offsets from it. The protobuf is encoded by hand (field numbers
of prometheus.WriteRequest) and wrapped in a snappy block made of literals only,
which every snappy decoder must accept.
"""
import json
import struct
import sys
import time


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def ts(v, now):
    if isinstance(v, str) and v.startswith("now"):
        return now + int(v[3:] or 0)
    return int(v)


def value(v):
    if v == "stale":
        return struct.pack("<Q", 0x7FF0000000000002)
    return struct.pack("<d", float(v))


def encode(spec, now):
    out = bytearray()
    for s in spec.get("series", []):
        ts_msg = bytearray()
        for name, val in s.get("labels", []):
            ts_msg += field_bytes(1, field_bytes(1, name.encode()) + field_bytes(2, val.encode()))
        for v, t in s.get("samples", []):
            sample = varint(1 << 3 | 1) + value(v) + varint(2 << 3 | 0) + varint(ts(t, now))
            ts_msg += field_bytes(2, sample)
        out += field_bytes(1, bytes(ts_msg))
    for typ, fam, hlp, unit in spec.get("metadata", []):
        md = varint(1 << 3 | 0) + varint(typ) + field_bytes(2, fam.encode())
        md += field_bytes(4, hlp.encode()) + field_bytes(5, unit.encode())
        out += field_bytes(3, md)
    return bytes(out)


def snappy_literals(data):
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2, n & 0xFF, n >> 8])
        out += chunk
    return bytes(out)


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    raw = encode(spec, int(time.time() * 1000)) if "raw" not in spec else bytes.fromhex(spec["raw"])
    sys.stdout.buffer.write(snappy_literals(raw))
