"""Power-cut sweep of an over-the-air update on the real MicroPython + littlefs.

The CPython driver (`run_sweep`, used by `ykt ota-powercut` and
tests/test_ota_powercut.py); the MicroPython worker is
ykt_tools/powercut/workers/ota.py, started through the launcher
(ykt_tools/sim/mp.py) with the firmware's 256K heap budget.

Scenario per cut point (n, tear): a factory device (ferry_validator, littlefs on
the simulated NOR flash) boots through otaboot, then the n-th flash program or
erase from the start of the update is cut (vhw/flash.py cut_after_writes with
the tear), wherever it falls: download (ota/dl.part, dl.json), verification,
install into the inactive slot, staging, the reboot and the trial first boot
(boot counter, self-check, confirmation). Power returns; invariants:
  1. the device boots a version that is good (factory or the new one, never a
     half-installed slot) and takes a tap;
  2. the update then completes (resumed download, re-verified, re-installed,
     or already live) and the device ends on the new version, taking taps.
"""
import os
import random

from ykt_tools import ROOT
from ykt_tools.sim import mp

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "ota.py")
FW_HEAP = "256K"   # the firmware's budget on the simulated device (plus the simulator's allowance)


def _start(args):
    # tests/fw: the worker drives the device with the OTA tests' kit (t_ota_kit)
    return mp.start("micropython", WORKER, args, fw_heap=FW_HEAP, path=[os.path.join(ROOT, "tests", "fw")])


def run_sweep(sample=12, jobs=2, per_proc=1, timeout=3600, seed=1):
    """sample=0: every cut point. Returns {writes, cut_points, violations,
    phases, details}."""
    d = mp.finish(_start(["count"]), timeout).require("uncut update")
    if not d["ok"]:
        raise RuntimeError("uncut update failed: %s" % d)
    total = d["count"]
    pts = list(range(1, total + 1))
    if sample and sample < total:
        rnd = random.Random(seed)
        # spread over the whole update, plus random points
        step = total / float(sample)
        pts = [max(1, int(step * i + rnd.random() * step)) for i in range(sample)]
        pts = set(pts)
        extra = total - 3                           # always one more in the trial first boot
        while extra in pts and extra > 1:           # (the write count varies run to run)
            extra -= 1
        pts = sorted(pts | {extra})
    chunks = [pts[i:i + per_proc] for i in range(0, len(pts), per_proc)]
    res = {"writes": total, "cut_points": 0, "violations": 0, "phases": {}, "details": []}
    running = []
    while chunks or running:
        while chunks and len(running) < jobs:
            running.append(_start(["sweep"] + chunks.pop(0)))
        r = mp.finish(running.pop(0), timeout)
        for p in r.records:
            res["cut_points"] += 1
            res["phases"][p["phase"]] = res["phases"].get(p["phase"], 0) + 1
            if not p["ok"]:
                res["violations"] += 1
                res["details"].append(p)
        if r.rc:
            res["violations"] += 1
            res["details"].append({"worker_rc": r.rc, "output": r.out[-2000:]})
    return res
