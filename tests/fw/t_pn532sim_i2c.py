# PN532 simulator over I2C: the status byte, exact frames, frame-level rules
# and host-link faults (UM0701-02 6.2). Frames are written out byte by byte.
import vclock
from vhw import bus
from t_pn532sim_util import h, hx, cmd, parse, fresh, wait_ready, i2c_cmd, i2c_sim, ACK, NACK, ERR


def _chip():
    sim = fresh()
    sim.attach_i2c(0, freq=0)
    return sim


def test_get_firmware_version_exact_bytes():
    sim = _chip()
    assert bus.i2c_device(0, 0x24) is sim
    sim.i2c_write(h("00 00 FF 02 FE D4 02 2A 00"))          # GetFirmwareVersion
    assert sim.i2c_read(1) == h("00")                         # status: not ready
    vclock.advance_us(200)
    assert sim.i2c_read(7) == h("01 00 00 FF 00 FF 00")       # status + ACK
    assert sim.i2c_read(1) == h("00")
    vclock.advance_us(799)
    assert sim.i2c_read(1) == h("00")                         # 1 ms command overhead
    vclock.advance_us(1)
    assert sim.i2c_read(14) == h("01 00 00 FF 06 FA D5 03 32 01 06 07 E8 00")
    assert sim.i2c_read(1) == h("00")                         # the frame was consumed


def test_sam_configuration_and_rfconfiguration_exact():
    sim = _chip()
    sim.i2c_write(h("00 00 FF 05 FB D4 14 01 14 01 02 00"))  # SAMConfiguration normal, 1 s, IRQ
    vclock.advance_us(1000)
    assert sim.i2c_read(7) == b"\x01" + ACK
    assert sim.i2c_read(10) == h("01 00 00 FF 02 FE D5 15 16 00")
    sim.i2c_write(h("00 00 FF 06 FA D4 32 05 FF 01 02 F3 00"))  # RFConfiguration MaxRetries
    vclock.advance_us(1000)
    assert sim.i2c_read(7) == b"\x01" + ACK
    assert sim.i2c_read(10) == h("01 00 00 FF 02 FE D5 33 F8 00")


def test_bad_checksums_get_no_ack():
    sim = _chip()
    sim.i2c_write(h("00 00 FF 02 FE D4 02 2B 00"))  # DCS wrong
    sim.i2c_write(h("00 00 FF 02 FD D4 02 2A 00"))  # LCS wrong
    vclock.advance_us(50000)
    assert sim.i2c_read(1) == h("00")
    assert sim.stats["bad_frames"] == 2 and sim.stats["frames_in"] == 0


def test_long_preamble_and_leading_garbage_resync():
    sim = _chip()
    sim.i2c_write(h("FF 12 00 00 00 00 00 00 FF 02 FE D4 02 2A 00"))
    assert i2c_cmd_tail(sim) == h("32 01 06 07")


def i2c_cmd_tail(sim):
    wait_ready(sim)
    assert sim.i2c_read(7) == b"\x01" + ACK
    wait_ready(sim)
    kind, body = parse(sim.i2c_read(40)[1:])
    assert kind == "frame"
    return body[2:]


def test_unknown_command_and_wrong_tfi_give_error_frame():
    sim = _chip()
    sim.i2c_write(cmd(0x70))                         # no such command
    wait_ready(sim)
    assert sim.i2c_read(7) == b"\x01" + ACK
    wait_ready(sim)
    assert sim.i2c_read(9) == b"\x01" + ERR          # 00 00 FF 01 FF 7F 81 00
    sim.i2c_write(h("00 00 FF 02 FE D5 02 29 00"))   # TFI D5 from the host
    wait_ready(sim)
    sim.i2c_read(7)
    wait_ready(sim)
    assert sim.i2c_read(9) == b"\x01" + ERR
    assert sim.stats["unsupported"] == 1


def test_extended_frames_line_test():
    sim = _chip()
    payload = bytes([0x00]) + bytes(i & 0xFF for i in range(262))   # nfcpy's diagnose('line')
    frame = cmd(0x00, payload)
    assert frame[:8] == h("00 00 FF FF FF 01 09 F6")  # LEN 265, LCS
    sim.i2c_write(frame)
    wait_ready(sim)
    assert sim.i2c_read(7) == b"\x01" + ACK
    wait_ready(sim)
    raw = sim.i2c_read(1 + 8 + 265 + 2)
    assert raw[:11] == h("01 00 00 FF FF FF 01 09 F6 D5 01")
    kind, body = parse(raw[1:])
    assert kind == "frame" and body[2:] == payload


