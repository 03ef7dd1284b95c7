# The firmware's heap budget inside a simulator process. The simulated chip
# (fake machine, PN532, cards, flash) shares the interpreter's heap with the
# firmware but does not exist on the device, so the launcher
# (ykt_tools/sim/mp.py) starts the interpreter with the budget plus its
# simulator allowance and passes the budget in bytes in YKT_FW_HEAP; once the
# virtual hardware is built, a ballast block takes away everything above the
# budget. The firmware then has exactly that budget to live in (e.g. 256K
# on the 64-bit unix port: docs/design.md, "Heap"): it hits MemoryError where the device
# would.
import gc
import os

#
# Code is treated as frozen (docs/design.md, "Heap"): the budget stands for an
# ESP32 whose firmware is frozen into flash (or a board with PSRAM), where
# module code lives in flash, not on the heap. So the firmware modules are imported
# before the ballast is placed, their heap is reported as code_bytes, and the
# budget covers the firmware's data. heap figures "code included" add both.
_ballast = None
base = 0          # heap in use by the simulator (and frozen code) when the budget was applied
code_bytes = 0    # heap the firmware's modules take when imported (frozen on the device)
applied = False


def budget():
    v = os.getenv("YKT_FW_HEAP")
    return int(v) if v else None


def apply():
    """Leave exactly the firmware budget free (MicroPython only; once)."""
    global _ballast, base, applied, code_bytes
    b = budget()
    if applied or b is None or not hasattr(gc, "mem_free"):
        return
    applied = True
    gc.collect()
    a0 = gc.mem_alloc()
    _freeze_firmware()
    gc.collect()
    code_bytes = gc.mem_alloc() - a0
    extra = gc.mem_free() - b
    while extra > 0 and _ballast is None:
        try:
            _ballast = bytearray(extra)
        except MemoryError:   # fragmented: take a little less
            extra -= 4096
    gc.collect()
    base = gc.mem_alloc()


def _freeze_firmware():
    import ykt

    _import_tree(ykt.__file__.rsplit("/", 1)[0], "ykt")


def _import_tree(d, pkg):
    for f in sorted(os.listdir(d)):
        p = d + "/" + f
        if f.endswith(".py") or f.endswith(".mpy"):
            m = f.rsplit(".", 1)[0]
            if m != "__init__":
                __import__(pkg + "." + m)
                gc.collect()   # the compiler's garbage is reused by the next module: less fragmentation
        elif f != "__pycache__" and os.stat(p)[0] & 0x4000:
            __import__(pkg + "." + f)
            gc.collect()
            _import_tree(p, pkg + "." + f)


def firmware_bytes(alloc):
    """Heap attributable to the firmware: allocation above the simulator's base
    (the ballast counts as the simulator's)."""
    return alloc - base if applied else alloc
