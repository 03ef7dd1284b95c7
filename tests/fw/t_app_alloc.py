# The main loop allocates nothing when idle: App.step on a provisioned device
# with every network part built (time, uplink, sync, heartbeat, OTA) waiting
# for its next slot, the reader polling an empty field, the feedback idle.
# And the tap record's packing allocates nothing. MicroPython proves it with
# micropython.heap_lock() (any allocation raises MemoryError); CPython (every
# int is an object) checks the same code runs.
import gc

import vclock
import fwtest
import t_decide_kit as DK
import t_syncsetup as SS
from t_pn532_script import Script, ScriptI2C, init_items, idle_items
from ykt import taprec
from ykt.nfc.pn532 import PN532
from ykt.nfc.pn532_i2c import PN532_I2C
from ykt.nfc.reader import Reader


def setup():
    vclock.reset()


def _heap_lock():
    try:
        import micropython

        micropython.heap_lock
        return micropython
    except (ImportError, AttributeError):
        if fwtest.runtime() == "micropython":
            raise fwtest.Skip("no micropython.heap_lock on this port")
        return None


def _device():
    from vhw.world import World

    w = World("bus_validator")
    w.write_json("config.json", {"device_id": 42, "backoffice": "http://10.9.9.9:8080",
                                 "sync_interval_s": 60, "heartbeat_s": 300, "ota_check_s": 900})
    w.write_json("data/profile.json", {"device": "T-BUS", "entry": 301, "stop": 3, "direction": 1,
                                       "board": "bus_validator"})
    w.write("data/catalog.bin", DK.catalog_bin())
    w.write("data/fares.bin", DK.fare_table(301))
    w.write("data/keys.bin", SS._keys(1))
    w.nvs_set("dev_key", b"d" * 32)
    w.nvs_set("tok_key", DK.KEY)
    app = w.boot()
    return w, app


def test_no_alloc_app_step_idle():
    w, app = _device()
    parts = [type(p).__name__ for p in app._net]
    assert parts == ["_TimeService", "Uplink", "Sync", "Heartbeat", "_OtaService"], parts
    assert app.decider is not None
    # an empty field, polled through the scripted link (the simulated bus
    # itself allocates: it is not firmware)
    s = Script(init_items() + idle_items(), loop=False)
    r = Reader(PN532(PN532_I2C(ScriptI2C(s))))
    assert r.start()
    s.items = idle_items()
    s.loop = True
    s.i = 0
    s._advance_reads()
    app.reader = r
    # Let every network part try once (no back office answers) and settle
    # into waiting for its next slot: the time service retries every 10 s
    # until the time is trusted, so start right after one of its tries.
    # Then 2 s of idle loop (an idle collection included).
    from ykt.compat import ticks_diff, ticks_ms

    for _ in range(1500):
        app.step()
        vclock.advance_us(20000)
    for _ in range(1000):
        if not app.timeq.q.active and ticks_diff(app.timeq._due, ticks_ms()) > 5000:
            break
        app.step()
        vclock.advance_us(20000)
    assert app.sync.state == 0 and app.ota.state == 0 and app.uplink.state_name() == "idle", \
        (app.sync.state, app.ota.state, app.uplink.state_name())
    # the updater ran its check (no back office: a network error) and was
    # dropped until the next one: its module and object hold no heap now
    import sys

    assert app.ota.u is None and "ykt.ota.updater" not in sys.modules and app.ota.errors, app.ota.errors
    mp = _heap_lock()
    steps = 100
    if mp is None:
        for _ in range(steps):
            assert app.step() is False
            vclock.advance_us(20000)
        return
    gc.collect()
    busy = bytearray(steps)
    mp.heap_lock()
    try:
        for i in range(steps):
            busy[i] = 1 if app.step() else 0
            vclock.advance_us(20000)
    finally:
        mp.heap_unlock()
    assert not any(busy) and app.memory_errors == 0, app.errors


def test_no_alloc_pack_into():
    t = taprec.Tap()
    t.seq = 123456
    t.time = 1795000000
    for k in range(8):
        t.token[k] = 0xA0 + k
    t.fare = 200
    t.dl_ver = 70000
    buf = bytearray(taprec.SIZE)
    taprec.pack_into(buf, 0, t)             # warm up
    mp = _heap_lock()
    if mp is not None:
        mp.heap_lock()
        try:
            for _ in range(20):
                taprec.pack_into(buf, 0, t)
        finally:
            mp.heap_unlock()
    assert bytes(buf) == taprec.pack(t) and bytes(buf[8:16]) == bytes(t.token)
