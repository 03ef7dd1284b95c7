# Compiled fare tables and entitlement lists, as the device reads them.
# Compiled on the host (host_tools/ykt_tools/build/fares.py) from a text
# source; here every field is bounds-checked because a downloaded file is
# untrusted. A load that raises leaves the caller's previous table in force:
# callers keep the old object and only swap on success.
#
# Common 20-byte header (little-endian), shared with the catalog file:
#   0 4 magic  b"YKTF" fare table | b"YKTE" entitlements | b"YKTC" catalog
#   4 1 format version (1)
#   5 1 sub    fare mode (MODE_*) | 0
#   6 2 table version (goes into every tap: fare_ver / cat_ver)
#   8 2 id     catalog entry id the fare table belongs to | 0
#  10 2 reserved (0)
#  12 4 body length in bytes
#  16 4 CRC32 of the body
# Fare body: a fixed parameter block (_PFMT) then the counted arrays in the
# order bands, ages, categories, holidays, workdays, origin-destination pairs.
import struct
import binascii

from ykt.compat import const

HDR_FMT = "<4sBBHHHII"
HDR_SIZE = const(20)
FORMAT_VERSION = const(1)
_MAX_BODY = const(65536)

MODE_FLAT = const(1)      # one fare (bus)
MODE_OD = const(2)        # origin-destination (ferry: tap-in/tap-out or stage chosen)
MODE_SCENIC = const(3)    # entry price (scenic area)
MODE_IDENTITY = const(4)  # free identity-checked entry (museum, library)
MODE_NAMES = ("", "flat", "od", "scenic", "identity")

# Actions for bands, ages, categories and transfers.
A_FULL = const(0)
A_FREE = const(1)
A_HALF = const(2)
A_PCT = const(3)    # val = percent of the fare
A_FARE = const(4)   # val = fare in fen
A_MINUS = const(5)  # val = fen off the fare
ACTIONS = ("full", "free", "half", "pct", "fare", "minus")

# Day types (bit masks in rules).
D_WEEKDAY = const(1)
D_WEEKEND = const(2)
D_HOLIDAY = const(4)
D_ALL = const(7)

# Daily-limit behaviour once the free/concession rides of the day are used.
DL_FULL = const(0)   # charge the full fare (accept, R_DAILY_LIMIT)
DL_DENY = const(1)   # refuse (R_DAILY_LIMIT)

# Fare-table flags (parameter block): which earlier ride may anchor a
# transfer. Neither by default: a second ride on the same route or vehicle
# pays again. The device sees only its own vehicle (same_vehicle); the back
# office settles transfers between vehicles (same_route for one route's).
FL_XFER_SAME_ROUTE = const(0x01)
FL_XFER_SAME_VEHICLE = const(0x02)

# Entitlement flags.
E_COMPANION = const(0x01)  # the holder's own second tap in the window admits a companion
E_GREEN = const(0x02)      # green channel at gates (longer opening, attendant)
E_STAFF = const(0x04)      # a driver's staff card: signs a shift on / off at a bus validator

_PFMT = "<HHHHBBHHBBHBBBBBBBBH"
_PSIZE = const(28)
_BAND = "<HHBBH"     # start_min, end_min, days, action, val
_AGE = "<BBBBBBH"    # min_age, max_age, action, concession, days, pad, val
_CAT = "<BBBBH"      # concession, action, days, pad, val
_HOL = "<II"         # first, last (YYYYMMDD)
_WORK = "<I"         # make-up working day (YYYYMMDD)
_OD = "<HHH"         # from, to, fare
_LIMITS = (64, 32, 16, 255, 64, 4096)  # bands, ages, cats, holidays, workdays, od


class LoadError(ValueError):
    """A file was refused; .code names why (magic, version, truncated, crc,
    range, entry). The previous table stays in force."""

    def __init__(self, code, msg):
        super().__init__("%s: %s" % (code, msg))
        self.code = code


