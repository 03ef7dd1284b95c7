# Table-driven rules that hold on every board kind (bus validator, ferry
# validator, turnstile): read errors, clones, deny list, dates, region,
# configuration, no trusted time. Portable: CPython and MicroPython.
from t_decide_kit import Rig, card, tok, check, BOARDS, NOW, at, KEY
from ykt import taprec as T
from ykt import cardread as CR
from ykt.rules import decide as D
from ykt import outcome as O
from ykt.sec.token import card_token


def test_plain_accept_each_board():
    want = {"bus_validator": (T.R_OK, 200, O.FB_ACCEPT, "ok"),
            "ferry_validator": (T.R_OK, 12000, O.FB_ACCEPT, "ok"),   # tap-in: highest fare from pier 1
            "turnstile": (T.R_OK, 5500, O.FB_ACCEPT, "ok")}
    for b in BOARDS:
        r = Rig(b)
        c = card()
        t = r.tap_card(c)
        reason, fare, fb, key = want[b]
        check(t, T.OUT_ACCEPT, reason, fare, T.C_NONE, b)
        assert r.fb == fb and r.key == key, b
        assert bytes(t.token) == card_token(KEY, c.card_id), b
        assert t.entry == r.profile.entry and t.stop == r.profile.stop, b
        assert t.dl_ver == 9 and t.cat_ver == 4 and t.fare_ver == 1 and t.flags == 0, b
        assert t.time == NOW


# (label, card kwargs, deny status, outcome, reason, feedback, text key)
RULES = (
    ("lost", {}, 1, T.OUT_DENY, T.R_DENY_LOST, O.FB_DENY, "deny_lost"),
    ("suspended", {}, 2, T.OUT_DENY, T.R_DENY_SUSPENDED, O.FB_DENY, "deny_suspended"),
    ("cancelled", {}, 3, T.OUT_DENY, T.R_DENY_CANCELLED, O.FB_DENY, "deny_cancelled"),
    ("replaced", {}, 4, T.OUT_DENY, T.R_DENY_REPLACED, O.FB_DENY, "deny_replaced"),
    ("expired", {"expiry": 20261125}, 0, T.OUT_DENY, T.R_EXPIRED, O.FB_DENY, "expired"),
    ("expires today", {"expiry": 20261126}, 0, T.OUT_ACCEPT, T.R_OK, O.FB_ACCEPT, "ok"),
    ("not yet valid", {"issue": 20261127}, 0, T.OUT_DENY, T.R_NOT_YET_VALID, O.FB_DENY, "not_yet_valid"),
    ("foreign region", {"region": 530100}, 0, T.OUT_DENY, T.R_REGION, O.FB_DENY, "region"),
    ("uid only", {"kind": CR.KIND_UID_ONLY}, 0, T.OUT_DENY, T.R_UNSUPPORTED, O.FB_DENY, "unsupported"),
    ("no ssc app", {"error": CR.ERR_UNKNOWN_APP}, 0, T.OUT_DENY, T.R_UNSUPPORTED, O.FB_DENY, "unsupported"),
    ("removed", {"error": CR.ERR_REMOVED}, 0, T.OUT_ERROR, T.R_READ_FAILED, O.FB_ERROR, "read_failed"),
    ("timeout", {"error": CR.ERR_TIMEOUT}, 0, T.OUT_ERROR, T.R_READ_FAILED, O.FB_ERROR, "read_failed"),
    ("malformed", {"error": CR.ERR_MALFORMED}, 0, T.OUT_ERROR, T.R_READ_FAILED, O.FB_ERROR, "read_failed"),
    ("reader", {"error": CR.ERR_READER}, 0, T.OUT_ERROR, T.R_READER_FAULT, O.FB_FAULT, "reader_fault"),
)


