"""Reader: SSC tap (card present, poll -> CardRead) per PN532 transport.

Runs the firmware reader (ykt.nfc.reader over ykt.nfc.pn532 and a transport) under
the real MicroPython unix port (256K heap; the worker is bench/workers/reader.py)
against the PN532 simulator behind the fake machine buses, in two passes:
  1. live: the tap runs on the virtual clock; the clock delta is link time
     (fake buses) + PN532/RF/card time (simulator timing model); the bus
     traffic of the whole run is recorded;
  2. replay: the same run is repeated with the recorded bus answers and no
     simulator, timed with the real time.ticks_us: that is the firmware CPU.
modeled_ms = virtual-clock ms of the tap + ESP32-equivalent CPU (unix x 45).
"""
import os
import tempfile

from ykt_tools.sim import mp

ESP32_FACTOR = 45
CONFIGS = {
    "i2c_100k": ("i2c", 100000),
    "i2c_400k": ("i2c", 400000),
    "spi_5m": ("spi", 5000000),
    "hsu_115200": ("hsu", 115200),
}

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "reader.py")


def add_args(p):
    p.add_argument("--reps", type=int, default=15, help="replays timed for CPU (best of)")
    p.add_argument("--card", default="ssc_nanning", help="card profile to tap")
    p.add_argument("--heap", default="256K")
    p.add_argument("--only", default="", help="comma list of configs (%s)" % ",".join(CONFIGS))


def _run_one(kind, rate, opts, args):
    out = {}
    fd, log = tempfile.mkstemp(suffix=".bin", prefix="bench_reader_")
    os.close(fd)
    try:
        for mode in ("live", "cpu"):
            r = mp.run("micropython", WORKER, [mode, kind, rate, opts, args.reps, args.card, log], heap=args.heap,
                       timeout=600)
            out.update(r.require("bench reader %s %s" % (mode, kind)))
    finally:
        os.unlink(log)
    return out


def _figures(d):
    cpu_ms = d["cpu_unix_us"] * ESP32_FACTOR / 1000.0
    return {
        "commands": d["commands"],
        "link_bytes": d["link_bytes"],
        "cpu_unix_us": d["cpu_unix_us"],
        "cpu_unix_us_median": d["cpu_unix_us_median"],
        "cpu_esp32_ms": round(cpu_ms, 2),
        "modeled_ms": round(d["virtual_us"] / 1000.0 + cpu_ms, 2),
        "rf_link_ms": round(d["virtual_us"] / 1000.0, 2),
    }


def run(args):
    from ykt.nfc.sscard import OPT_VERSION, OPT_BIRTH  # noqa: F401 (values only)
    only = [s for s in args.only.split(",") if s] or list(CONFIGS)
    out = {"ssc_tap": {}, "ssc_tap_full": {}, "idle_poll": {}}
    for name in only:
        kind, rate = CONFIGS[name]
        ident = _run_one(kind, rate, 0, args)
        full = _run_one(kind, rate, OPT_VERSION | OPT_BIRTH, args)
        for d in (ident, full):
            if not d["event"] or d["error"] != 0:
                raise RuntimeError("tap did not read the card: %r" % d)
        out["ssc_tap"][name] = _figures(ident)
        out["ssc_tap_full"][name] = _figures(full)
        cpu_ms = ident["idle_cpu_unix_us"] * ESP32_FACTOR / 1000.0
        out["idle_poll"][name] = {
            "commands": ident["idle_commands"], "link_bytes": ident["idle_bytes"],
            "cpu_unix_us": ident["idle_cpu_unix_us"], "cpu_esp32_ms": round(cpu_ms, 2),
            "modeled_ms": round(ident["idle_us"] / 1000.0 + cpu_ms, 2)}
        out.setdefault("heap_free_after", {})[name] = full["mem_free"]
    out["notes"] = ("ssc_tap = identity (SELECT + EF05 01/07/06); ssc_tap_full adds EF05 03 and "
                    "EF06 08 (birth date). ESP32 ms = unix us x %d / 1000." % ESP32_FACTOR)
    return out
