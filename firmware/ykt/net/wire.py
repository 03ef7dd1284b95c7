# The uplink wire format, defined once: every constant, the MACs, the device's
# half (encode tap batches, decode the back office's replies, sign requests).
# The back office's half (decode batches, seal replies, check request
# signatures) is yktsrv.wiresrv in host_tools/: it imports its constants and
# MACs from here, and this module never imports it (the device never loads
# server code). docs/protocol.md lays the bytes out and tests/fw/t_wire.py
# pins them.
#
# Batch (POST /v1/taps body), little-endian:
#  off size field
#   0   4   magic "YKTB"
#   4   1   format version (2; the back office still decodes 1, see below)
#   5   1   flags  BF_* (retry, clock untrusted)
#   6   4   device id
#  10   4   first seq (= batch id: the device never reuses a seq)
#  14   2   count (1..MAX_COUNT)
#  16   4   request time (device unix seconds when sent; informative only)
#  20   8   nonce (fresh per request; the reply must echo it)
#  28   4   base time = time of the first tap
#  32  24   defaults = bytes 16..39 of the first tap's taprec (outcome ..
#           shift): each record only carries the fields that changed
#  56   .   records (see below)
#  -16 16   HMAC-SHA256(device key, "POST /v1/taps\n" + all bytes before)[:16]
# Record: ctl byte, zigzag varint time delta vs previous tap, 8-byte token,
# then, in this order, only the groups whose ctl bit is set (values replace
# the running "previous" state):
#   CT_SEQ   varint gap: seq = prev + 1 + gap (absent: prev + 1)
#   CT_CODES outcome, reason, concession, flags (4)
#   CT_FARE  fare u16
#   CT_PLACE entry u16, stop u16, direction u8, stage u8 (6)
#   CT_VERS  dl_ver u32, fare_ver u16, cat_ver u16 (8)
#   CT_SHIFT shift u32 (4)
# Format 1 (tap record format 1, before driver shifts): defaults are taprec
# bytes 16..35 (20 bytes, header 52), no CT_SHIFT, every shift is 0. Devices
# send format 2; yktsrv.wiresrv decodes both.
#
# Reply (any authenticated server answer, 44 bytes):
#   0 4 magic "YKTR" | 4 1 version | 5 1 kind RK_* | 6 1 status | 7 1 0
#   8 4 device id | 12 4 value (ack: highest contiguous committed seq)
#  16 8 nonce echoed from the request | 24 4 server unix time
#  28 16 HMAC-SHA256(device key, "ykt-reply-v1\n" + bytes 0..27)[:16]
import struct

from ykt import taprec
from ykt.compat import const
from ykt.sec.hmac256 import HMAC256, equal

MAGIC_BATCH = b"YKTB"
MAGIC_REPLY = b"YKTR"
VERSION = const(2)           # batch format the device sends
VERSION_V1 = const(1)        # batch format 1 (decoded by the back office only)
REPLY_VERSION = const(1)     # replies did not change
HDR_SIZE = const(56)
HDR_SIZE_V1 = const(52)
MAC_LEN = const(16)          # RFC 2104 sec. 5: keep >= half the hash (128 bits)
MAX_COUNT = const(256)
MAX_REC = const(43)          # 1+5+5+8+4+2+6+8+4: worst-case record
MAX_BODY = const(11080)      # HDR_SIZE + MAX_COUNT * MAX_REC + MAC_LEN
# Buffer room per tap in a BatchWriter. Records are ~13 bytes on average and
# MAX_REC only when every group changes at once, so the buffer is sized for
# 39 a tap (format 1's worst case: no RAM added for the shift) and a batch
# ends early in the rare case the next record might not fit (full()).
_REC_ROOM = const(39)
REPLY_SIZE = const(44)
NONCE_LEN = const(8)

BF_RETRY = const(0x01)       # this batch (same first seq) was sent before
BF_TIME_UNTRUSTED = const(0x02)

CT_SEQ = const(0x01)
CT_CODES = const(0x02)
CT_FARE = const(0x04)
CT_PLACE = const(0x08)
CT_VERS = const(0x10)
CT_SHIFT = const(0x20)

RK_ACK = const(1)
RK_TIME = const(2)
RK_HEARTBEAT = const(3)
RS_OK = const(0)
RS_REJECTED = const(1)       # well-formed but refused (e.g. seq overflow); value = ack so far

PATH_TAPS = "/v1/taps"
PATH_HEARTBEAT = "/v1/heartbeat"
PATH_TIME = "/v1/time"
PATH_SYNC = "/v1/sync/"
REPLY_DOMAIN = b"ykt-reply-v1\n"
TAPS_PREFIX = b"POST /v1/taps\n"
HDR_FMT = "<4sBBIIHI8sI"     # first 32 bytes of the header (both halves parse it)