def test_extended_lengths_out_of_range_refused():
    sim = _chip()
    sim.i2c_write(h("00 00 FF FF FF 00 01 FF D4 01 00"))   # LEN 1
    sim.i2c_write(h("00 00 FF FF FF 00 00 00 00"))         # LEN 0: never a 64 KB read
    sim.i2c_write(h("00 00 FF FF FF 02 00 FE") + bytes(20))  # LEN 512 > 265
    vclock.advance_us(10000)
    assert sim.i2c_read(1) == h("00")
    assert sim.stats["bad_frames"] == 3


def test_partial_read_loses_frame_and_nack_resends():
    # ESPHome reads the header, then sends NACK to have the whole frame again
    sim = _chip()
    sim.i2c_write(cmd(0x02))
    wait_ready(sim)
    sim.i2c_read(7)
    wait_ready(sim)
    assert sim.i2c_read(7) == h("01 00 00 FF 06 FA D5")
    assert sim.i2c_read(1) == h("00")
    sim.i2c_write(NACK)
    assert sim.i2c_read(14) == h("01 00 00 FF 06 FA D5 03 32 01 06 07 E8 00")


def test_host_ack_aborts_command():
    sim = i2c_sim(retries=0xFF)                       # poll forever
    sim.i2c_write(cmd(0x4A, h("01 00")))              # InListPassiveTarget, no card
    wait_ready(sim)
    assert sim.i2c_read(7) == b"\x01" + ACK
    vclock.advance_us(500000)
    assert sim.i2c_read(1) == h("00")                 # still polling
    sim.i2c_write(ACK)                                # abort
    sim.field.present("ssc_nanning")
    vclock.advance_us(100000)
    assert sim.i2c_read(1) == h("00")                 # no late answer
    assert i2c_cmd(sim, 0x02) == h("32 01 06 07")


def test_irq_pin_low_while_answer_ready():
    sim = _chip()
    sim.attach_pins(irq=25)
    assert bus.level(25) == 1
    sim.i2c_write(cmd(0x02))
    vclock.advance_us(200)
    assert bus.level(25) == 0                         # ACK ready
    sim.i2c_read(7)
    assert bus.level(25) == 1
    vclock.advance_us(1000)
    assert bus.level(25) == 0
    sim.i2c_read(14)
    assert bus.level(25) == 1
    i2c_cmd(sim, 0x14, h("01 00 00"))                 # SAMConfiguration: IRQ not used
    sim.i2c_write(cmd(0x02))
    vclock.advance_us(2000)
    assert bus.level(25) == 1 and sim.i2c_read(1) == h("01")


def test_rstpd_n_reset_loses_state():
    sim = i2c_sim(card="ssc_nanning")
    sim.attach_pins(rst=26)
    bus.pin_driven(26, 0)                             # RSTPD_N low: hard power-down
    try:
        sim.i2c_read(1)
        assert False, "a chip in reset ACKs nothing"
    except OSError as e:
        assert e.args[0] == 19
    bus.pin_driven(26, 1)
    try:
        sim.i2c_write(cmd(0x02))
        assert False, "still booting"
    except OSError as e:
        assert e.args[0] == 19
    vclock.advance_us(2000)
    i2c_cmd(sim, 0x32, h("05 FF 01 01"))
    # LowVbat until SAMConfiguration: the RF field stays off, nothing is found
    assert i2c_cmd(sim, 0x4A, h("01 00")) == h("00")
    i2c_cmd(sim, 0x14, h("01 14 01"))
    assert i2c_cmd(sim, 0x4A, h("01 00"))[:2] == h("01 01")


def test_link_time_per_byte():
    sim = fresh()
    sim.attach_i2c(0, freq=400000)                    # 9 bits at 400 kHz = 22.5 us per byte
    t0 = vclock.now_us()
    sim.i2c_write(cmd(0x02))                          # 9 bytes
    sim.i2c_read(100)
    assert vclock.now_us() - t0 == (109 * 225) // 10
    assert sim.stats["bytes_in"] == 9 and sim.stats["bytes_out"] == 100


