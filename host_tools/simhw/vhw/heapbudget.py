# The firmware's heap budget inside a simulator process, and what the firmware
# really uses of it.
#
# The simulated chip (fake machine, PN532, cards, flash) shares the
# interpreter's heap with the firmware but does not exist on the device. The
# launcher (ykt_tools/sim/mp.py) starts the interpreter with the budget plus an
# allowance for the chip and passes the budget in YKT_FW_HEAP (bytes, or
# "board": the board file's heap_bytes). Once the virtual hardware is built,
# apply() places a ballast block that takes away everything above the budget,
# so the firmware hits MemoryError where the device would.
#
# Two accountings (docs/runtime.md):
# - frozen (micropython32, YKT_FROZEN=1): the firmware is frozen into the
#   interpreter as on a PSRAM-less board, its code lives in the image and the
#   budget covers everything the firmware holds on the heap: its modules' RAM
#   (globals, classes, function objects), data and transients. Firmware
#   modules the simulator imported before the budget applied (the board file
#   validator) are measured at import and charged to the firmware.
# - proxy (the 64-bit port loading .py): the firmware's modules are imported
#   before the ballast and left out as if frozen; the budget covers data.
#   Objects are about twice their ESP32 size there, so these figures are a
#   proxy, labelled as 64-bit wherever they are reported.
#
# YKT_FW_RESERVE (bytes) holds back part of the budget: a run that has no
# MemoryError with a 16 KiB reserve proves 16 KiB to spare, fragmentation
# included.
import gc
import os

_ballast = None
base = 0           # heap held by the simulator (and the ballast) when the budget was applied
code_bytes = 0     # proxy: heap the firmware's modules take when imported (frozen on the device)
pre_bytes = 0      # frozen: firmware module RAM allocated before the budget applied
reserve = 0
applied = False
frozen = os.getenv("YKT_FROZEN") == "1"
_budget = None
live = 0           # firmware heap after the last collection the simulator saw
live_peak = 0
peak = 0           # most the firmware held at once: live + what one loop step allocated
burst_peak = 0     # most one loop step allocated
_SAMPLE_MS = 2000  # idle live-heap samples, at the loop's own idle-collection cadence
_sampled_at = -_SAMPLE_MS
# PSRAM boards: the budget there is the collection pause. The idle collection
# the simulator samples with is timed on the host's clock (best of two, so a
# preempted one does not count) and scaled by the time factor to ESP32 ms
# (docs/design.md, "Time factor"). Conservative: the host collection also
# marks the simulator's heap and the ballast. A tap during which the heap
# shrank had a collection inside it (gc_in_tap).
psram = False
ESP32_FACTOR = 45
gc_pause_max_us = 0
gc_in_tap = 0
census_on = os.getenv("YKT_HEAP_REPORT") == "1"   # `ykt sim --heap-report` (vhw.heapcensus)
census = None      # the census at the live high-water mark (retaken when it grows 2 KB)
_census_at = 0
_app = None        # the firmware App the loop steps (the census walks it)
if census_on:
    from vhw import heapcensus

    heapcensus.meter()


def budget():
    return _budget if _budget is not None else _env_budget()


def _env_budget():
    v = os.getenv("YKT_FW_HEAP")
    return int(v) if v and v != "board" else None


def firmware_import(name):
    """Import a firmware module for the simulator's own use before the budget
    applies (World validates the board file); on a frozen runtime its RAM is
    charged to the firmware all the same."""
    mods = __import__("sys").modules
    if applied or not frozen or name in mods or not hasattr(gc, "mem_alloc"):
        return __import__(name, None, None, ("_",))
    global pre_bytes
    gc.collect()
    a0 = gc.mem_alloc()
    m = __import__(name, None, None, ("_",))
    gc.collect()
    pre_bytes += gc.mem_alloc() - a0
    return m


