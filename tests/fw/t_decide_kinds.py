# Rules that belong to one kind of service: double tap and the transfer
# window on a bus, tap-in/tap-out and stages on a ferry, anti-passback, exit
# and the green channel at turnstiles, free identity entry at a museum.
from t_decide_kit import Rig, card, check, NOW, at
from ykt import taprec as T
from ykt.rules import fares as F
from ykt import outcome as O


def test_bus_double_tap():
    r = Rig("bus_validator")
    c = card()
    check(r.tap_card(c), T.OUT_ACCEPT, T.R_OK, 200)
    t = r.tap_card(c, now=NOW + 29)
    check(t, T.OUT_ACCEPT, T.R_ALREADY_PAID, 0)   # no second fare
    assert r.fb == O.FB_ALREADY and r.key == "already_paid"
    check(r.tap_card(c, now=NOW + 29), T.OUT_ACCEPT, T.R_ALREADY_PAID, 0)
    # another rider right after is not affected
    check(r.tap_card(card(), now=NOW + 30), T.OUT_ACCEPT, T.R_OK, 200)


def test_bus_transfer_same_vehicle_excluded_by_default():
    r = Rig("bus_validator", transfer=3600, tact=F.A_FREE)
    c = card()
    check(r.tap_card(c), T.OUT_ACCEPT, T.R_OK, 200)
    check(r.tap_card(c, now=NOW + 1800), T.OUT_ACCEPT, T.R_OK, 200)   # same vehicle: pays again


def test_bus_transfer_window():
    sv = F.FL_XFER_SAME_VEHICLE
    r = Rig("bus_validator", transfer=3600, tact=F.A_FREE, flags=sv)
    c = card()
    check(r.tap_card(c), T.OUT_ACCEPT, T.R_OK, 200)
    t = r.tap_card(c, now=NOW + 1800)
    check(t, T.OUT_ACCEPT, T.R_TRANSFER, 0)
    assert r.fb == O.FB_CONCESSION and r.key == "transfer"
    check(r.tap_card(c, now=NOW + 3599), T.OUT_ACCEPT, T.R_TRANSFER, 0)  # window from the first ride
    check(r.tap_card(c, now=NOW + 3640), T.OUT_ACCEPT, T.R_OK, 200)     # window over: full, new window
    check(r.tap_card(c, now=NOW + 3700), T.OUT_ACCEPT, T.R_TRANSFER, 0)
    r = Rig("bus_validator", transfer=3600, tact=F.A_MINUS, tval=100, flags=sv)   # discounted transfer
    check(r.tap_card(c), T.OUT_ACCEPT, T.R_OK, 200)
    check(r.tap_card(c, now=NOW + 600), T.OUT_ACCEPT, T.R_TRANSFER, 100)


def test_bus_time_band_and_holiday():
    bands = ((360, 420, F.D_WEEKDAY | F.D_WEEKEND, F.A_FARE, 100),)
    r = Rig("bus_validator", bands=bands, hols=((20261001, 20261007),), work=(20260927,))
    check(r.tap_card(card(), now=at(20261126, 6, 30)), T.OUT_ACCEPT, T.R_OK, 100)  # early bird
    check(r.tap_card(card(), now=at(20261126, 7, 0)), T.OUT_ACCEPT, T.R_OK, 200)   # band ends at 07:00
    check(r.tap_card(card(), now=at(20261003, 6, 30)), T.OUT_ACCEPT, T.R_OK, 200)  # holiday: no band
    check(r.tap_card(card(), now=at(20261128, 6, 30)), T.OUT_ACCEPT, T.R_OK, 100)  # Saturday
    bands = ((0, 1440, F.D_WEEKEND, F.A_PCT, 50),)
    r = Rig("bus_validator", bands=bands, work=(20260927,))
    check(r.tap_card(card(), now=at(20261129)), T.OUT_ACCEPT, T.R_OK, 100)   # Sunday
    check(r.tap_card(card(), now=at(20260927)), T.OUT_ACCEPT, T.R_OK, 200)   # make-up workday


def test_ferry_tap_in_tap_out():
    r = Rig("ferry_validator")
    c = card()
    t = r.tap_card(c)
    check(t, T.OUT_ACCEPT, T.R_OK, 12000)       # provisional: highest fare from pier 1
    assert t.direction == 3
    check(r.tap_card(c, now=NOW + 20), T.OUT_ACCEPT, T.R_ALREADY_PAID, 0)  # same pier, double tap
    r.d.stop = 2                                 # the validator at pier 2 (same line, shared memory in test)
    t = r.tap_card(c, now=NOW + 1800)
    check(t, T.OUT_ACCEPT, T.R_EXIT, 1000)
    assert t.direction == 4 and t.stage == 1 and r.key == "exit"
    t = r.tap_card(c, now=NOW + 1900)            # a new trip starts at pier 2
    check(t, T.OUT_ACCEPT, T.R_OK, 11000)
    assert t.direction == 3


