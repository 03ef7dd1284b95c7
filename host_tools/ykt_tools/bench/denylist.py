"""Deny list: size vs the information-theoretic bound, block reads, RAM and lookup time (MicroPython x45) vs a sorted-array baseline.

Builds an image of --entries random 64-bit tokens (CPython, timed), writes it
to a file and runs the firmware reader under the real MicroPython unix port
(256K heap; the worker is bench/workers/denylist.py) over a small block-device class reading that file: a few
thousand random hits and misses timed with time.ticks_us, block reads
counted per lookup, heap measured with gc.mem_alloc. The baseline is the
obvious layout: sorted 8-byte tokens + 1 status byte (455 per 4096-byte
block) with a binary search over the partition, timed the same way.
ESP32-equivalent = unix-port time x 45 (docs/denylist.md).
"""
import json
import os
import random
import tempfile
import time

from ykt_tools.build import denylist as B
from ykt_tools.sim import mp

ESP32_FACTOR = 45
BASE_PER_BLOCK = 455  # 455 * 9 = 4095 bytes: records never straddle blocks
# Realistic mix of statuses (most denials are lost cards); the bound uses
# the empirical entropy of whatever mix is built.
MIX = ((1, 50), (4, 30), (3, 15), (2, 5))

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "denylist.py")


def add_args(p):
    p.add_argument("--entries", type=int, default=1000000, help="entries in the list (default 1,000,000)")
    p.add_argument("--lookups", type=int, default=4000, help="timed lookups, half hits half misses")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--heap", default="256K", help="MicroPython heap for the timed run")
    p.add_argument("--keep", help="directory to keep the image, baseline and token files in")
    p.add_argument("--registry", type=int, default=0,
                   help="cards in the registry: builds the province-scale list (format 3) over it "
                        "(docs/denylist.md); acceptance run: --entries 1000000 --registry 50000000 --foreign 100000")
    p.add_argument("--foreign", type=int, default=0, help="other provinces' cards, with --registry")
    p.add_argument("--sample", type=int, default=1000000,
                   help="registry cards looked up through the device's own code, with --registry")
    p.add_argument("--runtime", default="micropython32", help="runtime of the timed lookups, with --registry")


def _gen(n, seed):
    rng = random.Random(seed)
    s = set()
    while len(s) < n:
        s.add(rng.getrandbits(64))
    toks = sorted(s)
    pop = [st for st, w in MIX for _ in range(w)]
    stats = bytes(rng.choice(pop) for _ in range(n))
    return toks, stats, rng


def _baseline(toks, stats):
    n = len(toks)
    nblk = (n + BASE_PER_BLOCK - 1) // BASE_PER_BLOCK
    out = bytearray(nblk * 4096)
    for i, t in enumerate(toks):
        b, j = divmod(i, BASE_PER_BLOCK)
        o = b * 4096 + j * 9
        out[o:o + 8] = t.to_bytes(8, "big")
        out[o + 8] = stats[i]
    return bytes(out)


