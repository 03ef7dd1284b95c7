# The electronic social security card token (电子社保卡 QR code): format and
# offline verification. Defined once here; the back office (ykt_tools.build.qr,
# backoffice/qrissue.py) imports this module to build the same bytes.
#
# QR text = "YQ:" + base45(RFC 9285) of token; token (little-endian):
#  off size field
#   0   1   version     FORMAT (1)
#   1   8   kid         issuer key id (sigverify.key_id); the key must carry U_QR
#   9   8   holder      the holder's card token (ykt.sec.token.card_token)
#  17   4   region      GB/T 2260 region of the holder's card (u32)
#  21   1   category    concession category C_* (taprec), 0 = none
#  22   1   ent_flags   fares.E_* (companion, green channel)
#  23   4   iat         issue time, unix seconds, back-office clock (u32)
#  27   1   valid_s     validity in seconds, 1..60
#  28   8   nonce       random, unique per token: the replay-cache key
#  36   k   signature   RSASSA-PKCS1-v1_5 SHA-256 over "YKQR" + bytes 0..35;
#                       k = modulus length of the key (256 for RSA-2048)
# The alphabet of base45 plus the prefix is QR alphanumeric mode (5.5 bits a
# character), which beats base64 in byte mode (8 bits a character).
import hashlib
import struct
from array import array

from ykt.sec import sigverify
from ykt import cardread as CR
from ykt import taprec as T
from ykt.compat import const

FORMAT = const(1)
BODY = const(36)
MAX_VALID_S = const(60)
MIN_TOKEN = const(292)        # BODY + RSA-2048 signature
MAX_TOKEN = const(548)        # BODY + RSA-4096 signature (sigverify's bound)
PREFIX = b"YQ:"
MAX_TEXT = const(825)         # len(PREFIX) + base45 length of MAX_TOKEN
DOMAIN = b"YKQR"
_FMT = "<B8s8sIBBIB8s"
_T0 = const(1700000000)       # expiries kept relative: small ints on the ESP32
_B45 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

# verify() results: R_OK, a taprec reason code, or IGNORE
R_OK = const(0)
IGNORE = const(-1)            # the scanner re-sent the token just accepted: no second tap


def _b45_table():
    t = bytearray(b"\xff" * 128)
    for i in range(45):
        t[_B45[i]] = i
    return bytes(t)


_DEC = _b45_table()


