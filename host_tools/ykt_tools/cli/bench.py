"""`ykt bench NAME [--json]`: benchmarks in bench_<name>.py modules."""
import importlib
import json
import sys

from ykt_tools.cli.main import modules


def _is_bench(name):
    """A benchmark module has add_args() and run(); helpers beside them (calib) do not."""
    mod = importlib.import_module("ykt_tools.bench." + name)
    return hasattr(mod, "add_args") and hasattr(mod, "run")


def register(sub):
    p = sub.add_parser("bench", help="run a benchmark (reader, denylist, decide, journal, wire, qr, ingest, all)")
    bsub = p.add_subparsers(dest="bench", metavar="NAME")
    bsub.required = True
    names = [n for n in modules("bench") if _is_bench(n)]
    for n in names:
        mod = importlib.import_module("ykt_tools.bench." + n)
        bp = bsub.add_parser(n, help=(mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else n)
        bp.add_argument("--json", action="store_true", help="print one JSON object")
        mod.add_args(bp)
        bp.set_defaults(func=lambda a, m=mod: _run(m, a))
    ap = bsub.add_parser("all", help="every benchmark with default arguments")
    ap.add_argument("--json", action="store_true")
    ap.set_defaults(func=lambda a: _all(names, a))


def _emit(res, as_json, title):
    if as_json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        print("== %s" % title)
        _pretty(res, "  ")


def _pretty(d, ind):
    for k, v in d.items():
        if isinstance(v, dict):
            print("%s%s:" % (ind, k))
            _pretty(v, ind + "  ")
        else:
            print("%s%s: %s" % (ind, k, v))


def _run(mod, args):
    _emit(mod.run(args), args.json, mod.__name__.rsplit(".", 1)[1])
    return 0


def _all(names, args):
    out = {}
    for n in names:
        mod = importlib.import_module("ykt_tools.bench." + n)
        p = __import__("argparse").ArgumentParser()
        p.add_argument("--json", action="store_true")
        mod.add_args(p)
        a = p.parse_args([])
        print("running bench %s ..." % n, file=sys.stderr)
        out[n] = mod.run(a)
    _emit(out, args.json, "all")
    return 0
