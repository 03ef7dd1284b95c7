# Voice prompts (ykt.ui.voice) against the simulated module (vhw/voicesim.py):
# the frames byte for byte for both module families (checked against the
# published examples and the simulator's own encoder), which prompt each
# decision plays, quiet-hours volume, the module's start-up and refusals, the
# order on the tap path (LED, buzzer and relay first, then one UART write)
# and that say() allocates nothing. Portable.
import binascii

import vclock
import fwtest
import t_decide_kit as DK
from ykt import outcome as O
from ykt import taprec as T
from ykt.ui import voice as V
from vhw import voicesim as VS


def setup():
    vclock.reset()


class Capture:
    """A UART that keeps what it is given in a buffer allocated up front
    (what machine.UART.write does with it is the driver's business)."""

    def __init__(self):
        self.buf = bytearray(256)
        self.n = 0
        self.writes = 0

    def write(self, b):
        n = len(b)
        for i in range(n):
            self.buf[self.n + i] = b[i]
        self.n += n
        self.writes += 1
        return n

    def take(self):
        out = bytes(self.buf[:self.n])
        self.n = 0
        return out


def _hex(b):
    return binascii.hexlify(b).decode()


CFG = (22, 8, 22 * 60, 6 * 60 + 30)   # day 22, quiet 8 from 22:00 to 06:30


def test_dfplayer_frames_byte_for_byte():
    u = Capture()
    v = V.Voice(u, "dfplayer", CFG)
    v.play(2)
    # 0 - (FF + 06 + 12 + 00 + 00 + 02) = 0xFEE7
    assert _hex(u.take()) == "7eff06120000" "02" "fee7" "ef"
    v.set_volume(22)
    assert _hex(u.take()) == "7eff06060000" "16" "fedf" "ef"
    v.play(300)
    assert _hex(u.take()) == "7eff0612" "00" "012c" "febc" "ef"
    # the simulator's encoder agrees, and so does the family's published
    # example (FF 06 03 00 00 01 -> checksum FE F7)
    assert VS.df_frame(0x12, 2) == bytes.fromhex("7eff0612000002fee7ef")
    assert VS.df_frame(0x03, 1) == bytes.fromhex("7eff06030000" "01" "fef7" "ef")


def test_jq8900_frames_byte_for_byte():
    u = Capture()
    v = V.Voice(u, "jq8900", CFG)
    v.play(8)
    assert _hex(u.take()) == "aa07020008bb"       # the manual's own example: file 8
    v.play(2)
    assert _hex(u.take()) == "aa07020002b5"
    v.set_volume(22)
    assert _hex(u.take()) == "aa130116d4"
    assert VS.jq_frame(0x07, b"\x01\xf4") == bytes.fromhex("aa070201f4a8")


def test_every_message_and_concession_has_its_prompt():
    assert len(V.MSG_TRACK) == len(O.MESSAGES)
    want = {"ok": "ordinary", "transfer": "transfer", "already_paid": "already_paid", "green": "green",
            "identity": "identity", "exit": "exit", "deny_lost": "lost", "deny_suspended": "suspended",
            "deny_cancelled": "cancelled", "deny_replaced": "replaced", "expired": "expired",
            "not_yet_valid": "not_yet_valid", "region": "region", "unsupported": "unsupported",
            "passback": "passback", "daily_limit": "daily_limit", "no_time": "no_time",
            "not_configured": "not_configured", "read_failed": "tap_again", "reader_fault": "reader_fault",
            "journal_full": "tap_again", "deny_unpaid": "unpaid", "shift_on": "shift_on",
            "shift_off": "shift_off", "concession": "ordinary", "idle": "",
            "no_transit": "unsupported", "card_locked": "unsupported", "card_blocked": "unsupported"}
    for i, m in enumerate(O.MESSAGES):
        assert V.PROMPTS[V.MSG_TRACK[i]][0] == want[m[0]], (m[0], V.MSG_TRACK[i])
    conc = {T.C_ELDERLY_HALF: "elderly", T.C_ELDERLY_FREE: "elderly", T.C_DISABLED: "disabled",
            T.C_DISABLED_COMPANION: "companion", T.C_MILITARY_CARE: "military_care", T.C_SOLDIER: "soldier",
            T.C_FIRE_RESCUE: "fire_rescue", T.C_CHILD: "child"}
    assert len(V.CONC_TRACK) == len(O.CONCESSIONS)
    for c, key in conc.items():
        assert V.PROMPTS[V.CONC_TRACK[c]][0] == key
    u = Capture()
    v = V.Voice(u, "dfplayer", CFG)
    assert v.say(O.M_CONCESSION, T.C_ELDERLY_FREE) == 2 and v.say(O.M_OK, T.C_NONE) == 1
    assert v.say(O.M_DENY_LOST, T.C_NONE) == 14 and v.say(O.M_IDLE, 0) == 0
    assert u.writes == 3     # nothing sent for "no prompt"


