"""Firmware CPU per tap: identity (keyed token) -> decision -> feedback call.

Runs the firmware under the real MicroPython unix port with an ESP32-like heap
(256K; the worker is bench/workers/decide.py) and times each tap there with
the real time.ticks_us; ESP32-equivalent = unix-port time x 45 (docs/design.md, "Time factor"). The fare
tables and catalog are compiled from data/ first. Also reports heap bytes
allocated per decision (steady state) and the display's modeled I2C time."""
import os
import tempfile

from ykt_tools import ROOT
from ykt_tools.build import fares as FC
from ykt_tools.sim import mp

ESP32_FACTOR = 45
BUDGET_MS = 20.0

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "decide.py")


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
    with tempfile.TemporaryDirectory() as d:
        _compile(d)
        # no simulated chip: the firmware runs on the interpreter's own (C) clock, as on a board
        res = mp.run("micropython", WORKER, [d, args.taps], heap=args.heap, sim=False,
                     timeout=600).require("decide bench")
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
