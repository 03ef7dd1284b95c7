# The rarely used parts of the host's fake `machine` module, loaded on first
# use through machine.__getattr__ (see machine.py) so that they cost no heap
# when the firmware does not use them. Portable.
import vclock
import machine as _m
from vhw import bus as _bus
from vhw import chip as _chip
from machine import _gpio, _timers
from vhw.m_i2c import _I2CBase
from vhw.m_spi import _SPIBase


class SoftI2C(_I2CBase):
    """Bit-banged I2C. Its devices are those attached to bus id "soft<scl gpio>"."""

    def __init__(self, scl, sda, *, freq=400000, timeout=50000):
        self.init(scl, sda, freq=freq, timeout=timeout)

    def init(self, scl, sda, *, freq=400000, timeout=50000):
        self._scl = _gpio(scl)
        self._sda = _gpio(sda)
        self._bus = "soft%d" % self._scl
        self._freq = freq
        self._timeout = timeout
        self._cur = None  # primitive-op transaction: [device, is_read, pending write bytes]

    def start(self):
        self._flush()
        self._cur = [None, False, bytearray()]

    def stop(self):
        self._flush()
        self._cur = None

    def _flush(self):
        c = self._cur
        if c is not None and c[0] is not None and not c[1] and len(c[2]):
            c[0].i2c_write(bytes(c[2]))
            c[2] = bytearray()

    def write(self, buf):
        c = self._cur
        if c is None:
            c = self._cur = [None, False, bytearray()]
        acks = 0
        for b in buf:
            self._link(1)
            if c[0] is None:
                d = _bus.i2c_device(self._bus, b >> 1)
                if d is None:
                    return acks  # NACK: the port stops sending
                c[0] = d
                c[1] = bool(b & 1)
            else:
                c[2].append(b)
            acks += 1
        return acks

    def readinto(self, buf, nack=True):
        c = self._cur
        if c is None or c[0] is None or not c[1]:
            raise OSError(19)
        data = c[0].i2c_read(len(buf))
        self._link(len(buf))
        for i in range(len(buf)):
            buf[i] = data[i] if i < len(data) else 0xFF


class SoftSPI(_SPIBase):
    """Bit-banged SPI. Its devices are those attached to bus id "soft<sck gpio>"."""

    def __init__(self, baudrate=500000, *, polarity=0, phase=0, bits=8,
                 firstbit=0, sck=None, mosi=None, miso=None):
        self._baud = 500000
        self._pol = self._pha = 0
        self._bits = 8
        self._firstbit = 0
        self.init(baudrate, polarity=polarity, phase=phase, bits=bits,
                  firstbit=firstbit, sck=sck, mosi=mosi, miso=miso)

    def init(self, baudrate=None, *, polarity=None, phase=None, bits=None,
             firstbit=None, sck=None, mosi=None, miso=None):
        if sck is not None:
            self._bus = "soft%d" % _gpio(sck)
        elif not hasattr(self, "_bus"):
            raise TypeError("sck required")
        for p in (mosi, miso):
            if p is not None:
                _gpio(p)
        self._cfg(baudrate, polarity, phase, bits, firstbit)


def _civil(days):
    """days since 1970-01-01 -> (y, m, d) (Howard Hinnant's algorithm)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y, m, d)


def _days(y, m, d):
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


class RTC:
    def __init__(self, id=0):
        pass

    def init(self, datetime):
        self.datetime(datetime)

    def datetime(self, *args):
        if not args:
            t = vclock.time()
            days = t // 86400
            s = t % 86400
            y, m, d = _civil(days)
            return (y, m, d, (days + 3) % 7, s // 3600, (s // 60) % 60, s % 60,
                    vclock.now_us() % 1000000)
        dt = args[0]
        if len(dt) < 7:
            raise ValueError("datetime tuple needs 8 items")
        secs = _days(dt[0], dt[1], dt[2]) * 86400 + dt[4] * 3600 + dt[5] * 60 + dt[6]
        vclock.set_epoch(secs)

    def memory(self, *args):
        c = _chip.get()
        if not args:
            return c.rtc_mem
        data = bytes(args[0])
        if len(data) > 2048:
            raise ValueError("buffer too long")
        c.rtc_mem = data


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id, **kw):
        if not (0 <= id <= 3):
            raise ValueError("invalid Timer number")
        self._id = id
        self._ev = None
        self._cb = None
        self._period_us = 0
        self._t0 = 0
        if kw:
            self.init(**kw)

    def __repr__(self):
        return "Timer(%d)" % self._id

    def init(self, *, mode=1, period=-1, callback=None, freq=-1, tick_hz=1000):
        self.deinit()
        if freq != -1 and freq is not None:
            if freq <= 0:
                raise ValueError("freq")
            us = int(1000000 / freq)
        elif period is not None and period >= 0:
            us = (period * 1000000) // tick_hz
        else:
            raise ValueError("period or freq required")
        self._period_us = us if us > 0 else 1
        self._mode = mode
        self._cb = callback
        self._t0 = vclock.now_us()
        _timers[self._id] = self
        self._ev = vclock.schedule(self._period_us, self._fire)

    def _fire(self):
        self._ev = None
        if self._mode == 1:
            self._ev = vclock.schedule(self._period_us, self._fire)
        else:
            _timers.pop(self._id, None)
        if self._cb is not None:
            self._cb(self)

    def deinit(self):
        if self._ev is not None:
            vclock.cancel(self._ev)
            self._ev = None
        if _timers.get(self._id) is self:
            del _timers[self._id]

    def value(self):
        if not self._period_us:
            return 0
        return ((vclock.now_us() - self._t0) % self._period_us) // 1000


def time_pulse_us(pin, pulse_level, timeout_us=1000000):
    """Measure a pulse on an input that a peripheral drives from vclock events."""

    def wait(level, limit):
        end = vclock.now_us() + limit
        while pin.value() != level:
            e = vclock.next_event_us()
            if e is None or e > end:
                vclock.advance_to_us(end)
                return False
            vclock.advance_us(e - vclock.now_us() if e > vclock.now_us() else 0)
        return True

    if not wait(pulse_level, timeout_us):
        return -2
    t0 = vclock.now_us()
    if not wait(1 - pulse_level, timeout_us):
        return -1
    return vclock.now_us() - t0
