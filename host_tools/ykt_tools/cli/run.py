"""`ykt run`: the main job — a simulated day on a Guangxi line (make run)."""
import os

from ykt_tools import ROOT
from ykt_tools.sim import mp


def register(sub):
    p = sub.add_parser("run", help="simulate a day on a Guangxi line: fleet + embedded back office")
    p.add_argument("--scenario", default=os.path.join(ROOT, "scenarios", "day.json"))
    p.add_argument("--runtime", default="micropython", choices=sorted(mp.RUNTIMES))
    p.add_argument("--heap", default=None, help="the firmware's heap budget: a size (256K) or \"board\" (each board file's heap_bytes); default: board on micropython32, 256K on the 64-bit proxy")
    p.add_argument("--reserve", default=None, help="part of each budget held back (default 16K on micropython32)")
    p.add_argument("--heap-report", action="store_true", help="census of what holds each device's heap")
    p.add_argument("--json", action="store_true")
    p.add_argument("--workdir", default=None, help="keep the back-office database here (default: a temp dir)")
    p.add_argument("--serve", choices=("auto", "always", "never"), default="auto",
                   help="keep the back office serving the day until Ctrl-C, with a demo operator whose password is "
                        "printed (auto: when stdout is a terminal)")
    p.set_defaults(func=run, riders=None, hours=None, seed=1)


def run(args):
    from ykt_tools.cli.sim import heap_args
    from ykt_tools.sim import scenario

    heap_args(args)
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    return scenario.cli(args)
