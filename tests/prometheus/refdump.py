#!/usr/bin/env python3
"""Reference decoder for Prometheus chunk snapshots, independent of snaparc.

  refdump.py SNAPSHOT_DIR > DUMP.jsonl
  refdump.py dump --samples --json SNAPSHOT_DIR    (snaparc's argument shape)

Reads every WAL segment of SNAPSHOT_DIR (32 KiB pages, CRC-32C, Snappy) and
prints the JSON Lines that `snaparc dump --samples --json` is specified to
print (series with decoded XOR samples, stale markers as [t,"stale"],
tombstones, exemplars, then a summary line). It exists so that compare.py can
be checked without snaparc, and as an oracle for snaparc's own dump.
Python standard library only; slow but small snapshots are fine.
"""
import decimal
import json
import math
import os
import struct
import sys

PAGE = 32 * 1024
STALE_BITS = 0x7FF0000000000002


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_TABLE = _crc32c_table()


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = CRC_TABLE[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def snappy_decode(b):
    n, i = uvarint(b, 0)
    out = bytearray()
    while i < len(b):
        tag = b[i]; i += 1
        kind = tag & 3
        if kind == 0:
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                ln = int.from_bytes(b[i:i + nb], "little"); i += nb
            ln += 1
            out += b[i:i + ln]; i += ln
            continue
        if kind == 1:
            ln = 4 + ((tag >> 2) & 7); off = ((tag >> 5) << 8) | b[i]; i += 1
        elif kind == 2:
            ln = (tag >> 2) + 1; off = int.from_bytes(b[i:i + 2], "little"); i += 2
        else:
            ln = (tag >> 2) + 1; off = int.from_bytes(b[i:i + 4], "little"); i += 4
        if off == 0 or off > len(out):
            raise ValueError("snappy: bad copy offset")
        for _ in range(ln):
            out.append(out[-off])
    if len(out) != n:
        raise ValueError("snappy: length %d, header says %d" % (len(out), n))
    return bytes(out)


def uvarint(b, i):
    x = s = 0
    for k in range(10):
        c = b[i]; i += 1
        x |= (c & 0x7F) << s
        if c < 0x80:
            return x, i
        s += 7
    raise ValueError("uvarint over 10 bytes")


def varint(b, i):
    u, i = uvarint(b, i)
    return (u >> 1) ^ -(u & 1), i


def records(seg_path):
    """Yield (offset, record bytes) of one WAL segment."""
    data = open(seg_path, "rb").read()
    pos, buf, start = 0, bytearray(), None
    while pos < len(data):
        left = PAGE - pos % PAGE
        if left < 7:
            pos += left; continue
        typ = data[pos]
        if typ == 0:
            pos += left; continue
        ln = int.from_bytes(data[pos + 1:pos + 3], "big")
        crc = int.from_bytes(data[pos + 3:pos + 7], "big")
        frag = data[pos + 7:pos + 7 + ln]
        if len(frag) != ln or crc32c(frag) != crc:
            raise ValueError("%s: bad fragment at %d" % (seg_path, pos))
        kind = typ & 7
        if kind in (1, 2):
            if buf:
                raise ValueError("%s: new record inside a record at %d" % (seg_path, pos))
            start = pos
        buf += frag
        pos += 7 + ln
        if kind in (1, 4):
            rec = bytes(buf); buf = bytearray()
            if typ & 0x08:
                rec = snappy_decode(rec)
            elif typ & 0x10:
                raise ValueError("zstd records are not supported here")
            yield start, rec
    if buf:
        raise ValueError("%s: torn record at the end" % seg_path)


def labels(b, i):
    n, i = uvarint(b, i)
    out = {}
    for _ in range(n):
        ln, i = uvarint(b, i); name = b[i:i + ln].decode(); i += ln
        ln, i = uvarint(b, i); val = b[i:i + ln].decode(); i += ln
        out[name] = val
    return out, i


def fmt(bits):
    """A float64 (as bits) the way Prometheus' API prints it (Go 'f', -1)."""
    v = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    s = format(decimal.Decimal(repr(v)).normalize(), "f")
    return s


class Bits:
    def __init__(self, b):
        self.b, self.p = b, 0

    def bit(self):
        v = (self.b[self.p >> 3] >> (7 - (self.p & 7))) & 1
        self.p += 1
        return v

    def bits(self, n):
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v

    def byte(self):
        return self.bits(8)

    def uvarint(self):
        x = s = 0
        for _ in range(10):
            c = self.byte()
            x |= (c & 0x7F) << s
            if c < 0x80:
                return x
            s += 7
        raise ValueError("uvarint over 10 bytes")


def xor_samples(chunk):
    n = int.from_bytes(chunk[:2], "big")
    r = Bits(chunk[2:])
    out, t, vb, dt, lead, trail = [], 0, 0, 0, 0, 0
    for k in range(n):
        if k == 0:
            u = r.uvarint(); t = (u >> 1) ^ -(u & 1)
            vb = r.bits(64)
        else:
            if k == 1:
                dt = r.uvarint()
            else:
                d = 0
                for _ in range(4):
                    d <<= 1
                    if r.bit() == 0:
                        break
                    d |= 1
                sz = {0: 0, 2: 14, 6: 17, 14: 20, 15: 64}[d]
                dod = r.bits(sz) if sz else 0
                if sz == 64:
                    dod -= (1 << 64) if dod >= 1 << 63 else 0
                elif sz and dod > 1 << (sz - 1):
                    dod -= 1 << sz
                dt += dod
            t += dt
            if r.bit():
                if r.bit():
                    lead = r.bits(5); sig = r.bits(6) or 64; trail = 64 - lead - sig
                vb ^= r.bits(64 - lead - trail) << trail
        out.append([t, "stale" if vb == STALE_BITS else fmt(vb)])
    return out


def main():
    # also callable as `refdump.py dump [--samples] [--json] DIR`, like snaparc
    args = [a for a in sys.argv[1:] if a not in ("dump", "--samples", "--json")]
    if len(args) != 1:
        sys.exit("usage: refdump.py [dump --samples --json] SNAPSHOT_DIR")
    d = args[0]
    segs = sorted(f for f in os.listdir(d) if f.isdigit())
    nser = nts = nex = 0
    for seg in segs:
        for off, rec in records(os.path.join(d, seg)):
            typ, head = rec[0], {"segment": seg, "offset": off}
            if typ == 1:
                ref = int.from_bytes(rec[1:9], "big")
                lset, i = labels(rec, 9)
                i += 8  # chunk range
                has, i = uvarint(rec, i)
                o = {"record": "series", **head, "ref": ref, "labels": lset, "chunk": None}
                if has:
                    mint, maxt = struct.unpack(">qq", rec[i:i + 16]); i += 16
                    enc = rec[i]; i += 1
                    ln, i = uvarint(rec, i); chunk = rec[i:i + ln]; i += ln
                    o["chunk"] = {"mint": mint, "maxt": maxt,
                                  "encoding": {1: "xor", 2: "histogram", 3: "floathistogram"}.get(enc, str(enc)),
                                  "samples": int.from_bytes(chunk[:2], "big"), "bytes": ln}
                    if enc == 1:
                        o["last_value"] = fmt(int.from_bytes(rec[i + 56:i + 64], "big")); i += 64
                        o["samples"] = xor_samples(chunk)
                    else:
                        i = len(rec)
                if i != len(rec):
                    raise ValueError("series ref %d: %d trailing bytes" % (ref, len(rec) - i))
                nser += 1
            elif typ == 2:
                ln, i = uvarint(rec, 1)
                body, i = rec[i:i + ln], i + ln
                assert body[0] == 1 and i == len(rec)
                ivs, j = [], 1
                while j < len(body):
                    ref, j = uvarint(body, j); mint, j = varint(body, j); maxt, j = varint(body, j)
                    ivs.append({"ref": ref, "mint": mint, "maxt": maxt})
                o = {"record": "tombstones", **head, "intervals": ivs}
                nts += len(ivs)
            elif typ == 3:
                exs, i = [], 1
                if i < len(rec):
                    bref, bt = struct.unpack(">Qq", rec[i:i + 16]); i += 16
                    while i < len(rec):
                        dr, i = varint(rec, i); dt, i = varint(rec, i)
                        vb = int.from_bytes(rec[i:i + 8], "big"); i += 8
                        lset, i = labels(rec, i)
                        exs.append({"ref": bref + dr, "t": bt + dt, "value": fmt(vb), "labels": lset})
                o = {"record": "exemplars", **head, "exemplars": exs}
                nex += len(exs)
            else:
                raise ValueError("unknown record type %d at %s:%d" % (typ, seg, off))
            print(json.dumps(o, separators=(",", ":")))
    print(json.dumps({"summary": {"series": nser, "tombstone_intervals": nts, "exemplars": nex}}))


if __name__ == "__main__":
    main()
