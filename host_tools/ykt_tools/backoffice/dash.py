"""What the operator dashboard shows, as plain data (admin.py serves it):
the service days that have taps, one day's figures (taps per hour by device
and by route, outcomes and refusal reasons, revenue, concession value),
device health with alerts, and the card lookup's pseudonymous history."""
import json

from sqlalchemy import func, select

from ykt import taprec as T
from ykt_tools.backoffice import collect, ops, registry, report
from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.db import day_bounds, now, readonly
from ykt_tools.backoffice.errors import OpError
from ykt_tools.backoffice.settle import SHIFT_REASONS

# Alert thresholds (device health)
OFFLINE_S = 15 * 60          # no heartbeat or upload for this long
BACKLOG_MAX = 500            # taps journaled and not yet uploaded
BACKLOG_AGE_S = 3600         # the oldest of them older than this
DL_GRACE_S = 10 * 60         # a device may take this long to fetch a new deny list
REASONS = {getattr(T, k): k[2:].lower() for k in dir(T) if k.startswith("R_")}
OUTCOMES = ("accept", "deny", "error")


def days(eng, limit=120):
    """Service days with rider taps (a driver's sign-on is none), newest
    first: [{"day", "taps", "settled", "amount"}]. The dashboard opens on the first."""
    with readonly(eng).connect() as c:
        rows = c.execute(select(S.taps.c.day, func.count().label("n")).where(S.taps.c.reason.not_in(SHIFT_REASONS))
                         .group_by(S.taps.c.day)
                         .order_by(S.taps.c.day.desc()).limit(limit)).all()
        st = {r.day: int(r.a) for r in c.execute(select(S.settlements.c.day, func.sum(S.settlements.c.amount)
                                                        .label("a")).group_by(S.settlements.c.day))}
    return [{"day": r.day, "taps": r.n, "settled": r.day in st, "amount": st.get(r.day)} for r in rows]


