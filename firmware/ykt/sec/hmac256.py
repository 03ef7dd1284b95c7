# HMAC-SHA256 (RFC 2104) for MicroPython, which ships hashlib.sha256 but no
# hmac module. Pads are built once per key, so a MAC per tap or batch costs two
# hash copies and no key schedule.
import hashlib

import sys

_std_hmac = None                        # MicroPython (the device): the class below, always
if sys.implementation.name == "cpython":
    from hmac import new as _std_hmac   # back office and host tools: OpenSSL's HMAC

_BLOCK = 64


def _xor(key, pad):
    out = bytearray(_BLOCK)
    for i in range(_BLOCK):
        out[i] = (key[i] if i < len(key) else 0) ^ pad
    return out


class HMAC256Py:
    __slots__ = ("_ipad", "_opad", "_h")

    def __init__(self, key, msg=None):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        self._ipad = _xor(key, 0x36)
        self._opad = _xor(key, 0x5C)
        self._h = hashlib.sha256(self._ipad)
        if msg is not None:
            self._h.update(msg)

    def update(self, data):
        self._h.update(data)

    def digest(self):
        inner = self._h.digest()
        return hashlib.sha256(self._opad + inner).digest()


if _std_hmac is None:
    HMAC256 = HMAC256Py
else:
    def HMAC256(key, msg=None):
        # the same RFC 2104 MAC in C: the ingest server computes two per batch
        return _std_hmac(bytes(key), msg, hashlib.sha256)


def hmac_sha256(key, msg):
    h = HMAC256(key)
    h.update(msg)
    return h.digest()


def equal(a, b):
    """Constant-time compare, so a MAC check leaks no prefix length."""
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0
