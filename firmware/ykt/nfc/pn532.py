# PN532 host-controller protocol (NXP PN532 User Manual UM0701-02, section 6.2):
# framing, ACK/NACK, checksums, resync and the few commands the reader needs.
# Transports (pn532_i2c / pn532_spi / pn532_hsu) only move bytes: wake-up,
# ready check, raw read, raw write. Everything here works on two buffers
# allocated once; the hot path returns int codes instead of raising, because an
# exception or a tuple per poll would allocate on MicroPython.
from ykt.compat import const
import ykt.compat as _compat

# Frame scan results (scan_frame)
F_NONE = const(0)   # no complete candidate start code in the bytes given
F_ACK = const(1)
F_NACK = const(2)
F_ERR = const(3)    # application-level error frame 00 00 FF 01 FF 7F 81 00
F_DATA = const(4)   # normal or extended information frame, checksums good
F_MORE = const(5)   # a plausible header announces more bytes than were read

# Call results (negative = failure); >= 0 is the payload length
E_NOACK = const(-1)     # chip did not acknowledge (silent, asleep, link broken)
E_TIMEOUT = const(-2)   # acknowledged but no response in time (aborted with ACK)
E_FRAME = const(-3)     # garbage / checksum failure / wrong TFI or command code
E_CHIP = const(-4)      # chip answered with the syntax-error frame
E_LINK = const(-5)      # the bus itself raised (OSError from machine)
E_DEADLINE = const(-6)  # the caller's deadline (self.deadline) has passed

MAXLEN = const(265)     # longest frame body (TFI + data) accepted from the wire
BUFSZ = const(280)      # status byte + 00 00 FF FF FF LENM LENL LCS + 265 + DCS + 00 + slack

_TFI_HOST = const(0xD4)
_TFI_CHIP = const(0xD5)
P = const(7)            # offset of the first parameter byte in the output frame

ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
_SC = b"\x00\xff"

# Commands used
CMD_DIAG = const(0x00)
CMD_FWVER = const(0x02)
CMD_BAUD = const(0x10)
CMD_SAM = const(0x14)
CMD_RFCFG = const(0x32)
CMD_DATAX = const(0x40)
CMD_LIST = const(0x4A)
CMD_RELEASE = const(0x52)

# SetSerialBaudRate's BR byte is the index in this list (UM0701 7.2.8).
HSU_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)

# Host-side waits (ms). The chip's own RF timeouts are shorter; these only
# catch a silent or confused chip.
ACK_MS = const(30)
CMD_MS = const(100)
_FRAMES = const(5)      # frames examined per command (ACK, stale, garbage, answer)


# Byte loops run per frame byte: viper on MicroPython (ESP32 xtensawin and the
# unix port both emit it), plain Python elsewhere. Same results either way.
try:
    import micropython

    @micropython.viper
    def sum8(buf, a: int, b: int) -> int:
        p = ptr8(buf)  # noqa: F821 (viper builtin)
        s = 0
        while a < b:
            s += p[a]
            a += 1
        return s & 0xFF

    @micropython.viper
    def copy8(dst, d: int, src, s: int, n: int):
        pd = ptr8(dst)  # noqa: F821
        ps = ptr8(src)  # noqa: F821
        i = 0
        if d <= s:
            while i < n:
                pd[d + i] = ps[s + i]
                i += 1
        else:
            i = n - 1
            while i >= 0:
                pd[d + i] = ps[s + i]
                i -= 1

    @micropython.viper
    def map8(dst, d: int, src, s: int, n: int, table):
        pd = ptr8(dst)  # noqa: F821
        ps = ptr8(src)  # noqa: F821
        pt = ptr8(table)  # noqa: F821
        i = 0
        while i < n:
            pd[d + i] = pt[ps[s + i]]
            i += 1
except (ImportError, AttributeError):
    def sum8(buf, a, b):
        s = 0
        for k in range(a, b):
            s += buf[k]
        return s & 0xFF

    def copy8(dst, d, src, s, n):
        if d <= s:
            for i in range(n):
                dst[d + i] = src[s + i]
        else:
            for i in range(n - 1, -1, -1):
                dst[d + i] = src[s + i]

    def map8(dst, d, src, s, n, table):
        for i in range(n):
            dst[d + i] = table[src[s + i]]


class ReaderError(Exception):
    """The only exception the reader modules define; raised on API misuse
    (never in the poll path, which uses int codes)."""

    def __init__(self, msg):
        super().__init__(msg)


