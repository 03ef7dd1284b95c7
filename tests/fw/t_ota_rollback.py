# A bundle that verifies but is broken is rolled back by otaboot by itself:
# code that crashes at import, code that hangs (the watchdog resets the
# device), code that fails the self-check within the time limit. The device
# comes back on the previous version, takes taps, and reports the rollback
# (otaboot.status, sent with the next offer request).
import vclock
import otaboot
from ykt.ota import updater as ota
import t_ota_kit as K


def setup():
    vclock.reset()


def _install(dev, app, version, patch):
    b = K.scratch("rb.ykb")
    K.build(b, version, files=K.app_files(patch))
    http = K.FileHttp(b, version)
    up = dev.updater(http, interval_s=60)
    assert K.drive(up, app) == ota.READY, up.errors
    return http


def _rolled_back(patch, expect_reason, expect_resets):
    dev = K.Device()
    try:
        app = dev.boot()
        _install(dev, app, "0.2.0", patch)
        app = dev.reboot("hard")
        s = otaboot.status(dev.root)
        assert s["version"] == "" and s["active"] == "f" and not s["pending"], s
        assert s["rolled_back"][0] == "0.2.0" and s["rolled_back"][1].startswith(expect_reason), s
        assert dev.resets == expect_resets, (dev.resets, dev.log)
        assert dev.takes_taps()
        # the rollback is reported with the next offer request, and the same
        # version is not fetched again
        http = K.FileHttp(K.scratch("rb.ykb"), "0.2.0")
        up = dev.updater(http, interval_s=60)
        assert up.rolled_back[0] == "0.2.0"
        up.step()
        assert "&rb=0.2.0" in http.requests[0][0], http.requests
        K.drive(up, dev.app, 200)
        assert len(http.requests) == 1 and up.state == ota.IDLE
    finally:
        dev.close()


def test_crash_at_import_rolls_back():
    _rolled_back("\nraise ImportError('broken build')\n", "boot: ImportError", ["hard"])


def test_hang_rolls_back_through_the_watchdog():
    patch = ("\ndef _hang(self):\n    while True:\n        sleep_ms(100)\n\n\nApp.step = _hang\n")
    _rolled_back(patch, "watchdog", ["wdt"])


def test_failed_selfcheck_rolls_back():
    # the reader is never brought up: the self-check cannot pass in TRIAL_MS
    _rolled_back("\nApp._boot_reader = lambda self: None\n", "self-check: reader", ["hard"])


def test_loop_exception_on_trial_rolls_back():
    patch = ("\n_orig = App.step\n\n\ndef _bad(self):\n    raise KeyError('oops')\n\n\nApp.step = _bad\n")
    _rolled_back(patch, "loop: KeyError", ["hard"])


def test_power_cuts_during_trial_give_up_after_max_tries():
    # a trial that never gets to pass (power cut every time) ends in the old version
    dev = K.Device()
    try:
        app = dev.boot()
        _install(dev, app, "0.2.0", "\nApp._boot_reader = lambda self: None\n")
        for i in range(otaboot.MAX_TRIES):
            dev.reboot_chip("power")
            slot, trial = otaboot.select(dev.root, "power")
            assert trial and slot == "a"
        dev.reboot_chip("power")
        app = dev.boot("power")
        s = otaboot.status(dev.root)
        assert s["active"] == "f" and s["rolled_back"][1].startswith("no pass"), s
        assert dev.takes_taps()
    finally:
        dev.close()
