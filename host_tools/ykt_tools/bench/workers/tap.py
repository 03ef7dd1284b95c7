# `ykt bench tap` worker (MicroPython): the rider's tap end to end on one board.
#   tap.py BOARD INPUTS TAPS SEED   ->   @@JSON {"taps": [[v, c] x 5 parts per tap], ...}
# The firmware boots and runs its own loop (App.step, idle sleep as App.run)
# on the simulated chip. Time inside the simulated chip (bus methods, the
# clock's advance with the events it fires, flash operations) is taken out of
# the real interpreter time; the rest is firmware CPU, reported per tap and
# part (the host multiplies it by the ESP32 factor). Parts, as instants:
#   in     the card enters the field (a clock event)
#   poll   start of the poll() that reports it (the instant `in` if that poll had begun before)
#   read   that poll returns
#   jstart journal append begins (read -> jstart: the decision and tap record)
#   jend   the append returned: the tap is durable
#   pin    first change of a feedback GPIO (LED, buzzer, relay)
import sys
import gc
import json
import time as rtime

import vclock
from vhw import bus

BOARD = sys.argv[1]
INPUTS = sys.argv[2]
TAPS = int(sys.argv[3])
SEED = int(sys.argv[4])
FACTOR = float(sys.argv[5]) if len(sys.argv) > 5 else 45.0   # ESP32 time per unix-port time
FIRST_CAP_US = 500  # longest stretch charged the first time a call pair is seen
WARMUP = 3        # taps run before the measured ones (the stretch minima settle)
IDLE_MS = 20   # ykt.app._IDLE_MS
ERASE_US = 45000          # 4 KiB sector erase, typical (W25Q32JV tSE)
PAGE_FIRST_US = 30        # page program: first byte (tBP1) ...
PAGE_BYTE_US = 2.5        # ... and each further byte (tBP2); 256 B = 0.67 ms

LOW_FREE = 32768  # free heap kept for the firmware's own stretches during a tap
_rt = rtime.ticks_us
_rd = rtime.ticks_diff
depth = 0
fw = 0            # real us outside the simulated chip since the tap window opened
calls = 0         # calls into the simulated chip since then
OVH = 0.0         # real us a wrapped call adds to `fw` (measured: calibrate())
mark = _rt()      # real instant the firmware last got the CPU back


fw_alloc = 0      # net heap the firmware allocated since then (the simulated chip's own left out)
fw_gc = 0         # firmware stretches in which a collection ran
_a0 = 0
win = [False]     # a tap window is open
COSIM = [False]   # firmware CPU moves the virtual clock (on once the firmware runs its loop)
_N = object()


capped = 0
fw_raw = 0        # the same, every stretch at its wall-clock length
MINS = {}         # "call>call" -> least us the firmware took between those two calls
LAST = [None]
_adv0 = vclock.advance_us   # the clock's own advance (the worker wraps the module's)


def enter(name="at"):
    """The firmware hands over to the simulated chip (`name`: which call).
    Its CPU since it last got control, x FACTOR, moves the virtual clock
    first, so the chip and the card see the firmware's time as they would on
    the device (CPU spent polling while the chip works overlaps, as there).

    On this shared machine the wall clock also counts other processes: a
    stretch of firmware code between the same two calls (`LAST[0]` -> `name`)
    is charged the least it took in this run (warm-up taps before the
    measured ones settle the minima)."""
    global depth, fw, fw_raw, calls, fw_alloc, fw_gc, capped
    if depth == 0:
        dt = _rd(_rt(), mark) - OVH
        if dt < 0:
            dt = 0
        fw_raw += dt
        d = gc.mem_alloc() - _a0
        if d < -1024:
            fw_gc += 1     # the heap shrank by more than a call frame: a collection ran here
        else:
            fw_alloc += d  # net: a call frame the wrapper allocates is freed again
        if True:
            # a collection is counted (gc_in_tap) but not charged: on the host it
            # sweeps the simulated chip's heap too, far more than the device's
            key = LAST[0] + ">" + name if LAST[0] else name
            m = MINS.get(key)
            if m is None and dt > FIRST_CAP_US:
                dt = FIRST_CAP_US    # first sight of a stretch, preempted: no tap stretch is that long
                capped += 1
            if m is None or dt < m:
                MINS[key] = dt
            elif dt > m:
                dt = m
                capped += 1
        fw += dt
        calls += 1
        LAST[0] = name
        depth += 1
        if dt > 0 and COSIM[0]:
            _adv0(int(dt * FACTOR))
        return
    depth += 1


def leave():
    global depth, mark, _a0
    depth -= 1
    if depth == 0:
        if win[0] and gc.mem_free() < LOW_FREE:
            # The simulated chip's garbage (frames, bytes it builds) is not on
            # the device: collect it on the chip's time, before it makes the
            # firmware's next allocation run a collection the device would
            # not run. Collections left in firmware stretches are the firmware's.
            gc.collect()
        _a0 = gc.mem_alloc()
        mark = _rt()


