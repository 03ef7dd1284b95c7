# The fake machine.UART: line time on the virtual clock, bytes arriving one by
# one at the baud rate, blocking reads with timeouts, a bounded rx ring.
import vclock
import machine
from vhw import bus, chip


class Dev:
    def __init__(self, reply=None, delay_us=0):
        self.port = None
        self.rx = []
        self.reply = reply
        self.delay_us = delay_us

    def uart_attached(self, port):
        self.port = port

    def uart_rx(self, buf):
        self.rx.append((vclock.now_us(), bytes(buf)))
        if self.reply is not None:
            r = self.reply
            vclock.schedule(self.delay_us, lambda: self.port.deliver(r))


def setup():
    vclock.reset()
    bus.reset()
    chip.configure()


def test_bad_id_and_args():
    for fn in (lambda: machine.UART(3), lambda: machine.UART(1, bits=9),
               lambda: machine.UART(1, stop=3)):
        try:
            fn()
        except ValueError:
            pass
        else:
            raise AssertionError("accepted")


def test_tx_arrives_after_line_time():
    d = Dev()
    bus.attach_uart(1, d)
    u = machine.UART(1, 115200, tx=17, rx=18)
    assert d.port is not None and bus.uart_port(1) is d.port
    assert u.write(b"\x55\x55\x00\x00") == 4
    assert not u.txdone()
    assert d.rx == []
    u.flush()
    assert u.txdone()
    assert d.rx == [((4 * 10 * 1000000) // 115200, b"\x55\x55\x00\x00")]
    assert bus.stats["uart_bytes"] == 4


def test_rx_one_byte_at_a_time():
    d = Dev()
    bus.attach_uart(2, d)
    u = machine.UART(2, 9600)
    d.port.deliver(b"ABCDEFGHIJ")  # 1.0417 ms per byte at 9600 8N1
    assert u.any() == 0
    assert u.read() is None  # timeout=0: only what is there
    vclock.advance_us(3200)
    assert u.any() == 3
    assert u.read(2) == b"AB"
    vclock.advance_us(100000)
    assert u.read() == b"CDEFGHIJ"
    assert bus.stats["uart_bytes"] == 10


def test_blocking_read_advances_clock():
    d = Dev(reply=b"\x00\x00\xff\x00\xff\x00", delay_us=2000)
    bus.attach_uart(1, d)
    u = machine.UART(1, 115200, timeout=50)
    u.write(b"\x01")
    buf = bytearray(6)
    assert u.readinto(buf) == 6
    assert bytes(buf) == b"\x00\x00\xff\x00\xff\x00"
    t_tx = (10 * 1000000) // 115200
    assert vclock.now_us() == t_tx + 2000 + 521  # 6 x 86.8 us, rounded up
    t = vclock.now_us()
    assert u.read(1) is None  # nothing comes: waits the whole timeout
    assert vclock.now_us() - t == 50000


def test_read_returns_partial_after_gap():
    d = Dev()
    bus.attach_uart(1, d)
    u = machine.UART(1, 115200, timeout=10)
    d.port.deliver(b"abc")
    assert u.read(10) == b"abc"  # 3 bytes, then 10 ms of silence


def test_readline():
    d = Dev()
    bus.attach_uart(2, d)
    u = machine.UART(2, 9600, timeout=100)
    d.port.deliver(b"QR:12345\r\nnext")
    assert u.readline() == b"QR:12345\r\n"
    assert u.readline() == b"next"
    assert u.readline() is None


def test_rx_overflow_drops_and_counts():
    d = Dev()
    bus.attach_uart(1, d)
    u = machine.UART(1, 115200, rxbuf=64)
    d.port.deliver(bytes(range(100)))
    vclock.advance_us(20000)
    assert u.any() == 64
    assert d.port.dropped == 36
    assert u.read() == bytes(range(64))


def test_parity_and_stop_bits_change_frame_time():
    d = Dev()
    bus.attach_uart(1, d)
    u = machine.UART(1, 100000, bits=8, parity=0, stop=2)
    u.write(b"\x00")
    u.flush()
    assert vclock.now_us() == 120  # 1 start + 8 data + parity + 2 stop at 100 kBd


def test_reinit_keeps_port_and_deinit_stops_rx():
    d = Dev()
    bus.attach_uart(1, d)
    u = machine.UART(1, 115200)
    p = d.port
    u.init(baudrate=57600)
    assert p.baudrate == 57600 and d.port is p
    u.deinit()
    p.deliver(b"x")
    vclock.advance_us(1000)
    assert p.flight == []
