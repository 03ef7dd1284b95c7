"""`ykt powercut --full`: power cuts at every persistent writer of the
firmware, counted per writer. One table says what the writers are and how
each is swept; adding a writer (a new journal, a new file) is one more row
and, for a device writer, its action in the device worker's scenario.

    {"cut_points": N, "violations": M, "writers": {name: {"cut_points", "violations", "writes"}}}

Device writers (workers/device.py) run on a simulated bus validator that
boots for real after every cut; the OTA writer is the update sweep of
ykt_tools/powercut/ota.py (download, install, first boot on trial)."""
import json
import os
import re
import tempfile

from ykt_tools import ROOT
from ykt_tools.sim import mp

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "device.py")


class Writer:
    def __init__(self, name, sweep, full, what):
        self.name = name
        self.sweep = sweep      # "device" (workers/device.py) or "ota" (powercut/ota.py)
        self.full = full        # cut points in the full sweep
        self.what = what


WRITERS = (
    Writer("journal", "device", 1600, "tap journal appends (the ring's slots, its erases ahead)"),
    Writer("ack", "device", 800, "the upload cursor and deletion of acked segments"),
    Writer("tables", "device", 1200, "catalog, fares, entitlements and config switched by sync"),
    Writer("keys", "device", 600, "the trusted-key rotation (the device's trust anchor)"),
    Writer("denylist", "device", 1000, "deny-list images into the free slot, and deltas"),
    Writer("ota", "ota", 100, "an application update: download, install, first boot on trial"),
)
MIN_PER_WRITER = 100
# The full sweep's device scenario: long enough that every writer has more
# writes than its cut points (x 4 tears), with a distinct version of every
# download kind for each of its updates.
FULL_TAPS = 480
VERSIONS = 15            # per file kind (keys, tables, config)
IMAGES = 12              # deny-list images, each followed by up to 5 deltas


def prepare(path):
    """The scenario's inputs, built with the host tools the back office
    uses: version after version of every download kind, a keyring that
    always holds the download key, deny-list images and deltas, and the
    signed downloads that must verify after a cut."""
    from ykt.rules import dlformat
    from ykt.sec import signed
    from ykt_tools.backoffice import ops
    from ykt_tools.build import fares as fc
    from ykt_tools.build import signing

    key, other = signing.generate_key(2048), signing.generate_key(2048)
    d = {}
    with open(os.path.join(ROOT, "data", "fares", "bus_nanning_301.txt")) as f:
        src = f.read()
    with open(os.path.join(ROOT, "data", "catalog.json")) as f:
        cat = json.load(f)
    fares = lambda v: fc.compile_fares(re.sub(r"(?m)^table 301 version \d+", "table 301 version %d" % v, src))  # noqa: E731
    catalog = lambda v: fc.compile_catalog(json.dumps(dict(cat, version=v)))                     # noqa: E731
    ents = lambda v: fc.compile_entitlements("version %d\n%016x child\n" % (v, 0x7700 + v))      # noqa: E731
    config = lambda v: json.dumps({"sync_interval_s": 60, "heartbeat_s": 300 + v}).encode()     # noqa: E731
    # the download key always, and a second key whose usage bits (and place
    # in the ring) differ per version: 15 distinct keyrings
    keys = lambda v: signing.keys_payload([key] if v == 1 else [key, (other, v - 1)] if v < 9 else  # noqa: E731
                                          [(other, (v - 9) % 7 + 1), key])
    make = {"keys": keys, "fares": fares, "catalog": catalog, "entitlements": ents, "config": config}
    for kind, fn in make.items():
        d[kind] = [fn(v) for v in range(1, VERSIONS + 1)]
        # the oracle tells versions apart by their bytes: equal versions
        # would let a rollback pass as the older one (the fares once were)
        if len(set(d[kind])) != len(d[kind]):
            raise ValueError("power-cut inputs: two %s versions are the same bytes" % kind)
    d["verify"] = dict((kind, signing.sign_file(key, kind, 1000, fn(1000))) for kind, fn in make.items())
    tok = [bytes([0xD0, k]) + b"\x00" * 6 for k in range(16 + IMAGES)]
    lost = [tok[k if k < 8 else 16 + k] for k in range(IMAGES)]   # never a delta's (8..12), 14 or 15
    d["dl_image"] = [ops.denylist_image_payload([(lost[k], dlformat.ST_LOST)], 10 * (k + 1), 1795644000)
                     if k % 2 == 0 else _filter_image(lost[k], tok[14], 10 * (k + 1)) for k in range(IMAGES)]
    d["dl_delta"] = [[dlformat.pack_delta(10 * (k + 1), 10 * (k + 1) + n + 1,
                                          [(tok[8 + m], dlformat.ST_SUSPENDED) for m in range(n + 1)], 1795644000)
                      for n in range(5)] for k in range(IMAGES)]
    d["verify_delta"] = {}
    for k in range(IMAGES):
        for n in range(6):
            v = 10 * (k + 1) + n
            d["verify_delta"][str(v)] = signing.sign_file(
                key, signed.K_DENYLIST_DELTA, 1000, dlformat.pack_delta(v, 1000, [(tok[15], dlformat.ST_LOST)],
                                                                          1795644000), base=v)
    with open(os.path.join(ROOT, "data", "devices", "bus-nn301-0001.json"), "rb") as f:
        d["profile"] = f.read()
    d["dev_key"], d["tok_key"], d["jrnl_key"] = b"d" * 32, b"t" * 32, b"powercut-jrnl-k!"

    def hx(x):
        if isinstance(x, (bytes, bytearray)):
            return bytes(x).hex()
        if isinstance(x, list):
            return [hx(y) for y in x]
        return dict((k, hx(v)) for k, v in x.items())

    with open(path, "w") as f:
        json.dump(dict((k, hx(v)) for k, v in d.items()), f)
    return path


