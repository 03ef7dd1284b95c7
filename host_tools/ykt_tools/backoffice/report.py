"""Operating reports: for a range of service days, taps, riders, fares and
concession value grouped by route, vehicle, driver shift, card type or
concession class (the last is the subsidy claim: what each concession class
was let off, which the operator claims back from the government).

Figures, per group:
  taps              rider taps recorded (accepted, refused and unreadable;
                    a driver's sign-on/off is no rider tap)
  accepted, refused accepted taps; refused and unreadable taps
  riders            distinct card tokens among the accepted taps
  provisional       fares the devices showed (fen)
  fares             fares charged by settlement (fen): the `charges` rows
  concession_rides  accepted taps with a concession
  full_fares        what those rides cost at the full fare (fen)
  concession_value  full_fares - what settlement charged for them (fen)

Every accepted rider tap of a settled day has exactly one `charges` row, so
the groups partition the day's charges: the report's fares total equals the
settlement total to the fen (`reconciled`); a day not settled, or settled
before some of its taps arrived, is refused with the command that fixes it.
The full fare of a tap is the fare table it names (entry, fare_ver) priced
without concessions at the tap's local time, as the device's rule engine
prices it (ykt.rules.fares): flat and scenic fares by time band and day type,
a ferry tap-in at its maximum fare, a stage at its origin-destination fare;
exits, already-paid taps and identity entries cost nothing.

Tokens are pseudonymous (the back office never holds an identity); a shift's
driver is shown as the first 8 hex digits of the staff card's token."""
import csv
import io

from sqlalchemy import and_, func, select

from ykt import taprec as T
from ykt.rules import catalog as kcat
from ykt.rules import fares as kf
from ykt.rules.decide import civil
from ykt_tools.backoffice import ops
from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.db import readonly
from ykt_tools.backoffice.errors import OpError
from ykt_tools.backoffice.settle import FREE_REASONS, SHIFT_REASONS

BY = ("route", "vehicle", "shift", "card-type", "concession")
FORMATS = ("csv", "parquet", "xlsx")
METRICS = ("taps", "accepted", "refused", "riders", "provisional", "fares", "concession_rides", "full_fares",
           "concession_value")
KEYS = {
    "route": ("entry", "kind"),
    "vehicle": ("device", "name"),
    "shift": ("device", "name", "shift", "driver", "start", "end"),
    "card-type": ("card_type", "medium"),
    "concession": ("concession", "class", "class_zh"),
}
# concession class (taprec C_*) -> card type
CARD_TYPES = ("ordinary", "elderly", "elderly", "disabled", "disabled", "military_care", "military_care",
              "fire_rescue", "child")
CLASSES = ("none", "elderly_half", "elderly_free", "disabled", "disabled_companion", "military_care", "soldier",
           "fire_rescue", "child")
_TZ = 8 * 3600


