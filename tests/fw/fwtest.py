# Portable test runner for firmware scenario tests. pytest imports the same
# test modules under CPython; under MicroPython this module runs them in a
# subprocess (a worker started by the launcher) and prints one line
# `@@JSON {...}` per test for pytest to assert on.
import sys
import json
import gc


class Skip(Exception):
    """Raise with a reason when this runtime lacks a capability."""


def runtime():
    return sys.implementation.name


def _fmt_exc(e):
    try:
        import io

        buf = io.StringIO()
        sys.print_exception(e, buf)
        return buf.getvalue()
    except AttributeError:
        import traceback

        return "".join(traceback.format_exception(type(e), e, e.__traceback__))


def run_module(modname, only=None):
    mod = __import__(modname)
    names = sorted(n for n in dir(mod) if n.startswith("test_"))
    for name in names:
        if only and name not in only:
            continue
        fn = getattr(mod, name)
        gc.collect()
        res = {"module": modname, "test": name}
        try:
            if hasattr(mod, "setup"):
                mod.setup()
            fn()
            res["status"] = "pass"
        except Skip as e:
            res["status"] = "skip"
            res["reason"] = str(e.args[0]) if e.args else "no reason"
        except MemoryError as e:
            res["status"] = "fail"
            res["error"] = "MemoryError\n" + _fmt_exc(e)
        except BaseException as e:  # report every failure, keep running the rest
            res["status"] = "fail"
            res["error"] = _fmt_exc(e)
        gc.collect()
        try:
            res["mem_free"] = gc.mem_free()
        except AttributeError:
            pass
        print("@@JSON " + json.dumps(res))


if __name__ == "__main__":
    run_module(sys.argv[1], sys.argv[2:] or None)
