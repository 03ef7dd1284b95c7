# PN532 host-link frames, device side (UM0701-02 section 6.2.1). Portable:
# CPython and the MicroPython unix port.
#
#   normal       00 00 FF LEN LCS TFI PD0..PDn DCS 00     LEN = len(TFI..PDn) <= 255
#   extended     00 00 FF FF FF LENM LENL LCS TFI PD.. DCS 00   LEN <= 265 on a PN532
#   ACK          00 00 FF 00 FF 00
#   NACK         00 00 FF FF 00 00
#   error        00 00 FF 01 FF 7F 81 00   (application level error / syntax error)
#   LEN + LCS = 0 (mod 256) ; TFI + PD0 + .. + PDn + DCS = 0 (mod 256)
#   TFI = D4 host -> PN532, D5 PN532 -> host

ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR_FRAME = b"\x00\x00\xff\x01\xff\x7f\x81\x00"
MAX_LEN = 265  # TFI + data bytes the PN532 accepts in one frame

TFI_HOST = 0xD4
TFI_CHIP = 0xD5


def frame(body):
    """Wrap TFI+data into a normal frame, or an extended one above 255 bytes."""
    n = len(body)
    s = 0
    for b in body:
        s += b
    if n <= 255:
        head = bytes((0, 0, 0xFF, n, (-n) & 0xFF))
    else:
        hi = n >> 8
        lo = n & 0xFF
        head = bytes((0, 0, 0xFF, 0xFF, 0xFF, hi, lo, (-(hi + lo)) & 0xFF))
    return head + bytes(body) + bytes(((-s) & 0xFF, 0))


def reply(code, data=b""):
    """The chip's answer to command `code`: D5 (code+1) data."""
    return frame(bytes((TFI_CHIP, (code + 1) & 0xFF)) + bytes(data))


def command(code, data=b""):
    """A host command frame (host-side helper for tools and tests)."""
    return frame(bytes((TFI_HOST, code)) + bytes(data))


# Deframer states
_HUNT = 0
_LEN = 1
_LCS = 2
_XM = 3
_XL = 4
_XCS = 5
_DATA = 6
_DCS = 7
_POST = 0x100  # "prev" marker: a frame just ended, a 00 now is its postamble


class Deframer:
    """Byte-at-a-time receiver for frames from the host, as the chip sees them.

    Calls sink.rx_ack(), sink.rx_nack(), sink.rx_frame(body, start_us) and
    sink.rx_bad(reason). Any number of 0x00 may precede the 00 FF start code;
    bytes that are not part of a frame are skipped, which is how the chip
    resynchronises after garbage. A frame whose LCS or DCS is wrong is dropped
    without any answer (UM0701-02: the host then times out and resends). The
    buffer is allocated once and bounded by MAX_LEN."""

    def __init__(self, sink):
        self.sink = sink
        self.buf = bytearray(MAX_LEN)
        self.reset()

    def reset(self):
        self.st = _HUNT
        self.prev = -1
        self.n = 0
        self.i = 0
        self.sum = 0
        self.a = 0
        self.start_us = 0
        self.zero_us = 0

    def feed_byte(self, b, t_us=0):
        st = self.st
        if st == _HUNT:
            if b == 0xFF and self.prev == 0:
                self.st = _LEN
                self.start_us = self.zero_us
            elif b == 0 and self.prev == _POST:
                b = -1  # the postamble of the frame just received, not a new preamble
            elif b == 0 and self.prev != 0:
                self.zero_us = t_us
            self.prev = b
            return
        if st == _LEN:
            self.a = b
            self.st = _LCS
            return
        if st == _LCS:
            a = self.a
            self._restart()
            if a == 0x00 and b == 0xFF:
                self.prev = _POST
                self.sink.rx_ack()
            elif a == 0xFF and b == 0x00:
                self.prev = _POST
                self.sink.rx_nack()
            elif a == 0xFF and b == 0xFF:
                self.st = _XM
            elif (a + b) & 0xFF:
                self.sink.rx_bad("lcs")
            elif a < 2:
                # TFI + command code at least; LEN 1 is the error frame, which a host never sends
                self.sink.rx_bad("len")
            else:
                self._begin(a)
            return
        if st == _XM:
            self.a = b << 8
            self.st = _XL
            return
        if st == _XL:
            self.a |= b
            self.st = _XCS
            return
        if st == _XCS:
            a = self.a
            self._restart()
            if ((a >> 8) + (a & 0xFF) + b) & 0xFF:
                self.sink.rx_bad("lcs")
            elif a < 2 or a > MAX_LEN:
                # an extended length of 0/1 or above the chip buffer is refused, never trusted
                self.sink.rx_bad("len")
            else:
                self._begin(a)
            return
        if st == _DATA:
            self.buf[self.i] = b
            self.i += 1
            self.sum += b
            if self.i == self.n:
                self.st = _DCS
            return
        # _DCS
        ok = ((self.sum + b) & 0xFF) == 0
        n = self.n
        start = self.start_us
        self._restart()
        if ok:
            self.prev = _POST
            self.sink.rx_frame(bytes(self.buf[:n]), start)
        else:
            self.sink.rx_bad("dcs")

    def _begin(self, n):
        self.n = n
        self.i = 0
        self.sum = 0
        self.st = _DATA

    def _restart(self):
        self.st = _HUNT
        self.prev = -1