def check_header(buf, magic, max_body=_MAX_BODY):
    """Return (sub, version, ident, body_offset, body_len) or raise LoadError."""
    if len(buf) < HDR_SIZE:
        raise LoadError("truncated", "%d bytes, header needs %d" % (len(buf), HDR_SIZE))
    m, fmt, sub, ver, ident, _r, blen, crc = struct.unpack_from(HDR_FMT, buf, 0)
    if m != magic:
        raise LoadError("magic", "not a %s file" % magic.decode())
    if fmt != FORMAT_VERSION:
        raise LoadError("version", "format %d, this firmware reads %d" % (fmt, FORMAT_VERSION))
    if blen > max_body or len(buf) < HDR_SIZE + blen:
        raise LoadError("truncated", "body %d bytes, file has %d" % (blen, len(buf) - HDR_SIZE))
    if len(buf) != HDR_SIZE + blen:
        raise LoadError("range", "%d trailing bytes" % (len(buf) - HDR_SIZE - blen))
    if binascii.crc32(memoryview(buf)[HDR_SIZE:]) & 0xFFFFFFFF != crc:
        raise LoadError("crc", "body CRC32 mismatch")
    return sub, ver, ident, HDR_SIZE, blen


def _rows(buf, off, end, fmt, n):
    size = struct.calcsize(fmt)
    if off + size * n > end:
        raise LoadError("truncated", "array of %d x %d bytes overruns the body" % (n, size))
    out = []
    for i in range(n):
        out.append(struct.unpack_from(fmt, buf, off + i * size))
    return out, off + size * n


def _act_ok(a, v):
    if a >= len(ACTIONS) or (a == A_PCT and v > 100):
        raise LoadError("range", "bad action %d/%d" % (a, v))


class FareTable:
    """One entry's compiled fares and rule parameters (read-only after load)."""

    def __init__(self, buf):
        mode, self.version, self.entry, off, blen = check_header(buf, b"YKTF")
        if mode < MODE_FLAT or mode > MODE_IDENTITY:
            raise LoadError("range", "unknown fare mode %d" % mode)
        self.mode = mode
        end = off + blen
        if blen < _PSIZE:
            raise LoadError("truncated", "parameter block")
        (self.base, self.double_tap_s, self.passback_s, self.transfer_s, self.transfer_act, _p,
         self.transfer_val, self.companion_s, self.daily_free, self.daily_act, self.trip_max_s,
         self.green_age, self.flags, nb, na, nc, nh, nw, _p2, nod) = struct.unpack_from(_PFMT, buf, off)
        for n, lim in zip((nb, na, nc, nh, nw, nod), _LIMITS):
            if n > lim:
                raise LoadError("range", "array of %d rows over its limit %d" % (n, lim))
        _act_ok(self.transfer_act, self.transfer_val)
        if self.daily_act > DL_DENY:
            raise LoadError("range", "daily-limit action %d" % self.daily_act)
        off += _PSIZE
        self.bands, off = _rows(buf, off, end, _BAND, nb)
        self.ages, off = _rows(buf, off, end, _AGE, na)
        self.cats, off = _rows(buf, off, end, _CAT, nc)
        self.hols, off = _rows(buf, off, end, _HOL, nh)
        work, off = _rows(buf, off, end, _WORK, nw)
        self.work = [w[0] for w in work]
        # The card records a decision on this table reads (the reader reads
        # only these): the birth date only when an age rule or the green
        # channel's age can apply.
        self.needs_birth = bool(self.ages) or self.green_age > 0
        self.od, off = _rows(buf, off, end, _OD, nod)
        if off != end:
            raise LoadError("range", "%d unparsed body bytes" % (end - off))
        for b in self.bands:
            if b[0] > 1440 or b[1] > 1440:
                raise LoadError("range", "band minute out of range")
            _act_ok(b[3], b[4])
        for a in self.ages:
            _act_ok(a[2], a[6])
        for c in self.cats:
            _act_ok(c[1], c[4])
        for i in range(1, nod):
            if self.od[i - 1][0:2] >= self.od[i][0:2]:
                raise LoadError("range", "od pairs not sorted/unique")

    def day_type(self, ymd, wday):
        """wday 0 = Monday. Holidays win; make-up working days turn a weekend into a weekday."""
        for h in self.hols:
            if h[0] <= ymd <= h[1]:
                return D_HOLIDAY
        for w in self.work:
            if w == ymd:
                return D_WEEKDAY
        return D_WEEKEND if wday >= 5 else D_WEEKDAY

    def base_fare(self, minute, dtype):
        """Flat / scenic fare at this minute of the local day; the first matching band wins."""
        for b in self.bands:
            if b[2] & dtype and b[0] <= minute < b[1]:
                return apply(b[3], b[4], self.base)
        return self.base

    def od_fare(self, a, b):
        """Fare between two stops, -1 when the pair is not in the table."""
        lo = 0
        hi = len(self.od) - 1
        od = self.od
        while lo <= hi:
            mid = (lo + hi) >> 1
            r = od[mid]
            if r[0] == a and r[1] == b:
                return r[2]
            if r[0] < a or (r[0] == a and r[1] < b):
                lo = mid + 1
            else:
                hi = mid - 1
        return -1

    def od_max(self, a):
        """Highest fare from stop a (the provisional fare of a tap-in), -1 if none."""
        m = -1
        for r in self.od:
            if r[0] == a and r[2] > m:
                m = r[2]
        return m

    def age_rule(self, age, dtype):
        for r in self.ages:
            if r[0] <= age <= r[1] and r[4] & dtype:
                return r
        return None

    def cat_rule(self, conc, dtype):
        for r in self.cats:
            if r[0] == conc and r[2] & dtype:
                return r
        return None


