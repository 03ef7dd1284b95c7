# Portability shim: the one place that papers over ESP32 MicroPython, the unix
# port and CPython. Firmware imports time functions from here, never from
# `time`, so the host simulator can substitute its virtual clock.
try:
    from micropython import const  # noqa: F401
    import micropython as _mp

    native = _mp.native if hasattr(_mp, "native") else (lambda f: f)
    MICROPYTHON = True
except ImportError:  # CPython

    def const(x):
        return x

    def native(f):
        return f

    MICROPYTHON = False

try:
    # Present only on the host simulator's path: the shared virtual clock that
    # also drives the simulated peripherals, so a day runs in seconds.
    import vclock as _clk
except ImportError:
    _clk = None

if _clk is not None:
    ticks_ms = _clk.ticks_ms
    ticks_us = _clk.ticks_us
    ticks_diff = _clk.ticks_diff
    ticks_add = _clk.ticks_add
    sleep_ms = _clk.sleep_ms
    time = _clk.time
    SIMULATED = True
else:
    import time as _t

    SIMULATED = False
    time = _t.time
    if hasattr(_t, "ticks_ms"):
        ticks_ms = _t.ticks_ms
        ticks_us = _t.ticks_us
        ticks_diff = _t.ticks_diff
        ticks_add = _t.ticks_add
        sleep_ms = _t.sleep_ms
    else:  # CPython host tools without the simulator: wall-clock ticks, same wrap
        _PERIOD = 1 << 30

        def ticks_ms():
            return int(_t.monotonic() * 1000) % _PERIOD

        def ticks_us():
            return int(_t.monotonic() * 1000000) % _PERIOD

        def ticks_add(t, d):
            return (t + d) % _PERIOD

        def ticks_diff(a, b):
            return ((a - b + (_PERIOD >> 1)) % _PERIOD) - (_PERIOD >> 1)

        def sleep_ms(ms):
            _t.sleep(ms / 1000)


def mem_free():
    try:
        import gc

        return gc.mem_free()
    except (ImportError, AttributeError):
        return -1


def mem_alloc():
    try:
        import gc

        return gc.mem_alloc()
    except (ImportError, AttributeError):
        return -1


def read_file(path, limit, binary=True):
    """Read a whole file of at most limit bytes. MicroPython's read(n)
    reserves n bytes up front, so the size comes from stat first: a small file
    costs a small allocation, a huge one is refused before allocating."""
    import os

    size = os.stat(path)[6]
    if size > limit:
        raise ValueError("%s: %d bytes, more than %d" % (path, size, limit))
    with open(path, "rb" if binary else "r") as f:
        return f.read(size)


class Scratch:
    """One 4 KB buffer for the parts that need a large one only while they
    work: the upload batch (built, sent, acknowledged) and a deny-list image
    being written (its block buffer). A PSRAM-less heap has room for one
    such block made at boot, not for two, nor for one made later in a heap
    that the day has fragmented. take() lends it to one owner at a time;
    the other waits for its next turn."""

    def __init__(self, n=4096):
        self.buf = bytearray(n)
        self.owner = None

    def take(self, who):
        if self.owner is None or self.owner is who:
            self.owner = who
            return self.buf
        return None

    def give(self, who):
        if self.owner is who:
            self.owner = None
