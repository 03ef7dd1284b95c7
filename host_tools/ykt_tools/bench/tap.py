"""Tap: the rider's tap end to end, card in the field to first feedback, per board as shipped.

Each board in boards/ runs the whole firmware (ykt.app.App: boot, then its own
loop) on the simulated chip, in its shipped configuration: the reader on the
board's bus at the board's speed, the reader's default options, the device's
profile, catalog and fare table, a deny list filling its slot, the journal on
its own flash, and its feedback hardware. Riders' cards (a different card each
tap) enter the field at random instants of the poll loop. The worker
(bench/workers/tap.py) measures each tap on the virtual clock from "card in
field" to "first feedback output pin changes" (LED, buzzer or relay GPIO).
Firmware CPU is co-simulated: each stretch of firmware code between two calls
into the simulated chip is timed on the host, x the factor (45 unless
--factor), and moves the virtual clock before the chip sees the next call
(per call pair, the least it took in the run: the host is shared). Flash
programs and erases advance the clock by datasheet times (W25Q32JV typical).

JSON: boards.<name>: p50_ms, p95_ms, max_ms, transport, bus_hz, reader_opts,
breakdown_ms {wait_poll, read, decide, journal, feedback} (p95 of each),
breakdown_p50_ms, gc_in_tap, heap, cpu_p50_unix_us per part, rows (per tap:
virtual us and cpu us per part, collections, wall-clock cpu us);
calibrated = the runtime's measured factor (calib.py)."""
import json
import os
import random
import tempfile

from ykt_tools import ROOT, BOARDS
from ykt_tools.sim import mp

FACTOR = 45
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "tap.py")
PARTS = ("wait_poll", "read", "decide", "journal", "feedback")
# The device each board ships as in the example fleet (data/devices/).
DEVICES = {"bus_validator": "bus-nn301-0001", "ferry_validator": "ferry-bh820-pier1",
           "turnstile": "gate-gl5101-in1"}
DL_FILL = 0.9   # the deny list fills this share of its slot


def add_args(p):
    p.add_argument("--board", default="", help="one board (default: every board in boards/)")
    p.add_argument("--taps", type=int, default=40, help="taps per board (default 40)")
    p.add_argument("--runtime", default=mp.DEVICE_RUNTIME, help="runtime (default %s)" % mp.DEVICE_RUNTIME)
    p.add_argument("--heap", default="2M",
                   help="firmware heap budget: 2M by default (the simulated chip shares the interpreter's "
                        "heap: on a 112 KiB budget its garbage forces collections and slow allocations the "
                        "device does not have); 'board' = each board's heap_bytes")
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--factor", default="45",
                   help="ESP32 time per unix-port time: a number (default 45, the issue's) or 'calib' "
                        "(measured by bench/calib.py on the runtime)")
    p.add_argument("--no-calib", action="store_true", help="do not measure the calibrated factor (calib)")


def _fares_for(entry):
    d = os.path.join(ROOT, "data", "fares")
    for n in sorted(os.listdir(d)):
        with open(os.path.join(d, n)) as f:
            src = f.read()
        if ("\ntable %d " % entry) in "\n" + src:
            return src
    raise RuntimeError("no fare table for entry %d in data/fares" % entry)


def _denylist(size, path, rng):
    """A deny-list image filling DL_FILL of a `size`-byte slot, written to path."""
    from ykt.rules import dlformat
    from ykt_tools.build import denylist as dlb

    n = int(size * DL_FILL / 6.5)
    while True:
        toks = set()
        while len(toks) < n:
            toks.add(rng.getrandbits(64))
        img = dlb.build_image(dict((t, dlformat.ST_LOST) for t in toks), 7, 1795000000)
        if len(img) <= size * DL_FILL:
            break
        n = int(n * 0.95)
    with open(path, "wb") as f:
        f.write(img)
    return n


