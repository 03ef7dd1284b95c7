# PN532 simulator over HSU (UM0701-02 6.2.3): asleep after power-up and after
# PowerDown, woken by the first byte; bytes arriving during the wake-up are lost,
# hence the 55 55 00 00 ... preamble hosts send. The chip answers on port.deliver.
import vclock
from vhw import bus
from t_pn532sim_util import h, cmd, parse, fresh, Port, ACK

WAKE = h("55 55") + bytes(15)


def _chip():
    sim = fresh()
    port = Port()
    sim.attach_hsu(1, port)
    assert bus.uart_device(1) is sim
    return sim, port


def send(sim, buf):
    """Bytes on the line at 115200 baud: uart_rx is called when the last one arrived."""
    vclock.advance_us(len(buf) * 87)
    sim.uart_rx(buf)


def test_wakeup_then_sam_configuration_exact():
    sim, port = _chip()
    send(sim, WAKE + h("00 00 FF 05 FB D4 14 01 14 01 02 00"))  # wake-up + SAMConfiguration
    vclock.advance_us(200)
    assert port.take() == ACK
    vclock.advance_us(800)
    assert port.take() == h("00 00 FF 02 FE D5 15 16 00")
    assert sim.stats["hsu_lost"] > 0


def test_frame_without_wakeup_is_lost():
    sim, port = _chip()
    send(sim, cmd(0x02))                       # asleep: these bytes only wake the chip
    vclock.advance_us(10000)
    assert port.take() == b""
    send(sim, cmd(0x02))                       # awake now
    vclock.advance_us(1000)
    assert port.take() == ACK + h("00 00 FF 06 FA D5 03 32 01 06 07 E8 00")


def test_nfcpy_long_preamble_wakes():
    # nfcpy's pn532.init writes 10 x 00 then GetFirmwareVersion (0.87 ms of zeros)
    sim, port = _chip()
    send(sim, bytes(10) + h("00 00 FF 02 FE D4 02 2A 00"))
    vclock.advance_us(1000)
    assert port.take() == ACK + h("00 00 FF 06 FA D5 03 32 01 06 07 E8 00")


def test_power_down_then_wake_again():
    sim, port = _chip()
    send(sim, WAKE + cmd(0x14, h("01 00 00")))
    vclock.advance_us(1000)
    port.take()
    send(sim, cmd(0x16, h("B0 00")))           # PowerDown, wake on I2C|SPI|HSU
    vclock.advance_us(1000)
    assert port.take() == ACK + h("00 00 FF 03 FD D5 17 00 14 00")
    vclock.advance_us(5000)
    send(sim, cmd(0x02))                       # lost: only wakes the chip
    vclock.advance_us(5000)
    assert port.take() == b""
    vclock.advance_us(5000)
    send(sim, WAKE + cmd(0x02))
    vclock.advance_us(1000)
    assert parse(port.take()[6:]) == ("frame", h("D5 03 32 01 06 07"))


def test_power_down_without_hsu_wakeup_source_stays_asleep():
    sim, port = _chip()
    send(sim, WAKE + cmd(0x14, h("01 00 00")))
    vclock.advance_us(1000)
    send(sim, cmd(0x16, h("80")))              # wake on I2C only
    vclock.advance_us(1000)
    port.take()
    send(sim, WAKE + cmd(0x02))
    vclock.advance_us(5000)
    assert port.take() == b""


def test_hsu_gap_fault_loses_frames_sent_too_soon():
    sim, port = _chip()
    send(sim, WAKE + cmd(0x02))
    vclock.advance_us(2000)
    port.take()
    sim.fault("hsu_gap", gap_us=1000)
    send(sim, ACK + cmd(0x02))                 # no gap after our ACK: the command is lost
    vclock.advance_us(5000)
    assert port.take() == b""
    vclock.advance_us(1000)
    send(sim, cmd(0x02))
    vclock.advance_us(1000)
    assert port.take()[:6] == ACK


def test_set_serial_baudrate_applies_after_host_ack():
    sim, port = _chip()
    send(sim, WAKE + cmd(0x10, h("07")))       # 921600
    vclock.advance_us(1000)
    assert port.take() == ACK + h("00 00 FF 02 FE D5 11 1A 00")
    assert sim.hsu_baud == 115200
    send(sim, ACK)
    assert sim.hsu_baud == 921600


def test_set_serial_baudrate_does_not_survive_a_reset():
    sim, port = _chip()
    send(sim, WAKE + cmd(0x10, h("06")))       # 460800
    vclock.advance_us(1000)
    port.take()
    send(sim, ACK)
    assert sim.hsu_baud == 460800
    sim.reset()                                 # RSTPD_N pulse: power-up rate again
    assert sim.hsu_baud == 115200
    vclock.advance_us(sim.timing["boot_us"])
    send(sim, WAKE + cmd(0x02))
    vclock.advance_us(1000)
    assert port.take()[:6] == ACK               # heard and answered at 115200


def test_set_serial_baudrate_cancelled_by_a_command_instead_of_the_ack():
    sim, port = _chip()
    send(sim, WAKE + cmd(0x10, h("07")))
    vclock.advance_us(1000)
    port.take()
    send(sim, cmd(0x02))                        # no ACK: the chip keeps its rate
    vclock.advance_us(1000)
    assert port.take()[:6] == ACK
    send(sim, ACK)
    assert sim.hsu_baud == 115200


def test_max_baud_fault_garbles_a_line_faster_than_the_wiring():
    sim, port = _chip()
    port.baudrate = 115200
    sim.fault("hsu_max_baud", baud=230400)
    send(sim, WAKE + cmd(0x10, h("07")))       # asked at 115200: heard and answered
    vclock.advance_us(1000)
    assert port.take() == ACK + h("00 00 FF 02 FE D5 11 1A 00")
    send(sim, ACK)
    port.baudrate = 921600                      # both sides switched, the wires cannot follow
    assert sim.hsu_baud == 921600
    before = sim.stats["hsu_lost"]
    send(sim, cmd(0x02))
    vclock.advance_us(1000)
    assert sim.stats["hsu_lost"] == before + len(cmd(0x02)) and port.take() == b""


def test_irq_pulses_on_hsu_answers():
    sim, port = _chip()
    sim.attach_pins(irq=27)
    seen = []
    send(sim, WAKE + cmd(0x02))
    for _ in range(40):
        vclock.advance_us(100)
        seen.append(bus.level(27))
    assert 0 in seen and seen[-1] == 1