def cpu():
    """Firmware CPU us (unix port) since the window opened: real time
    outside the simulated chip less the instrumentation's own cost per call.
    Already on the virtual clock (x FACTOR); reported for the breakdown."""
    return fw


def wrap(obj, name, tag=None):
    f = getattr(obj, name)
    name = tag or name

    def w(a=_N, b=_N, c=_N, d=_N):   # no *args: a call allocates nothing
        enter(name)
        try:
            if a is _N:
                return f()
            if b is _N:
                return f(a)
            if c is _N:
                return f(a, b)
            if d is _N:
                return f(a, b, c)
            return f(a, b, c, d)
        finally:
            leave()

    setattr(obj, name, w)


class _Dummy:
    def op(self, x):
        return x


def calibrate(n=4000):
    """What one wrapped call costs the firmware's side of the account beyond
    a plain call (argument tuple, try/finally, the two real-clock reads),
    best of 5, so it can be taken out per call."""
    global fw, calls, mark, OVH
    d = _Dummy()
    plain = d.op
    best = None
    for _ in range(5):
        t0 = _rt()
        for i in range(n):
            plain(i)
        base = _rd(_rt(), t0)
        wrap(d, "op")
        fw = 0
        calls = 0
        fw_alloc = 0
        fw_gc = 0
        _a0 = gc.mem_alloc()
        mark = _rt()
        for i in range(n):
            d.op(i)
        got = fw + _rd(_rt(), mark) - base
        del d.op
        v = got / n
        best = v if best is None or v < best else best
    OVH = best if best > 0 else 0.0
    return OVH


class CountGC:
    """Stands for the gc module inside the firmware: counts its collections."""
    def __init__(self):
        self.n = 0

    def collect(self):
        self.n += 1
        gc.collect()

    def __getattr__(self, name):
        return getattr(gc, name)


def wrap_class(cls):
    for n in ("writeto", "readfrom_into", "readfrom", "write", "readinto", "read", "any",
              "write_readinto", "writevto", "value", "duty_u16", "freq"):
        if n in cls.__dict__:
            wrap(cls, n, cls.__name__ + "." + n)


def _adv(orig):
    def adv(us):
        enter("sleep")
        try:
            orig(us)
        finally:
            leave()
    return adv


def _load():
    import binascii

    with open(INPUTS) as f:
        d = json.load(f)
    return d, binascii


def provision(w, d, binascii):
    from ykt.fs import replace_file
    from ykt.net import syncsetup

    w.write_json("config.json", {"device_id": 1501})
    w.write_json("data/profile.json", d["profile"])
    for kind, hx in d["files"].items():
        replace_file(syncsetup.path(w.root, kind), binascii.unhexlify(hx))
    w.nvs_set("tok_key", binascii.unhexlify(d["tok_key"]))
    w.nvs_set("jrnl_key", binascii.unhexlify(d["jrnl_key"]))
    # the deny-list image goes straight into slot A, as an install leaves it
    lab, ty, sub, off, size = w.chip.partition("dlist_a")
    fl = w.chip.flash
    buf = bytearray(4096)
    with open(d["dl"], "rb") as f:
        o = 0
        while True:
            n = f.readinto(buf)
            if not n:
                break
            fl.erase(off + o, 4096)
            fl.program(off + o, memoryview(buf)[0:n])
            o += 4096


