"""Run the firmware on the simulator under either runtime.

The firmware and the simulated hardware always run together in one
interpreter (real MicroPython or CPython); this module starts that interpreter
with the right module path and heap, and collects its JSON summary."""
import json
import os
import subprocess
import sys

from ykt_tools import FIRMWARE, HOST, ROOT, SIMHW

RUNTIMES = ("micropython", "cpython")


def mp_bin():
    p = os.path.join(ROOT, ".venv", "bin", "micropython")
    return p if os.path.exists(p) else "micropython"


def mp_env(extra=()):
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([".frozen", FIRMWARE, SIMHW, HOST] + list(extra))
    return env


def interp_heap(fw_heap):
    """The firmware gets fw_heap; the simulated hardware gets an allowance on
    top that vhw.heapbudget takes back with a ballast once the world exists."""
    n = int(fw_heap[:-1]) * (1024 if fw_heap[-1] in "kK" else 1024 * 1024) if fw_heap[-1] in "kKmM" else int(fw_heap)
    return "%dK" % ((n + 512 * 1024) // 1024)


def command(runtime, script, args=(), heap="256K"):
    if runtime == "micropython":
        return [mp_bin(), "-X", "heapsize=" + interp_heap(heap), script] + list(args)
    if runtime == "cpython":
        return [sys.executable, script] + list(args)
    raise ValueError("unknown runtime %r (micropython or cpython)" % runtime)


def run_script(runtime, script, args=(), heap="256K", timeout=None, stream=None):
    """Run a portable script; returns (rc, last JSON object printed as '@@JSON ...', stdout text)."""
    env = mp_env()
    env["YKT_FW_HEAP"] = heap
    if runtime == "cpython":
        env["PYTHONPATH"] = os.pathsep.join([FIRMWARE, SIMHW])
    p = subprocess.Popen(command(runtime, script, args, heap), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, env=env, cwd=ROOT)
    out = []
    result = None
    for line in p.stdout:
        if line.startswith("@@JSON "):
            result = json.loads(line[7:])
        else:
            out.append(line)
            if stream is not None:
                stream(line)
    rc = p.wait(timeout)
    return rc, result, "".join(out)
