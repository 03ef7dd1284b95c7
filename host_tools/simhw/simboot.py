# `ykt sim --board B`: power on a virtual device for a board, boot the real
# firmware, run its loop for a while on virtual time, and print a JSON summary
# (peripherals found, heap). Portable: MicroPython unix port or CPython.
import sys
import json
import gc


def main(argv):
    board = "bus_validator"
    seconds = 10
    i = 0
    while i < len(argv):
        if argv[i] == "--board":
            board = argv[i + 1]
            i += 1
        elif argv[i] == "--seconds":
            seconds = int(argv[i + 1])
            i += 1
        i += 1
    from vhw.world import World
    from vhw import heapbudget

    boardcfg = heapbudget.firmware_import("ykt.boardcfg")

    try:
        w = World(board)
    except boardcfg.BoardError as e:
        print("@@JSON " + json.dumps({"board_error": str(e)}))
        return
    app = w.boot(print)
    rep = app.report
    print("ykt-gate on %s (%s): found %s" % (board, sys.implementation.name, ", ".join(sorted(rep["found"]))))
    for k in sorted(rep["missing"]):
        print("  missing %s: %s" % (k, rep["missing"][k]))
    w.run(seconds * 1000)
    gc.collect()
    heapbudget.collected()
    out = {
        "board": board,
        "runtime": sys.implementation.name,
        "found": rep["found"],
        "missing": rep["missing"],
        "reset_cause": rep["reset_cause"],
        "loops": app.loops,
        "heap_free_bytes": gc.mem_free() if hasattr(gc, "mem_free") else -1,
        "memory_errors": app.memory_errors,
        "psram": w.board["psram"],
        "reader_fault": bool(app.reader and app.reader.fault),
    }
    out.update(heapbudget.report())
    print("@@JSON " + json.dumps(out))


main(sys.argv[1:])
