"""`ykt run`: the main job — a simulated day on a Guangxi line (make run)."""
import os

from ykt_tools import ROOT
from ykt_tools.sim import mp


def register(sub):
    p = sub.add_parser("run", help="simulate a day on a Guangxi line: fleet + embedded back office")
    p.add_argument("--scenario", default=os.path.join(ROOT, "scenarios", "day.json"))
    p.add_argument("--runtime", default="micropython", choices=sorted(mp.RUNTIMES))
    p.add_argument("--heap", default="256K", help="each device's firmware heap budget (default 256K)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--workdir", default=None, help="keep the back-office database here (default: a temp dir)")
    p.set_defaults(func=run, riders=None, hours=None, seed=1)


def run(args):
    from ykt_tools.sim import scenario

    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    return scenario.cli(args)
