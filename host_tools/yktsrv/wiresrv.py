# Back-office half of the wire format: decoding and authenticating tap
# batches, sealing replies, checking request signatures. The format's
# constants and MACs are defined once, in ykt.net.wire, and imported from
# there; wire.py never imports this module (the device never loads server
# code). Portable: the back office runs it on CPython, the firmware tests on
# both runtimes.
import struct

from ykt import taprec
from ykt.sec.hmac256 import equal
from ykt.net.wire import (WireError, MAGIC_BATCH, MAGIC_REPLY, VERSION, VERSION_V1, REPLY_VERSION, HDR_SIZE,
                          HDR_SIZE_V1, MAC_LEN, MAX_COUNT, MAX_BODY, REPLY_SIZE, NONCE_LEN, CT_SEQ, CT_CODES,
                          CT_FARE, CT_PLACE, CT_VERS, CT_SHIFT, RK_ACK, RS_OK, PATH_TAPS, REPLY_DOMAIN, HDR_FMT,
                          mac, req_mac)


def peek_header(body):
    """(device_id, first_seq, count, req_time, nonce, flags) after framing
    checks, without the key: the server needs the device id to find it.
    Batches of format 1 (no shift) and 2 are accepted."""
    if len(body) > MAX_BODY:
        raise WireError("oversized", "batch of %d bytes" % len(body))
    if len(body) < 4 or bytes(body[:4]) != MAGIC_BATCH:
        raise WireError("bad_magic", "not a tap batch")
    if len(body) < HDR_SIZE_V1 + MAC_LEN:
        raise WireError("truncated", "batch shorter than its header")
    if body[4] not in (VERSION, VERSION_V1):
        raise WireError("bad_version", "batch format %d" % body[4])
    if body[4] == VERSION and len(body) < HDR_SIZE + MAC_LEN:
        raise WireError("truncated", "batch shorter than its header")
    magic, ver, flags, dev, first, count, rt, nonce, bt = struct.unpack_from(HDR_FMT, body, 0)
    if not 0 < count <= MAX_COUNT:
        raise WireError("malformed", "count %d" % count)
    return dev, first, count, rt, bytes(nonce), flags


def _rd_varint(b, n, end):
    v = 0
    shift = 0
    while True:
        if n >= end:
            raise WireError("truncated", "record cut in a varint")
        c = b[n]
        n += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, n
        shift += 7
        if shift > 35:
            raise WireError("malformed", "varint too long")


_BASE_FMT = "<BBHBBHHBBIHH"    # taprec bytes 16..36: the header's base record
_CT_FIELDS = CT_CODES | CT_FARE | CT_PLACE | CT_VERS | CT_SHIFT


