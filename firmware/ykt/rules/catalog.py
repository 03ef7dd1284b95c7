# The application catalog (应用目录, versioned by the back office) and the
# device profile that binds one device to one catalog entry.
#
# Catalog file: the 20-byte header of ykt.rules.fares (magic b"YKTC", sub 0,
# version = catalog version, id 0), then per entry:
#   0 2 entry id   2 1 kind (K_*)   3 1 n regions   4 1 flags (F_*)   5 1 grace days
#        flags: F_REQ_TRANSIT, the expiry policy in F_EXP_MASK (EXP_*); grace
#        days count only with EXP_GRACE
#   6 4*n region patterns: u32 = digits << 24 | value
#        digits 0 -> "*" (any card, value 0); 2 or 4 -> prefix ("45" = Guangxi);
#        6 -> exact GB/T 2260 code ("450100" = Nanning)
# The profile is JSON provisioned per device (data/devices/*.json): small,
# human-checked, and validated here field by field.
import json
import struct

from ykt.compat import const
from ykt.rules.fares import check_header, LoadError

K_BUS = const(1)
K_FERRY = const(2)
K_MUSEUM = const(3)
K_LIBRARY = const(4)
K_SCENIC = const(5)
KIND_NAMES = ("", "bus", "ferry", "museum", "library", "scenic")
# Kinds served at a gate: anti-passback applies, relay opens.
GATE_KINDS = (K_MUSEUM, K_LIBRARY, K_SCENIC)

_ENTRY = "<HBBBB"
# Entry flags. A card without the transport function (JT/T 978 application)
# is refused where the entry requires it; the expiry policy says whether an
# expired card is refused, accepted, or accepted for grace days after expiry.
F_REQ_TRANSIT = const(0x01)
F_EXP_MASK = const(0x06)
EXP_REFUSE = const(0x00)
EXP_ACCEPT = const(0x02)
EXP_GRACE = const(0x04)
_MAX_ENTRIES = const(512)
_MAX_REGIONS = const(64)
_DIV = (1000000, 100000, 10000, 1000, 100, 10, 1)

DIR_NONE = const(0)
DIR_UP = const(1)
DIR_DOWN = const(2)
DIR_ENTRY = const(3)
DIR_EXIT = const(4)


class Entry:
    __slots__ = ("id", "kind", "flags", "grace", "regions")

    def accepts(self, region):
        """True when a card issued in `region` (e.g. 450100) may use this entry."""
        for p in self.regions:
            d = p >> 24
            if d == 0:
                return True
            if region and region // _DIV[d] == (p & 0xFFFFFF):
                return True
        return False


class Catalog:
    def __init__(self, buf):
        _s, self.version, _i, off, blen = check_header(buf, b"YKTC")
        end = off + blen
        self.entries = {}
        while off < end:
            if off + 6 > end:
                raise LoadError("truncated", "entry header")
            eid, kind, nreg, flags, grace = struct.unpack_from(_ENTRY, buf, off)
            off += 6
            if kind < K_BUS or kind > K_SCENIC:
                raise LoadError("range", "entry %d: unknown kind %d" % (eid, kind))
            if flags & ~(F_REQ_TRANSIT | F_EXP_MASK) or flags & F_EXP_MASK == F_EXP_MASK:
                raise LoadError("range", "entry %d: unknown flags %02x" % (eid, flags))
            if nreg > _MAX_REGIONS or off + 4 * nreg > end:
                raise LoadError("truncated", "entry %d: %d regions" % (eid, nreg))
            if eid in self.entries or len(self.entries) >= _MAX_ENTRIES:
                raise LoadError("range", "entry %d: duplicate or too many entries" % eid)
            e = Entry()
            e.id = eid
            e.kind = kind
            e.flags = flags
            e.grace = grace if flags & F_EXP_MASK == EXP_GRACE else 0
            regs = []
            for i in range(nreg):
                p = struct.unpack_from("<I", buf, off + 4 * i)[0]
                d = p >> 24
                if d not in (0, 2, 4, 6) or (p & 0xFFFFFF) >= _DIV[6 - d]:
                    raise LoadError("range", "entry %d: bad region pattern %08x" % (eid, p))
                regs.append(p)
            e.regions = tuple(regs)
            off += 4 * nreg
            self.entries[eid] = e

    def get(self, eid):
        return self.entries.get(eid)


def encode_region(text):
    """'*' | '45' | '4501' | '450100' -> u32 pattern (host and device share it)."""
    if text == "*":
        return 0
    if len(text) not in (2, 4, 6) or not text.isdigit():
        raise ValueError("region %r: use *, 2 or 4 digit prefix, or a 6-digit code" % text)
    return (len(text) << 24) | int(text)


class ProfileError(ValueError):
    def __init__(self, src, field, msg):
        super().__init__("%s: %s: %s" % (src, field, msg))
        self.field = field


class Profile:
    __slots__ = ("device", "entry", "stop", "direction", "board", "tz_min", "ferry_mode",
                 "recent_cap", "feedback", "voice")


