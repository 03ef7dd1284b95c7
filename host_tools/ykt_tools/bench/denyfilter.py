"""`ykt bench denylist --registry R`: the province-scale list (format 3).

A registry of R random card tokens (keyed hashes are uniform), N of them
denied with a realistic status mix, and F cards of other provinces:
- the builder makes the image and checks the WHOLE registry and every denied
  card against it (ykt_tools.build.denyfilter.check);
- the device's own lookup code (ykt.rules.denylist, in this process) looks up
  every denied card, every registry card that shares an entry's bits and
  random registry cards, >= --sample in all, and every foreign card;
- the timed lookups run on the runtime that stands for the device
  (micropython32), with a full delta in force, x45 for ESP32 time;
- `fits` checks each board's partition table: both deny-list slots hold the
  image, two OTA app slots, and >= 14 days of journal in the vfs.
"""
import json
import math
import os
import tempfile
import time

import numpy as np

from ykt.rules import dlformat as F
from ykt.rules.denylist import DenyList
from ykt_tools.build import denyfilter as DF
from ykt_tools.sim import mp

ESP32_FACTOR = 45
# Status mix of a province's list: most denials are lost or replaced cards;
# collection holds (unpaid) are the rarest (docs/denylist.md).
MIX = ((F.ST_LOST, 38), (F.ST_REPLACED, 40), (F.ST_CANCELLED, 12), (F.ST_SUSPENDED, 6), (F.ST_UNPAID, 4))
TAPS_PER_DAY = 1500
JOURNAL_DAYS = 14
# `ykt bench journal --fill --fs-kb 1792`: 41,314 taps in 1,792 KiB of littlefs
# with 256 KiB of other files; bytes of vfs per journaled tap, all-in.
JOURNAL_BYTES_PER_TAP = 1792 * 1024 / 41314.0
OTHER_FILES = 256 * 1024


class MemPart:
    """The image as a raw partition (esp32.Partition's read protocol)."""

    def __init__(self, image):
        self.b = image
        self.reads = 0

    def readblocks(self, block, buf, off=0):
        o = block * 4096 + off
        buf[:] = self.b[o:o + len(buf)]
        self.reads += 1

    def ioctl(self, op, arg):
        return len(self.b) // 4096 if op == 4 else (4096 if op == 5 else 0)


class Blank(MemPart):
    def __init__(self):
        super().__init__(b"\xff" * 4096)


def _tokens(rng, n):
    return np.frombuffer(rng.bytes(8 * n), dtype=np.uint64)


def _entropy(counts):
    n = float(sum(counts))
    return -sum(c / n * math.log2(c / n) for c in counts if c)


def bound_bits(n, registry, counts):
    """Registry-universe bound: log2 C(R, n) bits to say which n of R cards are
    denied, plus the statuses' empirical entropy."""
    lg = math.lgamma
    return (lg(registry + 1) - lg(n + 1) - lg(registry - n + 1)) / math.log(2) + n * _entropy(counts)


def fits(image_bytes):
    from ykt import boardcfg

    out = {}
    root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "boards")
    for fn in sorted(os.listdir(root)):
        if not fn.endswith(".json"):
            continue
        b = boardcfg.load(os.path.join(root, fn))
        t = {p[0]: p for p in boardcfg.partition_table(b)}
        slots = min(t[s][4] for s in ("dlist_a", "dlist_b")) if "dlist_a" in t and "dlist_b" in t else 0
        ota = "ota_0" in t and "ota_1" in t
        vfs = t["vfs"][4] if "vfs" in t else 0
        days = (vfs - OTHER_FILES) / JOURNAL_BYTES_PER_TAP / TAPS_PER_DAY
        out[b["name"]] = {"fits": slots >= image_bytes and ota and days >= JOURNAL_DAYS,
                          "flash_mb": b["flash_mb"], "dlist_slot_bytes": slots, "image_bytes": image_bytes,
                          "ota_slots": 2 if ota else 0, "journal_days": round(days, 1)}
    return out