def apply(board_heap=None, board_psram=False):
    """Leave exactly the firmware's budget free (MicroPython only; once).
    board_heap: the board's heap_bytes, used when YKT_FW_HEAP is "board";
    board_psram: the board has PSRAM (its collections are timed)."""
    global _ballast, base, applied, code_bytes, reserve, _budget, psram
    psram = bool(board_psram)
    v = os.getenv("YKT_FW_HEAP")
    b = board_heap if v == "board" else _env_budget()
    if applied or b is None or not hasattr(gc, "mem_free"):
        return
    applied = True
    _budget = b
    reserve = int(os.getenv("YKT_FW_RESERVE") or 0)
    if os.getenv("YKT_CHIP_METER") == "1":   # opt-in: its wrappers allocate (heap-locked tests)
        _meter_chip()
    gc.collect()
    if not frozen:
        a0 = gc.mem_alloc()
        _import_firmware()
        gc.collect()
        code_bytes = gc.mem_alloc() - a0
    extra = gc.mem_free() - (b - reserve - pre_bytes)
    while extra > 0 and _ballast is None:
        try:
            _ballast = bytearray(extra)
        except MemoryError:   # fragmented: take a little less
            extra -= 4096
    gc.collect()
    base = gc.mem_alloc()


# The device process's own work between slices of firmware time (reading a
# command and its events from the runner, writing the reply) is the
# simulator's, not the firmware's: done in the ballast's place (set aside
# meanwhile, as for the census), so that it neither takes the firmware's
# heap nor fragments it, and what it keeps is counted in base. Afterwards
# the firmware finds exactly the free heap it had before.
_aside = None


def sim_begin():
    global _ballast, _aside
    _aside = None
    if not applied or _ballast is None:
        return
    gc.collect()
    _aside = (gc.mem_free(), gc.mem_alloc())
    _ballast = None
    gc.collect()


def sim_end():
    global _ballast, _aside, base
    if _aside is None:
        return
    f0, a0 = _aside
    _aside = None
    gc.collect()
    want = gc.mem_free() - f0
    while want > 0 and _ballast is None:
        try:
            _ballast = bytearray(want)
        except MemoryError:   # fragmented by what the simulator keeps: take a little less
            want -= 256
    gc.collect()
    base += gc.mem_alloc() - a0   # the firmware's figure is unchanged by the simulator's work


def reset_ram():
    """A chip reset clears RAM. An in-process reboot (vhw.world.World.reboot)
    cannot free what is still referenced of the old App, so after a reset
    everything above the simulator's base is given back: the ballast
    shrinks by it and it counts as the simulator's, and the new boot finds
    its whole budget free, as on the device (the firmware holds nothing
    right after a reset)."""
    global _ballast, base
    if not applied or _ballast is None:
        return
    gc.collect()
    held = gc.mem_alloc() - base
    if held <= 0:
        return
    n = len(_ballast)
    _ballast = None
    gc.collect()
    while _ballast is None and n - held > 0:
        try:
            _ballast = bytearray(n - held)
        except MemoryError:   # fragmented: give a little more
            held += 64
    gc.collect()
    base = gc.mem_alloc()


def _import_firmware():
    import ykt

    _import_tree(ykt.__file__.rsplit("/", 1)[0], "ykt")


def _import_tree(d, pkg):
    for f in sorted(os.listdir(d)):
        p = d + "/" + f
        if f.endswith(".py") or f.endswith(".mpy"):
            m = f.rsplit(".", 1)[0]
            if m != "__init__":
                __import__(pkg + "." + m)
                gc.collect()   # the compiler's garbage is reused by the next module: less fragmentation
        elif f != "__pycache__" and os.stat(p)[0] & 0x4000:
            __import__(pkg + "." + f)
            gc.collect()
            _import_tree(p, pkg + "." + f)


