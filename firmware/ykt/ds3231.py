# DS3231 battery-backed real-time clock on I2C (address 0x68): the date a
# validator has after a power cut away from the network (ykt.net.timesync,
# docs/time.md). Registers 0x00..0x06 hold seconds, minutes, hours, day of
# week, date, month (bit 7: century) and year in BCD; the chip copies them to
# a buffer at the START of a read, so one 7-byte burst is consistent. Status
# bit OSF (0x0F bit 7) is set whenever the oscillator stopped (first power,
# dead backup battery): the time is then worthless and read() says None.
# The i2c bus is passed in (ykt.board owns machine).
from ykt.compat import const

ADDR = const(0x68)
_R_TIME = const(0x00)
_R_CONTROL = const(0x0E)
_R_STATUS = const(0x0F)
_OSF = const(0x80)
_CONTROL = const(0x1C)      # oscillator on (EOSC=0), square wave off, alarm interrupts off
_Y_MIN = const(2020)        # an earlier date is a chip that was never set right
_Y_MAX = const(2199)        # year 00..99 plus the century bit


def bcd(v):
    return (v >> 4) * 10 + (v & 0x0F)


def to_bcd(n):
    return ((n // 10) << 4) | (n % 10)


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (no time module:
    the ports disagree on their epoch)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z):
    """(year, month, day) of day z since 1970-01-01."""
    from ykt.rules.decide import civil

    v = civil(z)
    return v // 10000, v // 100 % 100, v % 100


class DS3231:
    def __init__(self, i2c, addr=ADDR):
        self.i2c = i2c
        self.addr = addr
        self._t = bytearray(7)
        self._s = bytearray(1)

    def lost_power(self):
        self.i2c.readfrom_mem_into(self.addr, _R_STATUS, self._s)
        return bool(self._s[0] & _OSF)

    def read(self):
        """Unix seconds, or None when the oscillator stopped since the last
        write (OSF) or the registers hold no valid date. OSError from the bus."""
        if self.lost_power():
            return None
        b = self._t
        self.i2c.readfrom_mem_into(self.addr, _R_TIME, b)
        s, mi, h = bcd(b[0] & 0x7F), bcd(b[1] & 0x7F), b[2]
        if h & 0x40:                       # 12-hour mode (not ours, but a chip set elsewhere may use it)
            h = bcd(h & 0x1F) % 12 + (12 if h & 0x20 else 0)
        else:
            h = bcd(h & 0x3F)
        d, mo = bcd(b[4] & 0x3F), bcd(b[5] & 0x1F)
        y = 2000 + bcd(b[6]) + (100 if b[5] & 0x80 else 0)
        if not (s < 60 and mi < 60 and h < 24 and 1 <= mo <= 12 and 1 <= d <= 31 and _Y_MIN <= y <= _Y_MAX):
            return None
        if civil_from_days(days_from_civil(y, mo, d))[2] != d:
            return None                    # 31 April and the like
        return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s

    def write(self, unix):
        """Set the clock (24-hour mode) and clear OSF: from now on read()
        trusts it until the oscillator stops again."""
        z, r = divmod(int(unix), 86400)
        y, mo, d = civil_from_days(z)
        if not _Y_MIN <= y <= _Y_MAX:
            raise ValueError("DS3231 holds years %d..%d" % (_Y_MIN, _Y_MAX))
        b = self._t
        b[0] = to_bcd(r % 60)
        b[1] = to_bcd(r // 60 % 60)
        b[2] = to_bcd(r // 3600)           # bit 6 = 0: 24-hour mode
        b[3] = (z + 3) % 7 + 1             # 1 = Monday (1970-01-01 was a Thursday)
        b[4] = to_bcd(d)
        b[5] = to_bcd(mo) | (0x80 if y >= 2100 else 0)
        b[6] = to_bcd(y % 100)
        self.i2c.writeto_mem(self.addr, _R_TIME, b)
        self._s[0] = _CONTROL
        self.i2c.writeto_mem(self.addr, _R_CONTROL, self._s)
        self._s[0] = 0                     # OSF cleared, 32 kHz output off
        self.i2c.writeto_mem(self.addr, _R_STATUS, self._s)
