"""Power-cut sweep of an over-the-air update on the real MicroPython + littlefs.

Both the CPython driver (`run_sweep`, used by `ykt ota-powercut` and
tests/test_ota_powercut.py) and the MicroPython worker (run as a script:
`micropython ota_powercut.py count|sweep ...`). Portable code above the driver.

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
import sys

_MP = sys.implementation.name == "micropython"
VERSION = "0.2.0"


def _worker(mode, points):
    import json
    import vclock
    import otaboot
    from ykt.ota import updater as ota
    import t_ota_kit as K

    tears = ("none", "start", "middle", "end")
    bundle = K.scratch("pc.ykb")

    def one(n, tear):
        vclock.reset()
        dev = K.Device()
        flash = dev.w.chip.flash
        phase = ["boot"]
        try:
            app = dev.boot()
            if not _exists(bundle):
                K.build(bundle, VERSION)
            w0 = flash.writes
            if n:
                flash.cut_after_writes(n, tear)
            cut = False
            try:
                http = K.FileHttp(bundle, VERSION)
                up = dev.updater(http, interval_s=60)
                for _ in range(40000):
                    st = up.step()
                    phase[0] = ota.NAMES[st]
                    app.step()
                    if st == ota.READY:
                        break
                phase[0] = "firstboot"
                dev.reboot_chip("hard")
                app = None
                app = dev.boot("hard")
                if dev.resets:
                    cut = True
            except vclock.DeviceReset as e:
                cut = True
                app = up = http = None      # that boot's RAM is gone
                dev.reboot_chip(e.cause)
                phase[0] += "*"
            used = flash.writes - w0
            flash.cancel_cut()
            if cut:
                app = dev.boot("power")
                good = otaboot.status(dev.root)["version"] in ("", VERSION)
                if not good or not dev.takes_taps():
                    return {"n": n, "tear": tear, "phase": phase[0], "ok": False,
                            "why": "no taps after the cut", "log": dev.log[-4:]}
                # the update completes after the cut
                up = dev.updater(K.FileHttp(bundle, VERSION), interval_s=60)
                st = K.drive(up, app, 40000)
                if st == ota.READY:
                    app = dev.reboot("hard")
            s = otaboot.status(dev.root)
            ok = s["version"] == VERSION and not s["pending"] and dev.takes_taps()
            return {"n": n, "tear": tear, "phase": phase[0], "ok": ok, "writes": used,
                    "why": "" if ok else "not on %s: %r" % (VERSION, s), "log": [] if ok else dev.log[-4:]}
        finally:
            dev.close()

    if mode == "count":
        r = one(0, "none")
        print(json.dumps({"count": r["writes"], "ok": r["ok"], "why": r["why"]}))
        return
    for i in points:
        r = one(i, tears[i % 4])
        print(json.dumps(r))


def _exists(p):
    import os

    try:
        os.stat(p)
        return True
    except OSError:
        return False


if __name__ == "__main__" and _MP:
    _worker(sys.argv[1], [int(x) for x in sys.argv[2:]])

# --- CPython driver -------------------------------------------------------------


def _env():
    import os

    from ykt_tools import FIRMWARE, HOST, ROOT, SIMHW

    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([".frozen", FIRMWARE, SIMHW, HOST, os.path.join(ROOT, "tests", "fw")])
    env["YKT_FW_HEAP"] = "256K"
    return env


def _mp():
    import os
    import shutil

    from ykt_tools import ROOT

    mp = os.path.join(ROOT, ".venv", "bin", "micropython")
    if os.path.exists(mp):
        return mp
    mp = shutil.which("micropython")
    if not mp:
        raise RuntimeError("micropython binary missing: run `make setup`")
    return mp


def _run(args, timeout):
    import json
    import os
    import subprocess

    from ykt_tools import ROOT

    p = subprocess.Popen([_mp(), "-X", "heapsize=768K", os.path.abspath(__file__)] + [str(a) for a in args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=ROOT, text=True)
    return p


def run_sweep(sample=12, jobs=2, per_proc=1, timeout=3600, seed=1):
    """sample=0: every cut point. Returns {writes, cut_points, violations,
    phases, details}."""
    import json
    import random

    p = _run(["count"], timeout)
    out, err = p.communicate(timeout=timeout)
    d = None
    for line in out.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
    if p.returncode or d is None or not d["ok"]:
        raise RuntimeError("uncut update failed (rc=%s): %s\n%s" % (p.returncode, d, err[-3000:]))
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
            running.append(_run(["sweep"] + chunks.pop(0), timeout))
        p = running.pop(0)
        out, err = p.communicate(timeout=timeout)
        n = 0
        for line in out.splitlines():
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            n += 1
            res["cut_points"] += 1
            res["phases"][r["phase"]] = res["phases"].get(r["phase"], 0) + 1
            if not r["ok"]:
                res["violations"] += 1
                res["details"].append(r)
        if p.returncode:
            res["violations"] += 1
            res["details"].append({"worker_rc": p.returncode, "stderr": err[-2000:]})
    return res
