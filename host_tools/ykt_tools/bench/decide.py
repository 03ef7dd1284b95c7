"""Firmware CPU per tap: identity (keyed token) -> decision -> feedback call.

Runs the firmware under the real MicroPython unix port with an ESP32-like heap
(`micropython -X heapsize=256K`) and times each tap there with the real
time.ticks_us; ESP32-equivalent = unix-port time x 45 (design.md). The fare
tables and catalog are compiled from data/ first. Also reports heap bytes
allocated per decision (steady state) and the display's modeled I2C time."""
import json
import os
import subprocess
import tempfile

from ykt_tools import ROOT, FIRMWARE
from ykt_tools.build import fares as FC

ESP32_FACTOR = 45
BUDGET_MS = 20.0

_FW = r'''
import sys, gc, time
sys.path[:0] = [%(fw)r]
from ykt import taprec as T, cardread as CR
from ykt.rules import catalog as C
from ykt.rules import fares as F
from ykt.rules import recent
from ykt.rules import decide
from ykt.ui import feedback
from ykt.ui import display
from ykt import outcome as O
from ykt.sec.token import card_token
D = %(dir)r
N = %(n)d

class Pin:  # as cheap as the C machine.Pin: one attribute store
    __slots__ = ("v",)
    def __init__(self):
        self.v = 0
    def value(self, v=None):
        if v is not None:
            self.v = v
        return self.v

class PWM:
    def __init__(self):
        self.f = 0
        self.d = 0
    def freq(self, f):
        self.f = f
    def duty_u16(self, d):
        self.d = d

class NullI2C:  # bytes are counted; their wire time is modeled, not measured
    def __init__(self):
        self.n = 0
    def writeto(self, a, b):
        self.n += len(b)

class Deny:
    def __init__(self):
        self.version = 42
        self.d = {}
    def lookup(self, tok):
        return self.d.get(bytes(tok), 0)

KEY = b"bench-key-not-for-devices-0123456"
BOARDS = (("bus_validator", 301, "bus.bin", False, 0),
          ("ferry_validator", 820, "ferry.bin", True, 1),
          ("turnstile", 5101, "scenic.bin", True, 1))
cat = C.load(D + "/catalog.bin")
glyphs = display.load_glyphs()
ents = F.load(D + "/ents.bin", F.Entitlements)
out = {}
NC = 16
for board, entry, fname, has_disp, stop in BOARDS:
    d = rc = fb = disp = fares = cards = toks = full = dec = None  # drop the previous board first
    gc.collect()
    prof = C.profile_from({"device": "BENCH", "entry": entry, "stop": stop, "board": board,
                           "direction": 3 if board == "turnstile" else 1})
    fares = F.load(D + "/" + fname)
    cards = []
    toks = []
    for i in range(NC):
        cr = CR.CardRead()
        cr.kind = CR.KIND_SSC
        cid = "450100%%010d" %% i
        for k in range(16):
            cr.card_id[k] = ord(cid[k])
        cr.region = 450100
        cr.issue_date = 20200101
        cr.expiry_date = 20301231
        cr.birth_date = (19500101, 19800101, 19620101, 0)[i %% 4]
        cards.append(cr)
        toks.append(card_token(KEY, cr.card_id))
    deny = Deny()
    deny.d[toks[7]] = 1
    rc = recent.Recent(512)
    d = decide.Decider(prof, cat, fares, ents, deny, rc, KEY)
    pins = {"LED_R": Pin(), "LED_G": Pin(), "LED_B": Pin(), "RELAY": Pin(), "ASSIST": Pin()}
    i2c = NullI2C()
    disp = display.Display(display.SSD1306_I2C(128, 64, i2c), glyphs) if has_disp else None
    fb = feedback.Feedback(pins, PWM(), disp, prof.feedback)
    tap = T.Tap()
    now = 1795000000
    full = [0] * N  # preallocated: the bench must not fragment the heap it measures
    dec = [0] * N
    kinds = {}
    for r in range(N):
        cr = cards[r %% NC]
        now += 7
        ms = (now %% 1000000) * 1000
        t0 = time.ticks_us()
        k = d.decide(cr, now, True, tap)
        t1 = time.ticks_us()
        fb.show(k & O.KIND_MASK, tap, k >> O.KIND_BITS, ms)
        fb.step(ms)
        t2 = time.ticks_us()
        dec[r] = time.ticks_diff(t1, t0)
        full[r] = time.ticks_diff(t2, t0)
        m = O.key(k >> O.KIND_BITS)
        kinds[m] = kinds.get(m, 0) + 1
    # heap bytes allocated per decision / per full tap in steady state
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    for r in range(64):
        now += 7
        d.decide(cards[r %% NC], now, True, tap)
    a1 = gc.mem_alloc()
    for r in range(64):
        now += 7
        ms = (now %% 1000000) * 1000
        k = d.decide(cards[r %% NC], now, True, tap)
        fb.show(k & O.KIND_MASK, tap, k >> O.KIND_BITS, ms)
        fb.step(ms)
    a2 = gc.mem_alloc()
    gc.enable()
    full.sort()
    dec.sort()
    out[board] = {"full_median_us": full[N // 2], "full_p95_us": full[N * 95 // 100],
                  "decide_median_us": dec[N // 2], "alloc_bytes_per_decide": (a1 - a0) // 64,
                  "alloc_bytes_per_tap": (a2 - a1) // 64, "texts": kinds,
                  "display_bytes_per_refresh": (i2c.n // max(1, disp.refreshes)) if disp else 0}
gc.collect()
out["heap_free_after"] = gc.mem_free()
print("@@BENCH " + __import__("json").dumps(out))
'''


