"""`ykt fuzz --examples N`: run every property-based fuzz test (pytest -m fuzz)
with a budget that adds up to at least N generated inputs, and print how many
inputs actually ran (hypothesis's own statistics), per test and in total."""
import math
import os
import re
import subprocess
import sys

from ykt_tools import ROOT

# hypothesis --hypothesis-show-statistics: "- 106 passing, 0 failing, and 0 invalid test cases"
_PASSING = re.compile(r"(\d+) passing, (\d+) failing, and (\d+) invalid")


def register(sub):
    p = sub.add_parser("fuzz", help="run the fuzz tests with a large budget and count the inputs")
    p.add_argument("--examples", type=int, default=1000000, help="total inputs to generate (default 1,000,000)")
    p.add_argument("-k", default=None, help="only fuzz tests matching this pytest -k expression")
    p.add_argument("--jobs", type=int, default=2)
    p.set_defaults(func=run)


def _collect(k):
    cmd = [sys.executable, "-m", "pytest", "-q", "--collect-only", "-m", "fuzz", "tests"]
    if k:
        cmd += ["-k", k]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if "::" in l]


def run(args):
    tests = _collect(args.k)
    if not tests:
        print("no fuzz tests collected", file=sys.stderr)
        return 1
    # some examples end early (invalid inputs, exhausted strategies): aim 15 % higher
    per = int(math.ceil(args.examples * 1.15 / float(len(tests))))
    env = dict(os.environ, YKT_FUZZ_EXAMPLES=str(per))
    print("fuzz: %d tests x %d examples (target %d inputs)" % (len(tests), per, args.examples), flush=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "fuzz", "-n", str(args.jobs), "-p", "no:cacheprovider",
           "--hypothesis-show-statistics", "tests"]
    if args.k:
        cmd += ["-k", args.k]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    ran = failing = invalid = 0
    for m in _PASSING.finditer(p.stdout):
        ran += int(m.group(1))
        failing += int(m.group(2))
        invalid += int(m.group(3))
    tail = [l for l in p.stdout.splitlines() if l.strip()][-3:]
    print("\n".join(tail))
    print("fuzz inputs run: %d (failing %d, invalid %d) over %d tests" % (ran + failing, failing, invalid, len(tests)))
    return p.returncode
