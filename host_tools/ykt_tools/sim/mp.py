"""The launcher: the one place that starts an interpreter for the firmware.

Every run of firmware code outside this CPython process goes through here: the
simulator (`ykt sim`, `ykt run`), the benchmarks, the power-cut sweeps, the
portable firmware tests and the virtual device on a pty. This module knows:

- where each runtime lives, by name (RUNTIMES; adding one is one entry);
- the module path: firmware/, host_tools/simhw/ (the simulated chip),
  host_tools/ (yktsrv) plus extras, as MICROPYPATH (".frozen" first, as on a
  board) or PYTHONPATH;
- the heap: parse_heap() is the only parser of "256K" / "1M" / bytes. A run
  gets either `heap` (the interpreter's own heap: benchmarks that build no
  simulated chip) or `fw_heap` (the firmware's budget in a simulator: the
  interpreter gets SIM_ALLOWANCE on top for the simulated chip, and
  vhw.heapbudget takes the surplus back with a ballast once the chip exists;
  the budget reaches it as a byte count in YKT_FW_HEAP);
- the worker protocol: a worker is a portable .py file (in a workers/ folder
  beside its driver) that takes its inputs on argv (each under 256 bytes on
  MicroPython; bulk inputs go in a file named there) and prints its result as
  a line `@@JSON {...}`. run() runs one to completion; start() is the Popen
  form (parallel sweeps, a scenario's devices, the virtual device), finish()
  collects a started worker.
"""
import json
import os
import shutil
import subprocess
import sys
import threading

from ykt_tools import FIRMWARE, HOST, ROOT, SIMHW

MICROPYTHON = "micropython"
CPYTHON = "cpython"

# name: (kind, where the binary is looked for in order (a bare name is looked
# up on PATH), what makes it, firmware frozen in). micropython32 is the
# ESP32-faithful 32-bit unix port with the firmware and the simulated chip
# frozen in (docs/runtime.md): the runtime that stands for the device.
RUNTIMES = {
    "micropython": (MICROPYTHON, (os.path.join(ROOT, ".venv/bin/micropython"), "micropython"), "make setup", False),
    "micropython32": (MICROPYTHON, (os.path.join(ROOT, "build/micropython32/micropython"),), "make micropython32",
                      True),
    "cpython": (CPYTHON, (sys.executable,), None, False),
}
DEVICE_RUNTIME = "micropython32"
# A firmware budget of "board" is each board file's heap_bytes; the
# interpreter then gets the largest board heap there is plus the allowance.
BOARD = "board"


def board_heap_max():
    from ykt_tools import BOARDS

    most = 0
    for f in os.listdir(BOARDS):
        if f.endswith(".json"):
            with open(os.path.join(BOARDS, f)) as fh:
                hb = json.load(fh).get("heap_bytes", 0)
                if type(hb) is int:   # a bad declaration is the board validator's to name
                    most = max(most, hb)
    return most or 256 * 1024

# Heap the simulated chip (fake machine, PN532, cards, flash) may use on top of
# the firmware's budget; vhw.heapbudget's ballast returns what it leaves.
SIM_ALLOWANCE = 512 * 1024

TAG = "@@JSON "


class Missing(RuntimeError):
    """The runtime's binary is not there; the message says how to get it."""


def _entry(runtime):
    try:
        return RUNTIMES[runtime]
    except KeyError:
        raise ValueError("unknown runtime %r (one of %s)" % (runtime, ", ".join(sorted(RUNTIMES)))) from None


def is_micropython(runtime):
    return _entry(runtime)[0] == MICROPYTHON


def find(runtime):
    """The runtime's binary, or None when it is not installed."""
    for c in _entry(runtime)[1]:
        p = c if os.sep in c else shutil.which(c)
        if p and os.path.exists(p):
            return p
    return None


def binary(runtime):
    p = find(runtime)
    if p is None:
        raise Missing("%s binary missing: run `%s`" % (runtime, _entry(runtime)[2]))
    return p


def is_frozen(runtime):
    """True when the runtime has the firmware frozen in (its heap holds only
    what a device's heap holds)."""
    return _entry(runtime)[3]


def default_heap(runtime):
    """The firmware budget a simulator run gets unless told: each board's own
    heap on the runtime that stands for the device; 256K on the 64-bit proxy
    (objects about twice their ESP32 size, code left out as if frozen)."""
    return BOARD if is_frozen(runtime) else "256K"


def _frozen_sources():
    """Files frozen into micropython32 (as make sees them)."""
    out = []
    for top in (FIRMWARE, SIMHW, os.path.join(HOST, "micropython32")):
        for d, dirs, files in os.walk(top):
            dirs[:] = [x for x in dirs if x != "__pycache__"]
            out += [os.path.join(d, f) for f in files if f.endswith(".py")]
    return out


def stale(runtime):
    """The frozen sources newer than the runtime's binary (its frozen
    firmware would not be the firmware in the tree), or []."""
    if not is_frozen(runtime):
        return []
    b = find(runtime)
    if b is None:
        return []
    t = os.path.getmtime(b)
    return sorted(p for p in _frozen_sources() if os.path.getmtime(p) > t)


def parse_heap(s):
    """'256K', '1M' or a byte count (str or int) -> bytes."""
    if isinstance(s, int):
        return s
    s = s.strip().upper()
    mul = {"K": 1024, "M": 1024 * 1024}.get(s[-1:], 1)
    return int(s[:-1] if mul > 1 else s) * mul


