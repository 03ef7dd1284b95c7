"""The `ykt` command. Each subcommand lives in its own module cli_<name>.py
exposing register(subparsers); benchmarks live in bench_<name>.py exposing
add_args(parser) and run(args) -> dict (printed as JSON with --json)."""
import argparse
import importlib
import os
import pkgutil
import sys

import ykt_tools


def modules(pkg):
    """Names of the modules in a ykt_tools subpackage (cli, bench), sorted."""
    pkgdir = os.path.join(os.path.dirname(ykt_tools.__file__), pkg)
    return sorted(m.name for m in pkgutil.iter_modules([pkgdir]) if not m.name.startswith("_") and m.name != "main")


def build_parser():
    p = argparse.ArgumentParser(prog="ykt", description="ykt-gate technician, simulator and back-office tools")
    p.add_argument("--version", action="version", version="ykt " + _version())
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True
    for name in modules("cli"):
        importlib.import_module("ykt_tools.cli." + name).register(sub)
    return p


def _version():
    sys.path.insert(0, ykt_tools.FIRMWARE)
    try:
        import ykt

        return ykt.VERSION
    finally:
        sys.path.remove(ykt_tools.FIRMWARE)


def main(argv=None):
    from ykt_tools.sim import mp

    args = build_parser().parse_args(argv)
    try:
        rc = args.func(args)
    except mp.Missing as e:   # an interpreter that is not built: say which make target builds it
        print("ykt: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
