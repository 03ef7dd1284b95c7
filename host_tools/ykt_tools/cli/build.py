"""`ykt build-mpy`: cross-compile the firmware for the ESP32 (xtensawin)."""
import os
import sys

from ykt_tools import ROOT
from ykt_tools.build import shiplist as firmware_files


def register(sub):
    p = sub.add_parser("build-mpy", help="cross-compile every firmware module with mpy-cross")
    p.add_argument("--out", default=os.path.join(ROOT, "build", "mpy"), help="output folder (default build/mpy)")
    p.add_argument("--march", default="xtensawin", help="target architecture (ESP32: xtensawin)")
    p.set_defaults(func=run)


def run(args):
    try:
        built = firmware_files.compile_all(args.out, args.march)
    except RuntimeError as e:
        print(str(e), file=sys.stderr)
        return 1
    n = sum(1 for d, _ in built if d.endswith(".mpy"))
    size = sum(os.path.getsize(p) for _, p in built)
    print("mpy-cross -march=%s: %d modules compiled, %d files, %d bytes -> %s"
          % (args.march, n, len(built), size, os.path.relpath(args.out)))
    return 0
