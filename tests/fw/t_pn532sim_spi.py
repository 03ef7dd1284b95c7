# PN532 simulator over SPI (UM0701-02 6.2.5): the first byte of each CS-low
# transaction is 02 status read, 01 data write or 03 data read, and the chip
# is LSB first: the wire carries every byte bit-reversed (01 -> 80, 02 -> 40).
from vhw import bus
import vclock
from t_pn532sim_util import h, cmd, parse, fresh, ACK


def rev(b):
    out = bytearray()
    for x in b:
        r = 0
        for k in range(8):
            r |= ((x >> k) & 1) << (7 - k)
        out.append(r)
    return bytes(out)


def _chip():
    sim = fresh()
    sim.attach_spi(2, 5, baud=0)
    return sim


def xfer(sim, wire):
    sim.spi_select(True)
    out = sim.spi_transfer(wire)
    sim.spi_select(False)
    return out


def test_wire_bytes_are_lsb_first():
    sim = _chip()
    assert bus.spi_devices(2) == [(5, sim)]
    # data write: prefix 01 + GetFirmwareVersion, as they travel on MOSI
    wire = h("80 00 00 FF 40 7F 2B 40 54 00")
    assert wire == rev(h("01") + cmd(0x02))
    assert xfer(sim, wire) == bytes(10)
    assert xfer(sim, h("40 00")) == h("00 00")         # status read: not ready
    vclock.advance_us(200)
    assert xfer(sim, h("40 00")) == h("00 80")         # status 01, LSB first on MISO
    assert xfer(sim, h("C0") + bytes(6)) == h("00") + rev(ACK)
    vclock.advance_us(800)
    got = xfer(sim, h("C0") + bytes(13))
    assert got == rev(h("00 00 00 FF 06 FA D5 03 32 01 06 07 E8 00"))
    assert xfer(sim, h("40 00")) == h("00 00")         # consumed at CS high


def test_read_split_over_transfers_in_one_select():
    sim = _chip()
    xfer(sim, rev(h("01") + cmd(0x02)))
    vclock.advance_us(1000)
    xfer(sim, rev(h("03")) + bytes(6))                 # the ACK
    sim.spi_select(True)
    sim.spi_transfer(rev(h("03")))
    head = rev(sim.spi_transfer(bytes(6)))
    rest = rev(sim.spi_transfer(bytes(8)))
    sim.spi_select(False)
    assert parse(head + rest) == ("frame", h("D5 03 32 01 06 07"))


def test_data_read_before_ready_returns_nothing_and_keeps_frame():
    sim = _chip()
    xfer(sim, rev(h("01") + cmd(0x02)))
    assert xfer(sim, rev(h("03")) + bytes(6)) == bytes(7)
    vclock.advance_us(200)
    assert rev(xfer(sim, rev(h("03")) + bytes(6)))[1:] == ACK


def test_spi_link_time():
    sim = fresh()
    sim.attach_spi(2, 5, baud=5000000)                 # 8 bits at 5 MHz = 1.6 us per byte
    t0 = vclock.now_us()
    xfer(sim, bytes(1000))
    assert vclock.now_us() - t0 == 1600
