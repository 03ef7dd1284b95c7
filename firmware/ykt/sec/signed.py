# Signed-file envelope for everything the device downloads (deny-list images
# and deltas, fare tables, catalog, entitlements, config, trusted keys).
# Parsed as a stream, so a multi-megabyte deny-list image never sits in RAM:
# the payload goes to the owner's sink (a temp file) while it is hashed, and
# nothing is applied until the signature over header+payload verifies.
#
#  off size field (little-endian)
#   0   4   magic "YKTS"
#   4   1   format (1)
#   5   1   kind K_*
#   6   1   signature algorithm (1 = RSA PKCS#1 v1.5 SHA-256, see sigverify)
#   7   1   flags: F_DELTA (payload applies on top of base version)
#   8   4   version (must be > the version the device holds: no rollback)
#  12   4   base version (delta: the version it patches; full image: 0)
#  16   8   key id of the signing key (must be in the device's keyring)
#  24   4   created, unix seconds (freshness reporting)
#  28   4   scope: 0 = every device, else the one device id it is for
#  32   4   payload length
#  36   .   payload
#   .   k   signature over bytes 0 .. 36+len-1 (k = modulus bytes of the key)
import hashlib
import struct

from ykt.sec import sigverify
from ykt.compat import const

MAGIC = b"YKTS"
FORMAT = const(1)
HDR_SIZE = const(36)
F_DELTA = const(0x01)

K_DENYLIST = const(1)
K_DENYLIST_DELTA = const(2)
K_FARES = const(3)
K_CATALOG = const(4)
K_ENTITLEMENTS = const(5)
K_CONFIG = const(6)
K_KEYS = const(7)
K_RELEASE = const(8)     # OTA: an application bundle (ykt.ota.updater)
K_FIRMWARE = const(9)    # OTA: a whole firmware image (ykt.ota.image)
KIND_NAMES = ("", "denylist", "denylist-delta", "fares", "catalog", "entitlements", "config", "keys",
              "release", "firmware")


def kind_code(name):
    for i in range(1, len(KIND_NAMES)):
        if KIND_NAMES[i] == name:
            return i
    raise ValueError("unknown kind %s" % name)


class SignedError(Exception):
    """code: bad_magic, bad_format, wrong_kind, bad_alg, rollback,
    base_mismatch, foreign_key, wrong_scope, too_large, truncated, trailing,
    bad_signature."""

    def __init__(self, code, msg=""):
        super().__init__(code, msg)
        self.code = code
        self.msg = msg


class Header:
    __slots__ = ("kind", "alg", "flags", "version", "base", "kid", "created", "scope", "length")


def parse_header(b):
    if len(b) < 4 or bytes(b[:4]) != MAGIC:
        raise SignedError("bad_magic", "not a signed file")
    if len(b) < HDR_SIZE:
        raise SignedError("truncated", "header cut at %d bytes" % len(b))
    v = struct.unpack_from("<4sBBBBII8sIII", b, 0)
    if v[1] != FORMAT:
        raise SignedError("bad_format", "envelope format %d" % v[1])
    h = Header()
    (h.kind, h.alg, h.flags, h.version, h.base, h.kid, h.created, h.scope, h.length) = v[2:]
    return h


class _Mem:
    # default sink for small payloads (fares, catalog, config, keys)
    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data.extend(b)


class Reader:
    """Stream a signed file: feed() chunks as they arrive, then finish().
    kinds: the accepted kind codes (a deny-list request may answer with an
    image or a delta). have: the version held now. max_len bounds the payload.
    Checks fail as early as the bytes allow; the sink only ever receives
    payload bytes, and the caller applies nothing unless finish() returns."""

    def __init__(self, keyring, kinds, have, max_len, device_id=0, sink=None):
        self.keyring = keyring
        self.kinds = kinds
        self.have = have
        self.max_len = max_len
        self.device_id = device_id
        self.sink = sink if sink is not None else _Mem()
        self.hdr = None
        self._hb = bytearray()
        self._h = hashlib.sha256()
        self._got = 0          # payload bytes passed on
        self._sig = None
        self._sn = 0
        self.key = None

    def _check(self, h):
        if h.kind not in self.kinds:
            raise SignedError("wrong_kind", "kind %d" % h.kind)
        if h.alg != sigverify.ALG_RSA_PKCS1_SHA256:
            raise SignedError("bad_alg", "algorithm %d" % h.alg)
        if h.version <= self.have:
            raise SignedError("rollback", "version %d <= held %d" % (h.version, self.have))
        if h.flags & F_DELTA:
            if h.base != self.have:
                raise SignedError("base_mismatch", "delta on %d, held %d" % (h.base, self.have))
        elif h.base != 0:
            raise SignedError("bad_format", "full image with a base version")
        if h.scope and h.scope != self.device_id:
            raise SignedError("wrong_scope", "for device %d" % h.scope)
        if h.length > self.max_len:
            raise SignedError("too_large", "payload %d > %d" % (h.length, self.max_len))
        self.key = self.keyring.get(h.kid)
        if self.key is None:
            raise SignedError("foreign_key", "key %s not trusted" % _hex(h.kid))
        self._sig = bytearray(self.key.nlen)

    def feed(self, data):
        mv = memoryview(data)
        i = 0
        n = len(mv)
        if self.hdr is None:
            take = min(HDR_SIZE - len(self._hb), n)
            self._hb.extend(mv[:take])
            i = take
            if len(self._hb) >= 4 and bytes(self._hb[:4]) != MAGIC:
                raise SignedError("bad_magic", "not a signed file")
            if len(self._hb) < HDR_SIZE:
                return
            h = parse_header(self._hb)
            self._check(h)
            self.hdr = h
            self._h.update(self._hb)
        h = self.hdr
        if i < n and self._got < h.length:
            take = min(h.length - self._got, n - i)
            chunk = mv[i:i + take]
            self._h.update(chunk)
            self.sink.write(chunk)
            self._got += take
            i += take
        if i < n:
            take = n - i
            if self._sn + take > len(self._sig):
                raise SignedError("trailing", "bytes after the signature")
            self._sig[self._sn:self._sn + take] = mv[i:]
            self._sn += take

    def finish(self):
        """-> Header once the whole file is in and the signature verifies."""
        h = self.hdr
        if h is None:
            raise SignedError("truncated", "header cut at %d bytes" % len(self._hb))
        if self._got < h.length or self._sn < len(self._sig):
            raise SignedError("truncated", "file cut (%d/%d payload, %d/%d signature)"
                              % (self._got, h.length, self._sn, len(self._sig)))
        if not sigverify.verify_digest(self.key, self._h.digest(), self._sig):
            raise SignedError("bad_signature", "signature does not verify")
        return h

    def payload(self):
        return self.sink.data


def verify_blob(blob, keyring, kinds, have, max_len, device_id=0):
    """Whole file in memory (small kinds). -> (Header, payload bytes)."""
    r = Reader(keyring, kinds, have, max_len, device_id)
    r.feed(blob)
    h = r.finish()
    return h, bytes(r.payload())


def _hex(b):
    return "".join("%02x" % c for c in b)