def test_rules_each_board():
    for b in BOARDS:
        for label, kw, status, outcome, reason, fb, key in RULES:
            c = card(**kw)
            r = Rig(b, deny={bytes(tok(c)): status} if status else None)
            t = r.tap_card(c)
            check(t, outcome, reason, label="%s/%s" % (b, label))
            assert r.fb == fb and r.key == key, (b, label, r.fb, r.key)
            if outcome == T.OUT_DENY and status:
                assert bytes(t.token) == bytes(tok(c))  # a denied tap is recorded in full
            if outcome == T.OUT_ERROR:
                assert bytes(t.token) == bytes(8)       # no identity from a failed read
            if reason == T.R_UNSUPPORTED:
                assert t.flags & T.F_UID_ONLY and bytes(t.token) != bytes(8)


def test_region_patterns():
    # entry 301 takes "45" (all Guangxi); 4101 (library) only Nanning "4501"; 820 adds 440100 exact
    r = Rig("bus_validator")
    for region, ok in ((450100, True), (451400, True), (450000, True), (440100, False), (0, False)):
        t = r.tap_card(card(region=region))
        assert (t.reason != T.R_REGION) == ok, region
    r = Rig("ferry_validator")
    for region, ok in ((440100, True), (440300, False), (450500, True)):
        t = r.tap_card(card(region=region))
        assert (t.reason != T.R_REGION) == ok, region
    r = Rig("museum", profile={"entry": 4101}, entry=4101)
    for region, ok in ((450100, True), (450200, False)):
        t = r.tap_card(card(region=region))
        assert (t.reason != T.R_REGION) == ok, region


def test_no_trusted_time_each_board():
    # No trusted clock: dates cannot be checked and no fare is invented; the
    # rider passes, the tap is flagged and the back office prices it.
    for b in BOARDS:
        r = Rig(b)
        t = r.tap_card(card(expiry=20000101, birth=19500101), now=1234, trusted=False)
        check(t, T.OUT_ACCEPT, T.R_NO_TRUSTED_TIME, 0, T.C_NONE, b)
        assert t.flags & T.F_TIME_UNTRUSTED and r.fb == O.FB_ACCEPT and r.key == "no_time"
        c = card()
        r = Rig(b, deny={bytes(tok(c)): 1})
        t = r.tap_card(c, now=1234, trusted=False)  # the deny list needs no clock
        check(t, T.OUT_DENY, T.R_DENY_LOST, label=b)


def test_not_configured_each_board():
    for b in BOARDS:
        r = Rig(b, profile={"entry": 999})   # no such catalog entry
        t = r.tap_card(card())
        check(t, T.OUT_DENY, T.R_NOT_CONFIGURED, label=b)
        assert r.fb == O.FB_FAULT
        r = Rig(b)
        r.d.fares = None                     # fare table rejected at boot
        if b != "turnstile":
            check(r.tap_card(card()), T.OUT_DENY, T.R_NOT_CONFIGURED, label=b)
        r = Rig(b)
        r.d.catalog = None
        check(r.tap_card(card()), T.OUT_DENY, T.R_NOT_CONFIGURED, label=b)


def test_wrong_table_for_entry():
    from t_decide_kit import std_fares
    r = Rig("bus_validator", fares=std_fares("turnstile"))
    check(r.tap_card(card()), T.OUT_DENY, T.R_NOT_CONFIGURED)


def test_token_matches_token_module():
    r = Rig("bus_validator")
    for n in (1, 2, 99999):
        c = card(n=n)
        t = r.tap_card(c, now=NOW + n * 100)
        assert bytes(t.token) == card_token(KEY, c.card_id)


def test_short_key_refused():
    try:
        Rig("bus_validator").d.__class__(None, None, None, None, None, None, b"short")
        raise AssertionError("accepted a short key")
    except ValueError:
        pass


def test_civil_dates():
    for ymd in (19700101, 20000229, 20261126, 20270101, 20991231):
        days = (at(ymd, 0, 0, 0)) // 86400
        assert D.civil(days) == ymd, ymd


def test_stale_deny_list_flagged():
    r = Rig("bus_validator")
    r.deny.stale = True
    t = r.tap_card(card())
    check(t, T.OUT_ACCEPT, T.R_OK, 200)
    assert t.flags & T.F_OFFLINE_LIST
