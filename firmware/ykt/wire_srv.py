# Back-office half of the wire format: decoding and authenticating tap
# batches, sealing replies, checking request signatures. Split from wire.py so
# the device never loads it (saves heap); wire.py re-exports every name, so
# `wire.decode_batch(...)` works everywhere. Portable, tested on both runtimes.
import struct

from ykt import taprec
from ykt.hmac256 import equal
from ykt.wire import (WireError, MAGIC_BATCH, MAGIC_REPLY, VERSION, HDR_SIZE, MAC_LEN, MAX_COUNT,
                      MAX_BODY, REPLY_SIZE, NONCE_LEN, CT_SEQ, CT_CODES, CT_FARE, CT_PLACE, CT_VERS,
                      RK_ACK, RS_OK, PATH_TAPS, _REPLY_DOMAIN, _HDR_FMT, _mac, _req_mac)


def peek_header(body):
    """(device_id, first_seq, count, req_time, nonce, flags) after framing
    checks, without the key: the server needs the device id to find it."""
    if len(body) > MAX_BODY:
        raise WireError("oversized", "batch of %d bytes" % len(body))
    if len(body) < 4 or bytes(body[:4]) != MAGIC_BATCH:
        raise WireError("bad_magic", "not a tap batch")
    if len(body) < HDR_SIZE + MAC_LEN:
        raise WireError("truncated", "batch shorter than its header")
    magic, ver, flags, dev, first, count, rt, nonce, bt = struct.unpack_from(_HDR_FMT, body, 0)
    if ver != VERSION:
        raise WireError("bad_version", "batch format %d" % ver)
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


def decode_batch(body, key_lookup, path=PATH_TAPS):
    """Authenticate and decode a batch. key_lookup(device_id) -> key or None.
    Returns (device_id, [taprec.Tap]); raises WireError. The MAC is checked
    before any record is parsed."""
    dev, first, count, rt, nonce, flags = peek_header(body)
    key = key_lookup(dev)
    if key is None:
        raise WireError("unknown_device", "device %d" % dev)
    end = len(body) - MAC_LEN
    if not equal(_mac(key, b"POST " + path.encode() + b"\n", body, end), bytes(body[end:])):
        raise WireError("bad_mac", "batch MAC mismatch")
    prev = bytearray(taprec.SIZE)
    struct.pack_into("<II", prev, 0, (first - 1) & 0xFFFFFFFF, struct.unpack_from("<I", body, 28)[0])
    prev[16:36] = body[32:52]
    taps = []
    n = HDR_SIZE
    for i in range(count):
        if n >= end:
            raise WireError("truncated", "batch ends after %d of %d taps" % (i, count))
        ctl = body[n]
        n += 1
        if ctl & 0xE0:
            raise WireError("malformed", "reserved ctl bits")
        if i == 0 and ctl & CT_SEQ:
            raise WireError("malformed", "first tap has a seq gap")
        zz, n = _rd_varint(body, n, end)
        d = (zz >> 1) if not zz & 1 else -((zz + 1) >> 1)
        pseq, pt = struct.unpack_from("<II", prev, 0)
        t = pt + d
        if n + 8 > end:
            raise WireError("truncated", "token cut")
        prev[8:16] = body[n:n + 8]
        n += 8
        gap = 0
        if ctl & CT_SEQ:
            gap, n = _rd_varint(body, n, end)
        seq = pseq + 1 + gap
        if seq > 0xFFFFFFFF or not 0 <= t <= 0xFFFFFFFF:
            raise WireError("malformed", "seq or time out of range")
        need = (4 if ctl & CT_CODES else 0) + (2 if ctl & CT_FARE else 0) + \
            (6 if ctl & CT_PLACE else 0) + (8 if ctl & CT_VERS else 0)
        if n + need > end:
            raise WireError("truncated", "record fields cut")
        if ctl & CT_CODES:
            prev[16] = body[n]
            prev[17] = body[n + 1]
            prev[20] = body[n + 2]
            prev[21] = body[n + 3]
            n += 4
        if ctl & CT_FARE:
            prev[18:20] = body[n:n + 2]
            n += 2
        if ctl & CT_PLACE:
            prev[22:28] = body[n:n + 6]
            n += 6
        if ctl & CT_VERS:
            prev[28:36] = body[n:n + 8]
            n += 8
        struct.pack_into("<II", prev, 0, seq, t)
        taps.append(taprec.unpack_from(prev))
    if n != end:
        raise WireError("malformed", "%d bytes after the last tap" % (end - n))
    return dev, taps


def encode_reply(key, kind, device_id, value, nonce, server_time, status=RS_OK):
    b = bytearray(REPLY_SIZE)
    struct.pack_into("<4sBBBBII8sI", b, 0, MAGIC_REPLY, VERSION, kind, status, 0, device_id,
                     value & 0xFFFFFFFF, bytes(nonce), server_time & 0xFFFFFFFF)
    b[28:44] = _mac(key, _REPLY_DOMAIN, b, 28)
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
        mac = binascii.unhexlify(parts[3])
    except ValueError:
        raise WireError("bad_auth", "malformed X-YKT-Auth")
    key = key_lookup(dev)
    if key is None:
        raise WireError("unknown_device", "device %d" % dev)
    if not equal(_req_mac(key, method, path, dev, ts, parts[2], body), mac):
        raise WireError("bad_mac", "request MAC mismatch")
    return dev, ts, nonce
