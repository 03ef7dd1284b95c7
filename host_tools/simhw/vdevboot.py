# Power-on of a virtual device on a pty (ykt sim device --pty): build the
# simulated hardware for the board, then run main.py like a board does (unless
# this start is a raw-REPL soft reboot). Runs on the MicroPython unix port.
import os

# The simulated chip keeps NVS in memory, and every soft reboot of a virtual
# device is a new interpreter: load the NVS blobs committed earlier from
# <devdir>/nvs.json at the chip's power-on and save them at every commit, so
# provisioned secrets survive reboots like on a board.
try:
    import json as _json, binascii as _ba
    from vhw import chip as _vchip
    from vhw import e_nvs as _envs
    _nvs_path = os.getenv("YKT_VDEV_DIR") + "/nvs.json"

    def _nvs_load(cause):
        if cause != "power":
            return
        try:
            with open(_nvs_path) as f:
                d = _json.load(f)
        except (OSError, ValueError):
            return
        c = _vchip.get()
        for ns in d:
            kv = c.nvs.setdefault(ns, {})
            for k in d[ns]:
                v = d[ns][k]
                kv[k] = v if type(v) is int else _ba.unhexlify(v)

    def _nvs_save():
        c = _vchip.get()
        d = {}
        for ns in c.nvs:
            d[ns] = {}
            for k in c.nvs[ns]:
                v = c.nvs[ns][k]
                d[ns][k] = v if type(v) is int else _ba.hexlify(v).decode()
        with open(_nvs_path + ".tmp", "w") as f:
            f.write(_json.dumps(d))
        os.rename(_nvs_path + ".tmp", _nvs_path)

    _nvs_commit0 = _envs.NVS.commit

    def _nvs_commit(self):
        _nvs_commit0(self)
        _nvs_save()

    _envs.NVS.commit = _nvs_commit
    _vchip.on_reset(_nvs_load)
    _nvs_get0 = _vchip.get

    def _nvs_get():
        # no world (firmware not deployed yet): the default chip still powers on
        if _vchip._cur is None:
            _vchip.configure()
        return _nvs_get0()

    _vchip.get = _nvs_get
except ImportError as e:
    print("virtual NVS unavailable:", e)
import gc as _gc

_gc.collect()

_dir = os.getenv("YKT_VDEV_DIR")
_board = os.getenv("YKT_VDEV_BOARD") or "bus_validator"
try:
    import vhw.world as _world

    _world.boot_virtual_device(_dir, _board)
except ImportError as e:
    print("virtual hardware unavailable:", e)

if os.getenv("YKT_VDEV_RUN_MAIN") == "1":
    try:
        os.stat("main.py")
        _has_main = True
    except OSError:
        _has_main = False
    if _has_main:
        try:
            exec(open("main.py").read(), {"__name__": "__main__"})
        except KeyboardInterrupt:
            pass