def _prepare(board, tmp, rng):
    from ykt import boardcfg
    from ykt_tools.build import fares as fc
    from ykt_tools.build import signing

    with open(os.path.join(BOARDS, board + ".json")) as f:
        b = boardcfg.loads(f.read(), board)
    with open(os.path.join(ROOT, "data", "devices", DEVICES[board] + ".json")) as f:
        profile = json.load(f)
    with open(os.path.join(ROOT, "data", "catalog.json")) as f:
        cat = f.read()
    slot = [p for p in boardcfg.partition_table(b) if p[0] == "dlist_a"][0][4]
    dl_path = os.path.join(tmp, board + ".dl")
    entries = _denylist(slot, dl_path, rng)
    files = {"fares": fc.compile_fares(_fares_for(profile["entry"])), "catalog": fc.compile_catalog(cat),
             "keys": signing.keys_payload([signing.generate_key(2048)])}
    inp = {"profile": profile, "files": dict((k, v.hex()) for k, v in files.items()), "dl": dl_path,
           "tok_key": os.urandom(32).hex(), "jrnl_key": os.urandom(16).hex(),
           "flash": os.path.join(tmp, board + ".flash")}   # file-backed: no heap for the chip's bytes
    path = os.path.join(tmp, board + ".json")
    with open(path, "w") as f:
        json.dump(inp, f)
    return path, entries, b


def _pct(xs, q):
    s = sorted(xs)
    if not s:
        return None
    i = min(len(s) - 1, max(0, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return s[i]


def figures(taps):
    """Per-tap (virtual us, firmware cpu us) pairs per part -> the board's
    JSON figures. The virtual time already holds the firmware's CPU x factor
    (the worker co-simulates), so a part is its virtual time; cpu is the
    unix-port time inside it, for the breakdown."""
    n = len(PARTS)
    tot = [sum(t[2 * i] for i in range(n)) / 1000.0 for t in taps]
    out = {"p50_ms": round(_pct(tot, 50), 1), "p95_ms": round(_pct(tot, 95), 1), "max_ms": round(max(tot), 1),
           "mean_ms": round(sum(tot) / len(tot), 1), "breakdown_ms": {}, "breakdown_p50_ms": {},
           "cpu_p50_unix_us": {}}
    for i, name in enumerate(PARTS):
        xs = [t[2 * i] / 1000.0 for t in taps]
        out["breakdown_ms"][name] = round(_pct(xs, 95), 1)
        out["breakdown_p50_ms"][name] = round(_pct(xs, 50), 1)
        out["cpu_p50_unix_us"][name] = _pct([t[2 * i + 1] for t in taps], 50)
    out["cpu_tap_p50_unix_us"] = _pct([sum(t[2 * i + 1] for i in range(n)) for t in taps], 50)
    out["cpu_tap_wallclock_p50_unix_us"] = _pct([t[11] for t in taps], 50)
    return out


def run(args):
    boards = [args.board] if args.board else sorted(n[:-5] for n in os.listdir(BOARDS) if n.endswith(".json"))
    rng = random.Random(args.seed)
    calib = None
    if not args.no_calib or args.factor == "calib":
        from ykt_tools.bench import calib as cal

        calib = cal.factor(args.runtime)
    factor = calib["factor"] if args.factor == "calib" else float(args.factor)
    res = {"boards": {}, "factor": factor, "runtime": args.runtime, "taps": args.taps,
           "calibrated": calib}
    tmp = tempfile.mkdtemp(prefix="ykt-bench-tap-")
    for board in boards:
        inp, entries, b = _prepare(board, tmp, rng)
        res_ = mp.run(args.runtime, WORKER, [board, inp, args.taps, rng.randrange(1 << 30), factor],
                      fw_heap=args.heap, timeout=3600)
        r = res_.require("bench tap %s" % board)
        if r.get("error"):
            raise RuntimeError("bench tap %s: %s" % (board, r["error"]))
        taps = [x["tap"] for x in res_.records if "tap" in x]
        d = figures(taps)
        rd = b["reader"]
        d.update({"transport": rd["transport"], "bus_hz": rd.get("freq") or rd.get("baud"),
                  "irq_used": r["irq"], "reader_opts": r["reader_opts"], "gc_in_tap": r["gc_in_tap"],
                  "denylist_entries": entries, "taps": len(taps), "outcomes": r["outcomes"],
                  "heap": args.heap if args.heap != "board" else b["heap_bytes"],
                  "flash_erases_in_taps": r["erases"], "flash_programs_in_taps": r["programs"],
                  "tap_alloc_max_bytes": r["tap_alloc_max"], "free_before_tap_min": r["free_before_tap_min"],
                  "rows": taps})
        d["capped_stretches"] = r["capped_stretches"]
        res["boards"][board] = d
    res["notes"] = ("card in field -> first feedback GPIO change on the virtual clock; firmware CPU x %s "
                    "moves that clock as it runs (co-simulation); calibrated = the runtime's pystone factor "
                    "(rerun with --factor calib); flash erase 45 ms / 4 KiB, program 30 us + 2.5 us per byte "
                    "per page (W25Q32JV typical)" % factor)
    return res
