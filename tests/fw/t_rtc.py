# Time without the network: the DS3231 driver (ykt.ds3231) against the
# register-accurate model (vhw.ds3231sim), byte for byte; the oscillator-stop
# flag, a dead battery, drift and 12-hour mode; and the validator on the
# ferry board, which takes its date from the RTC after a power cut and sets
# the RTC only from authenticated back-office time.
import vclock
import machine
from vhw import bus, chip
from vhw.ds3231sim import DS3231 as Sim
from ykt.ds3231 import DS3231, days_from_civil, civil_from_days

T = 1796413807          # 2026-12-04 19:50:07 UTC, a Friday


def setup():
    vclock.reset()
    bus.reset()
    chip.configure()


def _pair(**kw):
    sim = Sim(**kw)
    bus.attach_i2c(0, 0x68, sim)
    return sim, DS3231(machine.I2C(0, scl=22, sda=21, freq=400000))


def test_calendar_round_trip():
    for z in (0, 10957, 11016, 20454, 47482, 73048, 73049):   # 1970, 2000, leap day 2000, 2026, 2100, ...
        y, m, d = civil_from_days(z)
        assert days_from_civil(y, m, d) == z, (z, y, m, d)
    assert civil_from_days(11016) == (2000, 2, 29)
    assert days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28) == 1   # 2100 is no leap year


def test_write_sets_bcd_registers_and_clears_osf():
    sim, rtc = _pair()
    assert rtc.lost_power() and rtc.read() is None            # first power: OSF set
    rtc.write(T)
    assert bytes(sim.regs[0:7]) == bytes([0x07, 0x50, 0x19, 5, 0x04, 0x12, 0x26])
    assert sim.regs[0x0E] == 0x1C and sim.regs[0x0F] & 0x80 == 0
    assert rtc.read() == T
    vclock.advance_us(3500000)
    assert rtc.read() == T + 3
    vclock.advance_us(86400 * 1000000)                        # the date rolls over too
    assert rtc.read() == T + 86400 + 3
    assert bytes(sim.regs[3:7]) == bytes([6, 0x05, 0x12, 0x26])


def test_power_cut_with_battery_keeps_time_dead_battery_loses_it():
    sim, rtc = _pair()
    rtc.write(T)
    sim.power_cut()
    vclock.advance_us(600 * 1000000)
    assert rtc.read() == T + 600
    sim.battery_dead = True
    sim.power_cut()
    assert rtc.lost_power() and rtc.read() is None
    assert bytes(sim.regs[0:7]) == bytes([0, 0, 0, 6, 1, 1, 0])   # 2000-01-01, a Saturday


def test_drift_within_the_datasheet():
    sim, rtc = _pair(drift_ppm=2)
    rtc.write(T)
    vclock.advance_us(30 * 86400 * 1000000)                    # a month on the shelf
    got = rtc.read() - (T + 30 * 86400)
    assert got == 5, got                                       # 2 ppm of 2,592,000 s


def test_twelve_hour_mode_and_bad_dates():
    sim, rtc = _pair()
    rtc.write(T)
    bus.attach_i2c(0, 0x68, sim)
    i2c = machine.I2C(0, scl=22, sda=21)
    i2c.writeto_mem(0x68, 2, bytes([0x40 | 0x20 | 0x07]))     # 7 PM, 12-hour mode, set elsewhere
    assert rtc.read() == T                                     # 19:50:07 either way
    i2c.writeto_mem(0x68, 4, bytes([0x04, 0x12, 0x19]))       # 2019: a chip never set right
    assert rtc.read() is None
    i2c.writeto_mem(0x68, 0, bytes([0x07, 0x50, 0x19, 5, 0x04, 0x12, 0x26]))
    assert rtc.read() == T


def test_osf_cannot_be_set_by_a_write_and_temperature_is_read_only():
    sim, rtc = _pair()
    rtc.write(T)
    i2c = machine.I2C(0, scl=22, sda=21)
    i2c.writeto_mem(0x68, 0x0F, b"\x80")
    assert not rtc.lost_power()
    i2c.writeto_mem(0x68, 0x11, b"\x7f\x00")
    assert i2c.readfrom_mem(0x68, 0x11, 2) == b"\x19\x00"


def _ferry():
    from vhw.world import World
    w = World("ferry_validator", epoch=T)
    return w, w.boot()


def test_ferry_boots_on_rtc_time_after_a_power_cut():
    from ykt.net import timesync as ts
    w, app = _ferry()
    assert "rtc" in app.report["found"], app.report
    assert not app.clock.trusted()                             # the RTC never set: OSF
    assert w.rtc.regs[0x0F] & 0x80
    assert app.clock.from_http_date("Fri, 04 Dec 2026 19:50:07 GMT")   # weak time moves the model ...
    assert w.rtc.regs[0x0F] & 0x80                             # ... but never reaches the RTC
    assert app.clock.from_reply(T + 100)                       # authenticated: written to the RTC
    assert DS3231(machine.I2C(0, scl=9, sda=8)).read() == T + 100
    vclock.advance_us(5 * 1000000)
    app = w.reboot("power")                                    # away from the network
    assert app.clock.level == ts.TRUST_RTC and app.clock.trusted() and not app.clock.confirmed()
    assert abs(app.clock.now() - (T + 105)) <= 1
    assert not app.clock.from_http_date("Fri, 04 Dec 2026 23:00:00 GMT")   # a weak source cannot move it
    assert app.clock.from_reply(T + 109)                      # the back office confirms: AUTH again
    assert app.clock.confirmed()


def test_ferry_with_a_dead_battery_has_no_trusted_date():
    w, app = _ferry()
    app.clock.from_reply(T + 100)
    w.rtc.battery_dead = True
    app = w.reboot("power")
    assert not app.clock.trusted()
    assert app.clock.level == 0


def test_rtc_time_is_trusted_only_for_max_age():
    w, app = _ferry()
    app.clock.from_reply(T)
    app = w.reboot("power")
    assert app.clock.trusted()
    app.clock.max_age_s = 4                                    # (7 days on the device; the watchdog bounds a test's jump)
    vclock.advance_us(6 * 1000000)
    assert not app.clock.trusted()
