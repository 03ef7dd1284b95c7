"""ESP32-equivalent CPU time, calibrated in the same run (docs/design.md,
"Time factor"). Published rates for MicroPython on an ESP32 at 240 MHz are
about 1,100-1,700 pystones/s; we divide by the slow end, so a figure is what
the slower chips in that range would take. The host's rate is measured here,
on the runtime the benchmark itself uses, by running vendor/pystone."""
import os

from ykt_tools import ROOT
from ykt_tools.sim import mp

ESP32_PYSTONES = 1100           # slow end of the published 1,100-1,700 at 240 MHz
ESP32_PYSTONES_RANGE = (1100, 1700)
NOMINAL = 45                    # the old fixed factor, reported for comparison only
PYSTONE = os.path.join(ROOT, "vendor", "pystone", "pystone.py")
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "calib.py")
_cache = {}


def pystones(runtime, loops=50000, runs=3):
    """Best of `runs` pystone rates of the runtime (the machine is noisy;
    the best run is the least disturbed one)."""
    key = (runtime, loops, runs)
    if key not in _cache:
        best = 0.0
        for _ in range(runs):
            r = mp.run(runtime, WORKER, [PYSTONE, loops], sim=False, host=False, firmware=None,
                       timeout=600).require("pystone on %s" % runtime)
            best = max(best, r["pystones"])
        _cache[key] = best
    return _cache[key]


def factor(runtime, **kw):
    """{'factor': ESP32 time / host time, 'host_pystones', 'esp32_pystones', ...}."""
    p = pystones(runtime, **kw)
    return {"factor": round(p / ESP32_PYSTONES, 1), "host_pystones": round(p),
            "esp32_pystones": ESP32_PYSTONES, "esp32_pystones_range": list(ESP32_PYSTONES_RANGE),
            "nominal_factor": NOMINAL, "runtime": runtime}
