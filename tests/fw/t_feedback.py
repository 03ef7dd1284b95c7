# Feedback through board roles on the simulated machine.Pin / machine.PWM
# (host_tools/simhw/machine.py, the same classes the board layer builds):
# distinct buzzer patterns, relay pulse length, assist after repeated
# refusals, LED colours, display text keys; stepped by ticks, never sleeping.
import machine
import vclock
from vhw import bus, chip
from ykt.ui import feedback as FB
from ykt import taprec as T
from ykt import outcome as O


class TextDisplay:
    """Records what would be drawn: message keys resolve to their strings."""

    def __init__(self):
        self.screens = []

    def prepare(self, zh):
        return zh

    def screen(self, zh, en, fare, prov):
        self.screens.append((zh, en, fare))


# turnstile board (boards/turnstile.json) GPIOs
_GPIO = {"LED_R": 13, "LED_G": 14, "LED_B": 15, "RELAY": 26, "ASSIST": 27, "BUZZER": 25}


def setup():
    vclock.reset()
    bus.reset()
    chip.configure()


class _V:
    """pins[role].v reads the level the simulated GPIO drives."""

    def __init__(self, pin):
        self.pin = pin

    @property
    def v(self):
        return self.pin.value()


def rig(cfg=None, display=None):
    log = []
    raw = {r: machine.Pin(_GPIO[r], machine.Pin.OUT, value=0) for r in ("LED_R", "LED_G", "LED_B", "RELAY", "ASSIST")}
    pins = {r: _V(p) for r, p in raw.items()}
    pwm = machine.PWM(machine.Pin(_GPIO["BUZZER"]), freq=2700, duty_u16=0)
    f = FB.Feedback(raw, pwm, display, cfg or {"relay_ms": 600, "green_relay_ms": 3000,
                                                 "assist_after_denies": 3, "assist_ms": 1500,
                                                 "show_ms": 2500})
    del log[:]
    return f, pins, pwm, log


def tap(outcome=T.OUT_ACCEPT, fare=200, conc=0):
    t = T.Tap()
    t.outcome = outcome
    t.fare = fare
    t.concession = conc
    return t


def run(f, pwm, start, until, step=5):
    """Step the main loop every `step` ms; return the tones heard as (hz, ms) runs."""
    tones = []
    cur = None
    t = start
    while t <= until:
        f.step(t)
        now = pwm.freq() if pwm.duty_u16() else 0
        if now != cur:
            tones.append([now, 0])
            cur = now
        tones[-1][1] += step
        t += step
    return [tuple(x) for x in tones]


def test_patterns_distinct():
    heard = {}
    for kind in range(1, 8):
        f, pins, pwm, log = rig()
        f.show(kind, tap(), O.M_OK, now_ms=1000)
        heard[kind] = tuple(x for x in run(f, pwm, 1000, 3000) if x[0])
        assert pwm.duty_u16() == 0, kind    # silent at the end
    assert len(set(heard.values())) == 7    # every kind sounds different
    assert heard[O.FB_ACCEPT] == ((2700, 120),)
    assert len(heard[O.FB_CONCESSION]) == 2 and len(heard[O.FB_GREEN]) == 3


def test_led_colours_and_timeout():
    want = {O.FB_ACCEPT: (0, 1, 0), O.FB_DENY: (1, 0, 0), O.FB_ERROR: (1, 1, 0), O.FB_GREEN: (0, 1, 1)}
    for kind, rgb in want.items():
        f, pins, pwm, log = rig()
        f.show(kind, tap(), O.M_OK, now_ms=0)
        assert (pins["LED_R"].v, pins["LED_G"].v, pins["LED_B"].v) == rgb
        f.step(2499)
        assert (pins["LED_R"].v, pins["LED_G"].v, pins["LED_B"].v) == rgb
        f.step(2500)
        assert (pins["LED_R"].v, pins["LED_G"].v, pins["LED_B"].v) == (0, 0, 0)
        f.step(5000)                            # the green channel's relay ends later
        assert not f.busy()


def test_relay_pulse_lengths():
    f, pins, pwm, log = rig()
    f.show(O.FB_ACCEPT, tap(), O.M_OK, now_ms=100)
    assert pins["RELAY"].v == 1
    f.step(699)
    assert pins["RELAY"].v == 1
    f.step(700)
    assert pins["RELAY"].v == 0
    f.show(O.FB_GREEN, tap(), O.M_GREEN, now_ms=1000)   # green channel: longer opening
    f.step(3999)
    assert pins["RELAY"].v == 1
    f.step(4000)
    assert pins["RELAY"].v == 0
    for kind in (O.FB_DENY, O.FB_ERROR, O.FB_FAULT, O.FB_ALREADY):
        f.show(kind, tap(T.OUT_DENY if kind == O.FB_DENY else T.OUT_ACCEPT), O.M_READ_FAILED, now_ms=5000)
        assert pins["RELAY"].v == 0, kind


def test_relay_pulse_survives_tick_wrap():
    from ykt.compat import ticks_add
    f, pins, pwm, log = rig()
    start = ticks_add(0, -100)        # 100 ms before the tick counter wraps
    f.show(O.FB_ACCEPT, tap(), O.M_OK, now_ms=start)
    f.step(ticks_add(start, 599))
    assert pins["RELAY"].v == 1
    f.step(ticks_add(start, 600))
    assert pins["RELAY"].v == 0


