# Driver shifts: a driver's staff card (entitlement flag E_STAFF) signs a
# shift on at a bus validator and off again; every tap in between carries the
# shift (taprec.shift = the seq of the sign-on tap), across a reset too.
# Portable.
import vclock
import t_decide_kit as DK
from ykt import outcome as O
from ykt import taprec as T
from ykt.rules import fares as F


def setup():
    vclock.reset()


def _staff_rig(board="bus_validator", deny=None):
    a = DK.card(birth=19800101)
    b = DK.card(birth=19810101)
    ents = [(DK.tok(a), 0, F.E_STAFF), (DK.tok(b), 0, F.E_STAFF)]
    return DK.Rig(board, ents=ents, deny=deny), a, b


def _commit(r, seq):
    """What the app does once the tap is on flash."""
    t = r.tap
    t.seq = seq
    if t.reason == T.R_SHIFT_ON:
        t.shift = seq
    r.d.shift_done(t)
    return t


def test_sign_on_rides_sign_off():
    r, driver, other = _staff_rig()
    rider = DK.card(birth=19900101)
    t = r.tap_card(driver)
    DK.check(t, T.OUT_ACCEPT, T.R_SHIFT_ON, fare=0, conc=T.C_NONE, label="sign on")
    assert r.fb == O.FB_ACCEPT and r.key == "shift_on"
    _commit(r, 100)
    assert r.d.shift == 100 and bytes(r.d.shift_tok) == DK.tok(driver)
    t = r.tap_card(rider, now=DK.NOW + 60)
    DK.check(t, T.OUT_ACCEPT, T.R_OK, fare=200, label="rider")
    assert t.shift == 100
    _commit(r, 101)
    # another driver takes over: a new shift, named by its own sign-on tap
    t = r.tap_card(other, now=DK.NOW + 120)
    assert t.reason == T.R_SHIFT_ON and t.shift == 100
    _commit(r, 102)
    assert r.d.shift == 102 and bytes(r.d.shift_tok) == DK.tok(other)
    t = r.tap_card(other, now=DK.NOW + 180)
    DK.check(t, T.OUT_ACCEPT, T.R_SHIFT_OFF, fare=0, label="sign off")
    assert t.shift == 102 and r.key == "shift_off"
    _commit(r, 103)
    assert r.d.shift == 0
    t = r.tap_card(rider, now=DK.NOW + 240)
    assert t.shift == 0 and t.reason == T.R_OK


def test_a_refused_or_unflashed_shift_tap_changes_nothing():
    r, driver, _ = _staff_rig(deny={})
    r.deny.d[DK.tok(driver)] = 1           # the staff card reported lost
    t = r.tap_card(driver)
    assert t.outcome == T.OUT_DENY and t.reason == T.R_DENY_LOST
    assert not r.d.shift_done(t) and r.d.shift == 0
    r.deny.d.clear()
    t = r.tap_card(driver)
    assert t.reason == T.R_SHIFT_ON
    # the app never calls shift_done when the journal refused the tap
    assert r.d.shift == 0


def test_staff_cards_ride_elsewhere_like_anyone():
    r, driver, _ = _staff_rig("turnstile")
    t = r.tap_card(driver)
    assert t.outcome == T.OUT_ACCEPT and t.reason == T.R_OK and t.fare == 5500 and t.shift == 0


def _bus_world():
    import os
    import sys
    from vhw.world import World

    # File-backed flash on MicroPython: a RAM-backed chip's blocks (4 KiB each
    # touched) would count against the board's heap budget (vhw/flash.py).
    fp = None
    if sys.implementation.name == "micropython":
        fp = "/tmp/ykt-t_shift-%s.img" % "".join("%02x" % b for b in os.urandom(4))
    w = World("bus_validator", flash_path=fp)
    w.write_json("data/profile.json", {"device": "T-BUS", "entry": 301, "stop": 3, "direction": 1,
                                       "board": "bus_validator"})
    w.write("data/catalog.bin", DK.catalog_bin())
    w.write("data/fares.bin", DK.fare_table(301, double_tap=0))
    return w


def test_the_app_names_the_shift_and_keeps_it_across_a_reset():
    from vhw import rfcards
    from ykt.net import timesync

    drv = dict(region=450100, card_id="450100D15600000520190101005A0001", card_no="S00000001",
               birth=19800101, uid="5A000001")
    rid = dict(region=450100, card_id="450100D15600000520190101005B0002", card_no="S00000002",
               birth=19900101, uid="5B000002")
    w = _bus_world()
    from ykt.sec.token import card_token

    import binascii

    w.write("data/ents.bin", DK.ent_bin([(card_token(DK.KEY, binascii.unhexlify(drv["card_id"])), 0,
                                          F.E_STAFF)]))
    w.nvs_set("tok_key", DK.KEY)
    app = w.boot()
    assert app.decider is not None and app.decider.entitlements is not None, app.report
    taps = []
    app.on_event = lambda tap, kind, msg: taps.append(T.unpack_from(T.pack(tap)))

    def tap(spec):
        app.clock.update(DK.NOW, timesync.TRUST_AUTH)
        w.field.present(rfcards.make_ssc(**spec), after_us=100000, for_us=300000)
        app.run(1500)

    tap(drv)
    tap(rid)
    on, ride = taps
    assert on.reason == T.R_SHIFT_ON and on.shift == on.seq and on.fare == 0
    assert ride.reason == T.R_OK and ride.shift == on.seq and ride.fare == 200
    # the journal holds the shift in each record
    recs = app.journal.pending(10)
    assert [(x.seq, x.shift) for x in recs] == [(on.seq, on.seq), (ride.seq, on.seq)]
    app = None                          # RAM is gone at a reset: nothing of the old App stays
    app = w.reboot("power")
    assert app.decider.shift == on.seq and "shift" in app.report["found"], app.report
    app.on_event = lambda tap, kind, msg: taps.append(T.unpack_from(T.pack(tap)))
    tap(rid)
    tap(drv)
    again, off = taps[2:]
    assert again.shift == on.seq and off.reason == T.R_SHIFT_OFF and off.shift == on.seq
    assert app.decider.shift == 0
    # what the next boot will read (a second reboot in this interpreter would
    # measure heap fragmentation, not the device: a reset starts a new heap)
    import struct

    with open(w.path("data/shift.bin"), "rb") as f:
        b = f.read()
    assert b[0:4] == b"YKSH" and struct.unpack_from("<I", b, 4)[0] == 0
