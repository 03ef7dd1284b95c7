# Exact-frame scripted PN532 links for the reader tests (nfcpy
# tests/test_clf_pn532.py style): the test lists the frames the host must
# write and the frames the chip answers, in order; a wrong byte fails the
# test at once. These are real bus objects with the machine.I2C / SPI / UART
# method names, not catch-all mocks. No test functions in this module.
import binascii


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


def frame(tfi, body):
    b = bytes([tfi]) + body
    ln = len(b)
    return bytes([0, 0, 0xFF, ln, (-ln) & 0xFF]) + b + bytes([(-sum(b)) & 0xFF, 0])


def CMD(hexbody):
    """Host -> chip information frame: D4 + body."""
    return ("w", frame(0xD4, h(hexbody)))


def RSP(hexbody):
    """Chip -> host information frame: D5 + body."""
    return ("r", frame(0xD5, h(hexbody)))


def RAW(hexbytes):
    """Chip -> host arbitrary bytes (garbage, broken frames)."""
    return ("r", h(hexbytes))


def ACK():
    return ("r", h("0000ff00ff00"))


def HOST_ACK():
    return ("w", h("0000ff00ff00"))


def HOST_NACK():
    return ("w", h("0000ffff0000"))


class Script:
    """Chip behaviour from a script. After each host write, the chip makes the
    following "r" items ready one after the other. loop=True restarts the
    script (steady-state polling)."""

    def __init__(self, items, loop=False):
        self.items = items
        self.loop = loop
        self.i = 0
        self.pend = 0        # index of the next ready "r" item, or -1
        self.pend_end = 0
        self.ok = True
        self.writes = 0
        self.fail = None
        self._advance_reads()

    def _advance_reads(self):
        # Items at self.i that are reads become pending
        self.pend = self.i
        j = self.i
        while j < len(self.items) and self.items[j][0] == "r":
            j += 1
        self.pend_end = j

    def host_wrote(self, buf, n):
        if self.i < self.pend_end:
            self.i = self.pend_end  # unread replies are dropped by the chip
        if self.i >= len(self.items):
            if not self.loop:
                self.fail = "unexpected write after end of script"
                raise AssertionError(self.fail)
            self.i = 0
        kind, exp = self.items[self.i]
        if kind != "w" or len(exp) != n:
            self.fail = "write #%d mismatch: expected %s got %s" % (
                self.writes, binascii.hexlify(exp), binascii.hexlify(bytes(buf[:n])))
            raise AssertionError(self.fail)
        for k in range(n):
            if exp[k] != buf[k]:
                self.fail = "write #%d byte %d: expected %s got %s" % (
                    self.writes, k, binascii.hexlify(exp), binascii.hexlify(bytes(buf[:n])))
                raise AssertionError(self.fail)
        self.writes += 1
        self.i += 1
        if self.loop and self.i >= len(self.items):
            self.i = 0
        self._advance_reads()

    def ready(self):
        return self.pend < self.pend_end

    def current(self):
        return self.items[self.pend][1]

    def consumed(self):
        self.pend += 1
        if self.pend >= self.pend_end:
            self.i = self.pend_end
            if self.loop and self.i >= len(self.items):
                self.i = 0
            self._advance_reads()

    def done(self):
        return self.i >= len(self.items) and not self.ready()


class ScriptI2C:
    """machine.I2C stand-in: readfrom_into / writeto at one address."""

    def __init__(self, script, addr=0x24):
        self.s = script
        self.addr = addr

    def writeto(self, addr, buf, stop=True):
        if addr != self.addr:
            raise OSError(19)
        self.s.host_wrote(buf, len(buf))
        return len(buf)

    def readfrom_into(self, addr, buf, stop=True):
        if addr != self.addr:
            raise OSError(19)
        s = self.s
        if not s.ready():
            for k in range(len(buf)):
                buf[k] = 0
            return
        buf[0] = 1
        if len(buf) == 1:
            return
        f = s.current()
        n = len(f)
        for k in range(1, len(buf)):
            buf[k] = f[k - 1] if k - 1 < n else 0
        s.consumed()


def _rev_table():
    t = bytearray(256)
    for i in range(256):
        r = 0
        for b in range(8):
            if i & (1 << b):
                r |= 0x80 >> b
        t[i] = r
    return t