def test_say_allocates_nothing():
    u = Capture()
    v = V.Voice(u, "dfplayer", CFG)
    v.say(O.M_OK, 0)                    # warm up
    u.take()
    try:
        import micropython

        micropython.heap_lock
    except (ImportError, AttributeError):
        if fwtest.runtime() != "cpython":
            raise fwtest.Skip("no micropython.heap_lock on this port")
        micropython = None
    if micropython is not None:
        micropython.heap_lock()
        try:
            for _ in range(20):
                v.say(O.M_CONCESSION, T.C_DISABLED)
        finally:
            micropython.heap_unlock()
    else:
        for _ in range(20):
            v.say(O.M_CONCESSION, T.C_DISABLED)
    assert u.take() == VS.df_frame(0x12, 3) * 20


class Clock:
    def __init__(self, t, trusted=True):
        self.t = t
        self.ok = trusted

    def now(self):
        return self.t

    def trusted(self):
        return self.ok


def test_quiet_hours_follow_the_trusted_clock():
    from ykt.compat import ticks_ms

    u = Capture()
    ck = Clock(DK.at(20261126, 21, 59), trusted=False)
    v = V.Voice(u, "jq8900", CFG, tz_min=480, clock=ck)
    v.step(ticks_ms())
    assert u.n == 0                     # the module is still starting up
    vclock.advance_us(2000000)
    v.step(ticks_ms())
    assert u.take() == VS.jq_frame(0x13, b"\x16")   # untrusted: the day volume
    ck.ok = True
    v.step(ticks_ms())
    assert u.n == 0 and v.volume == 22  # 21:59 is still day
    vclock.advance_us(61000000)
    ck.t += 61
    v.step(ticks_ms())
    assert u.take() == VS.jq_frame(0x13, b"\x08") and v.volume == 8    # 22:00: quiet
    for _ in range(3):                  # nothing more until 06:30
        vclock.advance_us(3600000000)
        ck.t += 3600
        v.step(ticks_ms())
    assert u.n == 0
    vclock.advance_us((8 * 3600 + 30 * 60 - 3 * 3600) * 1000000)    # 22:00:01 + 8 h 30 min
    ck.t += 8 * 3600 + 30 * 60 - 3 * 3600
    v.step(ticks_ms())
    assert u.take() == VS.jq_frame(0x13, b"\x16")   # 06:30 local: day again


def test_simulated_module_parses_like_the_module():
    from vhw import bus

    bus.reset()
    m = VS.VoiceModuleSim("dfplayer", init_us=1000)
    m.uart_rx(VS.df_frame(0x12, 5))
    assert m.errors[-1][1] == "busy" and m.played == []
    vclock.advance_us(2000)
    good = VS.df_frame(0x12, 5)
    m.uart_rx(b"\x00\x13" + good[:4])          # line noise, then a frame in two pieces
    m.uart_rx(good[4:])
    assert m.played[-1][1] == 5 and [e[1] for e in m.errors[1:]] == ["no start byte"]
    bad = bytearray(VS.df_frame(0x06, 10))
    bad[8] ^= 1
    m.uart_rx(bytes(bad))
    assert m.errors[-1][1] == "checksum" and m.volume == 30
    m.uart_rx(VS.df_frame(0x06, 10))
    m.uart_rx(VS.df_frame(0x12, 6))
    assert m.volume == 10 and m.played[-1] == (vclock.now_us(), 6, 10) and m.cut == 1
    m.uart_rx(VS.df_frame(0x12, 999))
    assert m.errors[-1][1] == "no file 999" and m.replies[-1][1] == VS.df_frame(0x40, 6)
    j = VS.VoiceModuleSim("jq8900", init_us=0)
    j.uart_rx(bytes.fromhex("aa07020008bb"))
    j.uart_rx(bytes.fromhex("aa07020008bc"))
    assert [p[1] for p in j.played] == [8] and j.errors[-1][1] == "checksum"



