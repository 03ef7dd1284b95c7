# Driver for the common UART QR scanner modules (GM65, GM805, MJ-8000 and
# the like): each decoded code arrives as text followed by a terminator
# (CR, LF or CRLF; configurable, or none: then a silence ends the line).
# Non-blocking: poll() takes what the UART has buffered, at most `chunk`
# bytes a call, and returns True when a complete line became a QR read in
# the caller's CardRead (valid, or refused with its reason for the journal).
#
# Trust nothing that arrives: a line is bounded (max_line; longer lines are
# read to their end and refused as malformed), a line with bytes outside
# printable ASCII is line noise (baud mismatch, a floating RX pin) and is
# dropped without a tap, and a line cut short (no terminator, then silence
# for gap_ms) is dropped too: a scanner sends a whole line in one burst.
# Buffers are allocated once; a line costs no allocation before verification.
from ykt import cardread as CR
from ykt import taprec as T
from ykt.qr import qrtoken
from ykt.compat import const, ticks_ms, ticks_diff

_CHUNK = const(128)


class QRScanner:
    def __init__(self, uart, verifier=None, term=b"\r\n", max_line=qrtoken.MAX_TEXT,
                 gap_ms=100, chunk=_CHUNK):
        """uart: a machine.UART (any object with any() and readinto(buf, n)).
        verifier: a qrtoken.Verifier, settable later (qr.verifier = ...); while
        it is None every code is refused with R_QR_UNKNOWN_KEY (no QR keys).
        term: bytes whose every byte ends a line (b"\\r\\n": CR, LF or CRLF;
        b"" : a silence of gap_ms ends a line)."""
        self.uart = uart
        self.verifier = verifier
        self.term = bytes(term)
        self.gap_ms = gap_ms
        self.line = bytearray(max_line)
        self.n = 0
        self._over = False        # the current line passed max_line
        self._noise = False       # the current line has a non-printable byte
        self._chunk = bytearray(chunk)
        self._pos = 0
        self._len = 0
        self._rx_ms = ticks_ms()
        self.lines = 0            # complete lines seen
        self.noise = 0            # lines dropped as line noise
        self.partial = 0          # lines dropped unterminated
        self.oversized = 0        # lines refused as longer than max_line
        self.ignored = 0          # re-sent copies of the code just accepted

    def stats(self):
        return {"lines": self.lines, "noise": self.noise, "partial": self.partial,
                "oversized": self.oversized, "ignored": self.ignored}

    def _reset_line(self):
        self.n = 0
        self._over = False
        self._noise = False

    def poll(self, cr):
        """-> True when cr holds a QR read (cr.kind == KIND_QR, cr.qr_reason)."""
        while True:
            if self._pos >= self._len:
                k = self.uart.any()
                if not k:
                    return self._idle(cr)
                got = self.uart.readinto(self._chunk, k if k < len(self._chunk) else len(self._chunk))
                if not got:
                    return self._idle(cr)
                self._pos = 0
                self._len = got
                self._rx_ms = ticks_ms()
            if self._scan():
                r = self._line(cr)
                if r is not None:
                    return r
            elif self._pos >= self._len:
                return False  # consumed this chunk; more next poll (bounded work per call)

    def _scan(self):
        """Consume chunk bytes up to a terminator. -> True at a line end."""
        term = self.term
        line = self.line
        cap = len(line)
        buf = self._chunk
        i = self._pos
        end = self._len
        n = self.n
        while i < end:
            c = buf[i]
            i += 1
            if term and c in term:
                self._pos = i
                self.n = n
                if n or self._over:
                    return True
                self._noise = False  # CR then LF: an empty line, nothing to do
                continue
            if c < 32 or c > 126:
                self._noise = True
            if n < cap:
                line[n] = c
                n += 1
            else:
                self._over = True
        self._pos = i
        self.n = n
        return False

    def _idle(self, cr):
        if self.n or self._over:
            if ticks_diff(ticks_ms(), self._rx_ms) >= self.gap_ms:
                if not self.term:
                    r = self._line(cr)
                    return bool(r)
                self.partial += 1
                self._reset_line()
        return False

    def _line(self, cr):
        """A complete line: -> True (cr filled), or None (dropped)."""
        self.lines += 1
        if self._noise:
            self.noise += 1
            self._reset_line()
            return None
        if self._over:
            self.oversized += 1
            self._reset_line()
            return _refuse(cr, T.R_QR_MALFORMED)
        v = self.verifier
        if v is None:
            self._reset_line()
            return _refuse(cr, T.R_QR_UNKNOWN_KEY)
        r = v.verify_text(self.line, self.n, cr)
        self._reset_line()
        if r == qrtoken.IGNORE:
            self.ignored += 1
            return None
        return True


def _refuse(cr, reason):
    cr.clear()
    cr.kind = CR.KIND_QR
    for k in range(8):
        cr.qr_token[k] = 0
    cr.qr_reason = reason
    return True