def test_fault_silent_until_reset():
    sim = _chip()
    sim.attach_pins(rst=26)
    sim.fault("silent")
    sim.i2c_write(cmd(0x02))
    vclock.advance_us(100000)
    assert sim.i2c_read(7) == bytes(7)                # no ACK, never ready
    bus.pin_driven(26, 0)
    bus.pin_driven(26, 1)
    vclock.advance_us(2000)
    assert i2c_cmd(sim, 0x02) == h("32 01 06 07")


def test_fault_i2c_timeout():
    sim = _chip()
    sim.fault("i2c_timeout", reads=2)
    for _ in range(2):
        try:
            sim.i2c_read(1)
            assert False
        except OSError as e:
            assert e.args[0] == 110
    assert sim.i2c_read(1) == h("00")


def test_fault_stale_reply_returned_first():
    sim = _chip()
    i2c_cmd(sim, 0x02)
    sim.fault("stale_reply")                          # the old answer still sits in the chip
    sim.i2c_write(cmd(0x14, h("01 14 01")))
    vclock.advance_us(200)
    first = sim.i2c_read(20)
    assert parse(first[1:]) == ("frame", h("D5 03 32 01 06 07"))  # not the ACK we expect
    sim.i2c_write(ACK)                                # resync: abort, start again
    assert i2c_cmd(sim, 0x14, h("01 14 01")) == b""


def test_fault_garbage_before_and_inside():
    sim = _chip()
    sim.fault("garbage", before=h("FF 00 55"), count=2)
    sim.i2c_write(cmd(0x02))
    wait_ready(sim)
    assert sim.i2c_read(10) == h("01 FF 00 55 00 00 FF 00 FF 00")
    wait_ready(sim)
    raw = sim.i2c_read(20)
    assert raw[:4] == h("01 FF 00 55") and parse(raw[1:]) == ("frame", h("D5 03 32 01 06 07"))
    sim.clear_faults()
    sim.fault("garbage", before=b"", inside=1)
    sim.i2c_write(cmd(0x02))
    wait_ready(sim)
    sim.i2c_read(7)
    wait_ready(sim)
    try:
        parse(sim.i2c_read(14)[1:])
        assert False, "corrupted frame must fail its checksum"
    except AssertionError as e:
        assert str(e) == "dcs"
    sim.i2c_write(NACK)                               # retransmission is clean
    assert parse(sim.i2c_read(14)[1:]) == ("frame", h("D5 03 32 01 06 07"))


def test_fault_nack_storm():
    sim = _chip()
    sim.fault("nack_storm", count=2)
    for _ in range(2):
        sim.i2c_write(cmd(0x02))
        wait_ready(sim)
        assert sim.i2c_read(7) == b"\x01" + NACK
    assert i2c_cmd(sim, 0x02) == h("32 01 06 07")
    assert sim.stats["commands"][0x02] == 1


def test_fault_error_frame():
    sim = _chip()
    sim.fault("error_frame", count=1)
    sim.i2c_write(cmd(0x02))
    wait_ready(sim)
    sim.i2c_read(7)
    wait_ready(sim)
    assert sim.i2c_read(9) == b"\x01" + ERR
    assert i2c_cmd(sim, 0x02) == h("32 01 06 07")


def test_unknown_fault_and_timing_key_rejected():
    sim = _chip()
    for bad in (lambda: sim.fault("nope"), lambda: fresh({"cmd_ms": 1})):
        try:
            bad()
            assert False
        except ValueError:
            pass
    assert hx(cmd(0x02)) == "0000ff02fed4022a00"


def test_random_line_noise_never_breaks_the_chip():
    # a deterministic LCG: the same noise on both runtimes
    sim = _chip()
    x = 12345
    for _ in range(40):
        buf = bytearray()
        for _ in range(37):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            buf.append((x >> 16) & 0xFF)
        sim.i2c_write(bytes(buf))
        vclock.advance_us(3000)
        sim.i2c_read(300)
    sim.i2c_write(ACK)
    vclock.advance_us(100000)
    sim.i2c_read(300)
    assert i2c_cmd(sim, 0x02) == h("32 01 06 07")