def test_assist_green_and_repeated_denies():
    f, pins, pwm, log = rig()
    f.show(O.FB_GREEN, tap(), O.M_GREEN, now_ms=0)
    assert pins["ASSIST"].v == 1
    f.step(1500)
    assert pins["ASSIST"].v == 0
    for i in range(2):
        f.show(O.FB_DENY, tap(T.OUT_DENY), O.M_EXPIRED, now_ms=2000 + i * 100)
        assert pins["ASSIST"].v == 0
    f.show(O.FB_DENY, tap(T.OUT_DENY), O.M_EXPIRED, now_ms=2300)
    assert pins["ASSIST"].v == 1 and f.denies == 3     # third refusal in a row calls staff
    f.step(3800)
    assert pins["ASSIST"].v == 0
    f.show(O.FB_ACCEPT, tap(), O.M_OK, now_ms=4000)     # an accept resets the count
    f.show(O.FB_DENY, tap(T.OUT_DENY), O.M_EXPIRED, now_ms=4100)
    assert pins["ASSIST"].v == 0 and f.denies == 1
    f.show(O.FB_FAULT, tap(T.OUT_ERROR), O.M_READER_FAULT, now_ms=5000)
    assert pins["ASSIST"].v == 1


def test_missing_roles_are_fine():
    f = FB.Feedback({"LED_G": None}, None, None, None)
    f.show(O.FB_ACCEPT, tap(), O.M_OK, now_ms=0)
    f.step(10000)
    assert not f.busy()


def test_display_texts():
    d = TextDisplay()
    f, pins, pwm, log = rig(display=d)
    assert d.screens[-1] == ("请刷卡", "Tap card", -1)
    f.show(O.FB_ACCEPT, tap(fare=200), O.M_OK, now_ms=0)
    assert d.screens[-1] == ("刷卡成功", "Accepted", 200)     # fare shown, provisional
    f.show(O.FB_CONCESSION, tap(fare=100, conc=T.C_ELDERLY_HALF), O.M_CONCESSION, now_ms=10)
    assert d.screens[-1] == ("老年半价", "Senior half", 100)
    f.show(O.FB_DENY, tap(T.OUT_DENY, fare=0), O.M_DENY_LOST, now_ms=20)
    assert d.screens[-1] == ("卡已挂失", "Card lost", -1)     # no fare on a refusal
    f.show(O.FB_ALREADY, tap(fare=0), O.M_ALREADY_PAID, now_ms=30)
    assert d.screens[-1] == ("已付款", "Already paid", -1)
    f.show(O.FB_ACCEPT, tap(fare=0), O.M_NO_TIME, now_ms=40)
    assert d.screens[-1][2] == -1                              # no fare invented
    f.step(40 + 2500)
    assert d.screens[-1] == ("请刷卡", "Tap card", -1)        # back to idle


def test_display_by_id_follows_the_table_flags():
    # the journal-full refusal and a transfer render from their own rows;
    # exit with a concession shows the label, identity entry shows no fare
    d = TextDisplay()
    f, pins, pwm, log = rig(display=d)
    f.show(O.FB_FAULT, tap(T.OUT_DENY, fare=0), O.M_JOURNAL_FULL, now_ms=0)
    assert d.screens[-1] == (O.MESSAGES[O.M_JOURNAL_FULL][1], O.MESSAGES[O.M_JOURNAL_FULL][2], -1)
    f.show(O.FB_CONCESSION, tap(fare=150), O.M_TRANSFER, now_ms=10)
    assert d.screens[-1] == ("换乘优惠", "Transfer", 150)
    f.show(O.FB_CONCESSION, tap(fare=600, conc=T.C_SOLDIER), O.M_EXIT, now_ms=20)
    assert d.screens[-1] == ("现役军人", "Soldier", 600)
    f.show(O.FB_ACCEPT, tap(fare=600), O.M_EXIT, now_ms=30)
    assert d.screens[-1] == ("行程结束", "Exit OK", 600)
    f.show(O.FB_ACCEPT, tap(fare=300, conc=T.C_DISABLED), O.M_IDENTITY, now_ms=40)
    assert d.screens[-1] == ("身份核验通过", "ID checked", -1)   # no concession label, no fare
    f.show(O.FB_GREEN, tap(fare=0), O.M_GREEN, now_ms=50)
    assert d.screens[-1] == ("绿色通道", "Green channel", 0)


def test_pwm_log_on_virtual_clock():
    from ykt.compat import ticks_ms
    f, pins, pwm, log = rig()
    vclock.advance_us(1000000)
    t0 = ticks_ms()
    f.show(O.FB_CONCESSION, tap(fare=0, conc=T.C_DISABLED), O.M_CONCESSION)
    for _ in range(100):                  # the main loop: 5 ms per iteration
        vclock.advance_us(5000)
        f.step(ticks_ms())
    edges = []
    for (ms, gpio, hz, duty) in chip.get().pwm_log:
        if gpio == _GPIO["BUZZER"] and ms >= t0:
            on = 1 if duty else 0
            if (edges and edges[-1][1] != on) or (not edges and on):
                edges.append((ms - t0, on))
    # two 70 ms beeps 60 ms apart, each edge within one 5 ms loop step
    want = ((0, 1), (70, 0), (130, 1), (200, 0))
    assert len(edges) == 4, edges
    for (ms, on), (wms, won) in zip(edges, want):
        assert on == won and wms <= ms < wms + 5, edges