def decode_fields(body, key_lookup, path=PATH_TAPS):
    """Authenticate and decode a batch into field tuples in taprec order
    (seq, time, token, outcome, reason, fare, concession, flags, entry, stop,
    direction, stage, dl_ver, fare_ver, cat_ver, shift); token is bytes. The
    MAC is checked before any record is parsed. -> (device_id, [tuple]);
    raises WireError. The back office's ingest path: no per-tap objects."""
    dev, first, count, rt, nonce, flags = peek_header(body)
    key = key_lookup(dev)
    if key is None:
        raise WireError("unknown_device", "device %d" % dev)
    end = len(body) - MAC_LEN
    if not equal(mac(key, b"POST " + path.encode() + b"\n", body, end), bytes(body[end:])):
        raise WireError("bad_mac", "batch MAC mismatch")
    b = bytes(body)     # slices of bytes are bytes: tokens bind and hash as they are
    unpack = struct.unpack_from
    seq = (first - 1) & 0xFFFFFFFF
    t = unpack("<I", b, 28)[0]
    (outcome, reason, fare, conc, fl, entry, stop, direc, stage, dlv, farev, catv) = unpack(_BASE_FMT, b, 32)
    if b[4] == VERSION:
        shift = unpack("<I", b, 52)[0]
        n = HDR_SIZE
        reserved = 0xC0
    else:
        shift = 0
        n = HDR_SIZE_V1
        reserved = 0xE0
    out = []
    add = out.append
    for i in range(count):
        if n >= end:
            raise WireError("truncated", "batch ends after %d of %d taps" % (i, count))
        ctl = b[n]
        n += 1
        if ctl & reserved:
            raise WireError("malformed", "reserved ctl bits")
        if i == 0 and ctl & CT_SEQ:
            raise WireError("malformed", "first tap has a seq gap")
        if n < end and b[n] < 0x80:     # one-byte time delta: the common case
            zz = b[n]
            n += 1
        else:
            zz, n = _rd_varint(b, n, end)
        t += -((zz + 1) >> 1) if zz & 1 else zz >> 1
        if n + 8 > end:
            raise WireError("truncated", "token cut")
        tok = b[n:n + 8]
        n += 8
        if ctl & CT_SEQ:
            gap, n = _rd_varint(b, n, end)
            seq += 1 + gap
        else:
            seq += 1
        if seq > 0xFFFFFFFF or not 0 <= t <= 0xFFFFFFFF:
            raise WireError("malformed", "seq or time out of range")
        if ctl & _CT_FIELDS:
            need = (4 if ctl & CT_CODES else 0) + (2 if ctl & CT_FARE else 0) + \
                (6 if ctl & CT_PLACE else 0) + (8 if ctl & CT_VERS else 0) + (4 if ctl & CT_SHIFT else 0)
            if n + need > end:
                raise WireError("truncated", "record fields cut")
            if ctl & CT_CODES:
                outcome = b[n]
                reason = b[n + 1]
                conc = b[n + 2]
                fl = b[n + 3]
                n += 4
            if ctl & CT_FARE:
                fare = b[n] | b[n + 1] << 8
                n += 2
            if ctl & CT_PLACE:
                entry, stop, direc, stage = unpack("<HHBB", b, n)
                n += 6
            if ctl & CT_VERS:
                dlv, farev, catv = unpack("<IHH", b, n)
                n += 8
            if ctl & CT_SHIFT:
                shift = unpack("<I", b, n)[0]
                n += 4
        add((seq, t, tok, outcome, reason, fare, conc, fl, entry, stop, direc, stage, dlv, farev, catv, shift))
    if n != end:
        raise WireError("malformed", "%d bytes after the last tap" % (end - n))
    return dev, out


def decode_batch(body, key_lookup, path=PATH_TAPS):
    """decode_fields as taprec.Tap objects (tools and tests)."""
    dev, rows = decode_fields(body, key_lookup, path)
    taps = []
    for r in rows:
        t = taprec.Tap()
        (t.seq, t.time, tok, t.outcome, t.reason, t.fare, t.concession, t.flags, t.entry, t.stop,
         t.direction, t.stage, t.dl_ver, t.fare_ver, t.cat_ver, t.shift) = r
        t.token[:] = tok
        taps.append(t)
    return dev, taps


def encode_reply(key, kind, device_id, value, nonce, server_time, status=RS_OK):
    b = bytearray(REPLY_SIZE)
    struct.pack_into("<4sBBBBII8sI", b, 0, MAGIC_REPLY, REPLY_VERSION, kind, status, 0, device_id,
                     value & 0xFFFFFFFF, bytes(nonce), server_time & 0xFFFFFFFF)
    b[28:44] = mac(key, REPLY_DOMAIN, b, 28)
    return bytes(b)


def encode_ack(key, device_id, acked_seq, nonce, server_time, status=RS_OK):
    return encode_reply(key, RK_ACK, device_id, acked_seq, nonce, server_time, status)


def verify_request(auth, method, path, body, key_lookup):
    """Server side: -> (device_id, ts, nonce bytes); raises WireError."""
    import binascii

    if auth is None or len(auth) > 128:
        raise WireError("bad_auth", "missing or oversized X-YKT-Auth")
    parts = auth.split(":")
    if len(parts) != 4 or len(parts[2]) != 2 * NONCE_LEN or len(parts[3]) != 2 * MAC_LEN:
        raise WireError("bad_auth", "malformed X-YKT-Auth")
    try:
        dev = int(parts[0])
        ts = int(parts[1])
        nonce = binascii.unhexlify(parts[2])
        got = binascii.unhexlify(parts[3])
    except ValueError:
        raise WireError("bad_auth", "malformed X-YKT-Auth")
    key = key_lookup(dev)
    if key is None:
        raise WireError("unknown_device", "device %d" % dev)
    if not equal(req_mac(key, method, path, dev, ts, parts[2], body), got):
        raise WireError("bad_mac", "request MAC mismatch")
    return dev, ts, nonce
