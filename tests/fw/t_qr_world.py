# End to end on the virtual turnstile (vhw.world): the QR scanner module on
# UART2 at 9600 baud, the firmware's App polling it, decide -> journal ->
# feedback. The app wires the verifier after boot (qr.verifier = ...); this
# test does the same wiring by hand.
import os
import sys

import vclock
from vhw.world import World

from ykt import taprec as T
from ykt.qr import qrtoken as Q
from ykt.net import timesync
import t_qr_kit as K
import t_decide_kit as DK


def _world():
    # File-backed flash on MicroPython: a RAM-backed chip's blocks (4 KiB each
    # touched) would count against the board's heap budget (vhw/flash.py).
    fp = None
    if sys.implementation.name == "micropython":
        fp = "/tmp/ykt-t_qr_world-%s.img" % "".join("%02x" % b for b in os.urandom(4))
        try:
            os.remove(fp)
        except OSError:
            pass
    w = World("turnstile", flash_path=fp)
    w.write_json("data/profile.json", {"device": "T-GATE", "entry": 5101, "stop": 1, "direction": 3,
                                       "board": "turnstile"})
    w.write("data/catalog.bin", DK.catalog_bin())
    w.write("data/fares.bin", DK.fare_table(entry=5101, mode=DK.F.MODE_SCENIC, base=5500, double_tap=0,
                                            passback=600))
    w.nvs_set("tok_key", DK.KEY)
    app = w.boot()
    assert app.qr is not None and w.qr is not None and app.decider is not None, app.report
    events = []
    app.on_event = lambda tap, kind, msg: events.append((tap.outcome, tap.reason, tap.flags, bytes(tap.token), kind))
    return w, app, events


def test_turnstile_qr_end_to_end():
    w, app, events = _world()
    seq0 = app.journal.next_seq
    # no verifier yet (keys not loaded): refused with its reason, recorded
    w.qr.scan(K.text(K.mint(iat=app.clock.now())))
    app.run(800)
    assert [(e[0], e[1]) for e in events] == [(T.OUT_DENY, T.R_QR_UNKNOWN_KEY)], events
    app.clock.update(app.clock.now(), timesync.TRUST_AUTH)
    app.clock.uptime_s += 3600        # long after boot: the boot guard is not in play
    app.qr.verifier = Q.Verifier(K.ring(), app.clock)
    del events[:]
    now = app.clock.now()
    text = K.text(K.mint(iat=now))
    w.qr.scan(text)
    app.run(800)
    assert len(events) == 1, events
    out, reason, flags, tok, kind = events[0]
    assert out == T.OUT_ACCEPT and reason == T.R_OK and flags & T.F_QR and tok == K.HOLDER, events
    w.qr.scan_at(5000000, text)        # the screenshot, 5 s later
    app.run(6000)
    assert [(e[0], e[1]) for e in events[1:]] == [(T.OUT_DENY, T.R_QR_REPLAY)], events
    w.qr.garbage(64, seed=5)
    app.run(1000)
    assert len(events) == 2
    assert app.journal.next_seq - seq0 == 3, (app.errors, app.journal.next_seq, seq0)   # every QR tap, refused or not, is on flash