def _filter_image(t, foreign, version):
    """A format-3 image (registry filter + foreign section): every other
    image the sweep installs, so cuts land in both formats. Registry cards
    differing from t only in its last byte need the longest extension."""
    from ykt.rules import dlformat
    from yktsrv import dlbuild

    v = int.from_bytes(t, "big")
    reg = [v ^ i for i in range(1, 9)]
    ext = dlbuild.plan_small([v], reg, 4)
    return b"".join(dlbuild.encode_sections(([v], [dlformat.ST_LOST], ext),
                                            ([int.from_bytes(foreign, "big")], [dlformat.ST_UNPAID]),
                                            version, 1795644000, rw=4, rp=1))


def _device_sweep(samples, jobs, timeout, heap="16M", firmware=None, taps=240):
    tmp = tempfile.mkdtemp(prefix="ykt-powercut-")
    inputs = prepare(os.path.join(tmp, "inputs.json"))
    arg = ",".join("%s=%d" % kv for kv in samples.items())
    kw = {"firmware": firmware} if firmware else {}
    procs = [mp.start("micropython", WORKER, ["sweep", inputs, part, jobs, arg, taps], heap=heap,
                      path=[os.path.dirname(WORKER)], **kw) for part in range(jobs)]
    out = {"writers": {}, "details": [], "hashes": set()}
    for p in procs:
        r = mp.finish(p, timeout)
        s = (r.json or {}).get("summary")
        if r.rc or s is None:
            raise RuntimeError("power-cut worker failed (rc=%s):\n%s" % (r.rc, r.out[-3000:]))
        out["hashes"].add(s["loghash"])
        out["details"] += [d["cut"] for d in r.records if "cut" in d]
        for name in samples:
            w = out["writers"].setdefault(name, {"cut_points": 0, "violations": 0,
                                                 "writes": s["writes"].get(name, 0)})
            w["cut_points"] += s["cut_points"].get(name, 0)
            w["violations"] += s["violations"].get(name, 0)
    if len(out["hashes"]) != 1:
        raise RuntimeError("the workers recorded different scenarios: it is not deterministic")
    return out


def run_full(jobs=2, scale=1.0, timeout=7200, writers=None, firmware=None, taps=240, samples=None):
    """Every writer of WRITERS (or those named): {"cut_points", "violations",
    "writers", "details"}. scale shrinks every writer's sample; samples
    ({writer: n}, 0 = every cut point) overrides it; firmware and taps (the
    device scenario's length) let the tests sweep a broken firmware."""
    chosen = [w for w in WRITERS if writers is None or w.name in writers]
    dev = dict((w.name, max(1, int(w.full * scale)) if samples is None else samples[w.name])
               for w in chosen if w.sweep == "device")
    res = {"cut_points": 0, "violations": 0, "writers": {}, "details": []}
    if dev:
        d = _device_sweep(dev, jobs, timeout, firmware=firmware, taps=taps)
        res["writers"].update(d["writers"])
        res["details"] += d["details"]
    for w in chosen:
        if w.sweep == "ota":
            from ykt_tools.powercut import ota

            o = ota.run_sweep(sample=max(1, int(w.full * scale)), jobs=jobs, timeout=timeout)
            res["writers"][w.name] = {"cut_points": o["cut_points"], "violations": o["violations"],
                                      "writes": o["writes"], "phases": o["phases"]}
            res["details"] += [dict(x, writer="ota") for x in o["details"]]
    for name, w in res["writers"].items():
        w["what"] = [x.what for x in WRITERS if x.name == name][0]
        res["cut_points"] += w["cut_points"]
        res["violations"] += w["violations"]
    return res
