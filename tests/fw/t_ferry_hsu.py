# The ferry board as shipped (boards/ferry_validator.json, reader.baud 921600):
# the firmware opens its UART at the PN532's power-up rate, moves the line
# to the board's rate with SetSerialBaudRate at boot, and does it again after
# a power cut (the chip is back at 115200 then).
import vclock
from vhw import bus, chip


def setup():
    vclock.reset()
    bus.reset()
    chip.configure()


def test_shipped_ferry_reads_at_the_board_rate_and_again_after_a_power_cut():
    from vhw.world import World

    w = World("ferry_validator")
    app = w.boot()
    t = app.reader.pn.t
    assert w.board["reader"]["baud"] == 921600
    assert (t.rate, w.pn532.hsu_baud, bus.uart_port(1).baudrate) == (921600, 921600, 921600)
    assert w.pn532.stats["commands"].get(0x10) == 1
    vclock.advance_us(1000000)
    app = w.reboot("power")
    t = app.reader.pn.t
    assert (t.rate, w.pn532.hsu_baud, bus.uart_port(1).baudrate) == (921600, 921600, 921600)
    assert w.pn532.stats["commands"].get(0x10) == 2 and app.reader.resets == 0