def main():
    global fw, mark, calls, fw_alloc, fw_gc, _a0
    from vhw.world import World
    from vhw import rfcards

    d, binascii = _load()
    w = World(BOARD, uid=b"\x24\x0a\xc4\x00\x15\x01", net=False, flash_path=d["flash"])
    provision(w, d, binascii)
    d = None
    app = w.boot()
    b = w.board
    # the simulated chip's time is taken out of the firmware's
    import machine

    for name in ("I2C", "SPI", "UART", "Pin", "PWM"):
        c = getattr(machine, name, None)
        if c is not None:
            wrap_class(c)
    vclock.advance_us = _adv(vclock.advance_us)
    ovh = calibrate()
    cgc = CountGC()
    for name, m in list(sys.modules.items()):
        if name.startswith("ykt") and getattr(m, "gc", None) is gc:
            m.gc = cgc
    fl = w.chip.flash
    counts = [0, 0]
    p_orig, e_orig = fl.program, fl.erase

    def program(addr, data):
        enter("flash")
        try:
            counts[0] += win[0]
            n = len(data)
            t = 0
            while n > 0:   # one page program per 256-byte page touched
                k = 256 - (addr % 256)
                k = n if n < k else k
                t += PAGE_FIRST_US + PAGE_BYTE_US * (k - 1)
                n -= k
                addr += k
            p_orig(addr - len(data), data)
            vclock.advance_us(int(t))
        finally:
            leave()

    def erase(addr, n):
        enter("flash")
        try:
            counts[1] += win[0]
            e_orig(addr, n)
            vclock.advance_us(ERASE_US * (n // 4096))
        finally:
            leave()

    fl.program = program
    fl.erase = erase
    pins = b["pins"]
    inst = {}   # instant name -> (virtual us, cpu us) of the current tap

    def at(name):
        if depth == 0:
            enter(name)    # the firmware's CPU so far onto the clock first
            leave()
        if name not in inst:
            inst[name] = (vclock.now_us(), cpu())

    for k in ("LED_R", "LED_G", "LED_B", "BUZZER", "RELAY"):
        if k in pins:
            bus.on_pin(pins[k], lambda v: win[0] and at("pin"))
    r = app.reader
    poll0 = r.poll
    pstart = [None]

    def poll(cr):
        pstart[0] = (vclock.now_us(), cpu())
        got = poll0(cr)
        if got and win[0] and "in" in inst:
            ps = pstart[0]
            inst["poll"] = inst["in"] if ps[0] < inst["in"][0] else ps
            at("read")
        return got

    r.poll = poll
    j = app.journal
    app0 = j.append

    def append(tap):
        at("jstart")
        s = app0(tap)
        at("jend")
        return s

    j.append = append
    outcomes = {}
    app.on_event = lambda tap, kind, msg: outcomes.__setitem__(str(kind), outcomes.get(str(kind), 0) + 1)
    seed = SEED or 1
    out = []
    gcs_total = 0
    alloc_max = 0
    free_min = 1 << 30
    irq = getattr(r.pn.t, "irq", None) is not None

    def step_for(ms, until=None):
        t0 = vclock.now_us()
        while vclock.now_us() - t0 < ms * 1000:
            if until is not None and until():
                return True
            if not app.step():
                vclock.sleep_ms(IDLE_MS)
        return False

    COSIM[0] = True
    step_for(3000)   # past boot: the first idle collection, display idle screen
    for i in range(TAPS + WARMUP):
        seed = (seed * 1103515245 + 12345) & 0x3FFFFFFF
        card = rfcards.make_ssc(seq=1000 + i, birth=19500101 + (seed % 50) * 10000)
        delay = 100000 + seed % 250000   # random instant: over several poll periods
        inst.clear()
        gc.collect()
        free0 = gc.mem_free()
        alloc0 = gc.mem_alloc()
        st = [0]

        def arrive(card=card):
            # inside the chip's time (a clock event): the window opens here
            global fw, fw_raw, calls, fw_alloc, fw_gc
            fw = 0
            fw_raw = 0
            calls = 0
            fw_alloc = 0
            fw_gc = 0
            st[0] = cgc.n
            win[0] = True
            at("in")
            w.field.present(card)

        vclock.schedule(delay, arrive)
        ok = step_for(delay // 1000 + 3000, lambda: "pin" in inst)
        win[0] = False
        grew = fw_alloc
        # explicit collections, collections seen in firmware stretches, and
        # one more if what the firmware allocated would not fit the free heap
        # a device has after its idle collection (it would collect then)
        gcs = cgc.n - st[0] + fw_gc + (1 if grew >= free0 else 0)
        if grew > alloc_max:
            alloc_max = grew
        if free0 < free_min:
            free_min = free0
        if not ok or "jend" not in inst or "read" not in inst:
            print("@@JSON " + json.dumps({"error": "tap %d: no feedback (%s)" % (i, sorted(inst))}))
            return
        v0, c0 = inst["in"]
        row = []
        prev = inst["in"]
        for k in ("poll", "read", "jstart", "jend", "pin"):
            cur = inst[k]
            row.append(cur[0] - prev[0])
            row.append(cur[1] - prev[1])
            prev = cur
        row.append(gcs)
        row.append(fw_raw)
        if i >= WARMUP:
            print("@@JSON " + json.dumps({"tap": row}))   # one line per tap: the heap is the board's
            gcs_total += gcs
        step_for(400)
        w.field.remove(card)
        step_for(200, None)
        step_for(10000, lambda: not app.feedback.busy() and not r.present)
    print("@@JSON " + json.dumps({
        "gc_in_tap": gcs_total, "irq": irq,
        "reader_opts": r.opts, "outcomes": outcomes, "erases": counts[1], "programs": counts[0],
        "mem_free": gc.mem_free(), "wrap_overhead_us": ovh, "capped_stretches": capped, "factor": FACTOR,
        "tap_alloc_max": alloc_max, "free_before_tap_min": free_min, "memory_errors": app.memory_errors, "errors": app.errors}))


main()
