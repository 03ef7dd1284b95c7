"""One QR code used on two devices (docs/qr.md, "Back office").

A device refuses a nonce it has seen (its replay cache), but a screenshot
can be shown at the next turnstile. The tap record does not carry the QR
nonce (36 fixed bytes, shared format): it carries the holder's card token,
the F_QR flag and the device time. A token is accepted only inside
[iat - tol, iat + valid + tol], so every acceptance of one code falls within
SPREAD_S = 60 + 2 x 20 s of the others. Two accepted QR taps of the same
holder on two different devices closer than the spread are therefore
flagged: the same code twice, or two codes of one phone used by two people
(the app shows one code at a time). Refusals for replay (R_QR_REPLAY) of
the holder are listed as supporting evidence."""
from sqlalchemy import select

from ykt import taprec
from ykt_tools.backoffice import schema as S

SPREAD_S = 60 + 2 * 20     # longest validity + the device clock tolerance on both sides


def flag_reuse(eng, day, spread_s=SPREAD_S):
    """-> [{"token", "device_a", "seq_a", "t_a", "device_b", "seq_b", "t_b", "dt", "replays"}]
    for the service day YYYYMMDD, one row per suspicious pair (in time order)."""
    F = S.taps.c.flags.op("&")(taprec.F_QR) != 0
    with eng.connect() as c:
        rows = c.execute(select(S.taps.c.token, S.taps.c.device, S.taps.c.seq, S.taps.c.t, S.taps.c.outcome,
                                S.taps.c.reason)
                         .where(S.taps.c.day == day, F)
                         .order_by(S.taps.c.token, S.taps.c.t, S.taps.c.device, S.taps.c.seq)).all()
    by = {}
    replays = {}
    for token, dev, seq, t, outcome, reason in rows:   # (Row.t is SQLAlchemy's tuple accessor)
        tok = bytes(token)
        if outcome == taprec.OUT_ACCEPT:
            by.setdefault(tok, []).append((t, dev, seq))
        elif reason == taprec.R_QR_REPLAY and tok != bytes(8):
            replays[tok] = replays.get(tok, 0) + 1
    out = []
    for tok, taps in by.items():
        for i in range(len(taps)):
            ti, di, si = taps[i]
            for j in range(i + 1, len(taps)):
                tj, dj, sj = taps[j]
                if tj - ti > spread_s:
                    break
                if dj != di:
                    out.append({"token": tok.hex(), "device_a": di, "seq_a": si, "t_a": ti,
                                "device_b": dj, "seq_b": sj, "t_b": tj, "dt": tj - ti,
                                "replays": replays.get(tok, 0)})
    out.sort(key=lambda f: (f["t_a"], f["token"]))
    return out
