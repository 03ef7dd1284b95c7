# RFC 4231 HMAC-SHA256 test vectors (the RFC 2104 construction with SHA-256).
import binascii
from ykt.sec.hmac256 import hmac_sha256, HMAC256, HMAC256Py, equal


def _h(s):
    return binascii.unhexlify(s.replace(" ", ""))


VECTORS = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131,
     b"This is a test using a larger than block-size key and a larger than block-size data. "
     b"The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


def test_rfc4231_vectors():
    for key, msg, mac in VECTORS:
        assert binascii.hexlify(hmac_sha256(key, msg)).decode() == mac


def test_portable_class_matches_the_vectors():
    # the device's own implementation (CPython may use its C HMAC instead)
    for key, msg, mac in VECTORS:
        h = HMAC256Py(key)
        h.update(msg[:7])
        h.update(msg[7:])
        assert binascii.hexlify(h.digest()).decode() == mac


def test_incremental_equals_oneshot():
    h = HMAC256(b"k" * 32)
    h.update(b"abc")
    h.update(b"def")
    assert h.digest() == hmac_sha256(b"k" * 32, b"abcdef")


def test_equal_is_exact():
    assert equal(b"abc", b"abc")
    assert not equal(b"abc", b"abd")
    assert not equal(b"abc", b"ab")
