"""Power-cut sweep of the ring journal (ykt.jring): the driver (`ykt powercut
--ring`, make powercut, tests/test_powercut.py). The scenario, the cut points
and the invariants are the worker's: ykt_tools/powercut/workers/jring.py, one
MicroPython process per share of the cut points."""
import os

from ykt_tools import FIRMWARE
from ykt_tools.sim import mp

TAPS = 1500      # ~1,520 writes x 4 tears: every cut point is over 6,000
SECTORS = 4      # a small ring, so the scenario laps it several times
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "jring.py")


def run_sweep(sample=0, taps=TAPS, sectors=SECTORS, jobs=2, heap="16M", timeout=3600, firmware=None):
    """sample=0: every cut point. -> {cut_points, violations, writes, erases,
    total_cut_points, laps, full_refusals, details}."""
    procs = [mp.start("micropython", WORKER, ["sweep", part, jobs, sample, taps, sectors], heap=heap,
                      firmware=firmware or FIRMWARE, path=[os.path.dirname(WORKER)])
             for part in range(jobs)]
    res = {"cut_points": 0, "violations": 0, "details": [], "processes": jobs, "taps": taps, "sectors": sectors}
    hashes = set()
    for p in procs:
        r = mp.finish(p, timeout)
        s = (r.json or {}).get("summary")
        if r.rc or s is None:
            raise RuntimeError("ring power-cut worker failed (rc=%s):\n%s" % (r.rc, r.out[-3000:]))
        res["details"] += [d["violation"] for d in r.records if "violation" in d]
        res["cut_points"] += s["cuts"]
        res["violations"] += s["violations"]
        for k in ("writes", "erases", "programs", "total_cut_points", "laps", "full_refusals", "appended"):
            res[k] = s[k]
        hashes.add(s["loghash"])
    if len(hashes) != 1:
        raise RuntimeError("workers recorded different write logs: the scenario is not deterministic")
    return res
