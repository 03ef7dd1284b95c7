# The fake machine.SPI/SoftSPI: chip-select through a Pin, MISO idles 0xFF,
# bit order converted so the device always sees true wire order.
import vclock
import machine
from vhw import bus, chip, m_spi


class Echo:
    """Answers each transfer with the bytes of the previous one (wire order)."""

    def __init__(self):
        self.sel = []
        self.rx = []
        self.last = b""

    def spi_select(self, active):
        self.sel.append(active)

    def spi_transfer(self, wire):
        self.rx.append(bytes(wire))
        out = self.last if len(self.last) == len(wire) else bytes(len(wire))
        self.last = bytes(wire)
        return out


def setup():
    vclock.reset()
    bus.reset()
    chip.configure()


def test_bad_id():
    for bad in (0, 3):
        try:
            machine.SPI(bad)
        except ValueError:
            pass
        else:
            raise AssertionError("SPI(%d) accepted" % bad)


def test_cs_edges_and_idle_miso():
    d = Echo()
    bus.attach_spi(2, 5, d)
    spi = machine.SPI(2, baudrate=1000000, sck=18, mosi=23, miso=19)
    cs = machine.Pin(5, machine.Pin.OUT, value=1)
    assert spi.read(2) == b"\xff\xff"  # nobody selected
    assert d.rx == []
    cs(0)
    cs(0)
    spi.write(b"\x01\x02")
    assert spi.read(2, 0x00) == b"\x01\x02"
    cs(1)
    assert d.sel == [True, False]
    assert d.rx == [b"\x01\x02", b"\x00\x00"]


def test_lsb_first_is_reversed_on_the_wire():
    d = Echo()
    bus.attach_spi(1, 15, d)
    spi = machine.SPI(1, baudrate=5000000, firstbit=machine.SPI.LSB)
    machine.Pin(15, machine.Pin.OUT, value=0)
    spi.write(b"\x01\x02\x80")
    assert d.rx[-1] == b"\x80\x40\x01"  # what travels first is bit 0
    b = bytearray(3)
    spi.write_readinto(b"\x00\x00\x00", b)
    assert bytes(b) == b"\x01\x02\x80"  # and comes back the way it left
    spi.init(firstbit=machine.SPI.MSB)
    spi.write(b"\x01")
    assert d.rx[-1] == b"\x01"


def test_software_bit_reversal_matches_lsb_hardware():
    # the PN532 driver reverses bits itself and runs the bus MSB first
    d = Echo()
    bus.attach_spi(2, 5, d)
    spi = machine.SPI(2, firstbit=machine.SPI.MSB)
    machine.Pin(5, machine.Pin.OUT, value=0)
    spi.write(bytes((m_spi._REV[0x02],)))
    assert d.rx[-1] == b"\x40"


def test_timing_stats_and_lengths():
    bus.attach_spi(2, 5, Echo())
    spi = machine.SPI(2, baudrate=5000000)
    machine.Pin(5, machine.Pin.OUT, value=0)
    spi.write(bytes(100))
    assert vclock.now_us() == 160  # 100 bytes x 8 bits at 5 MHz
    assert bus.stats["spi_bytes"] == 100
    try:
        spi.write_readinto(b"\x00\x00", bytearray(3))
    except ValueError:
        pass
    else:
        raise AssertionError("length mismatch accepted")
    b = bytearray(4)
    spi.readinto(b, 0xAA)
    assert bus.stats["spi_bytes"] == 104


def test_soft_spi_bus_by_sck():
    d = Echo()
    bus.attach_spi("soft18", 5, d)
    s = machine.SoftSPI(baudrate=100000, sck=machine.Pin(18), mosi=machine.Pin(23), miso=machine.Pin(19))
    machine.Pin(5, machine.Pin.OUT, value=0)
    s.write(b"\x5a")
    assert d.rx == [b"\x5a"]
    assert vclock.now_us() == 80
