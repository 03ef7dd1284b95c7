# Part of the host's fake `machine` module (see machine.py): UART, loaded on first
# use. Portable.
import vclock
import machine as _m
from vhw import bus as _bus
from vhw import chip as _chip
from machine import _gpio


# --- UART --------------------------------------------------------------------


class _UartPort:
    """The UART driver of one id: what a simulated device talks to.
    Device side: port.deliver(buf) sends bytes to the ESP32 (they arrive one by
    one at the baud rate into the rx ring); port.baudrate is the line speed."""

    def __init__(self, uid):
        self.id = uid
        self.open = True
        self.dropped = 0  # bytes lost to a full rx ring
        self.flight = []  # [start_us, data, n_arrived]
        self.rx_free_us = 0
        self.tx_busy_us = 0
        self.dev = None

    def setup(self, baud, frame_x2, rxbuf):
        self.baudrate = baud
        self.fx2 = frame_x2  # bits per frame, times 2 (1.5 stop bits exist)
        self.ring = bytearray(rxbuf)
        self.head = 0
        self.count = 0

    def close(self):
        self.open = False
        self.flight = []

    def byte_us(self, n):
        return (n * self.fx2 * 1000000) // (2 * self.baudrate)

    def deliver(self, buf):
        if not self.open:
            return
        now = vclock.now_us()
        start = self.rx_free_us if self.rx_free_us > now else now
        data = bytes(buf)
        self.flight.append([start, data, 0])
        self.rx_free_us = start + self.byte_us(len(data))

    def settle(self):
        """Move every byte that has arrived by now into the ring."""
        now = vclock.now_us()
        while self.flight:
            f = self.flight[0]
            k = ((now - f[0]) * 2 * self.baudrate) // (self.fx2 * 1000000)
            if k > len(f[1]):
                k = len(f[1])
            ring = self.ring
            cap = len(ring)
            for i in range(f[2], k):
                if self.count < cap:
                    ring[(self.head + self.count) % cap] = f[1][i]
                    self.count += 1
                else:
                    self.dropped += 1
            _bus.count("uart_bytes", k - f[2])
            f[2] = k
            if k < len(f[1]):
                # when the next byte has fully landed (rounded up, so that
                # settle() at that instant sees it)
                return f[0] - (-(k + 1) * self.fx2 * 1000000 // (2 * self.baudrate))
            self.flight.pop(0)
        return None

    def take(self, mv, n):
        ring = self.ring
        cap = len(ring)
        n = min(n, self.count)
        for i in range(n):
            mv[i] = ring[(self.head + i) % cap]
        self.head = (self.head + n) % cap
        self.count -= n
        return n

    def wait(self, n, timeout_ms):
        """Block (advance the clock) until n bytes are buffered or no byte
        arrived for timeout_ms. Returns the buffered count."""
        nxt = self.settle()
        if timeout_ms <= 0:
            return self.count
        deadline = vclock.now_us() + timeout_ms * 1000
        while self.count < n:
            now = vclock.now_us()
            if now >= deadline:
                break
            t = deadline
            if nxt is not None and nxt < t:
                t = nxt
            e = vclock.next_event_us()
            if e is not None and e < t:
                t = e
            before = self.count
            vclock.advance_us(t - now if t > now else 0)
            nxt = self.settle()
            if self.count > before:
                deadline = vclock.now_us() + timeout_ms * 1000
        return self.count


class UART:
    INV_TX = 1
    INV_RX = 4
    INV_RTS = 2
    INV_CTS = 8
    RTS = 1
    CTS = 2

    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, **kw):
        if not (0 <= id < _chip.get().n_uart):
            raise ValueError("UART(%d) does not exist" % id)
        self._id = id
        self._baud = 115200
        self._bits = 8
        self._parity = None
        self._stop = 1
        self._timeout = 0
        self._timeout_char = 0
        self._rxbuf = 256
        self._txbuf = 256
        self.init(baudrate, bits, parity, stop, **kw)

    def init(self, baudrate=None, bits=None, parity=-1, stop=None, *, tx=None, rx=None,
             rts=None, cts=None, txbuf=None, rxbuf=None, timeout=None, timeout_char=None,
             invert=None, flow=None):
        if baudrate is not None:
            if baudrate <= 0:
                raise ValueError("baudrate")
            self._baud = baudrate
        if bits is not None:
            if bits not in (5, 6, 7, 8):
                raise ValueError("invalid data bits")
            self._bits = bits
        if parity != -1:
            if parity not in (None, 0, 1):
                raise ValueError("invalid parity")
            self._parity = parity
        if stop is not None:
            if stop not in (1, 1.5, 2):
                raise ValueError("invalid stop bits")
            self._stop = stop
        for p in (tx, rx, rts, cts):
            if p is not None:
                _gpio(p)
        if txbuf is not None:
            self._txbuf = txbuf
        if rxbuf is not None:
            self._rxbuf = rxbuf
        if timeout is not None:
            self._timeout = timeout
        if timeout_char is not None:
            self._timeout_char = timeout_char
        port = _m._uarts.get(self._id)
        fx2 = 2 * (1 + self._bits + (0 if self._parity is None else 1)) + int(self._stop * 2)
        if port is None or not port.open or rxbuf is not None:
            if port is not None:
                port.close()
            port = _UartPort(self._id)  # (re)installing the driver empties it
            port.setup(self._baud, fx2, self._rxbuf)
            _m._uarts[self._id] = port
        port.settle()  # bytes already on the line arrive at the old speed
        port.baudrate = self._baud
        port.fx2 = fx2
        self._port = port
        _bus.set_uart_port(self._id, port)
        self._attach()

    def _attach(self):
        dev = _bus.uart_device(self._id)
        if dev is not None and self._port.dev is not dev:
            self._port.dev = dev
            if hasattr(dev, "uart_attached"):
                dev.uart_attached(self._port)

    def __repr__(self):
        return "UART(%d, baudrate=%d, bits=%d, parity=%s, stop=%s, rxbuf=%d, timeout=%d, timeout_char=%d)" % (
            self._id, self._baud, self._bits, self._parity, self._stop, self._rxbuf,
            self._timeout, self._timeout_char)

    def deinit(self):
        self._port.close()

    def any(self):
        self._port.settle()
        return self._port.count

    def _readn(self, mv, n):
        if n == 0:
            return 0
        port = self._port
        port.wait(n, self._timeout)
        got = port.take(mv, n)
        return got

    def read(self, nbytes=None):
        if nbytes is None:
            self._port.settle()
            nbytes = self._port.count
            if nbytes == 0:
                self._port.wait(1, self._timeout)
                nbytes = self._port.count
                if nbytes == 0:
                    return None
        b = bytearray(nbytes)
        got = self._readn(memoryview(b), nbytes)
        if got == 0 and nbytes:
            return None
        return bytes(b) if got == nbytes else bytes(b[:got])

    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None else min(nbytes, len(buf))
        got = self._readn(memoryview(buf), n)
        return got if (got or n == 0) else None

    def readline(self):
        out = bytearray()
        one = bytearray(1)
        while True:
            if self._readn(memoryview(one), 1) == 0:
                break
            out.append(one[0])
            if one[0] == 10:
                break
        return bytes(out) if out else None

    def write(self, buf):
        self._attach()
        port = self._port
        n = len(buf)
        now = vclock.now_us()
        start = port.tx_busy_us if port.tx_busy_us > now else now
        port.tx_busy_us = start + port.byte_us(n)
        _bus.count("uart_bytes", n)
        # uart_write_bytes blocks until the rest fits the tx ring + 128-byte FIFO
        cap_us = port.byte_us(self._txbuf + 128)
        if port.tx_busy_us - cap_us > now:
            vclock.advance_to_us(port.tx_busy_us - cap_us)
        dev = port.dev
        if dev is not None:
            data = bytes(buf)
            vclock.schedule(port.tx_busy_us - vclock.now_us(), lambda: dev.uart_rx(data))
        return n

    def flush(self):
        vclock.advance_to_us(self._port.tx_busy_us)

    def txdone(self):
        return vclock.now_us() >= self._port.tx_busy_us

    def sendbreak(self):
        self.flush()
        vclock.advance_us(self._port.byte_us(2))
        dev = self._port.dev
        if dev is not None and hasattr(dev, "uart_break"):
            dev.uart_break()
