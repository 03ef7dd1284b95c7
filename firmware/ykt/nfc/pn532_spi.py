# PN532 over SPI (UM0701 6.2.5): mode 0, LSB first, CS active low, a prefix
# byte per transaction: 0x01 data write, 0x02 status read, 0x03 data read.
# MicroPython ports differ in firstbit=LSB support, so the bus runs MSB first
# and we reverse bits here with a 256-byte table (built once).
from ykt.compat import const
from ykt.nfc.pn532 import Views, BUFSZ, map8

_REV = bytearray(256)
for _i in range(256):
    _r = 0
    for _b in range(8):
        if _i & (1 << _b):
            _r |= 0x80 >> _b
    _REV[_i] = _r
del _i, _r, _b

_DW = const(0x80)   # 0x01 reversed
_SR = const(0x40)   # 0x02 reversed
_DR = const(0xC0)   # 0x03 reversed


def rev(buf, n):
    map8(buf, 0, buf, 0, n, _REV)


class PN532_SPI:
    stream = False

    def __init__(self, spi, cs_pin, irq=None):
        self.spi = spi          # machine.SPI(..., polarity=0, phase=0, firstbit=SPI.MSB)
        self.cs = cs_pin        # Pin, output, idle high
        self.irq = irq
        self.pre = bytearray(1)
        self.sw = bytearray((_SR, 0))
        self.st = bytearray(2)
        self.tx = bytearray(BUFSZ + 1)
        self.bytes = 0
        self.clock = None
        cs_pin.value(1)

    def bind(self, pn):
        self.clock = pn.clock
        self.buf = pn.buf
        self.rv = Views(pn.buf)
        self.tv = Views(self.tx)

    def wakeup(self):
        # CS low wakes the chip from power-down; it needs ~2 ms to run.
        self.cs.value(0)
        self.clock.sleep_ms(2)
        self.cs.value(1)
        self.clock.sleep_ms(1)
        return True

    def ready(self):
        if self.irq is not None:
            return self.irq.value() == 0
        # one transfer: prefix 02 out, then the status byte in
        self.cs.value(0)
        try:
            self.spi.write_readinto(self.sw, self.st)
        except OSError:
            return False
        finally:
            self.cs.value(1)
        self.bytes += 2
        return _REV[self.st[1]] & 1 == 1

    def read(self, buf, n):
        self.pre[0] = _DR
        self.cs.value(0)
        try:
            self.spi.write(self.pre)
            self.spi.readinto(self.rv.get(n))
        except OSError:
            return -1
        finally:
            self.cs.value(1)
        self.bytes += n + 1
        rev(buf, n)
        return 0

    def write(self, buf, n):
        t = self.tx
        t[0] = _DW
        map8(t, 1, buf, 0, n, _REV)
        self.cs.value(0)
        try:
            self.spi.write(self.tv.get(n + 1))
        except OSError:
            return False
        finally:
            self.cs.value(1)
        self.bytes += n + 1
        return True

    def drain(self):
        """Drop what the chip still holds (a stale reply, half a frame)."""
        if self.ready():
            self.read(self.buf, 64)

    def wipe(self):
        t = self.tx
        for k in range(len(t)):
            t[k] = 0
