# First boot of the firmware on each board: peripherals found, watchdog fed,
# loop runs on virtual time.
import gc
from vhw.world import World
import vclock


def _boot(board):
    w = World(board)
    app = w.boot()
    app.run(3000)
    return w, app


def test_boot_bus_validator():
    w, app = _boot("bus_validator")
    f = app.report["found"]
    assert "reader" in f and "i2c" in f["reader"], app.report
    assert "led" in f and "buzzer" in f
    assert "display" not in f
    assert app.loops > 50
    assert app.reader.fault is False


def test_boot_turnstile():
    w, app = _boot("turnstile")
    f = app.report["found"]
    assert "spi" in f["reader"], app.report
    assert "display" in f and "relay" in f and "assist" in f


def test_boot_ferry_validator():
    w, app = _boot("ferry_validator")
    f = app.report["found"]
    assert "hsu" in f["reader"], app.report
    assert "display" in f


def test_unprovisioned_device_refuses_with_reason():
    w = World("bus_validator")
    app = w.boot()
    assert "decisions" in app.report["missing"]
    w.field.present("ssc_nanning", after_us=500000, for_us=400000)
    events = []
    app.on_event = lambda tap, kind, msg: events.append((tap.reason, kind))
    app.run(2000)
    from ykt import taprec
    assert events == [(taprec.R_NOT_CONFIGURED, 7)], events


def test_watchdog_resets_a_hung_loop():
    w = World("bus_validator")
    app = w.boot()
    try:
        vclock.sleep_ms(10000)   # the loop hangs: nobody feeds the watchdog
        raise AssertionError("no watchdog reset")
    except vclock.DeviceReset as e:
        assert e.cause == "wdt"
    app = w.reboot("wdt")
    assert app.report["reset_cause"] == "wdt_reset"
