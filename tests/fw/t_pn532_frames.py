# PN532 framing and the three transports against exact-frame scripts.
import vclock
from t_pn532_script import h, frame, CMD, RSP, RAW, ACK, HOST_ACK, HOST_NACK, Script, \
    ScriptI2C, ScriptSPI, ScriptUART
from ykt.nfc import pn532 as P
from ykt.nfc.pn532 import PN532, scan_frame
from ykt.nfc.pn532_i2c import PN532_I2C
from ykt.nfc.pn532_spi import PN532_SPI
from ykt.nfc.pn532_hsu import PN532_HSU


def setup():
    vclock.reset()


def _scan(b, start=0):
    buf = bytearray(P.BUFSZ)
    for i, x in enumerate(b):
        buf[i] = x
    res = [0, 0, 0]
    r = scan_frame(buf, start, len(b), res)
    return r, res, buf


def test_scan_normal_ack_nack_error():
    r, res, buf = _scan(frame(0xD5, h("0332010607")))
    assert r == P.F_DATA and res[0] == 5 and res[1] == 6 and res[2] == 12
    assert buf[res[0] + 1] == 0x03
    assert _scan(h("0000ff00ff00"))[0] == P.F_ACK
    assert _scan(h("0000ffff0000"))[0] == P.F_NACK
    r, res, buf = _scan(h("0000ff01ff7f8100"))
    assert r == P.F_ERR


def test_scan_resync_garbage_and_long_preamble():
    f = frame(0xD5, h("4b00"))
    # garbage containing a false start code with a bad LCS, then 4 preamble zeros
    r, res, buf = _scan(h("13 37 00 ff 05 05 aa") + h("00000000") + f[2:])
    assert r == P.F_DATA and buf[res[0] + 1] == 0x4B
    # I2C status byte in front
    r, res, buf = _scan(h("01") + f, 1)
    assert r == P.F_DATA and res[0] == 6


def test_scan_checksums():
    f = bytearray(frame(0xD5, h("4b00")))
    f[-2] ^= 1                      # DCS
    assert _scan(bytes(f))[0] == P.F_NONE
    f = bytearray(frame(0xD5, h("4b00")))
    f[4] ^= 1                       # LCS
    assert _scan(bytes(f))[0] == P.F_NONE
    assert _scan(h("0000ff0000"))[0] == P.F_NONE   # LEN 0 with LCS 0: not a frame


def test_scan_extended_bounds():
    body = bytes([0xD5, 0x41, 0x00]) + bytes(range(200)) + bytes(100)
    ln = len(body)   # 303 > 265: refused
    ext = bytes([0, 0, 0xFF, 0xFF, 0xFF, ln >> 8, ln & 0xFF, (-(ln >> 8) - (ln & 0xFF)) & 0xFF]) + body \
        + bytes([(-sum(body)) & 0xFF, 0])
    buf = bytearray(400)
    buf[:len(ext)] = ext
    res = [0, 0, 0]
    assert scan_frame(buf, 0, len(ext), res) == P.F_NONE
    for ln in (0, 1):   # extended LEN 0/1: refused (classic 65535-byte read bug)
        b = bytes([0, 0, 0xFF, 0xFF, 0xFF, 0, ln, (-ln) & 0xFF, 0xD5, 0x2B, 0])
        assert _scan(b)[0] == P.F_NONE
    body = bytes([0xD5, 0x41, 0x00]) + bytes(range(250))
    ln = len(body)   # 253: valid extended frame
    ext = bytes([0, 0, 0xFF, 0xFF, 0xFF, 0, ln, (-ln) & 0xFF]) + body + bytes([(-sum(body)) & 0xFF, 0])
    r, res, buf = _scan(ext)
    assert r == P.F_DATA and res[0] == 8 and res[1] == 253


def test_scan_more():
    f = frame(0xD5, h("4100") + bytes(40))
    r, res, buf = _scan(f[:20])
    assert r == P.F_MORE and res[2] == len(f) - 1


def _fw_items():
    return [CMD("02"), ACK(), RSP("03 32 01 06 07")]


def test_i2c_firmware_version_exact():
    s = Script(_fw_items())
    pn = PN532(PN532_I2C(ScriptI2C(s)))
    assert pn.firmware_version() == (0x32, 1, 6, 7)
    assert s.done() and pn.commands == 1
    assert pn.t.bytes > 0