def _hhmm(t):
    if not t:
        return ""
    s = (t + _TZ) % 86400
    return "%02d:%02d" % (s // 3600, s // 60 % 60)


def full_fare(ft, t, reason, stop, stage, fare):
    """The fare of a tap without any concession (fen); see the module doc."""
    if reason in FREE_REASONS:
        return 0
    if ft is None:
        return fare
    if ft.mode == kf.MODE_IDENTITY:
        return 0
    loc = t + _TZ
    days = loc // 86400
    dtype = ft.day_type(civil(days), (days + 3) % 7)
    if ft.mode == kf.MODE_OD:
        f = ft.od_fare(stop, stage) if stage else -1
        return f if f >= 0 else max(ft.od_max(stop), 0)
    return ft.base_fare((loc % 86400) // 60, dtype)


class _Acc:
    __slots__ = ("m", "tokens")

    def __init__(self):
        self.m = dict.fromkeys(METRICS, 0)
        self.tokens = set()


def build(eng, day_from, day_to, by):
    """-> {"by", "from", "to", "columns", "rows": [[...]], "totals": {...},
    "settlement": total fen, "reconciled": bool}. OpError 409 when a day in
    the range is not (or no longer) settled."""
    if by not in BY:
        raise OpError("--by must be one of %s" % ", ".join(BY))
    if not (19700101 <= day_from <= day_to <= 99991231):
        raise OpError("day range %d..%d" % (day_from, day_to))
    tables = {}
    with readonly(eng).connect() as c:
        names = {r.id: r.name for r in c.execute(select(S.devices.c.id, S.devices.c.name))}
        cat = _catalog(c)
        q = (select(S.taps.c.day, S.taps.c.device, S.taps.c.seq, S.taps.c.t.label("at"), S.taps.c.token, S.taps.c.outcome,
                    S.taps.c.reason, S.taps.c.fare, S.taps.c.concession, S.taps.c.flags, S.taps.c.entry,
                    S.taps.c.stop, S.taps.c.stage, S.taps.c.fare_ver, S.taps.c.shift,
                    S.charges.c.charged, S.charges.c.seq.label("cseq"))
             .select_from(S.taps.outerjoin(S.charges, and_(S.charges.c.day == S.taps.c.day,
                                                           S.charges.c.device == S.taps.c.device,
                                                           S.charges.c.seq == S.taps.c.seq)))
             .where(S.taps.c.day >= day_from, S.taps.c.day <= day_to)
             .order_by(S.taps.c.device, S.taps.c.seq))
        sums = {r.day: int(r.amount) for r in c.execute(
            select(S.settlements.c.day, func.sum(S.settlements.c.amount).label("amount"))
            .where(S.settlements.c.day >= day_from, S.settlements.c.day <= day_to).group_by(S.settlements.c.day))}
        settled_total = sum(sums.values())

        def table(entry, fv):
            k = (entry, fv)
            if k not in tables:
                tables[k] = ops.fare_table(c, entry, fv)
            return tables[k]

        shifts = {}                       # (device, shift seq) -> [driver token, start, end]
        # a shift's sign-on may be days before the range: look shifts up by device and seq
        for r in c.execute(select(S.taps.c.device, S.taps.c.seq, S.taps.c.t.label("at"), S.taps.c.token, S.taps.c.reason,
                                  S.taps.c.shift)
                           .where(S.taps.c.reason.in_(SHIFT_REASONS), S.taps.c.outcome == T.OUT_ACCEPT,
                                  S.taps.c.day >= _day_before(day_from), S.taps.c.day <= day_to)):
            if r.reason == T.R_SHIFT_ON:
                shifts.setdefault((r.device, r.seq), [b"", 0, 0])[:2] = [bytes(r.token), r.at]
            elif r.shift:
                shifts.setdefault((r.device, r.shift), [b"", 0, 0])[2] = r.at
        stale = set()
        groups = {}
        for r in c.execution_options(yield_per=20000).execute(q):
            if r.reason in SHIFT_REASONS:
                continue
            if r.outcome == T.OUT_ACCEPT and r.cseq is None:
                stale.add(r.day)
            k = _key(by, r, names, cat, shifts)
            a = groups.get(k)
            if a is None:
                a = groups[k] = _Acc()
            m = a.m
            m["taps"] += 1
            if r.outcome != T.OUT_ACCEPT:
                m["refused"] += 1
                continue
            m["accepted"] += 1
            a.tokens.add(bytes(r.token))
            m["provisional"] += r.fare
            charged = r.charged or 0
            m["fares"] += charged
            if r.concession:
                full = full_fare(table(r.entry, r.fare_ver), r.at, r.reason, r.stop, r.stage, r.fare)
                m["concession_rides"] += 1
                m["full_fares"] += full
                m["concession_value"] += max(0, full - charged)
    if stale:
        days = sorted(stale)
        raise OpError("day%s %s not settled with every tap: run `ykt backoffice settle --day %d` first"
                      % ("s" if len(days) > 1 else "", ", ".join(map(str, days)), days[0]), 409)
    out_rows = []
    tot = dict.fromkeys(METRICS, 0)
    every = set()
    for k in sorted(groups, key=lambda x: tuple(("", v) if isinstance(v, str) else (v, "") for v in x)):
        a = groups[k]
        a.m["riders"] = len(a.tokens)
        every |= a.tokens
        out_rows.append(list(k) + [a.m[x] for x in METRICS])
        for x in METRICS:
            tot[x] += a.m[x]
    tot["riders"] = len(every)        # a rider in two groups is one rider
    return {"by": by, "from": day_from, "to": day_to, "columns": list(KEYS[by]) + list(METRICS),
            "rows": out_rows, "totals": tot, "settlement": settled_total,
            "settled_days": sorted(sums), "reconciled": tot["fares"] == settled_total}


def _day_before(day):
    from ykt_tools.backoffice.db import day_bounds, service_day

    return service_day(day_bounds(day)[0] - 86400)


def _catalog(c):
    r = c.execute(select(S.files.c.doc).where(S.files.c.kind == "catalog")
                  .order_by(S.files.c.version.desc()).limit(1)).first()
    if r is None:
        return {}
    try:
        return {e.id: kcat.KIND_NAMES[e.kind] for e in kcat.Catalog(bytes.fromhex(r.doc)).entries.values()}
    except (kf.LoadError, ValueError):
        return {}


def _key(by, r, names, cat, shifts):
    if by == "route":
        return (r.entry, cat.get(r.entry, ""))
    if by == "vehicle":
        return (r.device, names.get(r.device, str(r.device)))
    if by == "shift":
        s = shifts.get((r.device, r.shift)) if r.shift else None
        drv = s[0][:4].hex() if s and s[0] else ""
        return (r.device, names.get(r.device, str(r.device)), r.shift, drv, _hhmm(s[1]) if s else "",
                _hhmm(s[2]) if s else "")
    if by == "card-type":
        c = r.concession
        return (CARD_TYPES[c] if c < len(CARD_TYPES) else "other", "e-ssc" if r.flags & T.F_QR else "ssc")
    from ykt.outcome import CONCESSIONS

    c = r.concession
    return (c, CLASSES[c] if c < len(CLASSES) else "c%d" % c, CONCESSIONS[c][0] if c < len(CONCESSIONS) else "")


def table_rows(rep):
    """Header, the groups, then a totals row (what csv and xlsx hold)."""
    cols = rep["columns"]
    nk = len(cols) - len(METRICS)
    tot = ["total"] + [""] * (nk - 1) + [rep["totals"][m] for m in METRICS]
    return [cols] + rep["rows"] + [tot]


def write(rep, fmt, out):
    """Write a report to the binary file `out` as csv, parquet or xlsx."""
    if fmt not in FORMATS:
        raise OpError("--format must be one of %s" % ", ".join(FORMATS))
    if fmt == "csv":
        txt = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        w = csv.writer(txt)
        for row in table_rows(rep):
            w.writerow(row)
        txt.flush()
        txt.detach()
        return
    if fmt == "xlsx":
        from ykt_tools.backoffice import xlsx

        info = [["report", "by " + rep["by"]], ["from", rep["from"]], ["to", rep["to"]],
                ["fares charged (fen)", rep["totals"]["fares"]], ["settlement total (fen)", rep["settlement"]],
                ["reconciled", "yes" if rep["reconciled"] else "NO"]]
        xlsx.write(out, [("by " + rep["by"], table_rows(rep)), ("about", info)])
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = rep["columns"]
    data = {c: [row[i] for row in rep["rows"]] for i, c in enumerate(cols)}
    pq.write_table(pa.table(data), out)
