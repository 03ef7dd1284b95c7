# Every command the firmware driver and nfcpy use, with exact frames, over each
# transport (I2C status byte, SPI prefixes and LSB-first wire, HSU wake-up):
# the same chip answers byte for byte, whatever carries the frames.
import vclock
from t_pn532sim_util import h, cmd, fresh, Port, ACK, SSC_DF
from t_pn532sim_spi import rev


def frame(body_hex):
    """A chip answer frame from its body (D5 ...), checksums computed here."""
    body = h(body_hex)
    s = 0
    for b in body:
        s += b
    n = len(body)
    return bytes((0, 0, 0xFF, n, (256 - n) & 0xFF)) + body + bytes(((256 - s) & 0xFF, 0))


# (command code, data, answer body): one session with ssc_nanning in the field
SESSION = (
    (0x02, "", "D5 03 32 01 06 07"),                               # GetFirmwareVersion
    (0x14, "01 14 01", "D5 15"),                                   # SAMConfiguration
    (0x32, "05 FF 01 02", "D5 33"),                                # RFConfiguration MaxRetries
    (0x32, "02 00 0B 0A", "D5 33"),                                # RFConfiguration timings
    (0x12, "14", "D5 13"),                                         # SetParameters
    (0x00, "00 AA 55", "D5 01 00 AA 55"),                          # Diagnose line test
    (0x04, "", "D5 05 00 00 00 00"),                               # GetGeneralStatus
    (0x08, "63 05 40", "D5 09"),                                   # WriteRegister
    (0x06, "63 05 63 02", "D5 07 40 80"),                          # ReadRegister
    (0x4A, "01 00", "D5 4B 01 01 00 08 20 04 5A 3C 9E 21 0C 78 80 70 02 53 53 43 2D 53 49 4D"),
    (0x40, "01 00 A4 04 00 0F" + SSC_DF.hex(),                     # InDataExchange SELECT
     "D5 41 00 6F 17 84 0F " + SSC_DF.hex() + " A5 04 9F 08 01 03 90 00"),
    (0x40, "01 00 B2 03 2C 00", "D5 41 00 03 04 33 2E 30 30 90 00"),  # READ RECORD 03
    (0x44, "01", "D5 45 00"),                                      # InDeselect
    (0x54, "01", "D5 55 00"),                                      # InSelect
    (0x52, "00", "D5 53 00"),                                      # InRelease
    (0x16, "B0 00", "D5 17 00"),                                   # PowerDown
)


def _i2c():
    sim = fresh()
    sim.attach_i2c(0, freq=0)

    def run(c, d, n):
        sim.i2c_write(cmd(c, d))
        out = []
        for want in (6, n):
            while sim.i2c_read(1)[0] != 1:
                vclock.advance_us(100)
            out.append(sim.i2c_read(1 + want)[1:])
        return out
    return sim, run


def _spi():
    sim = fresh()
    sim.attach_spi(2, 5, baud=0)

    def x(wire):
        sim.spi_select(True)
        r = sim.spi_transfer(wire)
        sim.spi_select(False)
        return r

    def run(c, d, n):
        x(rev(h("01") + cmd(c, d)))
        out = []
        for want in (6, n):
            while x(rev(h("02 00")))[1] != 0x80:
                vclock.advance_us(100)
            out.append(rev(x(rev(h("03")) + bytes(want))[1:]))
        return out
    return sim, run


def _hsu():
    sim = fresh()
    port = Port()
    sim.attach_hsu(1, port)

    def run(c, d, n):
        f = h("55 55") + bytes(15) + cmd(c, d)   # always wake: PowerDown ends the session
        vclock.advance_us(len(f) * 87)
        sim.uart_rx(f)
        t0 = vclock.now_us()
        while len(port.rx) < 6 + n:
            vclock.advance_us(100)
            assert vclock.now_us() - t0 < 1000000
        b = port.take()
        return [b[:6], b[6:]]
    return sim, run


def _session(make):
    sim, run = make()
    sim.field.present("ssc_nanning")
    for c, d, body in SESSION:
        want = frame(body)
        ack, got = run(c, h(d), len(want))
        assert ack == ACK, (hex(c), ack)
        assert got == want, (hex(c), got, want)
    assert not sim.field.rf_on                    # powered down
    assert sim.stats["frames_in"] == len(SESSION) and sim.stats["bad_frames"] == 0


def test_session_over_i2c():
    _session(_i2c)


def test_session_over_spi():
    _session(_spi)


def test_session_over_hsu():
    _session(_hsu)
