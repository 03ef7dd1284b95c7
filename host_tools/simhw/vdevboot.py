# Power-on of a virtual device on a pty (ykt sim device --pty): build the
# simulated hardware for the board, then run main.py like a board does (unless
# this start is a raw-REPL soft reboot). Runs on the MicroPython unix port.
import os
import sys

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
