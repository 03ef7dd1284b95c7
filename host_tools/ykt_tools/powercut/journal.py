"""Power-cut sweep of the tap journal on the real MicroPython + littlefs: the
driver (`run_sweep`, used by `ykt powercut` and tests/test_powercut.py). The
scenario, the cut points and the invariants checked on each image are the
worker's: ykt_tools/powercut/workers/journal.py, started through the launcher
(ykt_tools/sim/mp.py), one process per share of the cut points."""
import os

from ykt_tools import FIRMWARE
from ykt_tools.sim import mp

TAPS = 150   # taps in the scenario (make powercut: 400)
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "journal.py")


def run_sweep(sample=0, taps=TAPS, jobs=2, live_every=50, heap="64M", timeout=3600, firmware=None):
    """Run the sweep split across `jobs` MicroPython processes. sample=0 means
    every cut point. `firmware` overrides the firmware directory (the tests
    sweep a deliberately broken journal to show the sweep can fail).
    Returns a dict with cut_points, violations, details."""
    procs = [mp.start("micropython", WORKER, ["sweep", part, jobs, sample, live_every, taps], heap=heap,
                      firmware=firmware or FIRMWARE)
             for part in range(jobs)]
    res = {"cut_points": 0, "violations": 0, "writes": None, "live_checked": 0, "taps": taps,
           "total_cut_points": None, "details": [], "processes": jobs}
    hashes = set()
    for p in procs:
        r = mp.finish(p, timeout)
        summary = (r.json or {}).get("summary")
        if r.rc or summary is None:
            raise RuntimeError("power-cut worker failed (rc=%s):\n%s" % (r.rc, r.out[-3000:]))
        res["details"] += [d["violation"] for d in r.records if "violation" in d]
        res["cut_points"] += summary["cuts"]
        res["violations"] += summary["violations"]
        res["live_checked"] += summary["live_checked"]
        res["writes"] = summary["writes"]
        res["total_cut_points"] = summary["total_cut_points"]
        res["live_chip"] = summary["live_chip"]
        hashes.add(summary["loghash"])
    if len(hashes) != 1:
        raise RuntimeError("workers recorded different write logs: the scenario is not deterministic")
    return res