class ScriptSPI:
    """machine.SPI (MSB first) + CS pin stand-in. Sees wire-order bytes, so it
    checks the driver's LSB-first bit reversal."""

    def __init__(self, script):
        self.s = script
        self.rev = _rev_table()
        self.sel = False
        self.op = 0
        self.wbuf = bytearray(300)

    # CS pin
    def value(self, v=None):
        if v is None:
            return 0 if self.sel else 1
        self.sel = not v
        self.op = 0

    def write(self, buf):
        if not self.sel:
            raise AssertionError("SPI write with CS high")
        r = self.rev
        if self.op == 0:
            self.op = r[buf[0]]
            if self.op == 1:
                n = len(buf) - 1
                for k in range(n):
                    self.wbuf[k] = r[buf[k + 1]]
                self.s.host_wrote(self.wbuf, n)
            return
        raise AssertionError("unexpected SPI write")

    def write_readinto(self, wbuf, rbuf):
        if not self.sel or len(wbuf) != len(rbuf):
            raise AssertionError("bad write_readinto")
        if self.op != 0 or self.rev[wbuf[0]] != 2:
            raise AssertionError("write_readinto is only used for the status read")
        rbuf[0] = 0
        for k in range(1, len(rbuf)):
            rbuf[k] = self.rev[1] if self.s.ready() else 0

    def readinto(self, buf, write=0):
        r = self.rev
        s = self.s
        if self.op == 2:
            buf[0] = r[1] if s.ready() else 0
            return
        if self.op == 3:
            if not s.ready():
                for k in range(len(buf)):
                    buf[k] = 0
                return
            f = s.current()
            for k in range(len(buf)):
                buf[k] = r[f[k]] if k < len(f) else 0
            s.consumed()
            return
        raise AssertionError("SPI read without prefix")


class ScriptUART:
    """machine.UART stand-in: chip frames become readable after each write."""

    def __init__(self, script, wake_expected=True):
        self.s = script
        self.rx = bytearray(600)
        self.rn = 0
        self.ro = 0
        self.wake = wake_expected
        self.woke = 0

    def write(self, buf):
        n = len(buf)
        if self.wake and n >= 2 and buf[0] == 0x55 and buf[1] == 0x55:
            self.woke += 1
            return n
        self.s.host_wrote(buf, n)
        while self.s.ready():
            f = self.s.current()
            for b in f:
                self.rx[self.rn] = b
                self.rn += 1
            self.s.consumed()
        return n

    def any(self):
        return self.rn - self.ro

    def readinto(self, buf):
        k = 0
        while k < len(buf) and self.ro < self.rn:
            buf[k] = self.rx[self.ro]
            self.ro += 1
            k += 1
        if self.ro == self.rn:
            self.ro = 0
            self.rn = 0
        return k


class Pin:
    """Output pin stand-in that records its level history (RSTPD_N)."""

    def __init__(self, v=1):
        self.v = v
        self.history = []

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
        self.history.append(v)


# -- reader-level script pieces ---------------------------------------------
def init_items():
    """Reader.start(): firmware check, SAM, finite retries, field off."""
    return [CMD("02"), ACK(), RSP("03 32 01 06 07"),
            CMD("14 01 14 01"), ACK(), RSP("15"),
            CMD("32 05 ff 01 01"), ACK(), RSP("33"),
            CMD("32 01 00"), ACK(), RSP("33")]


def rf_off():
    return [CMD("32 01 00"), ACK(), RSP("33")]


def idle_items():
    return [CMD("4a 01 00"), ACK(), RSP("4b 00")] + rf_off()


ATS = "05 78 80 70 02"   # TL T0 TA TB(FWI 7) TC


def found(uid="11223344", sak="20", ats=ATS, sens="0004"):
    u = h(uid)
    body = "4b 01 01" + sens + sak + "%02x" % len(u) + uid + (ats if ats else "")
    return [CMD("4a 01 00"), ACK(), RSP(body)]


def x(apdu_hex, resp_hex, status="00"):
    return [CMD("40 01" + apdu_hex), ACK(), RSP("41" + status + resp_hex)]


def asc(s):
    return "".join("%02x" % ord(c) for c in s)


SELECT = "00a404000f7378312e73682ec9e7bbe1b1a3d5cf"
TRANSIT = "00a4040008a000000632010105"
CARD_ID = "450100d1560000050000000000000001"


def ssc_items(card_id=CARD_ID, card_no="A12345678", expiry="20350101", version="3.00",
              citizen="450103198503151234", ef06_sw=None):
    it = x(SELECT, "6f028400 9000")
    it += x("00b2012c00", "0110" + card_id + "9000")
    it += x("00b2072c00", "0709" + asc(card_no) + "9000")
    it += x("00b2062c00", "0604" + expiry + "9000")
    if version is not None:
        it += x("00b2032c00", "0304" + asc(version) + "9000")
    if citizen is not None:
        it += x("00b2083400", ("0812" + asc(citizen) + "9000") if ef06_sw is None else ef06_sw)
    return it


def release():
    return [CMD("52 00"), ACK(), RSP("53 00")]
