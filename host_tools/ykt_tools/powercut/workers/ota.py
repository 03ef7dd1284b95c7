"""Power cuts during an over-the-air update on the real MicroPython + littlefs:
the worker (`ykt ota-powercut` starts it through the launcher, see
ykt_tools/powercut/ota.py for the scenario and the invariants).

    ota.py count          -> @@JSON {"count": writes of an uncut update, "ok", "why"}
    ota.py sweep N [N..]  -> @@JSON {"n", "tear", "phase", "ok", ...} per cut point
"""
import sys

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
        print("@@JSON " + json.dumps({"count": r["writes"], "ok": r["ok"], "why": r["why"]}))
        return
    for i in points:
        r = one(i, tears[i % 4])
        print("@@JSON " + json.dumps(r))


def _exists(p):
    import os

    try:
        os.stat(p)
        return True
    except OSError:
        return False


if __name__ == "__main__":
    _worker(sys.argv[1], [int(x) for x in sys.argv[2:]])
