# Host stand-in for MicroPython's built-in `cryptolib` module, placed on the
# simulator path so firmware that does `from cryptolib import aes` runs under
# CPython unchanged. Under MicroPython this file would shadow the built-in
# (a .py on the path wins), so there it hands back the real C module instead.
#
# CPython: a small pure-Python AES (FIPS-197) with the same API and the same
# errors as the C module: aes(key, mode, IV=None), encrypt(in[, out]),
# decrypt(in[, out]); modes 1 ECB, 2 CBC, 6 CTR; 16- or 32-byte keys; one
# object either encrypts or decrypts (ECB/CBC), never both. Byte-identical
# results are pinned by tests/fw/t_journal_crypt.py (FIPS-197/SP 800-38A
# vectors on both runtimes) and tests/test_powercut.py (random cross-check
# against the unix port).
import sys

if sys.implementation.name == "micropython":
    _me = sys.modules.pop("cryptolib")
    _path = sys.path[:]
    del sys.path[:]
    try:
        import cryptolib as _builtin  # the C module, now that no .py can shadow it
    finally:
        sys.path.extend(_path)
        sys.modules["cryptolib"] = _me
    aes = _builtin.aes
else:
    MODE_ECB = 1
    MODE_CBC = 2
    MODE_CTR = 6

    def _tables():
        sbox = [0] * 256
        inv = [0] * 256
        p = q = 1
        while True:  # walk the multiplicative group with generator 3
            p = p ^ ((p << 1) & 0xFF) ^ (0x1B if p & 0x80 else 0)
            q ^= q << 1
            q ^= q << 2
            q ^= q << 4
            q &= 0xFF
            if q & 0x80:
                q ^= 0x09
            x = q ^ ((q << 1) | (q >> 7)) ^ ((q << 2) | (q >> 6)) ^ ((q << 3) | (q >> 5)) ^ ((q << 4) | (q >> 4))
            x = (x ^ 0x63) & 0xFF
            sbox[p] = x
            inv[x] = p
            if p == 1:
                break
        sbox[0] = 0x63
        inv[0x63] = 0
        return sbox, inv

    _SBOX, _INV = _tables()

    def _xt(a):
        a <<= 1
        return (a ^ 0x11B) if a & 0x100 else a

    def _mul(a, b):
        r = 0
        while b:
            if b & 1:
                r ^= a
            a = _xt(a)
            b >>= 1
        return r

    # T-tables: one lookup per byte per round.
    _TE = [[0] * 256 for _ in range(4)]
    _TD = [[0] * 256 for _ in range(4)]
    for _i in range(256):
        _s = _SBOX[_i]
        _w = (_mul(_s, 2) << 24) | (_s << 16) | (_s << 8) | _mul(_s, 3)
        _v = _INV[_i]
        _d = (_mul(_v, 14) << 24) | (_mul(_v, 9) << 16) | (_mul(_v, 13) << 8) | _mul(_v, 11)
        for _r in range(4):
            _TE[_r][_i] = ((_w >> (8 * _r)) | (_w << (32 - 8 * _r))) & 0xFFFFFFFF
            _TD[_r][_i] = ((_d >> (8 * _r)) | (_d << (32 - 8 * _r))) & 0xFFFFFFFF

    def _expand(key):
        nk = len(key) // 4
        nr = nk + 6
        w = [int.from_bytes(key[4 * i:4 * i + 4], "big") for i in range(nk)]
        rcon = 1
        for i in range(nk, 4 * (nr + 1)):
            t = w[i - 1]
            if i % nk == 0:
                t = ((t << 8) | (t >> 24)) & 0xFFFFFFFF
                t = ((_SBOX[t >> 24] << 24) | (_SBOX[(t >> 16) & 255] << 16)
                     | (_SBOX[(t >> 8) & 255] << 8) | _SBOX[t & 255])
                t ^= rcon << 24
                rcon = _xt(rcon)
            elif nk > 6 and i % nk == 4:
                t = ((_SBOX[t >> 24] << 24) | (_SBOX[(t >> 16) & 255] << 16)
                     | (_SBOX[(t >> 8) & 255] << 8) | _SBOX[t & 255])
            w.append(w[i - nk] ^ t)
        return w, nr

    def _dec_keys(w, nr):
        # Equivalent inverse cipher: InvMixColumns applied to the middle round keys.
        dk = []
        for r in range(nr + 1):
            for c in range(4):
                k = w[4 * (nr - r) + c]
                if 0 < r < nr:
                    k = (_TD[0][_SBOX[k >> 24]] ^ _TD[1][_SBOX[(k >> 16) & 255]]
                         ^ _TD[2][_SBOX[(k >> 8) & 255]] ^ _TD[3][_SBOX[k & 255]])
                dk.append(k)
        return dk

    def _block(rk, nr, blk, t, sb):
        t0, t1, t2, t3 = t
        s0 = int.from_bytes(blk[0:4], "big") ^ rk[0]
        s1 = int.from_bytes(blk[4:8], "big") ^ rk[1]
        s2 = int.from_bytes(blk[8:12], "big") ^ rk[2]
        s3 = int.from_bytes(blk[12:16], "big") ^ rk[3]
        dec = sb is _INV
        k = 4
        for _ in range(nr - 1):
            if dec:
                a = t0[s0 >> 24] ^ t1[(s3 >> 16) & 255] ^ t2[(s2 >> 8) & 255] ^ t3[s1 & 255] ^ rk[k]
                b = t0[s1 >> 24] ^ t1[(s0 >> 16) & 255] ^ t2[(s3 >> 8) & 255] ^ t3[s2 & 255] ^ rk[k + 1]
                c = t0[s2 >> 24] ^ t1[(s1 >> 16) & 255] ^ t2[(s0 >> 8) & 255] ^ t3[s3 & 255] ^ rk[k + 2]
                d = t0[s3 >> 24] ^ t1[(s2 >> 16) & 255] ^ t2[(s1 >> 8) & 255] ^ t3[s0 & 255] ^ rk[k + 3]
            else:
                a = t0[s0 >> 24] ^ t1[(s1 >> 16) & 255] ^ t2[(s2 >> 8) & 255] ^ t3[s3 & 255] ^ rk[k]
                b = t0[s1 >> 24] ^ t1[(s2 >> 16) & 255] ^ t2[(s3 >> 8) & 255] ^ t3[s0 & 255] ^ rk[k + 1]
                c = t0[s2 >> 24] ^ t1[(s3 >> 16) & 255] ^ t2[(s0 >> 8) & 255] ^ t3[s1 & 255] ^ rk[k + 2]
                d = t0[s3 >> 24] ^ t1[(s0 >> 16) & 255] ^ t2[(s1 >> 8) & 255] ^ t3[s2 & 255] ^ rk[k + 3]
            s0, s1, s2, s3 = a, b, c, d
            k += 4
        if dec:
            order = ((s0, s3, s2, s1), (s1, s0, s3, s2), (s2, s1, s0, s3), (s3, s2, s1, s0))
        else:
            order = ((s0, s1, s2, s3), (s1, s2, s3, s0), (s2, s3, s0, s1), (s3, s0, s1, s2))
        out = bytearray(16)
        for i, (a, b, c, d) in enumerate(order):
            v = ((sb[a >> 24] << 24) | (sb[(b >> 16) & 255] << 16) | (sb[(c >> 8) & 255] << 8)
                 | sb[d & 255]) ^ rk[k + i]
            out[4 * i:4 * i + 4] = v.to_bytes(4, "big")
        return out

    class aes:  # noqa: N801 - the built-in's name
        def __init__(self, key, mode, IV=None):  # noqa: N803
            key = bytes(key)
            if len(key) not in (16, 32):
                raise ValueError("key")
            if mode not in (MODE_ECB, MODE_CBC, MODE_CTR):
                raise ValueError("mode")
            if mode != MODE_ECB:
                if IV is None or len(IV) != 16:
                    raise ValueError("IV")
            self._mode = mode
            self._w, self._nr = _expand(key)
            self._dk = None
            self._iv = bytearray(IV) if IV is not None else None
            self._dir = 0  # 1 encrypting, 2 decrypting: C module forbids mixing
            self._ks = bytearray(16)
            self._ks_used = 16

        def _enc(self, blk):
            return _block(self._w, self._nr, blk, _TE, _SBOX)

        def _dec(self, blk):
            if self._dk is None:
                self._dk = _dec_keys(self._w, self._nr)
            return _block(self._dk, self._nr, blk, _TD, _INV)

        def _run(self, direction, inbuf, out):
            if self._mode != MODE_CTR:
                if self._dir and self._dir != direction:
                    raise ValueError("can't encrypt & decrypt")
                self._dir = direction
            data = bytes(inbuf)
            n = len(data)
            if self._mode != MODE_CTR and n % 16:
                raise ValueError("blksize % 16")
            res = bytearray(n)
            if self._mode == MODE_ECB:
                f = self._enc if direction == 1 else self._dec
                for i in range(0, n, 16):
                    res[i:i + 16] = f(data[i:i + 16])
            elif self._mode == MODE_CBC:
                iv = self._iv
                for i in range(0, n, 16):
                    blk = data[i:i + 16]
                    if direction == 1:
                        c = self._enc(bytes(x ^ y for x, y in zip(blk, iv)))
                        res[i:i + 16] = c
                        iv = c
                    else:
                        p = self._dec(blk)
                        res[i:i + 16] = bytes(x ^ y for x, y in zip(p, iv))
                        iv = bytearray(blk)
                self._iv = bytearray(iv)
            else:  # CTR: big-endian 128-bit counter, keystream carried across calls
                for i in range(n):
                    if self._ks_used == 16:
                        self._ks = self._enc(self._iv)
                        self._ks_used = 0
                        for j in range(15, -1, -1):
                            self._iv[j] = (self._iv[j] + 1) & 0xFF
                            if self._iv[j]:
                                break
                    res[i] = data[i] ^ self._ks[self._ks_used]
                    self._ks_used += 1
            if out is not None:
                if len(out) < n:
                    raise ValueError("output too small")
                out[:n] = res
                return out
            return bytes(res)

        def encrypt(self, inbuf, out=None):
            return self._run(1, inbuf, out)

        def decrypt(self, inbuf, out=None):
            return self._run(2, inbuf, out)
