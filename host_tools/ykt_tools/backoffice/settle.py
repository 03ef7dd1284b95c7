"""Daily settlement per card token (account-based ticketing).

For one service day, each token's accepted taps in time order:
 1. provisional fare = what the device charged (taprec.fare);
 2. transfer across vehicles: a tap on a different device within the
    transfer window (fare table transfer_s) of the last tap that paid gets
    the table's transfer action (ykt.rules.fares.apply), once per paid tap;
    not on the same route (catalog entry) unless the table says same_route;
 3. concession limit: after daily_free concession rides in the day (across
    every device), a concession ride costs the table's full base fare
    (when daily_act is DL_FULL);
 4. daily cap (settings, fen; 0 = none): the day's total never exceeds it.
Every counted tap leaves a row in `charges` (day, device, seq -> provisional,
charged, rule): the audit trail from each amount back to its taps. Settling
a day again replaces that day's rows (idempotent)."""
import json

from sqlalchemy import delete, select

from ykt import taprec
from ykt.rules import fares as kfares
from ykt_tools.backoffice import ops
from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.auth import audit
from ykt_tools.backoffice.db import now, readonly

FREE_REASONS = (taprec.R_EXIT, taprec.R_ALREADY_PAID, taprec.R_IDENTITY_ENTRY)
# A driver's staff card signing a shift on or off is no ride: never settled.
SHIFT_REASONS = (taprec.R_SHIFT_ON, taprec.R_SHIFT_OFF)


def policy(conn):
    r = conn.execute(select(S.settings.c.v).where(S.settings.c.k == "settle_policy")).first()
    return json.loads(bytes(r.v)) if r else {"daily_cap": 0}


def set_policy(eng, daily_cap, actor="cli"):
    if not 0 <= int(daily_cap) <= 10_000_000:
        raise ops.OpError("daily cap 0..10000000 fen")
    doc = json.dumps({"daily_cap": int(daily_cap)}).encode()
    with eng.begin() as c:
        c.execute(delete(S.settings).where(S.settings.c.k == "settle_policy"))
        c.execute(S.settings.insert().values(k="settle_policy", v=doc))
        audit(c, actor, "settle.policy", "settle_policy", daily_cap=int(daily_cap))


def settle_token(taps, table_for, cap):
    """taps: rows (device, seq, t, fare, concession, reason, entry, fare_ver)
    sorted by time. -> (amount, provisional, [(device, seq, provisional, charged, rule)])."""
    out = []
    total = 0
    prov = 0
    anchor = None          # (device, t, entry) of the last tap that paid
    conc_rides = 0
    for dev, seq, t, fare, conc, reason, entry, fv in taps:
        prov += fare
        ft = table_for(entry, fv)
        charged = fare
        rule = "provisional"
        if reason in FREE_REASONS:
            charged, rule = 0, "free:%d" % reason
        else:
            if conc and ft is not None and fare < ft.base:
                conc_rides += 1
                if ft.daily_free and conc_rides > ft.daily_free and ft.daily_act == kfares.DL_FULL:
                    charged, rule = ft.base, "concession_limit"
            if (ft is not None and ft.transfer_s and anchor is not None and anchor[0] != dev
                    and (anchor[2] != entry or ft.flags & kfares.FL_XFER_SAME_ROUTE)
                    and 0 <= t - anchor[1] <= ft.transfer_s and charged > 0):
                charged, rule = kfares.apply(ft.transfer_act, ft.transfer_val, charged), "transfer"
                anchor = None    # one transfer per paid ride
            elif charged > 0:
                anchor = (dev, t, entry)
        if cap and total + charged > cap:
            charged, rule = max(0, cap - total), "cap"
        total += charged
        out.append((dev, seq, fare, charged, rule))
    return total, prov, out


def settle_day(eng, day, actor="cli"):
    tables = {}
    with readonly(eng).connect() as c:
        if c.execute(select(S.collections.c.id).where(S.collections.c.day == day).limit(1)).first():
            # its amounts went to the banks: settling again would change what was collected
            raise ops.OpError("day %d is collected: its settlement stands" % day, 409)
        pol = policy(c)

        def table_for(entry, fv):
            k = (entry, fv)
            if k not in tables:
                tables[k] = ops.fare_table(c, entry, fv)
            return tables[k]

        rows = c.execute(select(S.taps.c.token, S.taps.c.device, S.taps.c.seq, S.taps.c.t, S.taps.c.fare,
                                S.taps.c.concession, S.taps.c.reason, S.taps.c.entry, S.taps.c.fare_ver)
                         .where(S.taps.c.day == day, S.taps.c.outcome == taprec.OUT_ACCEPT,
                                S.taps.c.reason.not_in(SHIFT_REASONS))
                         .order_by(S.taps.c.token, S.taps.c.t, S.taps.c.device, S.taps.c.seq)).all()
        by = {}
        for r in rows:
            by.setdefault(bytes(r.token), []).append(tuple(r[1:]))
        results = []
        for tok, taps in by.items():
            amount, prov, items = settle_token(taps, table_for, pol.get("daily_cap", 0))
            fvs = max(tp[7] for tp in taps)
            results.append((tok, len(taps), prov, amount, fvs, items))
    t = now()
    with eng.begin() as c:
        c.execute(delete(S.charges).where(S.charges.c.day == day))
        c.execute(delete(S.settlements).where(S.settlements.c.day == day))
        if results:
            c.execute(S.settlements.insert(), [dict(day=day, token=tok, taps=n, provisional=p, amount=a,
                                                    fare_ver=fv, settled_at=t)
                                               for tok, n, p, a, fv, _ in results])
            c.execute(S.charges.insert(), [dict(day=day, device=d, seq=s, token=tok, provisional=p,
                                                charged=ch, rule=rule)
                                           for tok, _n, _p, _a, _fv, items in results
                                           for d, s, p, ch, rule in items])
        total = sum(r[3] for r in results)
        audit(c, actor, "settle.day", "day:%d" % day, cards=len(results), taps=len(rows), amount=total)
    return {"day": day, "cards": len(results), "taps": len(rows), "amount": total,
            "provisional": sum(r[2] for r in results)}


def settlements(eng, day):
    with eng.connect() as c:
        return [{"token": bytes(r.token).hex(), "taps": r.taps, "provisional": r.provisional,
                 "amount": r.amount} for r in
                c.execute(select(S.settlements).where(S.settlements.c.day == day).order_by(S.settlements.c.token))]


def charges(eng, day, token):
    tok = ops.parse_token(token)
    with eng.connect() as c:
        return [{"device": r.device, "seq": r.seq, "provisional": r.provisional, "charged": r.charged,
                 "rule": r.rule} for r in
                c.execute(select(S.charges).where(S.charges.c.day == day, S.charges.c.token == tok)
                          .order_by(S.charges.c.device, S.charges.c.seq))]