def run(args):
    if getattr(args, "registry", 0):
        from ykt_tools.bench import denyfilter

        return denyfilter.run(args)
    from yktsrv import dlbuild

    n = args.entries
    toks, stats, rng = _gen(n, args.seed)
    t0 = time.perf_counter()
    img = dlbuild.encode_image(toks, stats, 1, 1795000000)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = _baseline(toks, stats)
    base_build_s = time.perf_counter() - t0

    counts = [stats.count(s) for s in (1, 2, 3, 4)]
    h_emp = B.status_entropy_bits(counts)
    set_bits = B.info_min_bits(n, 0.0)
    min_bits = set_bits + h_emp
    bound_bpe = 1.1 * min_bits / 8 / n
    bound_bpe_2bit = 1.1 * (set_bits + 2.0 * n) / 8 / n

    nh = args.lookups // 2
    nm = args.lookups - nh
    idx = [rng.randrange(n) for _ in range(nh)]
    hits = [toks[i] for i in idx]
    miss = []
    boundary = [0, (1 << 64) - 1, 1, (1 << 64) - 2]
    import bisect

    def member(v):
        j = bisect.bisect_left(toks, v)
        return j < n and toks[j] == v

    for v in boundary:
        if not member(v):
            miss.append(v)
    while len(miss) < nm:
        v = rng.getrandbits(64)
        if not member(v):
            miss.append(v)
    expect = "".join("%02x" % stats[i] for i in idx) + "00" * nm
    blob = b"".join(t.to_bytes(8, "big") for t in hits + miss)

    tmp = args.keep or tempfile.mkdtemp(prefix="ykt-dlbench-")
    os.makedirs(tmp, exist_ok=True)
    paths = {k: os.path.join(tmp, k) for k in ("image.bin", "baseline.bin", "tokens.bin")}
    for k, data in (("image.bin", img), ("baseline.bin", base), ("tokens.bin", blob)):
        with open(paths[k], "wb") as f:
            f.write(data)
    mpres = mp.run("micropython", WORKER, [paths["image.bin"], paths["baseline.bin"], paths["tokens.bin"], nh, nm, n],
                   heap=args.heap, timeout=600).require("deny-list bench")
    if not args.keep:
        for v in paths.values():
            os.unlink(v)
        os.rmdir(tmp)

    def figures(r, nbytes, bs):
        ok = r.pop("results") == expect
        return {
            "entries": n,
            "bytes": nbytes,
            "bytes_per_entry": round(nbytes / n, 4),
            "bound_bytes_per_entry": round(bound_bpe, 4),
            "within_bound": nbytes / n <= bound_bpe,
            "block_reads_max": r["reads_max"],
            "ram_bytes": r["ram_bytes"],
            "heap_bytes_unix64": r["heap_bytes"],
            "alloc_bytes_per_lookup": r["alloc_per_lookup"],
            "lookup_unix_us": round(r["mean_us"], 2),
            "lookup_unix_us_hit": round(r["hit_us"], 2),
            "lookup_unix_us_miss": round(r["miss_us"], 2),
            "lookup_unix_us_p99": r["p99_us"],
            "lookup_unix_us_max": r["max_us"],
            "lookup_esp32_ms": round(r["mean_us"] * ESP32_FACTOR / 1000, 3),
            "lookup_esp32_ms_p99": round(r["p99_us"] * ESP32_FACTOR / 1000, 3),
            "build_s": round(bs, 2),
            "exact": ok,
        }

    crc_ok = mpres["ours"].pop("crc_results") == expect
    crc_us = mpres["ours"].pop("crc_mean_us")
    crc_p99 = mpres["ours"].pop("crc_p99_us")
    res = figures(mpres["ours"], len(img), build_s)
    res["exact"] = res["exact"] and crc_ok
    res["check_crc_lookup_unix_us"] = round(crc_us, 2)
    res["check_crc_lookup_esp32_ms"] = round(crc_us * ESP32_FACTOR / 1000, 3)
    res["check_crc_lookup_esp32_ms_p99"] = round(crc_p99 * ESP32_FACTOR / 1000, 3)
    hd = dlbuild.F.parse_header(img)
    res.update({
        "min_bytes_per_entry": round(min_bits / 8 / n, 4),
        "ratio_to_min": round(len(img) * 8 / min_bits, 4),
        "status_entropy_bits_per_entry": round(h_emp / n, 4),
        "bound_bytes_per_entry_2bit_status": round(bound_bpe_2bit, 4),
        "k": hd.k, "g": hd.g, "data_blocks": hd.data_blocks, "dir_blocks": hd.dir_blocks,
        "delta_ram_bytes": 512 * 9,
        "lookups": nh + nm,
        "baseline": figures(mpres["baseline"], len(base), base_build_s),
    })
    res["baseline"]["ratio_to_min"] = round(len(base) * 8 / min_bits, 4)
    return res


if __name__ == "__main__":  # pragma: no cover
    import argparse

    ap = argparse.ArgumentParser()
    add_args(ap)
    print(json.dumps(run(ap.parse_args()), indent=2))