def b45_encode(data):
    out = bytearray()
    n = len(data)
    i = 0
    while i + 1 < n:
        v = data[i] * 256 + data[i + 1]
        out.append(_B45[v % 45])
        out.append(_B45[(v // 45) % 45])
        out.append(_B45[v // 2025])
        i += 2
    if i < n:
        v = data[i]
        out.append(_B45[v % 45])
        out.append(_B45[v // 45])
    return bytes(out)


def b45_decode_into(src, start, end, out):
    """Decode src[start:end] into out; -> byte count, or -1 if not base45 or
    longer than out. No allocation."""
    n = end - start
    r = n % 3
    if r == 1:
        return -1
    m = (n // 3) * 2 + (1 if r == 2 else 0)
    if m > len(out):
        return -1
    dec = _DEC
    j = 0
    i = start
    while i + 2 < end:
        a, b, c = src[i], src[i + 1], src[i + 2]
        if a > 127 or b > 127 or c > 127:
            return -1
        a, b, c = dec[a], dec[b], dec[c]
        if a == 255 or b == 255 or c == 255:
            return -1
        v = a + b * 45 + c * 2025
        if v > 65535:
            return -1
        out[j] = v >> 8
        out[j + 1] = v & 0xFF
        j += 2
        i += 3
    if r == 2:
        a, b = src[i], src[i + 1]
        if a > 127 or b > 127:
            return -1
        a, b = dec[a], dec[b]
        if a == 255 or b == 255:
            return -1
        v = a + b * 45
        if v > 255:
            return -1
        out[j] = v
        j += 1
    return j


def pack_body(kid, holder, region, category, ent_flags, iat, valid_s, nonce):
    """The signed part (host side and tests; the device only parses)."""
    if not 1 <= valid_s <= MAX_VALID_S:
        raise ValueError("validity 1..%d s" % MAX_VALID_S)
    if len(kid) != 8 or len(holder) != 8 or len(nonce) != 8:
        raise ValueError("kid, holder and nonce are 8 bytes")
    return struct.pack(_FMT, FORMAT, bytes(kid), bytes(holder), region, category, ent_flags,
                       iat, valid_s, bytes(nonce))


def signed_message(body):
    return DOMAIN + bytes(body)


def to_text(token):
    return PREFIX + b45_encode(token)


class Verifier:
    """Offline check of one token: format, issuer key (U_QR), signature,
    validity window with the device clock's tolerance, and replay of a nonce
    on this device. The replay cache is bounded (cap entries) and each entry
    lives until its token's window closes, so it covers the whole window; when
    every slot holds a live token, new tokens are refused (fail safe) and
    counted in .full. After a reboot the cache is empty, so tokens issued
    before boot + tol are refused too (boot guard, needs clock.uptime_s).

    clock: .now() unix seconds and .trusted(); without trusted time a token's
    window cannot be checked and it is refused (R_NO_TRUSTED_TIME)."""

    def __init__(self, ring, clock, tol_s=20, cap=128, rescan_s=3):
        self.ring = ring
        self.clock = clock
        self.tol = tol_s
        self.cap = cap
        self._key = array("i", bytes(4 * cap))   # low 30 bits of the nonce
        self._exp = array("i", bytes(4 * cap))   # window end - _T0; 0 = free slot
        self._nonce = bytearray(8 * cap)
        self.buf = bytearray(MAX_TOKEN)          # decoded token, reused
        self.n = 0
        self.rescan_s = rescan_s
        self._last = bytearray(8)                # nonce of the last accepted token
        self._last_t = 0
        self.full = 0
        self.counts = {}

    def _count(self, r):
        self.counts[r] = self.counts.get(r, 0) + 1
        return r

    def _seen(self, key, nonce_off, rel):
        b = self.buf
        nb = self._nonce
        for s in range(self.cap):
            e = self._exp[s]
            if e and e >= rel and self._key[s] == key:
                o = s * 8
                same = True
                for k in range(8):
                    if nb[o + k] != b[nonce_off + k]:
                        same = False
                        break
                if same:
                    return True
        return False

    def _remember(self, key, nonce_off, exp_rel, rel):
        for s in range(self.cap):
            e = self._exp[s]
            if e == 0 or e < rel:
                self._key[s] = key
                self._exp[s] = exp_rel
                o = s * 8
                b = self.buf
                for k in range(8):
                    self._nonce[o + k] = b[nonce_off + k]
                return True
        return False

    def verify_text(self, line, n, cr):
        """line[0:n]: one scanner line. Fills cr (kind QR) and returns the
        taprec reason: R_OK or R_QR_* / R_NO_TRUSTED_TIME."""
        cr.clear()
        cr.kind = CR.KIND_QR
        for k in range(8):
            cr.qr_token[k] = 0
        pl = len(PREFIX)
        if n < pl or n > MAX_TEXT or line[0] != 89 or line[1] != 81 or line[2] != 58:  # "YQ:"
            return self._fail(cr, T.R_QR_MALFORMED)
        m = b45_decode_into(line, pl, n, self.buf)
        if m < 0:
            return self._fail(cr, T.R_QR_MALFORMED)
        self.n = m
        return self.verify(m, cr)

    def _fail(self, cr, r):
        cr.qr_reason = r
        self._count(r)
        return r

    def verify(self, m, cr):
        """self.buf[0:m] holds a decoded token."""
        b = self.buf
        if m < MIN_TOKEN or m > MAX_TOKEN or b[0] != FORMAT:
            return self._fail(cr, T.R_QR_MALFORMED)
        mv = memoryview(b)
        pub = self.ring.get(bytes(mv[1:9]), sigverify.U_QR) if self.ring is not None else None
        if pub is None:
            return self._fail(cr, T.R_QR_UNKNOWN_KEY)
        if m != BODY + pub.nlen:
            return self._fail(cr, T.R_QR_MALFORMED)
        h = hashlib.sha256(DOMAIN)
        h.update(mv[0:BODY])
        if not sigverify.verify_digest(pub, h.digest(), mv[BODY:m]):
            return self._fail(cr, T.R_QR_BAD_SIGNATURE)
        # From here the fields are the back office's word.
        region, iat = struct.unpack_from("<I", b, 17)[0], struct.unpack_from("<I", b, 23)[0]
        valid = b[27]
        for k in range(8):
            cr.qr_token[k] = b[9 + k]
        cr.region = region
        if b[21] or b[22]:
            cr.qr_ent = (b[21] << 8) | b[22]
        if not 1 <= valid <= MAX_VALID_S:
            return self._fail(cr, T.R_QR_MALFORMED)
        clock = self.clock
        if clock is None or not clock.trusted():
            return self._fail(cr, T.R_NO_TRUSTED_TIME)
        now = clock.now()
        tol = self.tol
        cr.qr_expires = iat + valid
        if now + tol < iat:
            return self._fail(cr, T.R_QR_NOT_YET_VALID)
        if now > iat + valid + tol:
            return self._fail(cr, T.R_QR_EXPIRED)
        up = getattr(clock, "uptime_s", None)
        if up is not None and iat < now - up + tol:
            return self._fail(cr, T.R_QR_REPLAY)   # issued before boot: the cache forgot it
        rel = now - _T0
        key = (b[28] | (b[29] << 8) | (b[30] << 16) | (b[31] << 24)) & 0x3FFFFFFF
        if self._seen(key, 28, rel):
            if now - self._last_t <= self.rescan_s and _same8(self._last, b, 28):
                # continuous-mode scanners send a code again while it is in view
                self._count(IGNORE)
                return IGNORE
            return self._fail(cr, T.R_QR_REPLAY)
        if not self._remember(key, 28, iat + valid + tol - _T0, rel):
            self.full += 1
            return self._fail(cr, T.R_QR_REPLAY)
        for k in range(8):
            self._last[k] = b[28 + k]
        self._last_t = now
        cr.qr_reason = R_OK
        self._count(R_OK)
        return R_OK

    def live(self):
        """Live entries in the replay cache (diagnostics, tests)."""
        rel = self.clock.now() - _T0
        c = 0
        for s in range(self.cap):
            if self._exp[s] and self._exp[s] >= rel:
                c += 1
        return c


def _same8(a, b, off):
    for k in range(8):
        if a[k] != b[off + k]:
            return False
    return True