def day(eng, d):
    """One service day: totals, taps per local hour by device and by route,
    outcomes and refusal reasons, revenue and concession value."""
    t0, _t1 = day_bounds(d)
    with readonly(eng).connect() as c:
        names = {r.id: r.name for r in c.execute(select(S.devices.c.id, S.devices.c.name))}
        rider = S.taps.c.reason.not_in(SHIFT_REASONS)
        hour = ((S.taps.c.t - t0) // 3600).label("h")     # floor division on both backends
        per_dev = c.execute(select(hour, S.taps.c.device, func.count()).where(S.taps.c.day == d, rider)
                            .group_by("h", S.taps.c.device)).all()
        per_route = c.execute(select(hour, S.taps.c.entry, func.count()).where(S.taps.c.day == d, rider)
                              .group_by("h", S.taps.c.entry)).all()
        reasons = c.execute(select(S.taps.c.outcome, S.taps.c.reason, func.count()).where(S.taps.c.day == d, rider)
                            .group_by(S.taps.c.outcome, S.taps.c.reason)).all()
        riders = c.execute(select(func.count(func.distinct(S.taps.c.token)))
                           .where(S.taps.c.day == d, rider, S.taps.c.outcome == T.OUT_ACCEPT)).scalar_one()
        prov = c.execute(select(func.coalesce(func.sum(S.taps.c.fare), 0))
                         .where(S.taps.c.day == d, rider, S.taps.c.outcome == T.OUT_ACCEPT)).scalar_one()
        settled = c.execute(select(func.count(), func.coalesce(func.sum(S.settlements.c.amount), 0))
                            .where(S.settlements.c.day == d)).first()
        shifts = c.execute(select(func.count()).where(S.taps.c.day == d, S.taps.c.reason == T.R_SHIFT_ON,
                                                     S.taps.c.outcome == T.OUT_ACCEPT)).scalar_one()

    def hours(rows, label):
        out = {}
        for h, k, n in rows:
            h = max(0, min(23, int(h)))
            key = label(k)
            out.setdefault(key, [0] * 24)[h] += n
        return [{"key": k, "hours": v} for k, v in sorted(out.items())]

    out = {o: 0 for o in OUTCOMES}
    refusals = []
    for o, r, n in reasons:
        out[OUTCOMES[o] if 0 <= o < 3 else str(o)] = out.get(OUTCOMES[o] if 0 <= o < 3 else str(o), 0) + n
        if o != T.OUT_ACCEPT:
            refusals.append({"reason": REASONS.get(r, str(r)), "code": r, "taps": n})
    refusals.sort(key=lambda x: (-x["taps"], x["code"]))
    res = {"day": d, "taps": sum(out.values()), "outcomes": out, "refusals": refusals, "riders": riders,
           "provisional": int(prov), "settled": settled[0] > 0, "shifts": shifts,
           "per_device": hours(per_dev, lambda k: names.get(k, str(k))),
           "per_route": hours(per_route, lambda k: str(k)),
           "fares": None, "concession_value": None, "concession_rides": None}
    if res["settled"]:
        try:
            rep = report.build(eng, d, d, "concession")
            res["fares"] = rep["totals"]["fares"]
            res["concession_value"] = rep["totals"]["concession_value"]
            res["concession_rides"] = rep["totals"]["concession_rides"]
            res["reconciled"] = rep["reconciled"]
        except OpError as e:          # taps arrived after the settlement: say so, show provisional
            res["settled"] = False
            res["settle_note"] = str(e)
    return res


def health(eng):
    """Devices with their alerts: offline too long, reader faults, journal
    backlog, deny list behind. -> {"now", "devices": [...], "alerts": n}"""
    t = now()
    with readonly(eng).connect() as c:
        dl = c.execute(select(S.denylist.c.version, S.denylist.c.created).order_by(S.denylist.c.version.desc())
                       .limit(1)).first()
        created = {r.version: r.created for r in c.execute(select(S.denylist.c.version, S.denylist.c.created))}
        beats = {r.id: r.status for r in c.execute(select(S.devices.c.id, S.devices.c.status))}
    devs = ops.list_devices(eng)
    n = 0
    for d in devs:
        a = []
        try:
            hb = json.loads(beats.get(d["id"]) or "{}")
        except ValueError:
            hb = {}
        if not isinstance(hb, dict):
            hb = {}
        if d["active"]:
            if not d["last_seen"] or t - d["last_seen"] > OFFLINE_S:
                a.append({"kind": "offline", "since": d["last_seen"]})
            rd = hb.get("rd") or {}
            if rd.get("ok") == 0:
                a.append({"kind": "reader_down", "errors": rd.get("err", 0)})
            elif d["reader_faults"]:
                a.append({"kind": "reader_faults", "errors": d["reader_faults"]})
            old = hb.get("old", -1)
            if (d["backlog"] or 0) > BACKLOG_MAX or (isinstance(old, int) and old > BACKLOG_AGE_S):
                a.append({"kind": "backlog", "taps": d["backlog"], "oldest_s": old})
            if d["dl_behind"] and dl is not None:
                # behind since the first version it lacks was published
                first = created.get((d["dl_ver"] or 0) + 1, dl.created)
                if t - first > DL_GRACE_S:
                    a.append({"kind": "denylist_behind", "versions": d["dl_behind"], "since": first})
        d["alerts"] = a
        n += len(a)
    return {"now": t, "devices": devs, "alerts": n,
            "thresholds": {"offline_s": OFFLINE_S, "backlog": BACKLOG_MAX, "backlog_age_s": BACKLOG_AGE_S,
                           "denylist_grace_s": DL_GRACE_S}}


# --- card lookup ------------------------------------------------------------------
# Taps carry the keyed token of the card identification code (卡识别码). A
# card number or a citizen ID reaches that code through the card registry
# (registry.py); a citizen ID names a holder, whose newest card is shown.

def registry_token(eng, card_no=None, citizen_id=None, card_id=None):
    """-> (token bytes, how it was resolved); OpError 404 when the registry
    has no such card."""
    for by, v in (("card_id", card_id), ("card_no", card_no), ("citizen_id", citizen_id)):
        if v:
            return registry.resolve(eng, by, v, every=True)[0], by
    raise OpError("give a card number, a citizen ID or a card identification code")


def lookup(eng, card_no=None, citizen_id=None, card_id=None, token=None, limit=200):
    """A card's status, arrears and pseudonymous tap history (newest first).
    The identity typed is tokenized and never stored or returned."""
    if token:
        tok, how = ops.parse_token(token), "token"
    else:
        tok, how = registry_token(eng, card_no=card_no, citizen_id=citizen_id, card_id=card_id)
    with readonly(eng).connect() as c:
        st = c.execute(select(S.card_status).where(S.card_status.c.token == tok)).first()
        names = {r.id: r.name for r in c.execute(select(S.devices.c.id, S.devices.c.name))}
        taps = c.execute(select(S.taps.c.device, S.taps.c.seq, S.taps.c.t.label("at"), S.taps.c.day, S.taps.c.outcome,
                                S.taps.c.reason, S.taps.c.fare, S.taps.c.concession, S.taps.c.entry,
                                S.charges.c.charged)
                         .select_from(S.taps.outerjoin(S.charges, (S.charges.c.day == S.taps.c.day)
                                                       & (S.charges.c.device == S.taps.c.device)
                                                       & (S.charges.c.seq == S.taps.c.seq)))
                         .where(S.taps.c.token == tok).order_by(S.taps.c.t.desc()).limit(limit)).all()
        ent = c.execute(select(S.entitlements).where(S.entitlements.c.token == tok)).first()
    arr = collect.arrears(eng, tok.hex())
    return {"token": tok.hex(), "resolved_by": how,
            "status": st.status if st else "normal", "since": st.since if st else None,
            "entitlement": {"concession": ent.concession, "flags": ent.flags} if ent else None,
            "registry": registry.card(eng, tok),
            "arrears": arr[0] if arr else None,
            "history": ops.card_history(eng, tok.hex()),
            "taps": [{"device": names.get(r.device, str(r.device)), "seq": r.seq, "t": r.at, "day": r.day,
                      "outcome": OUTCOMES[r.outcome] if 0 <= r.outcome < 3 else str(r.outcome),
                      "reason": REASONS.get(r.reason, str(r.reason)), "fare": r.fare, "charged": r.charged,
                      "concession": r.concession, "entry": r.entry} for r in taps]}