def run(args):
    n, reg_n, nf = args.entries, args.registry, args.foreign
    if not 0 < n <= reg_n:
        raise SystemExit("ykt bench denylist: --entries must be 1 .. --registry")
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    raw = _tokens(rng, reg_n)
    registry = np.unique(raw)
    denied = np.unique(raw[:n])
    n = len(denied)
    pop = np.array([s for s, w in MIX for _ in range(w)], dtype=np.uint8)
    stats = rng.choice(pop, n).tolist()
    foreign = np.unique(_tokens(rng, nf)) if nf else np.zeros(0, dtype=np.uint64)
    fstats = rng.choice(pop, len(foreign)).tolist()
    gen_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    blocks, info = DF.build(denied, stats, foreign.tolist(), fstats, registry, 1, 1795000000, min_entries=0)
    image = b"".join(blocks)
    build_s = time.perf_counter() - t0
    hd = F.parse_header(image)
    s0, s1 = F.sections(hd)
    gx_bytes = 4096 * (1 + s0[6] + s0[7])   # the header block counts with the Guangxi part
    fx_bytes = 4096 * (s1[6] + s1[7])

    t0 = time.perf_counter()
    full = DF.check(image, registry, denied, stats, foreign, fstats)
    check_s = time.perf_counter() - t0

    # the device's own code: every denied card, every colliding registry card,
    # random registry cards up to --sample, every foreign card
    t0 = time.perf_counter()
    sh = np.uint64(64 - s0[0] - s0[3])
    pre = denied >> sh
    rp = registry >> sh
    idx = np.minimum(np.searchsorted(pre, rp), n - 1)
    colliders = registry[(pre[idx] == rp) & ~np.isin(registry, denied)]
    extra = max(0, args.sample - n - len(colliders))
    rand = registry[rng.integers(0, len(registry), extra)] if extra else np.zeros(0, dtype=np.uint64)
    dl = DenyList(MemPart(image), Blank())
    dstat = dict(zip(denied.tolist(), stats))
    dev = {"false_refusals": 0, "false_accepts": 0, "wrong_status": 0}
    sampled = 0
    reads_max = 0
    part = dl._part
    for arr in (denied, colliders, rand):
        for t in arr.tolist():
            r0 = part.reads
            got = dl.lookup(t.to_bytes(8, "big"))
            reads_max = max(reads_max, part.reads - r0)
            want = dstat.get(t, 0)
            sampled += 1
            if got and not want:
                dev["false_refusals"] += 1
            elif want and not got:
                dev["false_accepts"] += 1
            elif got != want:
                dev["wrong_status"] += 1
    for t, s in zip(foreign.tolist(), fstats):
        r0 = part.reads
        got = dl.lookup(t.to_bytes(8, "big"), 0, True)
        reads_max = max(reads_max, part.reads - r0)
        if got != s:
            dev["false_accepts" if not got else "wrong_status"] += 1
    device_s = time.perf_counter() - t0

    timed = _timed(args, image, denied, stats, colliders, registry, foreign, fstats, rng)
    counts = [sum(1 for s in stats if s == st) for st in range(1, 6)]
    bound = bound_bits(n, len(registry), counts) / 8 / n
    lookups_ok = timed.pop("results_ok")
    return {
        "entries": n, "registry": int(len(registry)), "foreign": int(len(foreign)),
        "status_mix": dict(zip(F.STATUS_NAMES[1:], counts)),
        "bytes": len(image), "guangxi_bytes": gx_bytes, "foreign_bytes": fx_bytes,
        "bytes_per_entry": round(gx_bytes / n, 4),
        "bound_bytes_per_entry": round(bound, 4),
        "ratio_to_bound": round(gx_bytes / n / bound, 3),
        "foreign_bytes_per_entry": round(fx_bytes / max(1, len(foreign)), 4),
        "k": s0[0], "rw": s0[3], "rice": s0[4], "extensions": info["extensions"],
        "exceptions": info["extensions"],
        "false_refusals": full["false_refusals"] + dev["false_refusals"],
        "false_accepts": full["false_accepts"] + dev["false_accepts"],
        "wrong_status": full["wrong_status"] + dev["wrong_status"],
        "builder_check": full, "device_check": dev,
        "registry_sampled": sampled, "colliding_registry_cards": int(len(colliders)),
        "new_card_false_refusal_rate": _new_card_rate(dl, rng),
        "block_reads_max": max(reads_max, timed["reads_max"]),
        "ram_bytes": timed["ram_bytes"], "overlay_ram_bytes": timed["overlay_ram_bytes"],
        "alloc_bytes_per_lookup": timed["alloc_per_lookup"],
        "runtime": args.runtime,
        "lookup_unix_us": round(timed["mean_us"], 2),
        "lookup_esp32_ms": round(timed["mean_us"] * ESP32_FACTOR / 1000, 3),
        "lookup_esp32_ms_p99": round(timed["p99_us"] * ESP32_FACTOR / 1000, 3),
        "lookup_esp32_ms_max": round(timed["max_us"] * ESP32_FACTOR / 1000, 3),
        "timed_lookups": timed["n"], "timed_results_exact": lookups_ok,
        "fits": fits(len(image)),
        "seconds": {"generate": round(gen_s, 1), "build": round(build_s, 1), "builder_check": round(check_s, 1),
                    "device_lookups": round(device_s, 1)},
    }


