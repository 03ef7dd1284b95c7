"""Every portable firmware scenario test (tests/fw/t_*.py), run on CPython in
process (with coverage) and, as a worker started by the launcher, on each
MicroPython runtime of RUNTIMES with an ESP32-like heap, with the same
assertions."""
import importlib
import os
import re

import pytest

from conftest import ROOT, run_fw_test

FW_DIR = os.path.join(ROOT, "tests", "fw")


def _collect():
    out = []
    for fn in sorted(os.listdir(FW_DIR)):
        if fn.startswith("t_") and fn.endswith(".py"):
            mod = fn[:-3]
            with open(os.path.join(FW_DIR, fn)) as f:
                for m in re.finditer(r"^def (test_\w+)\(", f.read(), re.M):
                    out.append((mod, m.group(1)))
    return out


CASES = _collect()
# MicroPython runtimes (launcher names, ykt_tools/sim/mp.py) every case also runs on.
RUNTIMES = ["micropython", "micropython32"]
MP_CASES = [(rt,) + c for rt in RUNTIMES for c in CASES]


@pytest.mark.parametrize("module,test", CASES, ids=["%s::%s" % c for c in CASES])
def test_cpython(module, test):
    import fwtest

    mod = importlib.import_module(module)
    try:
        if hasattr(mod, "setup"):
            mod.setup()
        getattr(mod, test)()
    except fwtest.Skip as e:
        pytest.skip("cpython: %s" % (e.args[0] if e.args else "no reason"))


@pytest.mark.micropython
@pytest.mark.parametrize("runtime,module,test", MP_CASES, ids=["%s:%s::%s" % c for c in MP_CASES])
def test_micropython(runtime, module, test):
    run_fw_test(runtime, module, test, heap=_heap(runtime, module))


# The OTA kit's device is the ferry (a PSRAM board) booting applications
# from A/B slots: their code is compiled from .py into the heap, and the
# in-process reboots keep what the simulator still holds of earlier boots.
# On the 64-bit proxy that is about twice its ESP32 size, beyond the proxy's
# 256K; micropython32 keeps the board's own budget (docs/runtime.md).
_SLOT_MODULES = ("t_ota", "t_ota_fw", "t_ota_rollback")


def _heap(runtime, module):
    return "512K" if runtime == "micropython" and module in _SLOT_MODULES else None
