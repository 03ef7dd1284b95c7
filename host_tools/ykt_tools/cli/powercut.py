"""`ykt powercut [--full] [--sample N] [--json]`: the journal's power-cut sweep
on the real MicroPython interpreter and littlefs (see ykt_tools/powercut/journal.py).
Ends with the line `cut points: N, violations: M`; exit code 1 on any violation."""
import json
import sys


def register(sub):
    p = sub.add_parser("powercut", help="cut power after every flash write, check the journal and config invariants")
    p.add_argument("--full", action="store_true", help="every cut point of the long scenario (make powercut)")
    p.add_argument("--sample", type=int, default=600, help="cut points to check when not --full (default 600)")
    p.add_argument("--taps", type=int, default=None, help="taps in the scenario (default 150, 400 with --full)")
    p.add_argument("--jobs", type=int, default=2, help="MicroPython processes (default 2)")
    p.add_argument("--live-every", type=int, default=50,
                   help="also re-run the scenario with a real in-process cut every N cut points (0: never)")
    p.add_argument("--json", action="store_true", help="print one JSON object before the summary line")
    p.set_defaults(func=_run)


def _run(args):
    from ykt_tools.powercut import journal as powercut

    taps = args.taps or (400 if args.full else powercut.TAPS)
    sample = 0 if args.full else args.sample
    if sys.stderr.isatty():
        print("power-cut sweep: %s cut points, %d taps, %d processes ..."
              % ("all" if not sample else sample, taps, args.jobs), file=sys.stderr)
    res = powercut.run_sweep(sample=sample, taps=taps, jobs=args.jobs, live_every=args.live_every)
    if args.json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        for d in res["details"][:20]:
            print("VIOLATION at write %d (%s): %s" % (d["write"], d["tear"], "; ".join(d["problems"])))
        print("scenario: %d taps, %d flash writes; %d cut points also re-run as in-process cuts"
              % (res["taps"], res["writes"], res["live_checked"]))
    print("cut points: %d, violations: %d" % (res["cut_points"], res["violations"]))
    return 1 if res["violations"] else 0
