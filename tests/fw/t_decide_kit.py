# Shared fixtures for the decision, fare and feedback tests (portable: runs on
# CPython and MicroPython). Builds compiled fare tables, catalogs and
# entitlement lists with struct exactly as host_tools/ykt_tools/build/fares.py
# does (tests/test_fares_compile.py checks both produce the same bytes).
# No test_ functions here: this module only provides helpers.
import struct
import binascii

from ykt.rules import fares as F
from ykt.rules import catalog as C
from ykt import cardread as CR
from ykt import taprec as T
from ykt.rules import recent
from ykt.rules import decide
from ykt import outcome as O
from ykt.sec.token import card_token

KEY = b"ykt-test-only-token-key-32bytes!"  # tests only; devices get their own key


def hdr(magic, sub, version, ident, body):
    return struct.pack(F.HDR_FMT, magic, F.FORMAT_VERSION, sub, version, ident, 0, len(body),
                       binascii.crc32(body) & 0xFFFFFFFF) + body


def fare_table(entry, version=1, mode=F.MODE_FLAT, base=200, double_tap=30, passback=0,
               transfer=0, tact=0, tval=0, companion=0, daily_free=0, daily_act=0,
               trip_max=14400, green_age=0, bands=(), ages=(), cats=(), hols=(), work=(), od=(), flags=0):
    body = bytearray(struct.pack(F._PFMT, base, double_tap, passback, transfer, tact, 0, tval,
                                 companion, daily_free, daily_act, trip_max, green_age, flags,
                                 len(bands), len(ages), len(cats), len(hols), len(work), 0, len(od)))
    for b in bands:
        body += struct.pack(F._BAND, *b)
    for a in ages:
        body += struct.pack(F._AGE, *a)
    for c in cats:
        body += struct.pack(F._CAT, *c)
    for h in sorted(hols):
        body += struct.pack(F._HOL, *h)
    for w in sorted(work):
        body += struct.pack(F._WORK, w)
    for r in sorted(od):
        body += struct.pack(F._OD, *r)
    return hdr(b"YKTF", mode, version, entry, bytes(body))


STD_AGES = ((0, 6, F.A_FREE, T.C_CHILD, F.D_ALL, 0, 0),
            (60, 64, F.A_HALF, T.C_ELDERLY_HALF, F.D_ALL, 0, 0),
            (65, 150, F.A_FREE, T.C_ELDERLY_FREE, F.D_ALL, 0, 0))
STD_CATS = ((T.C_DISABLED, F.A_FREE, F.D_ALL, 0, 0), (T.C_MILITARY_CARE, F.A_FREE, F.D_ALL, 0, 0),
            (T.C_SOLDIER, F.A_FREE, F.D_ALL, 0, 0), (T.C_FIRE_RESCUE, F.A_FREE, F.D_ALL, 0, 0))
FERRY_OD = ((1, 2, 1000), (2, 1, 1000), (1, 3, 12000), (3, 1, 12000), (2, 3, 11000), (3, 2, 11000))


def catalog_bin(version=4):
    ents = ((301, C.K_BUS, ("45",)), (820, C.K_FERRY, ("45", "440100")),
            (5101, C.K_SCENIC, ("45", "44")), (4001, C.K_MUSEUM, ("*",)), (4101, C.K_LIBRARY, ("4501",)))
    body = b""
    for eid, kind, regs in ents:
        body += struct.pack("<HBBBB", eid, kind, len(regs), 0, 0)
        for r in regs:
            body += struct.pack("<I", C.encode_region(r))
    return hdr(b"YKTC", 0, version, 0, body)


def ent_bin(rows, version=5):
    """rows: (token bytes, concession, flags)."""
    rows = sorted(rows)
    return hdr(b"YKTE", 0, version, 0, b"".join(t + bytes((c, f)) for t, c, f in rows))


class DenyList:
    """A tiny real deny list with the denylist module's interface."""

    def __init__(self, d=None, version=9):
        self.d = d or {}
        self.version = version

    def lookup(self, tok, off=0, foreign=False):
        return self.d.get(bytes(tok[off:off + 8]), 0)


