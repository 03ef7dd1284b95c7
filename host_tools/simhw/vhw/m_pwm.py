# Part of the host's fake `machine` module (see machine.py): PWM, loaded on first
# use. Portable.
import vclock
import machine as _m
from vhw import bus as _bus
from vhw import chip as _chip
from machine import _gpio


# --- PWM ---------------------------------------------------------------------


class PWM:
    def __init__(self, dest, *, freq=None, duty=None, duty_u16=None, duty_ns=None, invert=False):
        self._gpio = _gpio(dest)
        if self._gpio >= _chip.get().first_input_only:
            raise ValueError("pin can only be input")
        self._freq = 5000
        self._du16 = 32768
        self._on = False
        self.init(freq=freq, duty=duty, duty_u16=duty_u16, duty_ns=duty_ns, invert=invert)

    def __repr__(self):
        return "PWM(Pin(%d), freq=%d, duty_u16=%d)" % (self._gpio, self._freq, self._du16)

    def init(self, *, freq=None, duty=None, duty_u16=None, duty_ns=None, invert=False):
        if not self._on and self._gpio not in _m._pwms and len(_m._pwms) >= _chip.get().pwm_channels:
            raise ValueError("out of PWM channels")
        self._on = True
        _m._pwms[self._gpio] = self
        if freq is not None:
            self._setfreq(freq)
        if duty_u16 is not None:
            self._set(duty_u16)
        elif duty_ns is not None:
            self._set((duty_ns * self._freq * 65536) // 1000000000)
        elif duty is not None:
            self._set((duty * 65535) // 1023)
        else:
            self._log()

    def _setfreq(self, f):
        if not (1 <= f <= 40000000):
            raise ValueError("frequency must be from 1Hz to 40MHz")
        self._freq = int(f)

    def _set(self, v):
        v = int(v)
        self._du16 = 0 if v < 0 else (65535 if v > 65535 else v)
        self._log()

    def _log(self):
        _chip.get().log_pwm(self._gpio, self._freq, self._du16)

    def _need(self):
        if not self._on:
            raise OSError(22)  # deinitialised

    def freq(self, *args):
        self._need()
        if not args:
            return self._freq
        self._setfreq(args[0])
        self._log()

    def duty_u16(self, *args):
        self._need()
        if not args:
            return self._du16
        self._set(args[0])

    def duty(self, *args):
        self._need()
        if not args:
            return (self._du16 * 1023 + 32767) // 65535
        self._set((args[0] * 65535) // 1023)

    def duty_ns(self, *args):
        self._need()
        if not args:
            return (self._du16 * 1000000000) // (self._freq * 65536)
        self._set((args[0] * self._freq * 65536) // 1000000000)

    def _stop(self):
        if self._on:
            self._on = False
            _m._pwms.pop(self._gpio, None)
            _chip.get().log_pwm(self._gpio, 0, 0)

    def deinit(self):
        self._stop()