class WireError(Exception):
    """code: bad_magic, bad_version, truncated, oversized, bad_mac,
    unknown_device, malformed, bad_kind, nonce_mismatch, bad_auth."""

    def __init__(self, code, msg=""):
        super().__init__(code, msg)
        self.code = code
        self.msg = msg


_nonce_ctr = 0


def new_nonce():
    """8 unpredictable bytes; a counter keeps them unique if urandom is weak."""
    global _nonce_ctr
    _nonce_ctr = (_nonce_ctr + 1) & 0xFFFFFFFF
    try:
        import os

        r = os.urandom(4)
    except (ImportError, AttributeError, NotImplementedError):
        from ykt.compat import ticks_us

        r = struct.pack("<I", ticks_us())
    return bytes(r) + struct.pack("<I", _nonce_ctr)


def mac(key, prefix, data, n=None):
    """HMAC-SHA256(key, prefix + data[:n])[:MAC_LEN]: batches and replies
    (the back office's half uses it too)."""
    h = HMAC256(key)
    h.update(prefix)
    h.update(data if n is None else memoryview(data)[:n])
    return h.digest()[:MAC_LEN]


def _diff(a, b, i, j):
    # byte compare without slicing: no allocation per tap
    while i < j:
        if a[i] != b[i]:
            return True
        i += 1
    return False


def _cp(dst, d, src, i, j):
    while i < j:
        dst[d] = src[i]
        d += 1
        i += 1


class BatchWriter:
    """Builds a batch in one buffer allocated once, so the uplink encodes
    without allocating per tap (the MAC costs two small hashes)."""

    def __init__(self, max_count=100, buf=None):
        """buf: a buffer to build batches in (ykt.compat.Scratch's, shared);
        a batch then ends when it is full (full())."""
        if not 0 < max_count <= MAX_COUNT:
            raise ValueError("max_count")
        self.max_count = max_count
        self.buf = bytearray(HDR_SIZE + max_count * _REC_ROOM + MAC_LEN) if buf is None else buf
        self._prev = bytearray(taprec.SIZE)   # previous tap as a taprec record
        self._cur = bytearray(taprec.SIZE)
        self.count = 0
        self.n = HDR_SIZE
        self.first_seq = 0
        self.last_seq = 0

    def begin(self, device_id):
        self.device_id = device_id
        self.count = 0
        self.n = HDR_SIZE
        return self

    def full(self):
        return self.count >= self.max_count or self.n + MAX_REC + MAC_LEN > len(self.buf)

    def _varint(self, v):
        b = self.buf
        n = self.n
        while v >= 0x80:
            b[n] = (v & 0x7F) | 0x80
            v >>= 7
            n += 1
        b[n] = v
        self.n = n + 1

    def add(self, tap, off=0):
        """tap: a taprec.Tap, or a buffer holding a taprec (taprec.SIZE) at off."""
        if self.full():
            raise ValueError("batch full")
        cur = self._cur
        if isinstance(tap, taprec.Tap):
            taprec.pack_into(cur, 0, tap)
        else:
            if len(tap) - off < taprec.SIZE:
                raise ValueError("tap record truncated")
            _cp(cur, 0, tap, off, off + taprec.SIZE)
        seq, t = struct.unpack_from("<II", cur, 0)
        prev = self._prev
        b = self.buf
        if self.count == 0:
            # the first tap's fields become the header defaults
            struct.pack_into("<I", b, 10, seq)
            struct.pack_into("<I", b, 28, t)
            _cp(b, 32, cur, 16, 40)
            prev[:] = cur
            self.first_seq = seq
            pt = t
            gap = 0
            ctl = 0
        else:
            pseq, pt = struct.unpack_from("<II", prev, 0)
            if seq <= pseq:
                raise ValueError("seq not increasing")
            gap = seq - pseq - 1
            ctl = CT_SEQ if gap else 0
            if _diff(cur, prev, 16, 18) or _diff(cur, prev, 20, 22):
                ctl |= CT_CODES
            if _diff(cur, prev, 18, 20):
                ctl |= CT_FARE
            if _diff(cur, prev, 22, 28):
                ctl |= CT_PLACE
            if _diff(cur, prev, 28, 36):
                ctl |= CT_VERS
            if _diff(cur, prev, 36, 40):
                ctl |= CT_SHIFT
        n0 = self.n
        b[n0] = ctl
        self.n = n0 + 1
        d = t - pt
        self._varint((d << 1) if d >= 0 else (((-d) << 1) - 1))
        n = self.n
        _cp(b, n, cur, 8, 16)
        n += 8
        self.n = n
        if ctl & CT_SEQ:
            self._varint(gap)
            n = self.n
        if ctl & CT_CODES:
            b[n] = cur[16]
            b[n + 1] = cur[17]
            b[n + 2] = cur[20]
            b[n + 3] = cur[21]
            n += 4
        if ctl & CT_FARE:
            b[n] = cur[18]
            b[n + 1] = cur[19]
            n += 2
        if ctl & CT_PLACE:
            _cp(b, n, cur, 22, 28)
            n += 6
        if ctl & CT_VERS:
            _cp(b, n, cur, 28, 36)
            n += 8
        if ctl & CT_SHIFT:
            _cp(b, n, cur, 36, 40)
            n += 4
        self.n = n
        _cp(prev, 0, cur, 0, 40)
        self.last_seq = seq
        self.count += 1

    def finish(self, key, req_time=0, nonce=None, flags=0):
        """Seal the header and MAC; returns a memoryview of the body (valid
        until the next begin())."""
        if self.count == 0:
            raise ValueError("empty batch")
        if nonce is None:
            nonce = new_nonce()
        b = self.buf
        struct.pack_into("<4sBBIIHI8s", b, 0, MAGIC_BATCH, VERSION, flags, self.device_id,
                         self.first_seq, self.count, req_time & 0xFFFFFFFF, nonce)
        n = self.n
        b[n:n + MAC_LEN] = mac(key, TAPS_PREFIX, b, n)
        self.nonce = bytes(nonce)
        # self.n stays at the end of the records: a retry re-seals the same
        # taps with a fresh nonce and flags
        return memoryview(b)[:n + MAC_LEN]