def scan_frame(buf, start, n, res, tfi=_TFI_CHIP):
    """Find the first valid frame in buf[start:n]. Candidates failing a length
    or data checksum, or with a length out of bounds, are skipped (resync on
    the next 00 FF). On F_DATA/F_ERR: res[0] = offset of TFI, res[1] = body
    length (TFI included), res[2] = offset just past DCS. On F_MORE res[2] is
    the index the read must reach. On ACK/NACK res[2] = offset past LCS."""
    if n > len(buf):
        n = len(buf)
    i = start
    while True:
        j = buf.find(_SC, i, n)
        if j < 0:
            res[2] = n
            return F_NONE
        p = j + 2
        i = j + 1
        if p + 2 > n:
            res[2] = p + 2
            return F_MORE
        ln = buf[p]
        lcs = buf[p + 1]
        if ln == 0 and lcs == 0xFF:
            res[2] = p + 2
            return F_ACK
        if ln == 0xFF and lcs == 0:
            res[2] = p + 2
            return F_NACK
        if ln == 0xFF and lcs == 0xFF:
            # extended frame: 00 FF FF FF LENM LENL LCS TFI ...
            if p + 5 > n:
                res[2] = p + 5
                return F_MORE
            lm = buf[p + 2]
            ll = buf[p + 3]
            if (lm + ll + buf[p + 4]) & 0xFF:
                continue
            ln = (lm << 8) | ll
            if ln < 2 or ln > MAXLEN:  # 0/1 would mean a 65535-byte read elsewhere
                continue
            d = p + 5
        else:
            if (ln + lcs) & 0xFF or ln == 0:
                continue
            d = p + 2
        end = d + ln + 1
        if end > n:
            if end > len(buf):
                continue
            res[2] = end
            return F_MORE
        if sum8(buf, d, end):
            continue
        res[0] = d
        res[1] = ln
        res[2] = end
        if ln == 1 and buf[d] == 0x7F:
            return F_ERR
        if buf[d] != tfi or ln < 2:
            continue
        return F_DATA


class Views:
    """Cached memoryviews of one buffer by length, so transports can hand
    machine.I2C/SPI/UART an exact-length buffer without allocating per call
    (a memoryview slice allocates on MicroPython). At most BUFSZ entries."""

    def __init__(self, buf):
        self.buf = buf
        self.mv = memoryview(buf)
        self.d = {}

    def get(self, n):
        v = self.d.get(n)
        if v is None:
            v = self.mv[:n]
            self.d[n] = v
        return v