def module_path(extra=(), firmware=FIRMWARE, sim=True, host=True):
    """Folders the firmware's interpreter imports from, in order.
    firmware=None leaves the firmware out (a virtual device imports its own
    flash, given in extra); sim=False leaves out the simulated chip, so the
    firmware runs on the interpreter's own clock, sockets and modules
    (benchmarks of firmware CPU, real TLS); host=False leaves out the
    host-side halves (yktsrv), which no board has."""
    dirs = [firmware] if firmware else []
    if sim:
        dirs.append(SIMHW)
    if host:
        dirs.append(HOST)
    return dirs + list(extra)


def in_process(extra=()):
    """Put the module path on this CPython process's sys.path (firmware code
    run in-process, e.g. the CPython firmware tests, sees what a worker sees)."""
    for p in reversed(module_path(extra)):
        if p not in sys.path:
            sys.path.insert(0, p)


def environ(runtime, path=(), firmware=FIRMWARE, sim=True, host=True, fw_heap=None, env=None, fw_reserve=0):
    """The child's environment: os.environ, the module path, the firmware's
    heap budget (bytes or "board", for vhw.heapbudget), the part of it held
    in reserve, the frozen flag and any `env` entries."""
    e = dict(os.environ)
    e.pop("YKT_FROZEN", None)
    if is_frozen(runtime):
        e["YKT_FROZEN"] = "1"
    if fw_reserve:
        e["YKT_FW_RESERVE"] = str(parse_heap(fw_reserve))
    dirs = module_path(path, firmware, sim, host)
    if is_micropython(runtime):
        e["MICROPYPATH"] = ":".join([".frozen"] + dirs)
    else:
        e["PYTHONPATH"] = os.pathsep.join(dirs)
    if fw_heap is not None:
        e["YKT_FW_HEAP"] = BOARD if fw_heap == BOARD else str(parse_heap(fw_heap))
    e.update(env or {})
    return e


def command(runtime, script, args=(), heap=None, fw_heap=None, interactive=False):
    """argv for the runtime. heap: the interpreter's heap; fw_heap: the
    firmware's budget, the interpreter getting SIM_ALLOWANCE on top. Neither:
    the runtime's default heap. CPython ignores both."""
    cmd = [binary(runtime)]
    if is_micropython(runtime):
        if heap is not None and fw_heap is not None:
            raise ValueError("give heap (the interpreter's) or fw_heap (the firmware's budget), not both")
        if fw_heap is not None:
            heap = (board_heap_max() if fw_heap == BOARD else parse_heap(fw_heap)) + SIM_ALLOWANCE
        if heap is not None:
            cmd += ["-X", "heapsize=%d" % parse_heap(heap)]
    if interactive:
        cmd.append("-i")
    args = [str(a) for a in args]
    if is_micropython(runtime) and any(len(a) > 255 for a in args):
        # the unix port interns argv as qstrs (at most 255 bytes): longer is a fatal error
        raise ValueError("a MicroPython worker argument is limited to 255 bytes: pass bulk inputs in a file")
    return cmd + [script] + args


def start(runtime, script, args=(), heap=None, fw_heap=None, path=(), firmware=FIRMWARE, sim=True, host=True,
          env=None, cwd=ROOT, interactive=False, fw_reserve=0, **popen):
    """Start a worker; returns the Popen. By default stdout and stderr come
    merged as text through a pipe (for finish()); popen overrides that.
    Refuses a frozen runtime older than the firmware it would stand for."""
    old = stale(runtime)
    if old:
        raise Missing("%s is older than %s (and %d more): run `%s`"
                      % (runtime, os.path.relpath(old[0], ROOT), len(old) - 1, _entry(runtime)[2]))
    kw = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    kw.update(popen)
    return subprocess.Popen(command(runtime, script, args, heap, fw_heap, interactive),
                            env=environ(runtime, path, firmware, sim, host, fw_heap, env, fw_reserve), cwd=cwd, **kw)


class Result:
    """A finished worker: rc, json (its last @@JSON object, or None), records
    (every @@JSON object in order) and out (everything else it printed)."""

    def __init__(self, rc, records, out):
        self.rc = rc
        self.records = records
        self.json = records[-1] if records else None
        self.out = out

    def require(self, what):
        """The result, or RuntimeError with the worker's output when it failed."""
        if self.rc or self.json is None:
            raise RuntimeError("%s failed (exit %s):\n%s" % (what, self.rc, self.out[-3000:]))
        return self.json


def finish(p, timeout=None, stream=None):
    """Read a started worker to its end; stream(line) sees every non-@@JSON
    line as it comes. Past timeout seconds the worker is killed and
    subprocess.TimeoutExpired raised."""
    timer = None
    expired = []
    if timeout is not None:
        def kill():
            expired.append(True)
            p.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
    records = []
    out = []
    try:
        for line in p.stdout:
            if line.startswith(TAG):
                records.append(json.loads(line[len(TAG):]))
            else:
                out.append(line)
                if stream is not None:
                    stream(line)
        rc = p.wait()
    finally:
        if timer is not None:
            timer.cancel()
        p.stdout.close()
    if expired:
        raise subprocess.TimeoutExpired(p.args, timeout, output="".join(out))
    return Result(rc, records, "".join(out))


def run(runtime, script, args=(), timeout=None, stream=None, **kw):
    """Run a worker to completion (start()'s keywords); returns a Result."""
    return finish(start(runtime, script, args, **kw), timeout, stream)