def apply(act, val, fare):
    if act == A_FREE:
        return 0
    if act == A_HALF:
        return fare // 2
    if act == A_PCT:
        return fare * val // 100
    if act == A_FARE:
        return val
    if act == A_MINUS:
        return fare - val if fare > val else 0
    return fare


_ENT_REC = const(10)  # token(8) concession(1) flags(1), sorted by token
_ENT_MAX = const(16384)  # 160 KB: fits PSRAM boards; larger lists belong on flash


class Entitlements:
    """Entitlement list: keyed card token -> (concession C_*, flags E_*).
    Held in RAM (10 bytes per entry) and searched without allocating."""

    def __init__(self, buf):
        _s, self.version, _i, off, blen = check_header(buf, b"YKTE", _ENT_MAX * _ENT_REC)
        if blen % _ENT_REC:
            raise LoadError("range", "body is not a whole number of records")
        self.n = blen // _ENT_REC
        self._b = buf  # kept as loaded, header included: no second copy of a big list
        self._o = off
        for i in range(1, self.n):
            if self._cmp(buf, off + (i - 1) * _ENT_REC, off + i * _ENT_REC) >= 0:
                raise LoadError("range", "tokens not sorted/unique at record %d" % i)

    @staticmethod
    def _cmp(b, x, y):
        for k in range(8):
            d = b[x + k] - b[y + k]
            if d:
                return d
        return 0

    def lookup(self, tok):
        """(concession << 8) | flags, or -1 when the token has no entitlement."""
        b = self._b
        lo = 0
        hi = self.n - 1
        while lo <= hi:
            mid = (lo + hi) >> 1
            o = self._o + mid * _ENT_REC
            d = 0
            for k in range(8):
                d = tok[k] - b[o + k]
                if d:
                    break
            if d == 0:
                return (b[o + 8] << 8) | b[o + 9]
            if d > 0:
                lo = mid + 1
            else:
                hi = mid - 1
        return -1


def load(path, cls=FareTable, max_bytes=_ENT_MAX * _ENT_REC + HDR_SIZE):
    """Read and parse a compiled file; raises OSError or LoadError (keep the old table)."""
    import os

    size = os.stat(path)[6]
    if size > max_bytes:  # refuse before allocating: read(n) reserves n bytes
        raise LoadError("range", "file larger than %d bytes" % max_bytes)
    with open(path, "rb") as f:
        buf = f.read(size)
    return cls(buf)