# The simulated chip runs inside the firmware's calls (a UART read runs the
# PN532 model, a socket send the simulated network, a littlefs write the
# flash model): what it allocates there is the simulator's, not the
# firmware's. Every function of the chip's modules is wrapped to add what it
# allocated (outermost call only) to chip_bytes, which step() takes off the
# iteration's figure; a value it hands back (bytes read from a UART) is the
# firmware's, as on the device, and stays counted.
# The wrapper's own call (its argument tuple and keyword dict, made before it
# runs) is calibrated once and taken off too, at its smallest: conservative.
# Opt-in (YKT_CHIP_METER=1): those allocations break the heap-locked
# no-allocation tests, so it is off by default.
CHIP_MODULES = ("machine", "esp32", "network", "vhw.ipnet", "vhw.flash")
chip_bytes = 0
_in_chip = False
_call_cost = 0


def _chip_wrap(f):
    def w(*a, **k):
        global chip_bytes, _in_chip
        if _in_chip:
            return f(*a, **k)
        _in_chip = True
        a0 = gc.mem_alloc()
        r = None
        try:
            r = f(*a, **k)
            return r
        finally:
            _in_chip = False
            d = gc.mem_alloc() - a0 - _kept(r)
            if d > 0:   # negative: a collection ran inside; nothing is taken off
                chip_bytes += d
            chip_bytes += _call_cost

    return w


def _kept(r):
    t = type(r)
    if t is bytes or t is bytearray or t is str:
        return (32 + len(r)) // 16 * 16 if len(r) else 0
    if t is tuple or t is list:
        return 16 + len(r) * 4
    return 0