def test_simulated_module_keeps_a_bounded_history():
    # A day of prompts on one bus: what the module keeps shares the device's
    # heap budget in the simulator, so it must not grow with the day.
    import gc

    import vhw
    from vhw import bus

    bus.reset()
    m = VS.VoiceModuleSim("dfplayer", init_us=0)
    play, bad = VS.df_frame(0x12, 1, feedback=1), VS.df_frame(0x12, 1)[:7] + b"\x00\x00\xef"
    m.uart_rx(play)
    m.uart_rx(bad)
    for i in range(3 * vhw.LOG_CAP):
        m.uart_rx(play)
        m.uart_rx(bad)
        vclock.advance_us(1000)
    for log in (m.frames, m.played, m.errors, m.replies):
        assert len(log) == vhw.LOG_CAP, (len(log), log[-1])
    assert m.played[-1][0] == vclock.now_us() - 1000 and m.errors[-1][1] == "checksum"
    if hasattr(gc, "mem_alloc"):   # full logs: the next prompts take nothing more
        gc.collect()
        a0 = gc.mem_alloc()
        for _ in range(3 * vhw.LOG_CAP):
            m.uart_rx(play)
            m.uart_rx(bad)
            vclock.advance_us(1000)
        gc.collect()
        assert gc.mem_alloc() - a0 < 512, gc.mem_alloc() - a0

def _bus_world():
    from vhw.world import World

    w = World("bus_validator")
    w.write_json("data/profile.json", {"device": "T-BUS", "entry": 301, "stop": 3, "direction": 1,
                                       "board": "bus_validator",
                                       "voice": {"volume": 20, "quiet_volume": 6}})
    w.write("data/catalog.bin", DK.catalog_bin())
    w.write("data/fares.bin", DK.fare_table(301, ages=DK.STD_AGES, cats=DK.STD_CATS))
    w.nvs_set("tok_key", DK.KEY)
    return w


def test_bus_validator_plays_the_prompt_after_the_first_feedback():
    from vhw import bus
    from vhw import rfcards

    w = _bus_world()
    assert w.voice is not None and w.voice.kind == "dfplayer"
    app = w.boot()
    assert app.voice is not None and "voice" in app.report["found"], app.report
    led = {}
    g = w.board["pins"]["LED_G"]
    bus.on_pin(g, lambda v: led.setdefault("on_us", vclock.now_us()) if v else None)
    writes = []
    orig = app.voice.uart.write

    def write(b):
        writes.append((vclock.now_us(), bytes(b)))
        return orig(b)

    app.voice.uart.write = write
    app.run(2500)                       # the module starts; the day volume is set
    assert w.voice.volume == 20, (w.voice.volume, w.voice.errors)
    from ykt.net import timesync

    app.clock.update(DK.NOW, timesync.TRUST_AUTH)   # 10:00 local: day volume, fares priced
    events = []
    app.on_event = lambda tap, kind, msg: events.append((tap.reason, tap.concession, kind, msg))
    w.field.present(rfcards.make_ssc(region=450100, card_id="450100D1560000052020010100000070",
                                     card_no="E00000070", birth=19500101, uid="E0000070"),
                    after_us=100000, for_us=400000)
    app.run(2000)
    assert events == [(T.R_CONCESSION, T.C_ELDERLY_FREE, O.FB_CONCESSION, O.M_CONCESSION)], events
    assert w.voice.played[-1][1:] == (2, 20), w.voice.played       # "老年卡" at the day volume
    play_at = [t for t, b in writes if b[3] == 0x12]
    assert led["on_us"] <= play_at[0], (led, writes)                 # LED first, then the frame
    assert w.voice.errors == []
