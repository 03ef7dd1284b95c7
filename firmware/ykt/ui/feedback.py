# What the rider sees and hears after a decision: RGB LED colour, a buzzer
# pattern (PWM), the turnstile relay pulse, the assist output that calls an
# attendant, and bilingual display text. Hardware comes from the board layer
# (Pin / PWM / display objects, any of them None). Nothing here sleeps: show()
# starts a pattern and step(now_ms), called every loop iteration, advances it.
# What to show comes as a kind and a message id (ykt.outcome); the texts and
# their display flags are that module's table.
from ykt.compat import const, ticks_ms, ticks_diff, ticks_add
from ykt import taprec as T

from ykt.outcome import (FB_ALREADY, FB_DENY, FB_GREEN, FB_FAULT, M_IDLE, MESSAGES, CONCESSIONS,
                         PROVISIONAL, HIDE_FARE, SHOW_CONC)

# LED colours (r, g, b) per kind.
_COLOURS = ((0, 0, 0), (0, 1, 0), (0, 1, 1), (0, 1, 1), (0, 1, 0), (1, 0, 0), (1, 1, 0), (1, 0, 1))
# Buzzer patterns: flat (hz, ms) pairs; hz 0 is a pause. Distinct by ear and by count.
PATTERNS = (
    (),
    (2700, 120),                                      # accept: one clear beep
    (2700, 70, 0, 60, 2700, 70),                      # concession: two short beeps
    (2000, 90, 0, 40, 2500, 90, 0, 40, 3000, 140),    # green channel: rising three
    (2200, 40),                                       # already paid: one blip
    (700, 250, 0, 100, 700, 250),                     # deny: two long low tones
    (1500, 50, 0, 50, 1500, 50, 0, 50, 1500, 50),     # read error: three quick, tap again
    (400, 900),                                       # reader fault / not configured
)
_DUTY = const(32768)
_DIG = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")


class Feedback:
    def __init__(self, pins, pwm_buzzer=None, display=None, cfg=None):
        cfg = cfg or {}
        g = pins.get
        self.r = g("LED_R")
        self.g = g("LED_G")
        self.b = g("LED_B")
        self.relay = g("RELAY")
        self.assist = g("ASSIST")
        self.pwm = pwm_buzzer
        self.display = display
        self.relay_ms = cfg.get("relay_ms", 600)
        self.green_relay_ms = cfg.get("green_relay_ms", 2500)
        self.assist_after = cfg.get("assist_after_denies", 3)
        self.assist_ms = cfg.get("assist_ms", 1500)
        self.show_ms = cfg.get("show_ms", 2500)
        self.denies = 0          # consecutive refusals, reset by any accept
        self.kind = 0
        self._pat = PATTERNS[0]
        self._pi = 0
        self._pat_at = 0
        self._relay_at = 0       # ticks when the relay closes again
        self._relay_on = False
        self._assist_at = 0
        self._assist_on = False
        self._led_at = 0
        self._led_on = False
        self._texts = ()
        if display is not None:
            # Glyph indices are resolved once, so a tap renders by message id without lookups.
            self._texts = tuple(display.prepare(m[1]) for m in MESSAGES)
            self._conc = tuple(display.prepare(c[0]) for c in CONCESSIONS)
            self._prov = display.prepare(PROVISIONAL[0])
            self._idle()
        self._all_off()

    def _all_off(self):
        self._led(0)
        if self.relay is not None:
            self.relay.value(0)
        if self.assist is not None:
            self.assist.value(0)
        if self.pwm is not None:
            self.pwm.duty_u16(0)

    def _led(self, kind):
        c = _COLOURS[kind]
        if self.r is not None:
            self.r.value(c[0])
        if self.g is not None:
            self.g.value(c[1])
        if self.b is not None:
            self.b.value(c[2])

    def _screen(self, zh, en, fare):
        self.display.screen(zh, en, fare, self._prov if fare >= 0 else None)

    def _idle(self):
        self._screen(self._texts[M_IDLE], MESSAGES[M_IDLE][2], -1)

    def show(self, kind, tap, msg, now_ms=None):
        """Start the feedback for one decision (returns at once): kind FB_*,
        msg an M_* id (ykt.outcome)."""
        now = ticks_ms() if now_ms is None else now_ms
        self.kind = kind
        self._led(kind)
        self._led_at = now
        self._led_on = True
        accept = kind <= FB_ALREADY
        if accept:
            self.denies = 0
        elif kind == FB_DENY:
            self.denies += 1
        if self.relay is not None and accept and tap.outcome == T.OUT_ACCEPT and kind != FB_ALREADY:
            self.relay.value(1)
            self._relay_at = ticks_add(now, self.green_relay_ms if kind == FB_GREEN else self.relay_ms)
            self._relay_on = True
        call = kind == FB_GREEN or kind == FB_FAULT or (
            kind == FB_DENY and self.assist_after and self.denies >= self.assist_after)
        if self.assist is not None and call:
            self.assist.value(1)
            self._assist_at = ticks_add(now, self.assist_ms)
            self._assist_on = True
        self._pat = PATTERNS[kind]
        self._pi = 0
        self._pat_at = now
        self._tone()
        if self.display is not None:
            m = MESSAGES[msg]
            flags = m[3]
            fare = tap.fare if (accept and kind != FB_ALREADY and not flags & HIDE_FARE) else -1
            if flags & SHOW_CONC and tap.concession:
                self._screen(self._conc[tap.concession], CONCESSIONS[tap.concession][1], fare)
            else:
                self._screen(self._texts[msg], m[2], fare)

    def _tone(self):
        if self.pwm is None:
            return
        if self._pi >= len(self._pat):
            self.pwm.duty_u16(0)
            return
        hz = self._pat[self._pi]
        if hz:
            self.pwm.freq(hz)
            self.pwm.duty_u16(_DUTY)
        else:
            self.pwm.duty_u16(0)

    def step(self, now_ms):
        """Advance patterns and end pulses; call every loop iteration."""
        pat = self._pat
        while self._pi < len(pat) and ticks_diff(now_ms, self._pat_at) >= pat[self._pi + 1]:
            self._pat_at += pat[self._pi + 1]
            self._pi += 2
            self._tone()
        if self._relay_on and ticks_diff(now_ms, self._relay_at) >= 0:
            self.relay.value(0)
            self._relay_on = False
        if self._assist_on and ticks_diff(now_ms, self._assist_at) >= 0:
            self.assist.value(0)
            self._assist_on = False
        if self._led_on and ticks_diff(now_ms, self._led_at) >= self.show_ms:
            self._led_on = False
            self._led(0)
            self.kind = 0
            if self.display is not None:
                self._idle()

    def busy(self):
        """True while a pattern, pulse or message is still running."""
        return self._pi < len(self._pat) or self._relay_on or self._assist_on or self._led_on
