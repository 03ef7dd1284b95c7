# Public-key signature verification that runs on MicroPython: RSASSA-PKCS1-v1_5
# with SHA-256 and e = 65537 (RFC 8017 sec. 8.2.2). MicroPython's core has C
# big integers (mpz) with 3-argument pow, so a verify is 17 modular
# multiplications: ~0.9 ms (2048-bit) / ~2 ms (3072-bit) on the unix port,
# i.e. ~40 / ~90 ms on an ESP32 (x45), against seconds for pure-Python Ed25519.
# The device can only verify: signing keys never leave the back office.
#
# Verification rebuilds the whole expected encoded message and compares it
# byte for byte, never parses the decrypted block, which closes the lax-parsing
# forgeries (Bleichenbacher 2006) that hit PKCS#1 v1.5 verifiers.
#
# Public key record (inside the trusted-keys file, see docs/protocol.md):
#   alg u8 (1) | usage u8 (U_* bits) | e u32 LE | nlen u16 LE | n (nlen bytes, big-endian)
# Key id = SHA-256("ykt-key-v1" | e u32 LE | n)[:8].
import hashlib
import struct

from ykt.compat import const

ALG_RSA_PKCS1_SHA256 = const(1)
U_DOWNLOADS = const(0x01)    # may sign downloads (deny lists, fares, keys, ...)
U_QR = const(0x02)           # may sign e-SSC QR tokens
U_RELEASES = const(0x04)     # may sign application bundles (ykt.ota.updater): a download key cannot
KID_LEN = const(8)
MAX_KEYS = const(8)
_MIN_NLEN = const(256)       # RSA-2048 at least
_MAX_NLEN = const(512)       # RSA-4096 at most: bounds RAM and verify time
KEYS_MAX = const(4161)       # largest trusted-keys file: 1 + MAX_KEYS * (8 + _MAX_NLEN)
# DER DigestInfo prefix for SHA-256 (RFC 8017 sec. 9.2 note 1)
_DI_SHA256 = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"


class PublicKey:
    __slots__ = ("n", "e", "nlen", "kid", "usage")

    def __init__(self, n_bytes, e=65537, usage=U_DOWNLOADS):
        nlen = len(n_bytes)
        if not _MIN_NLEN <= nlen <= _MAX_NLEN or n_bytes[0] == 0:
            raise ValueError("modulus size")
        if e != 65537:
            raise ValueError("exponent must be 65537")
        self.n = int.from_bytes(bytes(n_bytes), "big")
        self.e = e
        self.nlen = nlen
        self.usage = usage
        self.kid = key_id(n_bytes, e)


def key_id(n_bytes, e=65537):
    h = hashlib.sha256(b"ykt-key-v1")
    h.update(struct.pack("<I", e))
    h.update(bytes(n_bytes))
    return h.digest()[:KID_LEN]


def verify_digest(pub, digest, sig):
    """True iff sig is pub's PKCS#1 v1.5 signature of the SHA-256 digest."""
    k = pub.nlen
    if len(sig) != k or len(digest) != 32:
        return False
    s = int.from_bytes(bytes(sig), "big")
    if s >= pub.n:
        return False
    m = pow(s, pub.e, pub.n).to_bytes(k, "big")
    em = bytearray(k)
    em[1] = 1
    pad_end = k - len(_DI_SHA256) - 33
    for i in range(2, pad_end):
        em[i] = 0xFF
    em[pad_end + 1:pad_end + 1 + len(_DI_SHA256)] = _DI_SHA256
    em[k - 32:] = digest
    r = 0
    for i in range(k):
        r |= m[i] ^ em[i]
    return r == 0


def verify(pub, msg, sig):
    return verify_digest(pub, hashlib.sha256(msg).digest(), sig)


def parse_key(buf, off=0):
    """-> (PublicKey, next offset); raises ValueError on a malformed record."""
    if len(buf) - off < 8:
        raise ValueError("key record truncated")
    alg, usage, e, nlen = struct.unpack_from("<BBIH", buf, off)
    if alg != ALG_RSA_PKCS1_SHA256:
        raise ValueError("unknown key algorithm %d" % alg)
    off += 8
    if len(buf) - off < nlen:
        raise ValueError("key record truncated")
    return PublicKey(bytes(buf[off:off + nlen]), e, usage), off + nlen


def parse_keys(buf):
    """Trusted-keys payload: count u8 then key records. -> Keyring."""
    if len(buf) < 1:
        raise ValueError("empty key list")
    cnt = buf[0]
    if not 0 < cnt <= MAX_KEYS:
        raise ValueError("key count %d" % cnt)
    ring = Keyring()
    off = 1
    for _ in range(cnt):
        k, off = parse_key(buf, off)
        ring.add(k)
    if off != len(buf):
        raise ValueError("trailing bytes after keys")
    return ring


class UsageKeys:
    """A view of a keyring that finds only keys trusted for `usage`, whatever
    the caller asks: a release must be signed by a release key, so a
    download key (deny lists, fares) cannot replace the firmware."""

    def __init__(self, ring, usage):
        self.ring = ring
        self.usage = usage

    def get(self, kid, usage=0):
        return self.ring.get(kid, self.usage)


class Keyring:
    """The trusted public keys, bounded to MAX_KEYS (a rotation overlap)."""

    def __init__(self):
        self.keys = []

    def add(self, pub):
        for k in self.keys:
            if k.kid == pub.kid:
                return
        if len(self.keys) >= MAX_KEYS:
            raise ValueError("keyring full")
        self.keys.append(pub)

    def get(self, kid, usage=U_DOWNLOADS):
        for k in self.keys:
            if k.kid == kid and k.usage & usage:
                return k
        return None

    def replace(self, other):
        self.keys = list(other.keys)

    def kids(self):
        return [k.kid for k in self.keys]