BOARDS = ("bus_validator", "ferry_validator", "turnstile")
_PROFILES = {
    "bus_validator": {"device": "T-BUS", "entry": 301, "stop": 7, "direction": 1, "board": "bus_validator"},
    "ferry_validator": {"device": "T-FERRY", "entry": 820, "stop": 1, "board": "ferry_validator",
                        "ferry_mode": "tapout"},
    "turnstile": {"device": "T-GATE", "entry": 5101, "stop": 1, "direction": 3, "board": "turnstile"},
    "museum": {"device": "T-MUS", "entry": 4001, "stop": 1, "direction": 3, "board": "turnstile"},
}


def std_fares(board, **kw):
    if board == "bus_validator":
        a = dict(entry=301, base=200, double_tap=30, ages=STD_AGES, cats=STD_CATS)
    elif board == "ferry_validator":
        a = dict(entry=820, mode=F.MODE_OD, base=0, double_tap=60, od=FERRY_OD, ages=STD_AGES, cats=STD_CATS)
    elif board == "museum":
        a = dict(entry=4001, mode=F.MODE_IDENTITY, base=0, double_tap=0, passback=1800, cats=STD_CATS[:2])
    else:
        a = dict(entry=5101, mode=F.MODE_SCENIC, base=5500, double_tap=0, passback=600, ages=STD_AGES,
                 cats=STD_CATS)
    a.update(kw)
    return F.FareTable(fare_table(**a))


def at(ymd, hh=10, mm=0, tz_min=480):
    """Unix seconds of a local (UTC+8) date and time."""
    return decide.days(ymd) * 86400 + hh * 3600 + mm * 60 - tz_min * 60


NOW = at(20261126)  # a Thursday, 10:00 in Guangxi


class Rig:
    def __init__(self, board, fares=None, ents=(), deny=None, profile=None, cap=64, **fkw):
        d = dict(_PROFILES[board])
        if profile:
            d.update(profile)
        self.profile = C.profile_from(d)
        self.catalog = C.Catalog(catalog_bin())
        self.fares = fares if fares is not None else std_fares(board, **fkw)
        self.ents = F.Entitlements(ent_bin(list(ents))) if ents else None
        self.deny = DenyList(deny)
        self.recent = recent.Recent(cap)
        self.d = decide.Decider(self.profile, self.catalog, self.fares, self.ents, self.deny,
                                self.recent, KEY)
        self.tap = T.Tap()
        self.fb = 0
        self.msg = O.M_IDLE

    def tap_card(self, cr, now=NOW, trusted=True):
        r = self.d.decide(cr, now, trusted, self.tap)
        self.fb = O.kind_of(r)
        self.msg = O.msg_of(r)
        return self.tap

    @property
    def key(self):
        """The message's key ("ok", "expired", ...)."""
        return O.key(self.msg)


_serial = [0]


def card(region=450100, birth=0, expiry=20301231, issue=20200101, kind=CR.KIND_SSC, error=CR.OK, n=None):
    cr = CR.CardRead()
    cr.kind = kind
    cr.error = error
    if n is None:
        _serial[0] += 1
        n = _serial[0]
    cid = "%06d%010d" % (region, n)
    for i in range(16):
        cr.card_id[i] = ord(cid[i])
    cr.region = region
    cr.generation = 3
    cr.issue_date = issue
    cr.expiry_date = expiry
    cr.birth_date = birth
    cr.uid_len = 4
    for i in range(4):
        cr.uid[i] = (n >> (8 * i)) & 0xFF
    return cr


def tok(cr):
    return card_token(KEY, cr.card_id)


def check(t, outcome, reason, fare=None, conc=None, label=""):
    got = (t.outcome, t.reason, t.fare, t.concession)
    assert t.outcome == outcome and t.reason == reason, "%s: got %r, want outcome %d reason %d" % (
        label, got, outcome, reason)
    if fare is not None:
        assert t.fare == fare, "%s: fare %d, want %d" % (label, t.fare, fare)
    if conc is not None:
        assert t.concession == conc, "%s: concession %d, want %d" % (label, t.concession, conc)