def _new_card_rate(dl, rng, trials=200000):
    # a Guangxi card issued after the build: refused until the next delta
    # with probability ~ entries / 2^(k+rw), unless an extension rules it out
    hits = 0
    for t in _tokens(rng, trials).tolist():
        if dl.lookup(t.to_bytes(8, "big")):
            hits += 1
    return hits / float(trials)


def _timed(args, image, denied, stats, colliders, registry, foreign, fstats, rng):
    nh = min(args.lookups // 2, len(denied))
    nf = min(args.lookups // 8, len(foreign))
    nm = args.lookups - nh - nf
    hi = rng.integers(0, len(denied), nh)
    mi = np.concatenate([colliders[:nm // 4], registry[rng.integers(0, len(registry), nm - min(nm // 4,
                                                                                         len(colliders)))]])
    fi = rng.integers(0, len(foreign), nf) if nf else np.zeros(0, dtype=np.int64)
    toks = denied[hi].tolist() + mi.tolist() + foreign[fi].tolist()
    dset = set(denied.tolist())
    sd = dict(zip(denied.tolist(), stats))
    fd = dict(zip(foreign.tolist(), fstats))
    want = [sd[t] for t in toks[:nh]] + [sd.get(t, 0) if t in dset else 0 for t in toks[nh:nh + nm]] + \
        [fd[t] for t in toks[nh + nm:]]
    tmp = tempfile.mkdtemp(prefix="ykt-dlbench-")
    try:
        ip, tp = os.path.join(tmp, "image.bin"), os.path.join(tmp, "tokens.bin")
        with open(ip, "wb") as f:
            f.write(image)
        with open(tp, "wb") as f:
            f.write(b"".join(t.to_bytes(8, "big") for t in toks))
        worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "denylist.py")
        res = mp.run(args.runtime, worker, [ip, "-", tp, nh, nm, 0, nf], heap=args.heap,
                     timeout=900).require("deny-list bench")["ours"]
    finally:
        for fn in os.listdir(tmp):
            os.unlink(os.path.join(tmp, fn))
        os.rmdir(tmp)
    got = bytes.fromhex(res.pop("results"))
    res["results_ok"] = list(got) == want
    res["n"] = len(toks)
    return res


if __name__ == "__main__":  # pragma: no cover
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1000000)
    ap.add_argument("--registry", type=int, default=50000000)
    ap.add_argument("--foreign", type=int, default=100000)
    ap.add_argument("--sample", type=int, default=1000000)
    ap.add_argument("--lookups", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runtime", default="micropython32")
    ap.add_argument("--heap", default="256K")
    print(json.dumps(run(ap.parse_args()), indent=2))
