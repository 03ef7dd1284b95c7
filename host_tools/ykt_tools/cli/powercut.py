"""`ykt powercut [--full] [--sample N] [--json]`: power cuts on the real
MicroPython interpreter and littlefs.

--full (make powercut): every persistent writer of the firmware
(ykt_tools/powercut/writers.py: journal, ack, tables, keys, deny list, OTA),
the device booting for real after each cut, counted per writer.
--ring: the ring journal on its raw partition (ykt_tools/powercut/jring.py),
every cut point by default (make powercut runs it beside --full).
Without either: the littlefs journal's sweep (ykt_tools/powercut/journal.py),
a sample of its cut points (--sample 0: all of them).
Ends with the line `cut points: N, violations: M`; exit code 1 on any violation."""
import json
import sys


def register(sub):
    p = sub.add_parser("powercut", help="cut power after flash writes, check the device after each cut")
    p.add_argument("--full", action="store_true",
                   help="every persistent writer, counted per writer (make powercut)")
    p.add_argument("--ring", action="store_true",
                   help="the ring journal (raw 'jrnl' partition): every cut point unless --sample")
    p.add_argument("--writers", default=None, metavar="W1,W2",
                   help="--full: only these writers (journal, ack, tables, keys, denylist, ota)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="--full: scale every writer's cut points (default 1.0)")
    p.add_argument("--sample", type=int, default=600, help="journal sweep: cut points to check (0: all; default 600)")
    p.add_argument("--taps", type=int, default=None, help="journal sweep: taps in the scenario (default 150)")
    p.add_argument("--jobs", type=int, default=2, help="MicroPython processes (default 2)")
    p.add_argument("--live-every", type=int, default=50,
                   help="journal sweep: also re-run the scenario with a real in-process cut every N cut points")
    p.add_argument("--json", action="store_true", help="print one JSON object before the summary line")
    p.set_defaults(func=_run)


def _run(args):
    if args.full:
        return _full(args)
    if args.ring:
        return _ring(args)
    from ykt_tools.powercut import journal as powercut

    taps = args.taps or powercut.TAPS
    if sys.stderr.isatty():
        print("power-cut sweep of the journal: %s cut points, %d taps, %d processes ..."
              % ("all" if not args.sample else args.sample, taps, args.jobs), file=sys.stderr)
    res = powercut.run_sweep(sample=args.sample, taps=taps, jobs=args.jobs, live_every=args.live_every)
    if args.json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        for d in res["details"][:20]:
            print("VIOLATION at write %d (%s): %s" % (d["write"], d["tear"], "; ".join(d["problems"])))
        print("scenario: %d taps, %d flash writes; %d cut points also re-run as in-process cuts"
              % (res["taps"], res["writes"], res["live_checked"]))
    print("cut points: %d, violations: %d" % (res["cut_points"], res["violations"]))
    return 1 if res["violations"] else 0


def _full(args):
    from ykt_tools.powercut import writers

    names = args.writers.split(",") if args.writers else None
    if sys.stderr.isatty():
        print("power-cut sweep of every writer (%s), %d processes ..."
              % (", ".join(w.name for w in writers.WRITERS if names is None or w.name in names), args.jobs),
              file=sys.stderr)
    res = writers.run_full(jobs=args.jobs, scale=args.scale, writers=names, taps=writers.FULL_TAPS)
    if args.json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        for d in res["details"][:20]:
            print("VIOLATION %s" % json.dumps(d, sort_keys=True))
        for name, w in res["writers"].items():
            print("  %-9s %5d cut points, %d violations, %d flash writes  (%s)"
                  % (name, w["cut_points"], w["violations"], w["writes"], w["what"]))
    print("cut points: %d, violations: %d" % (res["cut_points"], res["violations"]))
    return 1 if res["violations"] else 0


def _ring(args):
    from ykt_tools.powercut import jring

    sample = args.sample if "--sample" in sys.argv else 0
    taps = args.taps or jring.TAPS
    if sys.stderr.isatty():
        print("power-cut sweep of the ring journal: %s cut points, %d taps, %d processes ..."
              % ("all" if not sample else sample, taps, args.jobs), file=sys.stderr)
    res = jring.run_sweep(sample=sample, taps=taps, jobs=args.jobs)
    if args.json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        for d in res["details"][:20]:
            print("VIOLATION at write %d (%s): %s" % (d["write"], d["tear"], "; ".join(d["problems"])))
        print("ring journal: %d taps over %d sectors (%.1f laps), %d flash writes (%d erases), %d refused as full"
              % (res["taps"], res["sectors"], res["laps"], res["writes"], res["erases"], res["full_refusals"]))
    print("cut points: %d, violations: %d" % (res["cut_points"], res["violations"]))
    return 1 if res["violations"] else 0