def test_ferry_stale_tap_in_forgotten():
    r = Rig("ferry_validator", trip_max=3600)
    c = card()
    r.tap_card(c)
    r.d.stop = 3
    t = r.tap_card(c, now=NOW + 3600)            # tap-in too old: this is a new tap-in
    check(t, T.OUT_ACCEPT, T.R_OK, 12000)
    assert t.direction == 3


def test_ferry_stage_mode():
    r = Rig("ferry_validator", profile={"ferry_mode": "stage"})
    r.d.stage = 3                                # chosen on the device's keypad
    t = r.tap_card(card())
    check(t, T.OUT_ACCEPT, T.R_OK, 12000)
    assert t.stage == 3
    r.d.stage = 2
    check(r.tap_card(card()), T.OUT_ACCEPT, T.R_OK, 1000)
    r.d.stage = 0                                # none chosen: highest fare, provisional
    check(r.tap_card(card()), T.OUT_ACCEPT, T.R_OK, 12000)


def test_turnstile_passback_and_exit():
    r = Rig("turnstile")
    c = card()
    check(r.tap_card(c), T.OUT_ACCEPT, T.R_OK, 5500)
    t = r.tap_card(c, now=NOW + 60)
    check(t, T.OUT_DENY, T.R_PASSBACK)
    assert r.fb == O.FB_DENY and r.key == "passback"
    check(r.tap_card(c, now=NOW + 599), T.OUT_DENY, T.R_PASSBACK)
    check(r.tap_card(c, now=NOW + 600), T.OUT_ACCEPT, T.R_OK, 5500)     # window over
    # exit gate clears the entry: re-entry is allowed at once
    ex = Rig("turnstile", profile={"direction": 4})
    ex.recent = r.recent
    ex.d.recent = r.recent
    t = ex.tap_card(c, now=NOW + 700)
    check(t, T.OUT_ACCEPT, T.R_EXIT, 0)
    check(r.tap_card(c, now=NOW + 710), T.OUT_ACCEPT, T.R_OK, 5500)


def test_turnstile_holiday_price():
    r = Rig("turnstile", bands=((0, 1440, F.D_HOLIDAY, F.A_FARE, 7000),), hols=((20261001, 20261007),))
    check(r.tap_card(card(), now=at(20261002)), T.OUT_ACCEPT, T.R_OK, 7000)
    check(r.tap_card(card(), now=at(20261008)), T.OUT_ACCEPT, T.R_OK, 5500)


def test_museum_identity_entry():
    r = Rig("museum")
    c = card()
    t = r.tap_card(c)
    check(t, T.OUT_ACCEPT, T.R_IDENTITY_ENTRY, 0, T.C_NONE)
    assert r.fb == O.FB_ACCEPT and r.key == "identity"
    check(r.tap_card(c, now=NOW + 60), T.OUT_DENY, T.R_PASSBACK)
    # a museum works without a fare table: identity entry, no passback
    r = Rig("museum")
    r.d.fares = None
    check(r.tap_card(card()), T.OUT_ACCEPT, T.R_IDENTITY_ENTRY, 0)
    assert r.tap.fare_ver == 0


def test_green_channel_at_gates():
    from t_decide_kit import tok
    c = card()
    r = Rig("turnstile", ents=[(bytes(tok(c)), T.C_DISABLED, F.E_GREEN)])
    t = r.tap_card(c)
    check(t, T.OUT_ACCEPT, T.R_GREEN_CHANNEL, 0, T.C_DISABLED)
    assert r.fb == O.FB_GREEN and r.key == "green"
    r = Rig("turnstile", green_age=65)
    check(r.tap_card(card(birth=19500101)), T.OUT_ACCEPT, T.R_GREEN_CHANNEL, 0, T.C_ELDERLY_FREE)
    check(r.tap_card(card(birth=19700101)), T.OUT_ACCEPT, T.R_OK, 5500, T.C_NONE)
    r = Rig("museum", green_age=65)
    check(r.tap_card(card(birth=19500101)), T.OUT_ACCEPT, T.R_GREEN_CHANNEL, 0)
    # on a bus the green flag only prices the ride: there is no gate
    c = card()
    r = Rig("bus_validator", ents=[(bytes(tok(c)), T.C_DISABLED, F.E_GREEN)])
    check(r.tap_card(c), T.OUT_ACCEPT, T.R_CONCESSION, 0, T.C_DISABLED)
    assert r.fb == O.FB_CONCESSION


def test_recent_memory_bounded():
    r = Rig("bus_validator", cap=16)
    cards = [card() for _ in range(40)]
    for i, c in enumerate(cards):
        r.tap_card(c, now=NOW + i)
    assert r.recent.count() <= 16 and r.recent.evictions >= 24
    # the most recent rider is still remembered
    check(r.tap_card(cards[-1], now=NOW + 45), T.OUT_ACCEPT, T.R_ALREADY_PAID, 0)
