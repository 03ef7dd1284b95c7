"""`ykt deploy`: put the firmware on a device that runs stock MicroPython.

Cross-compiles firmware/ with mpy-cross for the architecture the device
reports (sys.implementation._mpy), then pushes only the files whose SHA-256
differs from what the device holds (like `mpremote cp`), removes stale code
files that would shadow the new ones (MicroPython imports x.py before x.mpy),
pushes board.json and optionally config.json, and verifies every hash after.
What ships is firmware/manifest.py's ship list (ykt_tools.build.shiplist)."""
import json
import os
import sys

from ykt_tools import BOARDS, ROOT

# mpy-cross -march names by sys.implementation._mpy >> 10 (py/persistentcode.h).
ARCHS = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
         "xtensa", "xtensawin", "rv32imc", "rv64imc")


class DeployError(Exception):
    pass


def board_file(board):
    """Path of boards/<board>.json, validated; DeployError names the known boards."""
    p = board if board.endswith(".json") and os.path.sep in board else os.path.join(BOARDS, board + ".json")
    if not os.path.exists(p):
        known = sorted(f[:-5] for f in os.listdir(BOARDS) if f.endswith(".json"))
        raise DeployError("unknown board %r: known boards are %s" % (board, ", ".join(known)))
    sys.path.insert(0, os.path.join(ROOT, "firmware"))
    try:
        from ykt import boardcfg

        with open(p) as f:
            text = f.read()
        try:
            boardcfg.loads(text, p)
        except ValueError as e:
            raise DeployError("board file %s is invalid: %s" % (p, e))
    finally:
        sys.path.pop(0)
    return p


def device_arch(dev):
    """mpy-cross -march for the device's interpreter (None: bytecode only)."""
    v = dev.exec("import sys\nprint(getattr(sys.implementation,'_mpy',0))").strip()
    try:
        a = int(v) >> 10
    except ValueError:
        raise DeployError("device did not report its .mpy format (%r)" % v[:40])
    if a >= len(ARCHS):
        raise DeployError("device reports an unknown architecture %d" % a)
    return ARCHS[a]


def build(march):
    """[(device path, bytes)] of the ship list compiled for march.
    Compiled in a private temp dir (parallel deploys never share files)."""
    import tempfile

    from ykt_tools.build import shiplist

    with tempfile.TemporaryDirectory(prefix="ykt-deploy-") as out:
        try:
            built = shiplist.compile_all(out, march=march or "xtensawin")
        except (RuntimeError, shiplist.ShipListError) as e:
            raise DeployError(str(e))
        files = []
        for dp, lp in built:
            with open(lp, "rb") as f:
                files.append((dp, f.read()))
    return files


# --- the OTA hook ---------------------------------------------------------
# `ykt deploy --bundle FILE` is reserved for the OTA release bundle: set
# BUNDLE_LOADER to a function(path) -> [(device path, bytes)] (verified
# bundle contents) and deploy pushes exactly those files instead of a build.
BUNDLE_LOADER = None


def bundle_files(path):
    if BUNDLE_LOADER is None:
        raise DeployError("--bundle is not supported by this ykt yet (OTA bundles): deploy from the source tree")
    return BUNDLE_LOADER(path)


def _progress(enabled):
    if not enabled:
        return None

    def show(i, n, path):
        sys.stderr.write("\r  [%3d/%3d] %-40s" % (i, n, path[-40:]))
        if i == n:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def deploy(dev, board, config=None, bundle=None, progress=None, march=None, built=None):
    """Push the firmware to an open devconn.Device. config: dict written as
    config.json (None: leave the device's). built: a build(arch) result to
    reuse (default: build now for the device's arch). Returns a report dict:
    {pushed, skipped, removed, files, arch}. Raises DeployError/DeviceError."""
    bpath = board_file(board)
    if bundle is not None:
        files = [(dp, data) for dp, data in bundle_files(bundle)]
        arch = "bundle"
    else:
        arch = march if march is not None else device_arch(dev)
        files = list(built if built is not None else build(arch))
    with open(bpath, "rb") as f:
        files.append(("board.json", f.read()))
    if config is not None:
        files.append(("config.json", json.dumps(config, sort_keys=True).encode()))
    for dp, _ in files:
        if dp.endswith(".tmp") or dp.startswith("/") or ".." in dp.split("/"):
            raise DeployError("refusing to push %s (unsafe path)" % dp)
    import hashlib

    want = {dp: hashlib.sha256(data).hexdigest() for dp, data in files}
    have = dev.hashes(sorted(want))
    todo = [(dp, data) for dp, data in files if have.get(dp) != want[dp]]
    show = progress
    for i, (dp, data) in enumerate(todo, 1):
        dev.write(dp, data)
        if show:
            show(i, len(todo), dp)
    removed = remove_stale(dev, set(want))
    after = dev.hashes(sorted(want))
    bad = sorted(dp for dp in want if after.get(dp) != want[dp])
    if bad:
        raise DeployError("verification failed after push for %d file(s): %s -- the flash may be full "
                          "or failing; run `ykt diagnose`" % (len(bad), ", ".join(bad[:5])))
    return {"pushed": len(todo), "skipped": len(files) - len(todo), "removed": removed,
            "files": len(files), "arch": arch or "bytecode"}


def remove_stale(dev, keep):
    """Delete code files in the shipped code folders that are not in the ship
    list (a stale x.py would shadow a fresh x.mpy; old modules must not linger)."""
    from ykt_tools.build import shiplist

    dirs = shiplist.code_dirs(keep)
    code = ("import os\nr=[]\nfor d in %r:\n try:\n  l=os.listdir(d)\n except OSError:\n  l=[]\n"
            " for n in l:\n  p=d+'/'+n\n  if (n.endswith('.py') or n.endswith('.mpy') or n.endswith('.tmp')) and p not in %r:\n"
            "   os.remove(p)\n   r.append(p)\nprint(len(r))" % (dirs, sorted(keep)))
    return int(dev.exec(code).strip() or 0)
