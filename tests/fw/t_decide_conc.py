# Concessions on every board kind: age bands from the birth date, the
# entitlement list (disabled, military care, soldiers, fire and rescue),
# companions, daily free-ride limits.
from t_decide_kit import Rig, card, check, tok, BOARDS, NOW, at
from ykt import taprec as T
from ykt.rules import fares as F
from ykt import outcome as O

FULL = {"bus_validator": 200, "ferry_validator": 12000, "turnstile": 5500}

# (label, birth date, concession, fare as a function of the full fare)
AGES = (
    ("child 5", 20210101, T.C_CHILD, lambda f: 0),
    ("adult 59", 19661127, T.C_NONE, lambda f: f),
    ("turns 60 today", 19661126, T.C_ELDERLY_HALF, lambda f: f // 2),
    ("64", 19620101, T.C_ELDERLY_HALF, lambda f: f // 2),
    ("65 tomorrow", 19611127, T.C_ELDERLY_HALF, lambda f: f // 2),
    ("65", 19611126, T.C_ELDERLY_FREE, lambda f: 0),
    ("90", 19360101, T.C_ELDERLY_FREE, lambda f: 0),
    ("no birth date", 0, T.C_NONE, lambda f: f),
)


def test_age_bands_each_board():
    for b in BOARDS:
        r = Rig(b)
        for label, birth, conc, fare in AGES:
            t = r.tap_card(card(birth=birth))
            want = fare(FULL[b])
            reason = T.R_CONCESSION if conc else T.R_OK
            check(t, T.OUT_ACCEPT, reason, want, conc, "%s/%s" % (b, label))
            assert r.fb == (O.FB_CONCESSION if conc else O.FB_ACCEPT), (b, label)


CATS = (T.C_DISABLED, T.C_MILITARY_CARE, T.C_SOLDIER, T.C_FIRE_RESCUE)


def test_entitlements_each_board():
    for b in BOARDS:
        cards = [card() for _ in CATS]
        other = card()
        r = Rig(b, ents=[(bytes(tok(c)), cat, 0) for c, cat in zip(cards, CATS)])
        for c, cat in zip(cards, CATS):
            check(r.tap_card(c), T.OUT_ACCEPT, T.R_CONCESSION, 0, cat, "%s/%d" % (b, cat))
            assert r.key == "concession"
        check(r.tap_card(other), T.OUT_ACCEPT, T.R_OK, FULL[b], T.C_NONE, b)


def test_half_price_category_and_best_of():
    c = card(birth=19500101)   # 76 and disabled: the cheaper rule wins
    cats = ((T.C_DISABLED, F.A_HALF, F.D_ALL, 0, 0),)
    r = Rig("bus_validator", cats=cats, ents=[(bytes(tok(c)), T.C_DISABLED, 0)])
    check(r.tap_card(c), T.OUT_ACCEPT, T.R_CONCESSION, 0, T.C_ELDERLY_FREE)
    c2 = card(birth=19800101)
    r = Rig("bus_validator", cats=cats, ents=[(bytes(tok(c2)), T.C_DISABLED, 0)])
    check(r.tap_card(c2), T.OUT_ACCEPT, T.R_CONCESSION, 100, T.C_DISABLED)


def test_age_rule_on_nonholidays_only():
    ages = ((60, 64, F.A_FREE, T.C_ELDERLY_HALF, F.D_WEEKDAY | F.D_WEEKEND, 0, 0),
            (60, 64, F.A_HALF, T.C_ELDERLY_HALF, F.D_ALL, 0, 0))
    r = Rig("turnstile", ages=ages, hols=((20261001, 20261007),))
    check(r.tap_card(card(birth=19640101)), T.OUT_ACCEPT, T.R_CONCESSION, 0)
    check(r.tap_card(card(birth=19640101), now=at(20261002)), T.OUT_ACCEPT, T.R_CONCESSION, 2750)


def test_companion_each_board():
    """The holder's own second tap in the window admits the companion; the
    next different card never does (the stranger behind in the queue)."""
    for b in BOARDS:
        holder = card()
        r = Rig(b, companion=30, ents=[(bytes(tok(holder)), T.C_DISABLED, F.E_COMPANION)])
        check(r.tap_card(holder), T.OUT_ACCEPT, T.R_CONCESSION, 0, T.C_DISABLED, b)
        t = r.tap_card(card(), now=NOW + 5)          # a stranger right behind: pays
        check(t, T.OUT_ACCEPT, T.R_OK, FULL[b], T.C_NONE, b)
        assert not t.flags & T.F_COMPANION
        t = r.tap_card(holder, now=NOW + 10)         # the holder again: the companion rides
        check(t, T.OUT_ACCEPT, T.R_CONCESSION, 0, T.C_DISABLED_COMPANION, b)
        assert t.flags & T.F_COMPANION and bytes(t.token) == bytes(tok(holder))
        assert r.fb == O.FB_CONCESSION
        t = r.tap_card(holder, now=NOW + 12)         # one companion per holder tap: a double tap now
        assert t.concession != T.C_DISABLED_COMPANION and not t.flags & T.F_COMPANION, b
        # too late: the window closed
        r.tap_card(holder, now=NOW + 1000)
        t = r.tap_card(holder, now=NOW + 1031)
        assert t.concession != T.C_DISABLED_COMPANION and not t.flags & T.F_COMPANION, b


def test_companion_window_and_staff_button():
    holder = card()
    r = Rig("turnstile", companion=30, ents=[(bytes(tok(holder)), T.C_DISABLED, F.E_COMPANION)])
    assert not r.d.companion_open(NOW)
    r.tap_card(holder)
    assert r.d.companion_open(NOW + 30) and not r.d.companion_open(NOW + 31)
    holder_tok = bytes(r.tap.token)
    t = T.Tap()
    rv = r.d.staff_companion(NOW + 20, True, t)      # the staff's button at the gate
    assert O.kind_of(rv) == O.FB_CONCESSION and t.concession == T.C_DISABLED_COMPANION and t.fare == 0
    assert t.flags & T.F_COMPANION and bytes(t.token) == holder_tok and t.entry == 5101 and t.time == NOW + 20
    assert not r.d.companion_open(NOW + 21)          # one per window
    assert r.d.staff_companion(NOW + 22, True, T.Tap()) is None
    # a holder without the companion flag opens no window
    other = card()
    r = Rig("turnstile", companion=30, ents=[(bytes(tok(other)), T.C_DISABLED, 0)])
    r.tap_card(other)
    assert not r.d.companion_open(NOW + 1)


def test_daily_limit_full_fare():
    c = card(birth=19500101)
    r = Rig("bus_validator", daily_free=2, daily_act=F.DL_FULL)
    check(r.tap_card(c), T.OUT_ACCEPT, T.R_CONCESSION, 0)
    check(r.tap_card(c, now=NOW + 100), T.OUT_ACCEPT, T.R_CONCESSION, 0)
    t = r.tap_card(c, now=NOW + 200)
    check(t, T.OUT_ACCEPT, T.R_DAILY_LIMIT, 200, T.C_NONE)
    assert r.key == "daily_limit" and r.fb == O.FB_ACCEPT
    # next local day: a fresh allowance (local midnight, UTC+8)
    check(r.tap_card(c, now=at(20261127, 0, 1)), T.OUT_ACCEPT, T.R_CONCESSION, 0)


def test_daily_limit_deny_each_board():
    for b in BOARDS:
        c = card(birth=19500101)
        r = Rig(b, daily_free=1, daily_act=F.DL_DENY, passback=0)
        check(r.tap_card(c), T.OUT_ACCEPT, T.R_CONCESSION, 0, label=b)
        if b == "ferry_validator":
            r.d.stop = 2
            check(r.tap_card(c, now=NOW + 900), T.OUT_ACCEPT, T.R_EXIT, label=b)  # exits don't count
            r.d.stop = 1
        t = r.tap_card(c, now=NOW + 1000)
        check(t, T.OUT_DENY, T.R_DAILY_LIMIT, label=b)
        assert r.fb == O.FB_DENY


def test_ferry_exit_fare_gets_concession():
    r = Rig("ferry_validator")
    c = card(birth=19620101)   # 64: half
    check(r.tap_card(c), T.OUT_ACCEPT, T.R_CONCESSION, 6000, T.C_ELDERLY_HALF)
    r.d.stop = 2
    t = r.tap_card(c, now=NOW + 600)
    check(t, T.OUT_ACCEPT, T.R_EXIT, 500, T.C_ELDERLY_HALF)
    assert r.fb == O.FB_CONCESSION
