"""`ykt sim`: run the firmware on the simulator (boot a board, a scenario, or a
virtual device on a pseudo-terminal for the technician tools)."""
import json
import os
import sys

from ykt_tools import BOARDS, ROOT, SIMHW
from ykt_tools.sim import mp


def register(sub):
    p = sub.add_parser("sim", help="run the firmware on simulated hardware",
                       description="Boot the firmware for a board on the simulator (default), play a "
                                   "scenario (--scenario FILE or --riders/--hours), or run a virtual "
                                   "device on a pty (`ykt sim device --pty`).")
    p.add_argument("mode", nargs="?", default="boot", choices=("boot", "device"),
                   help="boot: boot and report; device: a virtual device for mpremote/ykt tools")
    p.add_argument("--board", default="bus_validator", help="board name in boards/ or a board file")
    p.add_argument("--runtime", default="micropython", choices=sorted(mp.RUNTIMES),
                   help="interpreter to run the firmware on (default micropython: the 64-bit unix port)")
    p.add_argument("--heap", default=None, help="the firmware's heap budget: a size (256K) or \"board\" (each board file's heap_bytes); default: board on micropython32, 256K on the 64-bit proxy")
    p.add_argument("--reserve", default=None,
                   help="part of the budget held back, so a run without MemoryError proves it spare "
                        "(default 16K on micropython32, 0 otherwise)")
    p.add_argument("--heap-report", action="store_true",
                   help="print a census of what holds the heap at its high-water mark")
    p.add_argument("--seconds", type=int, default=10, help="virtual seconds to run after boot")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--pty", action="store_true", help="device mode: serve the REPL on a pseudo-terminal")
    p.add_argument("--dir", default=os.path.join(ROOT, "var", "vdev", "dev1"),
                   help="device mode: folder holding the virtual device's flash")
    p.add_argument("--link", default=None, help="device mode: also make a symlink to the pty here")
    p.add_argument("--scenario", default=None, help="play a scenario file (see docs/scenarios.md)")
    p.add_argument("--riders", type=int, default=None, help="randomized traffic: number of riders")
    p.add_argument("--hours", type=float, default=None, help="randomized traffic: hours to simulate")
    p.add_argument("--seed", type=int, default=1, help="seed for randomized traffic (and the network faults)")
    p.add_argument("--net-faults", type=int, default=0, metavar="N",
                   help="inject N network faults over the run (docs/scenarios.md, \"Network faults\")")
    p.add_argument("--net-fault-kinds", default=None, metavar="K1,K2",
                   help="only these fault kinds (vhw/netfault.py KINDS)")
    p.set_defaults(func=run)


def heap_args(args):
    """Fill in the runtime's default budget and reserve (docs/runtime.md)."""
    if args.heap is None:
        args.heap = mp.default_heap(args.runtime)
    if args.reserve is None:
        args.reserve = "16K" if mp.is_frozen(args.runtime) else 0
    if getattr(args, "heap_report", False):
        # read by vhw.heapbudget in every device process the launcher starts
        os.environ["YKT_HEAP_REPORT"] = "1"


def run(args):
    heap_args(args)
    if args.mode == "device":
        return _device(args)
    if args.scenario or args.riders:
        from ykt_tools.sim import scenario

        return scenario.cli(args)
    return _boot(args)


def _board_arg(name):
    if name.endswith(".json") or os.sep in name:
        return os.path.abspath(name)
    p = os.path.join(BOARDS, name + ".json")
    if not os.path.exists(p):
        known = ", ".join(sorted(f[:-5] for f in os.listdir(BOARDS) if f.endswith(".json")))
        raise SystemExit("ykt sim: unknown board %r (known: %s)" % (name, known))
    return name


def _boot(args):
    board = _board_arg(args.board)
    r = mp.run(args.runtime, os.path.join(SIMHW, "simboot.py"), ["--board", board, "--seconds", args.seconds],
               fw_heap=args.heap, fw_reserve=args.reserve, stream=None if args.json else sys.stdout.write)
    rc, res, out = r.rc, r.json, r.out
    if res is not None and "board_error" in res:
        print(res["board_error"], file=sys.stderr)
        return 2
    if res is None:
        sys.stderr.write(out[-3000:])
        print("ykt sim: the firmware did not finish booting (exit %s)" % rc, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        print("runtime %s (%s accounting): heap budget %d bytes (%d held in reserve), high-water %d bytes, "
              "%d MemoryErrors, %d loop iterations"
              % (args.runtime, res["heap_accounting"], res["heap_budget_bytes"], res["heap_reserve_bytes"],
                 res["heap_peak_bytes"], res["memory_errors"], res["loops"]))
        if res.get("heap_census"):
            from ykt_tools.sim.census import format_census

            format_census(res["board"], res["heap_census"], print)
    return rc


def _device(args):
    if not args.pty:
        raise SystemExit("ykt sim device: only --pty is supported (a pseudo-terminal like a USB serial port)")
    from ykt_tools.sim.vdevice import VirtualDevice

    _board_arg(args.board)
    dev = VirtualDevice(args.dir, board=args.board, heap=args.heap if args.heap != mp.BOARD else "256K",
                        link=args.link)
    print("virtual device %s (board %s) on %s" % (args.dir, args.board, dev.path), flush=True)
    if args.link:
        print("symlink: %s" % args.link, flush=True)
    print("try: mpremote connect %s exec \"import os; print(os.listdir())\"  (Ctrl-C to stop)" % dev.path,
          flush=True)
    try:
        dev.serve()
    except KeyboardInterrupt:
        pass
    return 0
