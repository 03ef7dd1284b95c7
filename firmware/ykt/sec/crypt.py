# At-rest encryption of journal records: AES-CTR built on cryptolib's ECB mode.
# Why not cryptolib's own CTR (mode 6): it is a build option (MICROPY_PY_
# CRYPTOLIB_CTR) that the unix port here lacks, while ECB exists in every
# build; CTR over ECB costs the same two block encryptions per 32-byte record
# and gives identical output everywhere. On the host, host_tools/simhw/
# cryptolib.py stands in for the built-in under CPython.
#
# Counter block (16 bytes, one per 16-byte block of a record):
#   b"YKJ1" | salt u32 LE | seq u32 LE | block index u32 LE
# The (salt, seq) pair never repeats: seq never repeats on a device, and the
# salt is fresh for every journal segment (see journal.py), so a keystream is
# never reused even for a record lost in a power cut and re-numbered.
import struct

from cryptolib import aes

from ykt.compat import const

_MODE_ECB = const(1)


# The per-byte XOR runs on every journal append (36 bytes): viper on
# MicroPython (ESP32 xtensawin and the unix port emit it), plain Python
# elsewhere. Same bytes either way.
try:
    import micropython

    @micropython.viper
    def xor8(dst, d: int, src, s: int, ks, n: int):
        pd = ptr8(dst)  # noqa: F821 (viper builtin)
        ps = ptr8(src)  # noqa: F821
        pk = ptr8(ks)  # noqa: F821
        j = 0
        while j < n:
            pd[d + j] = ps[s + j] ^ pk[j]
            j += 1
except (ImportError, AttributeError):
    def xor8(dst, d, src, s, ks, n):
        for j in range(n):
            dst[d + j] = src[s + j] ^ ks[j]
_MAGIC = b"YKJ1"
_KCV_BLOCK = b"YKJ1 key check!!"  # block index bytes "ck!!" never occur in a counter block


class Ctr:
    """Keystream XOR for one device key. Buffers are allocated once."""

    def __init__(self, key):
        if len(key) not in (16, 32):
            raise ValueError("journal key must be 16 or 32 bytes")
        self._ecb = aes(bytes(key), _MODE_ECB)
        self._ctr = bytearray(16)
        self._ctr[0:4] = _MAGIC
        self._ks = bytearray(16)
        self.kcv = self._kcv()

    def _kcv(self):
        # Key check value: lets the journal refuse to open with the wrong key
        # instead of mistaking every record for a torn write.
        self._ecb.encrypt(_KCV_BLOCK, self._ks)
        return struct.unpack_from("<I", self._ks, 0)[0]

    def xor(self, salt, seq, src, soff, dst, doff, n):
        """dst[doff:doff+n] = src[soff:soff+n] XOR keystream(salt, seq).
        Encrypts and decrypts alike. src and dst may be the same buffer."""
        ctr = self._ctr
        ks = self._ks
        struct.pack_into("<III", ctr, 4, salt, seq, 0)
        i = 0
        blk = 0
        while i < n:
            struct.pack_into("<I", ctr, 12, blk)
            self._ecb.encrypt(ctr, ks)
            m = n - i
            if m > 16:
                m = 16
            xor8(dst, doff + i, src, soff + i, ks, m)
            i += m
            blk += 1
