# PWM log, RTC, WDT, Timer, reset causes and the other machine functions.
import vclock
import machine
from vhw import bus, chip


def setup():
    vclock.reset()
    bus.reset()
    chip.configure()


def _reset(fn, *a):
    try:
        fn(*a)
    except vclock.DeviceReset as e:
        return e.cause
    raise AssertionError("no DeviceReset")


def test_pwm_values_and_log():
    vclock.advance_us(5000)
    p = machine.PWM(machine.Pin(33), freq=2700, duty_u16=32768)
    assert p.freq() == 2700 and p.duty_u16() == 32768
    assert p.duty() == 512
    p.duty(1023)
    assert p.duty_u16() == 65535
    p.duty_ns(100000)  # 100 us of a 370 us period
    assert abs(p.duty_u16() - 17694) <= 1
    assert abs(p.duty_ns() - 100000) < 20
    vclock.advance_us(120000)
    p.deinit()
    log = chip.get().pwm_log
    assert log[0] == (5, 33, 2700, 32768)
    assert log[-1] == (125, 33, 0, 0)
    try:
        p.freq()
    except OSError:
        pass
    else:
        raise AssertionError("PWM usable after deinit")
    try:
        machine.PWM(33, freq=0)
    except ValueError:
        pass
    else:
        raise AssertionError("freq 0 accepted")


def test_pwm_log_is_bounded():
    p = machine.PWM(25, freq=1000, duty_u16=0)
    import vhw

    for i in range(400):
        p.duty_u16(i)
    assert len(chip.get().pwm_log) == vhw.LOG_CAP
    assert chip.get().pwm_log[-1][3] == 399


def test_rtc_datetime_on_virtual_clock():
    r = machine.RTC()
    r.datetime((2026, 11, 26, 3, 8, 30, 15, 0))
    assert vclock.time() == 1795681815
    vclock.advance_us(45500000)
    y, mo, d, wd, h, mi, s, us = r.datetime()
    assert (y, mo, d, wd, h, mi, s) == (2026, 11, 26, 3, 8, 31, 0)
    assert us == 500000
    r.init((2024, 2, 29, 0, 23, 59, 59, 0))
    vclock.advance_us(1000000)
    assert r.datetime()[:7] == (2024, 3, 1, 4, 0, 0, 0)


def test_rtc_memory_survives_resets_but_not_power():
    r = machine.RTC()
    r.memory(b"seq=41")
    chip.get().reboot("wdt")
    assert machine.RTC().memory() == b"seq=41"
    chip.get().reboot("deepsleep")
    assert r.memory() == b"seq=41"
    chip.get().reboot("power")
    assert r.memory() == b""
    try:
        r.memory(bytes(2049))
    except ValueError:
        pass
    else:
        raise AssertionError("too much RTC memory accepted")


def test_wdt_resets_when_not_fed():
    w = machine.WDT(timeout=2000)
    vclock.advance_us(1500000)
    w.feed()
    vclock.advance_us(1500000)
    w.feed()
    cause = _reset(vclock.sleep_ms, 2500)
    assert cause == "wdt"
    assert vclock.now_us() == 3000000 + 2000000  # at the deadline, not later
    chip.get().reboot(cause)
    assert machine.reset_cause() == machine.WDT_RESET
    vclock.advance_us(10000000)  # after the reset the watchdog is off again


def test_wdt_cannot_be_stopped_by_soft_reset():
    machine.WDT(timeout=1000)
    cause = _reset(machine.soft_reset)
    chip.get().reboot(cause)
    assert machine.reset_cause() == machine.SOFT_RESET
    assert _reset(vclock.sleep_ms, 2000) == "wdt"


def test_reset_causes_and_counts():
    c = chip.get()
    assert machine.reset_cause() == machine.PWRON_RESET
    c.reboot(_reset(machine.reset))
    assert machine.reset_cause() == machine.HARD_RESET
    c.reboot(_reset(machine.deepsleep, 60000))
    assert vclock.now_us() == 60000000
    assert machine.reset_cause() == machine.DEEPSLEEP_RESET
    assert machine.wake_reason() == machine.TIMER_WAKE
    c.reboot("power")
    assert machine.reset_cause() == machine.PWRON_RESET
    assert c.reset_counts == {"hard": 1, "deepsleep": 1, "power": 1}
    assert c.boots == 4
    assert _reset(machine.bootloader) == "bootloader"


def test_unique_id_per_device_and_freq():
    chip.configure(unique_id=b"\x24\x0a\xc4\x12\x34\x56")
    assert machine.unique_id() == b"\x24\x0a\xc4\x12\x34\x56"
    assert machine.freq() == 160000000
    machine.freq(240000000)
    assert machine.freq() == 240000000
    try:
        machine.freq(100000000)
    except ValueError:
        pass
    else:
        raise AssertionError("bad freq accepted")


def test_timer_periodic_and_one_shot():
    ticks = []
    t = machine.Timer(0)
    t.init(mode=machine.Timer.PERIODIC, period=100, callback=lambda tm: ticks.append(vclock.now_ms()))
    one = []
    machine.Timer(1, mode=machine.Timer.ONE_SHOT, freq=4, callback=lambda tm: one.append(vclock.now_ms()))
    vclock.sleep_ms(550)
    assert ticks == [100, 200, 300, 400, 500]
    assert one == [250]
    t.deinit()
    vclock.sleep_ms(500)
    assert len(ticks) == 5


def test_reboot_drops_timers_and_irqs():
    ticks = []
    machine.Timer(2, period=10, callback=lambda t: ticks.append(1))
    p = machine.Pin(35, machine.Pin.IN)
    p.irq(lambda pin: ticks.append(2))
    chip.get().reboot("hard")
    vclock.sleep_ms(100)
    bus.drive(35, 1)
    assert ticks == []


def test_sleeps_advance_the_clock():
    machine.lightsleep(250)
    assert vclock.now_us() == 250000
    vclock.schedule(300, lambda: None)
    machine.idle()
    assert vclock.now_us() == 250300
    machine.idle()
    assert vclock.now_us() == 251300