class PN532:
    """One PN532 on one transport. call() runs one command: write frame, wait
    for ACK, wait for the response, check it. Payload of the last good response
    is self.buf[self.off:self.off + n] (after TFI and response code)."""

    def __init__(self, transport, clock=None):
        self.t = transport
        self.clock = clock or _compat
        self.buf = bytearray(BUFSZ)   # receive
        self.out = bytearray(BUFSZ)   # transmit; parameters go at out[P:]
        self.out[0] = 0
        self.out[1] = 0
        self.out[2] = 0xFF
        self.res = [0, 0, 0]
        self.off = 0
        self.deadline = 0     # ticks_ms; every wait ends by then when use_deadline
        self.use_deadline = False
        self.commands = 0     # commands issued (benchmarks, health)
        self.errors = 0       # failed calls
        self.last = 0         # last call result
        transport.bind(self)

    # -- frames -------------------------------------------------------------
    def _frame(self, cmd, np):
        o = self.out
        ln = np + 2
        o[3] = ln
        o[4] = (-ln) & 0xFF
        o[5] = _TFI_HOST
        o[6] = cmd
        s = _TFI_HOST + cmd + sum8(o, P, P + np)
        o[P + np] = (-s) & 0xFF
        o[P + np + 1] = 0
        return P + np + 2

    def _wait(self, ms):
        # Bounded wait for the chip's ready signal; 1 ms steps (virtual on host).
        c = self.clock
        t0 = c.ticks_ms()
        t = self.t
        while not t.ready():
            if c.ticks_diff(c.ticks_ms(), t0) >= ms:
                return False
            c.sleep_ms(1)
        return True

    def _left(self, ms):
        # Clip a wait to the caller's deadline so a whole poll stays bounded.
        if self.use_deadline:
            c = self.clock
            left = c.ticks_diff(self.deadline, c.ticks_ms())
            if left < ms:
                return left if left > 0 else 0
        return ms

    def _read(self, hint, ms, resend=True):
        """Read one frame; returns an F_* code (F_NONE on timeout/garbage)."""
        t = self.t
        res = self.res
        ms = self._left(ms)
        if t.stream:
            return t.read_stream(self, ms)
        if not self._wait(ms):
            return -1
        o = t.read(self.buf, hint)
        if o < 0:
            return F_NONE
        r = scan_frame(self.buf, o, o + hint, res)
        if r == F_MORE and resend:
            # Frame longer than our read: a NACK makes the chip send it again.
            need = res[2] - o
            if need > BUFSZ - 1 or not t.write(NACK, 6) or not self._wait(ms):
                return F_NONE
            o = t.read(self.buf, need)
            if o < 0:
                return F_NONE
            r = scan_frame(self.buf, o, o + need, res)
            if r == F_MORE:
                r = F_NONE
        return r

    def abort(self):
        """Host ACK: aborts whatever the chip is doing (UM 6.2.1.3)."""
        self.t.write(ACK, 6)

    def call(self, cmd, np=0, hint=16, ms=CMD_MS):
        """Issue cmd with np parameter bytes already in self.out[P:]; hint is
        the expected response frame size. Returns payload length or E_*.

        Frames are examined one by one (at most _FRAMES): a NACK from the chip
        resends our frame; a data frame before our ACK is a stale reply and is
        skipped; an unparsable read (garbage, a partial I2C read) is taken as
        a garbled ACK, so the answer that follows is still collected."""
        if self.use_deadline and self._left(1) <= 0:
            return self._fail(E_DEADLINE)
        self.commands += 1
        n = self._frame(cmd, np)
        t = self.t
        if not t.write(self.out, n):
            return self._fail(E_LINK)
        acked = False
        nacks = 0
        for _ in range(_FRAMES):
            if acked:
                r = self._read(hint, ms)
            else:
                r = self._read(6, ACK_MS, False)
            if r < 0:
                if acked:
                    self.abort()   # stop the command so its late answer cannot confuse the next
                    return self._fail(E_TIMEOUT)
                return self._fail(E_NOACK)
            if r == F_ACK:
                acked = True
            elif r == F_NACK:
                nacks += 1
                if acked or nacks > 2 or not t.write(self.out, n):
                    break
            elif r == F_DATA:
                if acked and self.buf[self.res[0] + 1] == cmd + 1:
                    res = self.res
                    self.off = res[0] + 2
                    self.last = res[1] - 2
                    return self.last
                # a stale reply (before our ACK, or for another command): skip
            elif r == F_ERR:
                if acked:
                    return self._fail(E_CHIP)
            else:
                acked = True
        self.abort()
        return self._fail(E_FRAME)

    def _fail(self, e):
        if (e == E_NOACK or e == E_TIMEOUT) and self.use_deadline and self._left(1) <= 0:
            e = E_DEADLINE
        self.errors += 1
        self.last = e
        return e

    # -- commands -----------------------------------------------------------
    def firmware_version(self):
        """(IC, Ver, Rev, Support) or None. IC must be 0x32 for a PN532."""
        if self.call(CMD_FWVER, 0, 14) != 4:
            return None
        b = self.buf
        o = self.off
        return (b[o], b[o + 1], b[o + 2], b[o + 3])

    def serial_baud(self, rate):
        """SetSerialBaudRate (UM0701 7.2.8). The chip sends its ACK and its
        answer at the old rate and changes rate once it has our ACK, which
        is sent here: the host must switch its UART right after that ACK has
        left the line. False: rate unknown or the chip did not answer (it
        stays at the old rate)."""
        br = -1
        for i in range(len(HSU_RATES)):
            if HSU_RATES[i] == rate:
                br = i
        if br < 0:
            return False
        self.out[P] = br
        if self.call(CMD_BAUD, 1, 9) < 0:
            return False
        return self.t.write(ACK, 6)

    def sam_config(self):
        o = self.out
        o[P] = 0x01       # normal mode: no SAM
        o[P + 1] = 0x14   # virtual-card timeout 20 x 50 ms (unused in normal mode)
        o[P + 2] = 0x01   # drive the IRQ pin
        return self.call(CMD_SAM, 3, 10) >= 0

    def rf_retries(self, atr=0xFF, psl=0x01, passive=0x01):
        # MxRtyPassiveActivation 0xFF (the default) would retry forever.
        o = self.out
        o[P] = 0x05
        o[P + 1] = atr
        o[P + 2] = psl
        o[P + 3] = passive
        return self.call(CMD_RFCFG, 4, 10) >= 0

    def rf_field(self, on):
        o = self.out
        o[P] = 0x01
        o[P + 1] = 0x01 if on else 0x00  # bit0 RF on, bit1 AutoRFCA (off)
        return self.call(CMD_RFCFG, 2, 10) >= 0

    def list_a(self, ms=CMD_MS):
        """InListPassiveTarget, 1 target, 106 kbps type A. Returns payload length
        (NbTg at buf[off]) or E_*."""
        o = self.out
        o[P] = 0x01
        o[P + 1] = 0x00
        return self.call(CMD_LIST, 2, 44, ms)

    def release(self):
        self.out[P] = 0x00  # all targets
        return self.call(CMD_RELEASE, 1, 10)

    def exchange(self, data, n, hint, ms):
        """InDataExchange to target 1 with data[0:n]. Returns payload length
        (status byte at buf[off], card data after it) or E_*."""
        if n > 250:
            raise ReaderError("apdu too long")
        o = self.out
        o[P] = 0x01
        copy8(o, P + 1, data, 0, n)
        return self.call(CMD_DATAX, n + 1, hint + 10, ms)

    def wipe(self):
        """Zero both buffers: responses may have carried personal data."""
        b = self.buf
        for k in range(BUFSZ):
            b[k] = 0
        b = self.out
        for k in range(3, BUFSZ):
            b[k] = 0
        self.t.wipe()