def encode_batch(device_id, key, taps, req_time=0, nonce=None, flags=0):
    """taps: iterable of taprec.Tap (or taprec.SIZE-byte records) with increasing seq."""
    taps = list(taps)
    w = BatchWriter(max(1, len(taps)))
    w.buf = bytearray(HDR_SIZE + len(w.buf) // _REC_ROOM * MAX_REC + MAC_LEN)   # room for any record
    w.begin(device_id)
    for t in taps:
        w.add(t)
    return bytes(w.finish(key, req_time, nonce, flags))


# --- replies ------------------------------------------------------------------


def decode_reply(body, key, device_id, nonce, kind):
    """Verify a server reply for this device and request. Returns
    (status, value, server_time); raises WireError."""
    if len(body) < 4 or bytes(body[:4]) != MAGIC_REPLY:
        raise WireError("bad_magic", "not a reply")
    if len(body) < REPLY_SIZE:
        raise WireError("truncated", "reply of %d bytes" % len(body))
    if len(body) > REPLY_SIZE:
        raise WireError("oversized", "reply of %d bytes" % len(body))
    if not equal(mac(key, REPLY_DOMAIN, body, 28), bytes(body[28:44])):
        raise WireError("bad_mac", "reply MAC mismatch")
    magic, ver, k, status, z, dev, value, rn, st = struct.unpack_from("<4sBBBBII8sI", body, 0)
    if ver != REPLY_VERSION:
        raise WireError("bad_version", "reply format %d" % ver)
    if k != kind:
        raise WireError("bad_kind", "reply kind %d" % k)
    if dev != device_id:
        raise WireError("unknown_device", "reply for device %d" % dev)
    if not equal(rn, nonce):
        raise WireError("nonce_mismatch", "reply to another request")
    return status, value, st


def decode_ack(body, key, device_id, nonce):
    """-> (status, acked_seq, server_time)."""
    return decode_reply(body, key, device_id, nonce, RK_ACK)


# --- request authentication for GET /v1/sync, GET /v1/time, POST /v1/heartbeat


def req_mac(key, method, path, device_id, ts, nonce_hex, body):
    """The MAC of an X-YKT-Auth request signature (both halves)."""
    h = HMAC256(key)
    h.update(("%s %s\n%d:%d:%s\n" % (method, path, device_id, ts, nonce_hex)).encode())
    if body:
        h.update(body)
    return h.digest()[:MAC_LEN]


def _hex(b):
    return "".join("%02x" % c for c in b)


def sign_request(device_id, key, method, path, body=b"", ts=0, nonce=None):
    """Value of the X-YKT-Auth header: "<dev>:<ts>:<nonce hex>:<mac hex>".
    path includes the query string exactly as sent."""
    if nonce is None:
        nonce = new_nonce()
    nh = _hex(nonce)
    return "%d:%d:%s:%s" % (device_id, ts, nh, _hex(req_mac(key, method, path, device_id, ts, nh, body)))