def test_i2c_long_answer_nack_resend():
    long = "41 00" + "ab" * 80
    s = Script([CMD("40 01 00b2012c00"), ACK(), RSP(long), HOST_NACK(), RSP(long)])
    pn = PN532(PN532_I2C(ScriptI2C(s)))
    apdu = h("00b2012c00")
    r = pn.exchange(apdu, 5, 10, 100)   # hint far too small
    assert r == 81 and pn.buf[pn.off] == 0 and pn.buf[pn.off + 80] == 0xAB
    assert s.done()


def test_i2c_silent_chip_noack():
    s = Script([CMD("02")])
    pn = PN532(PN532_I2C(ScriptI2C(s)))
    t0 = vclock.now_us()
    assert pn.firmware_version() is None
    assert pn.last == P.E_NOACK
    assert vclock.now_us() - t0 <= (P.ACK_MS + 2) * 1000


def test_i2c_timeout_aborts_with_ack():
    s = Script([CMD("4a 01 00"), ACK(), HOST_ACK()])
    pn = PN532(PN532_I2C(ScriptI2C(s)))
    assert pn.list_a(50) == P.E_TIMEOUT
    assert s.done()


def test_i2c_error_frame():
    s = Script([CMD("02"), ACK(), RAW("0000ff01ff7f8100")])
    pn = PN532(PN532_I2C(ScriptI2C(s)))
    assert pn.firmware_version() is None and pn.last == P.E_CHIP


def test_i2c_stale_reply_instead_of_ack():
    # A reply left over from before a reboot arrives where the ACK should be:
    # it is skipped, and our ACK and answer are still collected.
    s = Script([CMD("02"), RSP("4b 00"), ACK(), RSP("03 32 01 06 07")])
    pn = PN532(PN532_I2C(ScriptI2C(s)))
    assert pn.firmware_version() == (0x32, 1, 6, 7)
    assert s.done()


def test_hsu_stale_reply_skipped():
    s = Script([CMD("02"), RSP("4b 00"), ACK(), RSP("03 32 01 06 07")])
    pn = PN532(PN532_HSU(ScriptUART(s)))
    assert pn.firmware_version() == (0x32, 1, 6, 7)


def test_i2c_wrong_response_code_times_out():
    s = Script([CMD("02"), ACK(), RSP("15"), HOST_ACK()])
    pn = PN532(PN532_I2C(ScriptI2C(s)))
    assert pn.firmware_version() is None and pn.last == P.E_TIMEOUT
    assert s.done()


def test_chip_nack_resends_frame():
    s = Script([CMD("02"), RAW("0000ffff0000"), CMD("02"), ACK(), RSP("03 32 01 06 07")])
    pn = PN532(PN532_I2C(ScriptI2C(s)))
    assert pn.firmware_version() == (0x32, 1, 6, 7)
    assert s.done()


def test_garbage_before_ack_and_answer():
    # the answer with its garbage is longer than the read: NACK, read it whole
    ans = "13 00 ff 05 00 00 00 00 ff 06 fa d5 03 32 01 06 07 e8 00"
    s = Script([CMD("02"), RAW("ff 00 55 aa 00 00 00 ff 00 ff 00"), RAW(ans), HOST_NACK(), RAW(ans)])
    pn = PN532(PN532_I2C(ScriptI2C(s)))
    assert pn.firmware_version() == (0x32, 1, 6, 7)
    assert s.done()


def test_spi_firmware_version_bit_reversed():
    s = Script(_fw_items())
    spi = ScriptSPI(s)
    pn = PN532(PN532_SPI(spi, spi))
    pn.t.wakeup()
    assert pn.firmware_version() == (0x32, 1, 6, 7)
    assert s.done()


def test_hsu_wakeup_and_firmware_version():
    s = Script(_fw_items() + [CMD("14 01 14 01"), ACK(), RAW("00 00 00 55"), RSP("15")])
    u = ScriptUART(s)
    pn = PN532(PN532_HSU(u))
    pn.t.wakeup()
    assert u.woke == 1
    assert pn.firmware_version() == (0x32, 1, 6, 7)
    assert pn.sam_config()
    assert s.done()


def test_hsu_silent():
    s = Script([CMD("02")])
    pn = PN532(PN532_HSU(ScriptUART(s)))
    assert pn.firmware_version() is None and pn.last == P.E_NOACK


def test_command_frame_bytes():
    s = Script([CMD("32 05 ff 01 01"), ACK(), RSP("33"), CMD("32 01 00"), ACK(), RSP("33"),
                CMD("52 00"), ACK(), RSP("53 00")])
    pn = PN532(PN532_I2C(ScriptI2C(s)))
    assert pn.rf_retries() and pn.rf_field(False) and pn.release() == 1
    assert s.done()
