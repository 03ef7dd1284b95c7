# Virtual hardware for the host simulator: the peripherals behind the fake
# machine/network/esp32 modules. Portable (CPython and MicroPython unix port).

# What a simulated peripheral keeps of its history for tests and logs lives in
# the interpreter's heap beside the firmware (inside its budget once the
# ballast is placed, vhw/heapbudget.py), so it is bounded: over a simulated
# day an unbounded list of frames filled a bus's 112 KiB heap.
LOG_CAP = 64


def keep(log, item, cap=LOG_CAP):
    """Append item to log, forgetting the oldest entry past cap."""
    if len(log) >= cap:
        del log[0]
    log.append(item)