_BOARDS = ("bus_validator", "ferry_validator", "turnstile", "gate")
_FEEDBACK = {"relay_ms": (50, 10000, 600), "green_relay_ms": (50, 20000, 2500),
             "assist_after_denies": (0, 20, 3), "assist_ms": (50, 10000, 1500),
             "beep_hz": (500, 8000, 2700), "show_ms": (200, 10000, 2500)}


# Voice prompts (boards with a voice module, ykt.ui.voice): module volume
# 0..30 by day and in quiet hours [quiet_from, quiet_to) local time ("HH:MM";
# equal times: no quiet hours). -> profile.voice = (volume, quiet volume,
# quiet_from minute, quiet_to minute).
_VOICE = {"volume": 22, "quiet_volume": 10, "quiet_from": "22:00", "quiet_to": "06:30"}


def _hhmm(src, field, v):
    if type(v) is not str or len(v) != 5 or v[2] != ":" or not (v[:2] + v[3:]).isdigit():
        raise ProfileError(src, field, "must be \"HH:MM\", got %r" % (v,))
    h = int(v[:2])
    m = int(v[3:])
    if h > 23 or m > 59:
        raise ProfileError(src, field, "no such time %r" % v)
    return h * 60 + m


def _voice(src, d):
    v = d.get("voice", {})
    if type(v) is not dict:
        raise ProfileError(src, "voice", "must be an object")
    for k in v:
        if k not in _VOICE:
            raise ProfileError(src, "voice." + k, "unknown setting (known: %s)" % ", ".join(sorted(_VOICE)))
    vol = v.get("volume", _VOICE["volume"])
    qv = v.get("quiet_volume", _VOICE["quiet_volume"])
    for k, x in (("volume", vol), ("quiet_volume", qv)):
        if type(x) is not int or not 0 <= x <= 30:
            raise ProfileError(src, "voice." + k, "must be an integer in 0..30, got %r" % (x,))
    return (vol, qv, _hhmm(src, "voice.quiet_from", v.get("quiet_from", _VOICE["quiet_from"])),
            _hhmm(src, "voice.quiet_to", v.get("quiet_to", _VOICE["quiet_to"])))


def _int(src, d, key, lo, hi, default=None):
    v = d.get(key, default)
    if type(v) is not int or v < lo or v > hi:
        raise ProfileError(src, key, "must be an integer in %d..%d, got %r" % (lo, hi, v))
    return v


def profile_from(d, src="<profile>"):
    if type(d) is not dict:
        raise ProfileError(src, "(top)", "a profile is a JSON object")
    for k in d:
        if k not in Profile.__slots__ and k not in ("title", "comment"):
            raise ProfileError(src, k, "unknown field")
    p = Profile()
    dev = d.get("device")
    if type(dev) is not str or not 1 <= len(dev) <= 32:
        raise ProfileError(src, "device", "a device id of 1..32 characters is required")
    p.device = dev
    p.entry = _int(src, d, "entry", 1, 65535)
    p.stop = _int(src, d, "stop", 0, 65535, 0)
    p.direction = _int(src, d, "direction", 0, 4, 0)
    p.board = d.get("board")
    if p.board not in _BOARDS:
        raise ProfileError(src, "board", "unknown board kind %r (known: %s)" % (p.board, ", ".join(_BOARDS)))
    p.tz_min = _int(src, d, "tz_min", -720, 840, 480)
    p.ferry_mode = d.get("ferry_mode", "tapout")
    if p.ferry_mode not in ("tapout", "stage"):
        raise ProfileError(src, "ferry_mode", "tapout or stage, got %r" % (p.ferry_mode,))
    p.recent_cap = _int(src, d, "recent_cap", 16, 4096, 512)
    if p.recent_cap & (p.recent_cap - 1):
        raise ProfileError(src, "recent_cap", "must be a power of two")
    fb = d.get("feedback", {})
    if type(fb) is not dict:
        raise ProfileError(src, "feedback", "must be an object")
    out = {}
    for k in fb:
        if k not in _FEEDBACK:
            raise ProfileError(src, "feedback." + k, "unknown setting")
    for k in _FEEDBACK:
        lo, hi, dflt = _FEEDBACK[k]
        out[k] = _int(src, fb, k, lo, hi, dflt)
    p.feedback = out
    p.voice = _voice(src, d)
    return p


def load_profile(path):
    import os

    if os.stat(path)[6] > 4096:
        raise ProfileError(path, "(file)", "larger than 4096 bytes")
    with open(path) as f:
        text = f.read()
    try:
        d = json.loads(text)
    except ValueError as e:
        raise ProfileError(path, "(json)", "not valid JSON: %s" % e)
    return profile_from(d, path)


def load(path):
    import os

    size = os.stat(path)[6]
    if size > 32768:
        raise LoadError("range", "catalog file larger than 32768 bytes")
    with open(path, "rb") as f:
        return Catalog(f.read(size))
