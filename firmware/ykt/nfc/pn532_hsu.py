# PN532 over HSU (UM0701 6.2.3): UART 8N1, a byte stream with no ready
# signal. The chip talks 115200 after power-up and after RSTPD_N; a faster
# line (`baud`) is negotiated at every start with SetSerialBaudRate
# (Reader._init_chip): the chip ACKs and answers at the old rate, switches on
# the host's ACK, and the host switches once that ACK has left the wire. If
# the chip does not answer at the new rate, the reader resets it and stays at
# 115200 (self.fast = False) until the next boot. Wake-up is 55 55 plus ~15 x 00 (the chip needs the long
# preamble to leave power-down). Bytes are collected in our own buffer and a
# complete frame is copied into the protocol buffer, so bytes that follow a
# frame (an answer arriving right behind its ACK) are kept for the next read.
from ykt.compat import const
from ykt.nfc.pn532 import Views, BUFSZ, scan_frame, copy8, F_NONE, F_MORE

_CHUNK = const(32)
_WAKE = b"\x55\x55" + b"\x00" * 15
BASE = const(115200)   # the chip's rate after power-up or a reset


class PN532_HSU:
    stream = True

    def __init__(self, uart, irq=None, baud=BASE):
        self.uart = uart        # machine.UART(id, 115200, timeout=0): opened at BASE
        self.irq = irq
        self.want = baud        # the rate the wiring carries (board file reader.baud)
        self.base = BASE
        self.rate = BASE        # the rate the UART runs at now
        self.fast = baud != BASE   # False once the chip failed to answer at `want`
        self.rx = bytearray(BUFSZ)
        self.n = 0
        self.sc = bytearray(_CHUNK)
        self.sv = [memoryview(self.sc)[:k] for k in range(_CHUNK + 1)]
        self.bytes = 0
        self.clock = None
        self.t_last = 0

    def bind(self, pn):
        self.clock = pn.clock
        self.wv = Views(pn.out)

    def wakeup(self):
        self.drain()
        self.uart.write(_WAKE)
        self.bytes += len(_WAKE)
        self.clock.sleep_ms(2)
        self.t_last = self.clock.ticks_ms()
        return True

    def drain(self):
        """Drop what is buffered here and what waits in the UART (a stale
        reply, half a frame)."""
        self.n = 0
        u = self.uart
        for _ in range(16):  # bounded: at most 16 x 32 stale bytes dropped
            k = u.any()
            if not k:
                break
            u.readinto(self.sv[_CHUNK if k > _CHUNK else k])

    def set_rate(self, rate):
        """Host side of a rate change, once the chip changes too: what was
        written leaves the line at the old rate first (uart.flush), and
        whatever arrived at the old rate is dropped."""
        u = self.uart
        u.flush()
        u.init(baudrate=rate)
        self.rate = rate
        self.drain()
        self.t_last = self.clock.ticks_ms()   # the chip's own switch: one frame gap

    def chip_reset(self):
        """RSTPD_N was pulsed: the chip is back at BASE."""
        if self.rate != BASE:
            self.set_rate(BASE)

    def ready(self):
        return self.n > 0 or self.uart.any() > 0

    def write(self, buf, n):
        c = self.clock
        # The chip misses a frame that follows the previous one too closely.
        if c.ticks_diff(c.ticks_ms(), self.t_last) < 1:
            c.sleep_ms(1)
        try:
            self.uart.write(buf if len(buf) == n else self.wv.get(n))
        except OSError:
            return False
        self.bytes += n
        self.t_last = c.ticks_ms()
        return True

    def _fill(self):
        u = self.uart
        k = u.any()
        if not k:
            return 0
        room = BUFSZ - self.n
        if k > room:
            k = room
        if k > _CHUNK:
            k = _CHUNK
        got = u.readinto(self.sv[k])
        if not got:
            return 0
        n = self.n
        copy8(self.rx, n, self.sc, 0, got)
        self.n = n + got
        self.bytes += got
        return got

    def read_stream(self, pn, ms):
        """Collect bytes until a complete frame (F_* code) or ms elapse (-1).
        Scans again only when new bytes arrived."""
        c = self.clock
        t0 = c.ticks_ms()
        res = pn.res
        rx = self.rx
        r = scan_frame(rx, 0, self.n, res)
        while True:
            if r != F_NONE and r != F_MORE:
                e = res[2]
                copy8(pn.buf, 0, rx, 0, e)
                n = self.n
                copy8(rx, 0, rx, e, n - e)   # keep what followed the frame
                self.n = n - e
                self.t_last = c.ticks_ms()
                return r
            if r == F_NONE and self.n > 1:
                rx[0] = rx[self.n - 1]   # a trailing 00 may start the next code
                self.n = 1
            elif self.n >= BUFSZ:
                self.n = 0
            while not self._fill():
                if c.ticks_diff(c.ticks_ms(), t0) >= ms:
                    return -1
                c.sleep_ms(1)
            r = scan_frame(rx, 0, self.n, res)

    def wipe(self):
        for b in (self.rx, self.sc):
            for k in range(len(b)):
                b[k] = 0
        self.n = 0
