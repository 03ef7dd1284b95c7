# A DS3231 real-time clock on I2C (address 0x68), register for register as
# the datasheet describes it: a write's first byte sets the register pointer,
# later bytes go to consecutive registers (wrapping after 0x12); a read
# starts at the pointer, auto-increments, and the time registers are copied
# from the running clock at the start of each read. 0x00..0x06 time and date
# in BCD (hours bit 6 = 12-hour mode, month bit 7 = century), 0x07..0x0D
# alarms, 0x0E control, 0x0F status (bit 7 OSF: oscillator stopped), 0x10
# aging, 0x11..0x12 temperature (read-only). Writing the seconds register
# restarts the countdown chain. Portable.
#
# Faults: drift_ppm (the crystal's error; the datasheet allows +-2 ppm from
# 0 to 40 C), battery_dead (a power cut then stops the oscillator: OSF set,
# time back to 2000-01-01 00:00:00), and stopped (EOSC set in control, or no
# battery: the time does not advance). Simplification: the day-of-week
# register follows the date (the chip counts it on its own; ykt.ds3231 writes
# the matching value), and an impossible date written is normalised.
# The calendar arithmetic is the simulated chip's (vhw.machx, the fake RTC's),
# not ykt.ds3231's: a model sharing the driver's date code could not catch
# its mistakes.
import vclock
from vhw.machx import _civil, _days

_N = 0x13


def _bcd(v):
    return (v >> 4) * 10 + (v & 0x0F)


def _tobcd(n):
    return ((n // 10) << 4) | (n % 10)


class DS3231:
    def __init__(self, drift_ppm=0):
        self.drift_ppm = drift_ppm
        self.battery_dead = False
        self.regs = bytearray(_N)
        self.ptr = 0
        self.writes = 0
        self.power_on_reset()

    def power_on_reset(self):
        """First power (or a power cut with a dead battery): datasheet reset
        values, OSF set, the clock at 2000-01-01 00:00:00."""
        r = self.regs
        for i in range(_N):
            r[i] = 0
        r[3], r[4], r[5] = 1, 1, 1
        r[0x0E] = 0x1C
        r[0x0F] = 0x88              # OSF, EN32kHz
        r[0x11] = 25                # 25.00 C
        self._clk_us = self._regs_secs() * 1000000
        self._at_us = vclock.now_us()

    def power_cut(self):
        """VCC goes away and comes back: with a good battery the clock runs on."""
        if self.battery_dead:
            self.power_on_reset()

    # --- the running clock: microseconds since 2000-01-01 ----------------
    def _running(self):
        return not (self.regs[0x0E] & 0x80)          # EOSC = 1 stops the oscillator (on battery)

    def _now_us(self):
        if not self._running():
            return self._clk_us
        el = vclock.now_us() - self._at_us
        return self._clk_us + el * (1000000 + self.drift_ppm) // 1000000

    def _now_secs(self):
        return self._now_us() // 1000000

    def _regs_secs(self):
        r = self.regs
        h = r[2]
        hour = (_bcd(h & 0x1F) % 12 + (12 if h & 0x20 else 0)) if h & 0x40 else _bcd(h & 0x3F)
        y = _bcd(r[6]) + (100 if r[5] & 0x80 else 0)
        days = _days(2000 + y, _bcd(r[5] & 0x1F) or 1, _bcd(r[4] & 0x3F) or 1) - _days(2000, 1, 1)
        return days * 86400 + hour * 3600 + _bcd(r[1] & 0x7F) * 60 + _bcd(r[0] & 0x7F)

    def _latch(self):
        s = self._now_secs()
        days, rem = divmod(s, 86400)
        y, m, d = _civil(days + _days(2000, 1, 1))
        r = self.regs
        r[0] = _tobcd(rem % 60)
        r[1] = _tobcd(rem // 60 % 60)
        h = rem // 3600
        if r[2] & 0x40:                               # keep the chip's 12-hour mode
            r[2] = 0x40 | (0x20 if h >= 12 else 0) | _tobcd(h % 12 or 12)
        else:
            r[2] = _tobcd(h)
        r[3] = (days + 5) % 7 + 1                     # 2000-01-01 was a Saturday (Monday = 1)
        r[4] = _tobcd(d)
        r[5] = _tobcd(m) | (0x80 if y >= 2100 else 0)
        r[6] = _tobcd(y % 100)

    # --- I2C ----------------------------------------------------------------
    def i2c_write(self, buf):
        buf = bytes(buf)
        if not buf:
            return
        self.writes += 1
        cur = self._now_us()
        self._latch()
        p = buf[0] % _N
        time_written = False
        for b in buf[1:]:
            if p == 0x0F:
                # OSF can only be cleared (written 0), not set; bits 2..0 are status
                b = (self.regs[0x0F] & 0x80 & b) | (b & 0x08) | (self.regs[0x0F] & 0x07)
            if p in (0x11, 0x12):
                pass                                  # temperature is read-only
            else:
                self.regs[p] = b
            if p <= 6:
                time_written = True
            p = (p + 1) % _N
        self.ptr = p
        # writing the time restarts the countdown chain at a whole second;
        # any other register leaves the clock running as it was
        self._clk_us = self._regs_secs() * 1000000 if time_written else cur
        self._at_us = vclock.now_us()

    def i2c_read(self, n):
        self._latch()
        out = bytearray(n)
        p = self.ptr
        for i in range(n):
            out[i] = self.regs[p]
            p = (p + 1) % _N
        self.ptr = p
        return bytes(out)

