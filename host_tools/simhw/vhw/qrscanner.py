# Simulated UART QR scanner module (GM65-class): after decoding a code it
# sends the text plus a terminator on its TX line, which is the ESP32's RX.
# Bytes go through the fake UART port (port.deliver), so they arrive one by
# one at the line's baud rate into the driver's rx ring, as real bytes do.
# A scanner set to another baud rate than the firmware's UART is modeled:
# every byte then arrives garbled (what a UART decodes at the wrong speed).
# Portable (CPython and MicroPython).
import vclock
from vhw import bus, keep

DEFAULT_DECODE_US = 120000   # camera frame + decode of a ~440-character code from a phone screen


class QRScannerSim:
    def __init__(self, term=b"\r\n", decode_us=0):
        """term: what the module appends to each code (its setting: CR, LF,
        CRLF, TAB or nothing). decode_us: modeled time between scan() and the
        first byte (0 by default, so line-to-decision figures start at the line)."""
        self.term = bytes(term)
        self.decode_us = decode_us
        self.uart_id = None
        self.baud = 9600
        self.port = None
        self.sent = []           # (time_us, bytes) as handed to the line, the last vhw.LOG_CAP
        self.lost = 0            # bytes sent while the firmware had no UART open
        self.rx = []             # commands the firmware sent to the module (ignored by it)

    # --- wiring -----------------------------------------------------------
    def attach(self, uart_id, baud=9600):
        self.uart_id = uart_id
        self.baud = baud
        bus.attach_uart(uart_id, self)
        p = bus.uart_port(uart_id)
        if p is not None:
            self.port = p

    def uart_attached(self, port):
        self.port = port

    def uart_rx(self, buf):
        # Setup commands from a host (the module's serial protocol) are not modeled.
        if len(self.rx) < 16:
            self.rx.append(bytes(buf))

    # --- the line ---------------------------------------------------------
    def _port(self):
        p = self.port
        if p is None and self.uart_id is not None:
            p = self.port = bus.uart_port(self.uart_id)
        return p

    def send_raw(self, data):
        """Put bytes on the line now (at the firmware UART's baud rate)."""
        data = bytes(data)
        p = self._port()
        keep(self.sent, (vclock.now_us(), data))
        if p is None or not p.open:
            self.lost += len(data)
            return False
        if getattr(p, "baudrate", self.baud) != self.baud:
            data = bytes(((b * 7 + 0x5A) & 0xFF) | 0x80 for b in data)
        p.deliver(data)
        return True

    def line_us(self, text):
        """Time the line of text takes on the wire (10 bits a byte)."""
        n = len(text) + len(self.term)
        return n * 10 * 1000000 // self.baud

    def scan(self, text):
        """A code was presented: its text arrives after the decode time."""
        return self.scan_at(self.decode_us, text)

    def scan_at(self, after_us, text, term=None):
        if isinstance(text, str):
            text = text.encode()
        data = bytes(text) + (self.term if term is None else bytes(term))
        if after_us <= 0:
            self.send_raw(data)
            return None
        return vclock.schedule(after_us, lambda: self.send_raw(data))

    def garbage(self, n, seed=1, after_us=0):
        """n bytes of line noise (a floating RX pin, a power glitch)."""
        out = bytearray(n)
        x = seed & 0xFFFF or 1
        for i in range(n):
            x = (x * 75 + 74) % 65537
            out[i] = x & 0xFF
        if after_us <= 0:
            return self.send_raw(out)
        data = bytes(out)
        return vclock.schedule(after_us, lambda: self.send_raw(data))

    def partial(self, text, keep=None, after_us=0):
        """The first `keep` characters of a code and no terminator (a
        scanner reset or a cut cable mid-line)."""
        if isinstance(text, str):
            text = text.encode()
        if keep is None:
            keep = len(text) // 2
        return self.scan_at(after_us, text[:keep], term=b"")
