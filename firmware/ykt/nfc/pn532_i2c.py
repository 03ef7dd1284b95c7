# PN532 over I2C (UM0701 6.2.4): address 0x24; every read transaction starts
# with a status byte whose bit 0 says a frame is ready. Nothing special wakes
# the chip: the address match does. The PN532 stretches SCL (up to ~440 us),
# so boards should run 100 kHz unless the module is known good at 400 kHz.
from ykt.nfc.pn532 import Views


class PN532_I2C:
    stream = False

    def __init__(self, i2c, addr=0x24, irq=None):
        self.i2c = i2c
        self.addr = addr
        self.irq = irq          # Pin (input, active low) or None: poll status
        self.st = bytearray(1)
        self.bytes = 0          # link bytes moved (benchmarks)
        self.clock = None

    def bind(self, pn):
        self.clock = pn.clock
        self.buf = pn.buf
        self.rv = Views(pn.buf)
        self.wv = Views(pn.out)

    def wakeup(self):
        # A status read is enough to wake it; the first may be NAKed.
        for _ in range(3):
            try:
                self.i2c.readfrom_into(self.addr, self.st)
                self.bytes += 2
                return True
            except OSError:
                self.clock.sleep_ms(1)
        return False

    def ready(self):
        if self.irq is not None:
            return self.irq.value() == 0
        try:
            self.i2c.readfrom_into(self.addr, self.st)
        except OSError:
            return False
        self.bytes += 2  # address + status
        return self.st[0] & 1 == 1

    def read(self, buf, n):
        """Read status + n frame bytes into buf[0:n+1]; frame starts at 1."""
        try:
            self.i2c.readfrom_into(self.addr, self.rv.get(n + 1))
        except OSError:
            return -1
        self.bytes += n + 2
        if buf[0] & 1 != 1:
            return -1
        return 1

    def write(self, buf, n):
        try:
            self.i2c.writeto(self.addr, buf if len(buf) == n else self.wv.get(n))
        except OSError:
            return False
        self.bytes += n + 1
        return True

    def drain(self):
        """Drop what the chip still holds (a stale reply, half a frame)."""
        if self.ready():
            self.read(self.buf, 64)

    def wipe(self):
        pass