def add_args(p):
    p.add_argument("--taps", type=int, default=600, help="taps per board kind (default 600)")
    p.add_argument("--heap", default="256K")


def _compile(d):
    srcs = {"bus.bin": "bus_nanning_301.txt", "ferry.bin": "ferry_beihai_weizhou.txt",
            "scenic.bin": "scenic_guilin_elephant.txt"}
    for out, src in srcs.items():
        with open(os.path.join(ROOT, "data", "fares", src)) as f:
            data = FC.compile_fares(f.read(), src)
        with open(os.path.join(d, out), "wb") as f:
            f.write(data)
    with open(os.path.join(ROOT, "data", "catalog.json")) as f:
        cat = FC.compile_catalog(f.read())
    with open(os.path.join(d, "catalog.bin"), "wb") as f:
        f.write(cat)
    ents = "version 1\n" + "".join("%016x disabled companion\n" % (i * 7919 + 1) for i in range(500))
    with open(os.path.join(d, "ents.bin"), "wb") as f:
        f.write(FC.compile_entitlements(ents))


def run(args):
    mp = os.path.join(ROOT, ".venv", "bin", "micropython")
    with tempfile.TemporaryDirectory() as d:
        _compile(d)
        script = os.path.join(d, "bench.py")
        with open(script, "w") as f:
            f.write(_FW % {"fw": FIRMWARE, "dir": d, "n": args.taps})
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        p = subprocess.run([mp, "-X", "heapsize=" + args.heap, script], capture_output=True, text=True,
                           timeout=600, cwd=ROOT, env=env)
    res = None
    for line in p.stdout.splitlines():
        if line.startswith("@@BENCH "):
            res = json.loads(line[8:])
    if res is None:
        raise RuntimeError("micropython bench failed (rc=%s): %s" % (p.returncode, p.stderr[-2000:] or p.stdout[-2000:]))
    boards = {k: v for k, v in res.items() if isinstance(v, dict)}
    worst = max(boards.values(), key=lambda b: b["full_median_us"])
    unix_us = worst["full_median_us"]
    out = {
        "tap_cpu_unix_us": unix_us,
        "tap_cpu_esp32_ms": round(unix_us * ESP32_FACTOR / 1000.0, 2),
        "decide_cpu_unix_us": max(b["decide_median_us"] for b in boards.values()),
        "decide_cpu_esp32_ms": round(max(b["decide_median_us"] for b in boards.values()) * ESP32_FACTOR / 1000.0, 2),
        "budget_esp32_ms": BUDGET_MS,
        "within_budget": unix_us * ESP32_FACTOR / 1000.0 <= BUDGET_MS,
        "alloc_bytes_per_decide": max(b["alloc_bytes_per_decide"] for b in boards.values()),
        "display_i2c_400k_ms": round(max(b["display_bytes_per_refresh"] for b in boards.values()) * 22.5 / 1000.0, 1),
        "heap": args.heap,
        "heap_free_after": res.get("heap_free_after"),
        "taps_per_board": args.taps,
        "boards": boards,
        "factor": ESP32_FACTOR,
    }
    return out