def _calibrate():
    global _call_cost, chip_bytes

    def nop(x, y=0):
        return None

    w = _chip_wrap(nop)
    cost = []
    for args in ((1,), (1, 2)):
        gc.collect()
        c0 = chip_bytes
        a0 = gc.mem_alloc()
        for _ in range(32):
            w(*args)
        cost.append((gc.mem_alloc() - a0 - (chip_bytes - c0)) // 32)
    chip_bytes = 0
    _call_cost = max(0, min(cost))


def _meter_chip():
    import sys

    _calibrate()
    for name in CHIP_MODULES:
        m = sys.modules.get(name)
        if m is None:
            continue
        for k, v in list(m.__dict__.items()):
            t = type(v).__name__
            if t in ("function", "closure"):
                setattr(m, k, _chip_wrap(v))
            elif t == "type" and getattr(v, "__module__", None) == name:
                for ak, av in list(v.__dict__.items()):
                    if type(av).__name__ in ("function", "closure"):
                        setattr(v, ak, _chip_wrap(av))


def firmware_bytes(alloc):
    """Heap the firmware holds when the interpreter has `alloc` allocated: on a
    frozen runtime everything above the simulator's base plus the module RAM
    charged before it; on the proxy, code included."""
    if not applied:
        return alloc
    return alloc - base + (pre_bytes if frozen else code_bytes)


def collected():
    """Call right after a gc.collect(): samples the firmware's live heap."""
    global live, live_peak, peak
    if not applied:
        return
    live = firmware_bytes(gc.mem_alloc())
    if live > live_peak:
        live_peak = live
        if census_on and _app is not None and live >= _census_at + 2048:
            _take_census()
    if live > peak:
        peak = live


def _take_census():
    """Census of the live heap (just collected). The walk's own bookkeeping
    must not count against the firmware nor fail for want of its budget: the
    ballast steps aside meanwhile and comes back smaller by what the census
    result keeps, which goes to the simulator's share (base)."""
    global census, _ballast, base, _census_at
    from vhw import heapcensus

    _census_at = live
    a0 = gc.mem_alloc()
    n = len(_ballast) if _ballast is not None else 0
    _ballast = None
    gc.collect()
    a1 = gc.mem_alloc()
    census = None
    try:
        census = heapcensus.take(_app, live)
    except MemoryError:   # the simulator's allowance is all there is for the walk
        census = {"error": "no heap left for the census walk", "measured_bytes": live}
    finally:
        gc.collect()
        held = gc.mem_alloc() - a1
        while n > 0 and _ballast is None:
            try:
                _ballast = bytearray(max(0, n - held))
            except MemoryError:   # the census's result took part of the hole
                held += 64
        if n:
            gc.collect()
            base += gc.mem_alloc() - a0


def step(app):
    """One firmware loop iteration, measured: what it allocated (garbage
    included, a conservative figure) on top of the live heap."""
    global peak, burst_peak, _app
    if census_on and app is not _app:
        from vhw import heapcensus

        heapcensus.meter_parts(app)
    if census_on:   # only the census walks it: holding an App keeps a rebooted one's RAM live
        _app = app
    if not applied:
        return app.step()
    global _sampled_at
    a0 = gc.mem_alloc()
    c0 = chip_bytes
    busy = app.step()
    raw = gc.mem_alloc() - a0
    d = raw - (chip_bytes - c0)
    if busy and raw < 0:
        global gc_in_tap
        gc_in_tap += 1
    if d > 0:   # a collection inside the step makes d small or negative: the sample is lost, not wrong
        if d > burst_peak:
            burst_peak = d
        if live + d > peak:
            peak = live + d
    if not busy:
        import vclock

        now = vclock.now_ms()
        if now - _sampled_at >= _SAMPLE_MS:
            _sampled_at = now
            if psram:
                _timed_collect()
            else:
                gc.collect()
            collected()
    return busy


def _timed_collect():
    global gc_pause_max_us
    import time as _rt

    best = None
    for _ in range(2):
        t0 = _rt.ticks_us()
        gc.collect()
        dt = _rt.ticks_diff(_rt.ticks_us(), t0)
        if best is None or dt < best:
            best = dt
    if best > gc_pause_max_us:
        gc_pause_max_us = best


def carry(rep):
    """Keep the high-water marks of the interpreter a reset ended."""
    global peak, live_peak, burst_peak, census
    if rep:
        if rep.get("heap_census") and rep.get("heap_live_peak_bytes", 0) >= live_peak:
            census = rep["heap_census"]   # the mark stands until this interpreter passes it
            global _census_at
            _census_at = census.get("measured_bytes", 0)
        if census_on and rep.get("heap_census"):
            from vhw import heapcensus

            for k, v in (rep["heap_census"].get("transients") or {}).items():
                heapcensus.bursts[k] = max(v, heapcensus.bursts.get(k, 0))
        peak = max(peak, rep.get("heap_peak_bytes", 0))
        live_peak = max(live_peak, rep.get("heap_live_peak_bytes", 0))
        burst_peak = max(burst_peak, rep.get("heap_step_burst_bytes", 0))
        global gc_pause_max_us, gc_in_tap
        gc_pause_max_us = max(gc_pause_max_us, rep.get("gc_pause_max_host_us", 0))
        gc_in_tap += rep.get("gc_in_tap", 0)


def report():
    """The heap figures every simulator run prints."""
    r = {"heap_budget_bytes": budget() or -1, "heap_reserve_bytes": reserve,
            "heap_peak_bytes": peak if applied else -1, "heap_live_peak_bytes": live_peak if applied else -1,
            "heap_step_burst_bytes": burst_peak if applied else -1,
            "heap_module_bytes": pre_bytes if frozen else code_bytes,
            "heap_accounting": "frozen" if frozen else "proxy-64bit-code-excluded",
            "heap_simulator_bytes": base, "heap_chip_alloc_bytes": chip_bytes, "gc_in_tap": gc_in_tap,
            "psram": psram}
    if psram:
        r["gc_pause_max_host_us"] = gc_pause_max_us
        r["gc_pause_max_ms"] = round(gc_pause_max_us * ESP32_FACTOR / 1000.0, 1)
    if census_on:
        if census is None and _app is not None and not applied:
            gc.collect()
            _take_census()   # a runtime without a budget (CPython): the census at the end
        c = dict(census or {})
        c["burst_bytes"] = burst_peak if applied else -1
        if census_on:
            from vhw import heapcensus

            t = c.get("transients") or {}
            for k, v in heapcensus.bursts.items():   # the most since boot, carried over resets
                if v > t.get(k, 0):
                    t[k] = v
            c["transients"] = dict(sorted(t.items(), key=lambda kv: -kv[1]))
        r["heap_census"] = c
    return r
