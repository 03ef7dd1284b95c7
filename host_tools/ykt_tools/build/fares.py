"""Compile human-editable fare sources, entitlement lists and the catalog into
the compact binary files the device reads (firmware/ykt/rules/fares.py and
firmware/ykt/rules/catalog.py define and check the formats; docs/decisions.md shows
them byte by byte). Every error names the file and line."""
import binascii
import json
import re
import struct
import sys

from ykt_tools import FIRMWARE, SIMHW

# firmware/ykt/compat.py needs time.ticks_* which CPython only gets from the
# simulator's vclock, so both folders go on the path.
for _p in (SIMHW, FIRMWARE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from ykt.rules import fares as F  # noqa: E402
from ykt.rules import catalog as C  # noqa: E402
from ykt import taprec as T  # noqa: E402


class CompileError(ValueError):
    def __init__(self, src, line, msg):
        super().__init__("%s:%s: %s" % (src, line, msg))
        self.src = src
        self.line = line


CONCESSIONS = {"elderly_half": T.C_ELDERLY_HALF, "elderly_free": T.C_ELDERLY_FREE,
               "disabled": T.C_DISABLED, "disabled_companion": T.C_DISABLED_COMPANION,
               "military_care": T.C_MILITARY_CARE, "soldier": T.C_SOLDIER,
               "fire_rescue": T.C_FIRE_RESCUE, "child": T.C_CHILD}
DAYS = {"all": F.D_ALL, "weekday": F.D_WEEKDAY, "weekend": F.D_WEEKEND, "holiday": F.D_HOLIDAY,
        "nonholiday": F.D_WEEKDAY | F.D_WEEKEND, "weekend+holiday": F.D_WEEKEND | F.D_HOLIDAY}
MODES = {"flat": F.MODE_FLAT, "od": F.MODE_OD, "scenic": F.MODE_SCENIC, "identity": F.MODE_IDENTITY}
# A concession label that names its charge must match the rule's action:
# subsidy claims are made per label, so "free as elderly_half" is refused.
LABEL_ACTION = {"elderly_half": F.A_HALF, "elderly_free": F.A_FREE}
# transfer options: which earlier rides may anchor a transfer (default: neither)
TRANSFER_OPTS = {"same_route": F.FL_XFER_SAME_ROUTE, "same_vehicle": F.FL_XFER_SAME_VEHICLE}
KINDS = {"bus": C.K_BUS, "ferry": C.K_FERRY, "museum": C.K_MUSEUM, "library": C.K_LIBRARY,
         "scenic": C.K_SCENIC}


def header(magic, sub, version, ident, body):
    return struct.pack(F.HDR_FMT, magic, F.FORMAT_VERSION, sub, version, ident, 0, len(body),
                       binascii.crc32(body) & 0xFFFFFFFF) + body


class _P:
    """Token cursor over one source line, raising errors that name the line."""

    def __init__(self, src, no, words):
        self.src, self.no, self.w, self.i = src, no, words, 0

    def err(self, msg):
        raise CompileError(self.src, self.no, msg)

    def more(self):
        return self.i < len(self.w)

    def word(self, what):
        if self.i >= len(self.w):
            self.err("expected %s" % what)
        self.i += 1
        return self.w[self.i - 1]

    def int(self, what, lo, hi):
        w = self.word(what)
        if not re.fullmatch(r"\d+", w):
            self.err("%s must be a whole number, got %r" % (what, w))
        v = int(w)
        if not lo <= v <= hi:
            self.err("%s %d out of range %d..%d" % (what, v, lo, hi))
        return v

    def money(self, what):
        """Fen as an integer, or yuan with a point: 200 | 2.00 | 2.5y."""
        w = self.word(what)
        m = re.fullmatch(r"(\d+)\.(\d{1,2})", w)
        if m:
            v = int(m.group(1)) * 100 + int(m.group(2).ljust(2, "0"))
        elif re.fullmatch(r"\d+", w):
            v = int(w)
        else:
            self.err("%s must be fen (200) or yuan (2.00), got %r" % (what, w))
        if v > 65535:
            self.err("%s %d fen is over 655.35 yuan" % (what, v))
        return v

    def dur(self, what, hi=65535):
        w = self.word(what)
        m = re.fullmatch(r"(\d+)([smh]?)", w)
        if not m:
            self.err("%s must be a duration like 30s, 10m, 1h, got %r" % (what, w))
        v = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        if v > hi:
            self.err("%s %ds is over %ds" % (what, v, hi))
        return v

    def date(self, w):
        if not re.fullmatch(r"\d{8}", w):
            self.err("date must be YYYYMMDD, got %r" % w)
        y, m, d = int(w[:4]), int(w[4:6]), int(w[6:])
        if not (2000 <= y <= 2099 and 1 <= m <= 12 and 1 <= d <= 31):
            self.err("no such date %r" % w)
        return int(w)

    def action(self):
        a = self.word("action (free, half, pct N, fare X, minus X, full)")
        if a not in F.ACTIONS:
            self.err("unknown action %r (known: %s)" % (a, ", ".join(F.ACTIONS)))
        code = F.ACTIONS.index(a)
        val = 0
        if code == F.A_PCT:
            val = self.int("percent", 0, 100)
        elif code in (F.A_FARE, F.A_MINUS):
            val = self.money("amount")
        return code, val

    def days(self):
        if self.more() and self.w[self.i] == "days":
            self.i += 1
            d = self.word("day type")
            if d not in DAYS:
                self.err("unknown day type %r (known: %s)" % (d, ", ".join(DAYS)))
            return DAYS[d]
        return F.D_ALL

    def end(self):
        if self.more():
            self.err("unexpected %r" % self.w[self.i])


def _hhmm(p, w):
    m = re.fullmatch(r"(\d\d):(\d\d)", w)
    if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59:
        p.err("time must be HH:MM, got %r" % w)
    v = int(m.group(1)) * 60 + int(m.group(2))
    if v > 1440:
        p.err("time %r after 24:00" % w)
    return v


def parse_fares(text, src="<fares>"):
    t = dict(entry=None, version=None, mode=None, base=0, double_tap=0, passback=0, transfer=0,
             tact=0, tval=0, companion=0, daily_free=0, daily_act=0, trip_max=4 * 3600,
             green_age=0, flags=0, bands=[], ages=[], cats=[], hols=[], work=[], od={})
    seen = set()
    mode_line = 0
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        p = _P(src, no, line.split())
        k = p.word("keyword")
        single = ("table", "mode", "fare", "double_tap", "passback", "transfer", "companion",
                  "daily_free", "trip_max", "green_age")
        if k in single:
            if k in seen:
                p.err("%r given twice" % k)
            seen.add(k)
        if k == "table":
            t["entry"] = p.int("catalog entry id", 1, 65535)
            if p.word("'version'") != "version":
                p.err("expected: table <entry> version <n>")
            t["version"] = p.int("table version", 1, 65535)
        elif k == "mode":
            m = p.word("mode")
            if m not in MODES:
                p.err("unknown mode %r (known: %s)" % (m, ", ".join(MODES)))
            t["mode"] = MODES[m]
            mode_line = no
        elif k == "fare":
            t["base"] = p.money("fare")
        elif k == "band":
            w = p.word("HH:MM-HH:MM")
            if "-" not in w:
                p.err("band needs HH:MM-HH:MM, got %r" % w)
            a, b = w.split("-", 1)
            s, e = _hhmm(p, a), _hhmm(p, b)
            if s >= e:
                p.err("band ends before it starts")
            d = p.days()
            act, val = p.action()
            t["bands"].append((s, e, d, act, val))
        elif k == "holiday":
            w = p.word("YYYYMMDD[-YYYYMMDD]")
            a, _, b = w.partition("-")
            s = p.date(a)
            e = p.date(b) if b else s
            if e < s:
                p.err("holiday range ends before it starts")
            t["hols"].append((s, e))
        elif k == "workday":
            t["work"].append(p.date(p.word("YYYYMMDD")))
        elif k == "age":
            w = p.word("MIN-MAX")
            m = re.fullmatch(r"(\d+)-(\d+)", w)
            if not m or int(m.group(1)) > int(m.group(2)) or int(m.group(2)) > 255:
                p.err("age band must be MIN-MAX years (0..255), got %r" % w)
            act, val = p.action()
            if p.word("'as'") != "as":
                p.err("expected: age MIN-MAX <action> as <concession>")
            c = p.word("concession")
            if c not in CONCESSIONS:
                p.err("unknown concession %r (known: %s)" % (c, ", ".join(CONCESSIONS)))
            if c in LABEL_ACTION and act != LABEL_ACTION[c]:
                p.err("concession label %r contradicts its rule %r (a %s rule charges %s)"
                      % (c, F.ACTIONS[act], c, F.ACTIONS[LABEL_ACTION[c]]))
            t["ages"].append((int(m.group(1)), int(m.group(2)), act, CONCESSIONS[c], p.days(), 0, val))
        elif k == "category":
            c = p.word("category")
            if c not in CONCESSIONS:
                p.err("unknown category %r (known: %s)" % (c, ", ".join(CONCESSIONS)))
            act, val = p.action()
            t["cats"].append((CONCESSIONS[c], act, p.days(), 0, val))
        elif k == "od":
            a = p.int("origin stop", 0, 65535)
            b = p.int("destination stop", 0, 65535)
            f = p.money("fare")
            both = p.more() and p.w[p.i] == "both"
            if both:
                p.i += 1
            for key in ((a, b), (b, a)) if both else ((a, b),):
                if key in t["od"]:
                    p.err("pair %d-%d given twice" % key)
                t["od"][key] = f
        elif k == "double_tap":
            t["double_tap"] = p.dur("double-tap window")
        elif k == "passback":
            t["passback"] = p.dur("anti-passback window")
        elif k == "trip_max":
            t["trip_max"] = p.dur("longest trip")
        elif k == "companion":
            t["companion"] = p.dur("companion window", 600)
        elif k == "transfer":
            t["transfer"] = p.dur("transfer window")
            t["tact"], t["tval"] = p.action()
            while p.more():
                o = p.word("transfer option")
                if o not in TRANSFER_OPTS:
                    p.err("unknown transfer option %r (known: %s)" % (o, ", ".join(TRANSFER_OPTS)))
                t["flags"] |= TRANSFER_OPTS[o]
        elif k == "daily_free":
            t["daily_free"] = p.int("rides per day", 1, 255)
            a = p.word("then: full | deny")
            if a not in ("full", "deny"):
                p.err("after the daily limit: full or deny, got %r" % a)
            t["daily_act"] = F.DL_DENY if a == "deny" else F.DL_FULL
        elif k == "green_age":
            t["green_age"] = p.int("green channel age", 1, 255)
        else:
            p.err("unknown keyword %r" % k)
        p.end()
    if t["entry"] is None:
        raise CompileError(src, 0, "missing 'table <entry> version <n>' line")
    if t["mode"] is None:
        raise CompileError(src, 0, "missing 'mode' line")
    if t["mode"] == F.MODE_OD and not t["od"]:
        raise CompileError(src, mode_line, "mode od needs at least one 'od' pair")
    if t["mode"] in (F.MODE_FLAT, F.MODE_SCENIC) and "fare" not in seen:
        raise CompileError(src, mode_line, "mode %s needs a 'fare' line" % F.MODE_NAMES[t["mode"]])
    limits = dict(zip(("bands", "ages", "cats", "hols", "work", "od"), F._LIMITS))
    for key, lim in limits.items():
        if len(t[key]) > lim:
            raise CompileError(src, 0, "%d %s, the device takes at most %d" % (len(t[key]), key, lim))
    return t


def build_fares(t):
    body = bytearray(struct.pack(
        F._PFMT, t["base"], t["double_tap"], t["passback"], t["transfer"], t["tact"], 0, t["tval"],
        t["companion"], t["daily_free"], t["daily_act"], t["trip_max"], t["green_age"], t["flags"],
        len(t["bands"]), len(t["ages"]), len(t["cats"]), len(t["hols"]), len(t["work"]), 0,
        len(t["od"])))
    for b in t["bands"]:
        body += struct.pack(F._BAND, *b)
    for a in t["ages"]:
        body += struct.pack(F._AGE, *a)
    for c in t["cats"]:
        body += struct.pack(F._CAT, *c)
    for h in sorted(t["hols"]):
        body += struct.pack(F._HOL, *h)
    for w in sorted(t["work"]):
        body += struct.pack(F._WORK, w)
    for (a, b), f in sorted(t["od"].items()):
        body += struct.pack(F._OD, a, b, f)
    return header(b"YKTF", t["mode"], t["version"], t["entry"], bytes(body))


def compile_fares(text, src="<fares>"):
    return build_fares(parse_fares(text, src))


ENT_FLAGS = {"companion": F.E_COMPANION, "green": F.E_GREEN, "staff": F.E_STAFF}


def compile_entitlements(text, src="<entitlements>"):
    """Lines: 'version N' once, then '<token hex16> <category> [companion] [green]'."""
    version = None
    recs = {}
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        p = _P(src, no, line.split())
        w = p.word("token")
        if w == "version":
            if version is not None:
                p.err("'version' given twice")
            version = p.int("list version", 1, 65535)
            p.end()
            continue
        if not re.fullmatch(r"[0-9a-fA-F]{16}", w):
            p.err("token must be 16 hex digits (8 bytes), got %r" % w)
        tok = bytes.fromhex(w)
        if tok in recs:
            p.err("token %s listed twice" % w)
        c = p.word("category")
        if c not in CONCESSIONS:
            p.err("unknown category %r (known: %s)" % (c, ", ".join(CONCESSIONS)))
        flags = 0
        while p.more():
            f = p.word("flag")
            if f not in ENT_FLAGS:
                p.err("unknown flag %r (known: %s)" % (f, ", ".join(ENT_FLAGS)))
            flags |= ENT_FLAGS[f]
        recs[tok] = (CONCESSIONS[c], flags)
    if version is None:
        raise CompileError(src, 0, "missing 'version N' line")
    if len(recs) > F._ENT_MAX:
        raise CompileError(src, 0, "%d entries, the device takes at most %d" % (len(recs), F._ENT_MAX))
    body = b"".join(tok + bytes(recs[tok]) for tok in sorted(recs))
    return header(b"YKTE", 0, version, 0, body)


def _entry_flags(src, where, e):
    """"requires": ["transit"] and "expiry": "refuse" | "accept" | {"grace_days": N}
    -> (catalog F_* flags, grace days)."""
    flags = 0
    req = e.get("requires", [])
    if not isinstance(req, list) or any(r != "transit" for r in req):
        raise CompileError(src, where, "requires: a list of functions the card must have (known: transit)")
    if req:
        flags |= C.F_REQ_TRANSIT
    exp = e.get("expiry", "refuse")
    grace = 0
    if exp == "accept":
        flags |= C.EXP_ACCEPT
    elif isinstance(exp, dict) and set(exp) == {"grace_days"} and isinstance(exp["grace_days"], int) \
            and 1 <= exp["grace_days"] <= 255:
        flags |= C.EXP_GRACE
        grace = exp["grace_days"]
    elif exp != "refuse":
        raise CompileError(src, where, "expiry: \"refuse\", \"accept\" or {\"grace_days\": 1..255}, got %r" % (exp,))
    return flags, grace


def compile_catalog(text, src="<catalog>"):
    """JSON: {"version": N, "entries": [{"id", "kind", "name", "regions": [...],
    "requires": ["transit"], "expiry": "refuse" | "accept" | {"grace_days": N}}, ...]}."""
    try:
        d = json.loads(text)
    except ValueError as e:
        raise CompileError(src, getattr(e, "lineno", 0), "not valid JSON: %s" % e)
    if not isinstance(d, dict) or not isinstance(d.get("version"), int) or not 1 <= d["version"] <= 65535:
        raise CompileError(src, 0, "top level needs \"version\": 1..65535")
    ents = d.get("entries")
    if not isinstance(ents, list) or not ents:
        raise CompileError(src, 0, "\"entries\" must be a non-empty list")
    body = bytearray()
    ids = set()
    for n, e in enumerate(ents):
        where = "entries[%d]" % n
        if not isinstance(e, dict):
            raise CompileError(src, where, "an entry is an object")
        eid = e.get("id")
        if not isinstance(eid, int) or not 1 <= eid <= 65535 or eid in ids:
            raise CompileError(src, where, "id must be a unique integer 1..65535, got %r" % (eid,))
        ids.add(eid)
        if e.get("kind") not in KINDS:
            raise CompileError(src, where, "kind %r unknown (known: %s)" % (e.get("kind"), ", ".join(KINDS)))
        regs = e.get("regions")
        if not isinstance(regs, list) or not regs or len(regs) > 64:
            raise CompileError(src, where, "regions: a list of 1..64 patterns (\"*\", \"45\", \"450100\")")
        pats = []
        for r in regs:
            try:
                pats.append(C.encode_region(r if isinstance(r, str) else repr(r)))
            except ValueError as ex:
                raise CompileError(src, where, str(ex))
        flags, grace = _entry_flags(src, where, e)
        body += struct.pack(C._ENTRY, eid, KINDS[e["kind"]], len(pats), flags, grace)
        body += b"".join(struct.pack("<I", x) for x in pats)
    if len(ids) > C._MAX_ENTRIES:
        raise CompileError(src, 0, "more than %d entries" % C._MAX_ENTRIES)
    return header(b"YKTC", 0, d["version"], 0, bytes(body))
