# AES as the journal uses it. The same known-answer vectors run on CPython
# (host_tools/simhw/cryptolib.py, pure Python) and on MicroPython (the built-in
# cryptolib), so the two are byte-identical; test_powercut.py also cross-checks
# random inputs against the unix port.
from binascii import hexlify, unhexlify

from cryptolib import aes

from ykt.sec.crypt import Ctr


def _h(b):
    return hexlify(b).decode()


def test_fips197_ecb():
    p = unhexlify("00112233445566778899aabbccddeeff")
    k16 = unhexlify("000102030405060708090a0b0c0d0e0f")
    k32 = unhexlify("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
    assert _h(aes(k16, 1).encrypt(p)) == "69c4e0d86a7b0430d8cdb78070b4c55a"
    assert _h(aes(k32, 1).encrypt(p)) == "8ea2b7ca516745bfeafc49904b496089"
    assert aes(k16, 1).decrypt(unhexlify("69c4e0d86a7b0430d8cdb78070b4c55a")) == p
    out = bytearray(16)
    assert aes(k32, 1).encrypt(p, out) is out and _h(out) == "8ea2b7ca516745bfeafc49904b496089"


def test_sp800_38a_cbc():
    k = unhexlify("2b7e151628aed2a6abf7158809cf4f3c")
    iv = unhexlify("000102030405060708090a0b0c0d0e0f")
    p = unhexlify("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
    c = aes(k, 2, iv).encrypt(p)
    assert _h(c) == "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
    assert aes(k, 2, iv).decrypt(c) == p


def test_errors_match_builtin():
    for bad in (lambda: aes(b"k" * 15, 1), lambda: aes(b"k" * 16, 2),
                lambda: aes(b"k" * 16, 1).encrypt(b"x" * 15)):
        try:
            bad()
            raise AssertionError("accepted")
        except ValueError:
            pass
    a = aes(b"k" * 16, 2, b"i" * 16)
    a.encrypt(b"1" * 16)
    try:
        a.decrypt(b"1" * 16)
        raise AssertionError("mixed encrypt and decrypt")
    except ValueError:
        pass


def test_journal_ctr_known_answer():
    c = Ctr(b"0123456789abcdef")
    assert c.kcv == 0x7808B8D3
    src = bytes(range(32))
    dst = bytearray(32)
    c.xor(0x01020304, 77, src, 0, dst, 0, 32)
    e = aes(b"0123456789abcdef", 1)
    ks = e.encrypt(b"YKJ1\x04\x03\x02\x01\x4d\x00\x00\x00\x00\x00\x00\x00") + \
        e.encrypt(b"YKJ1\x04\x03\x02\x01\x4d\x00\x00\x00\x01\x00\x00\x00")
    assert bytes(dst) == bytes(src[i] ^ ks[i] for i in range(32))
    back = bytearray(32)
    c.xor(0x01020304, 77, dst, 0, back, 0, 32)
    assert bytes(back) == src
    assert _h(dst) == KAT
    c32 = Ctr(b"K" * 32)
    c32.xor(1, 1, src, 0, dst, 0, 32)
    assert bytes(dst) != src


KAT = "3ca7e598e4efafc1219a149018fbe08632196a2e7ceb3b0b0dec0e96b5083353"
