"""One ship list: firmware/manifest.py decides what goes onto a device, and a
USB deploy, an OTA release bundle and the frozen micropython32 image all carry
exactly it (the bundle carries its application part)."""
import os
import subprocess
import sys
import tempfile

import pytest

import conftest
from conftest import ROOT, need_runtime
from ykt_tools.build import release, shiplist
from ykt_tools.device import deploy

TOOLS = os.path.join(ROOT, "build", "micropython32", "src", "micropython", "tools")


def _modules(paths):
    """Device paths -> module names ('ykt/net/wire.mpy' -> 'ykt/net/wire')."""
    return sorted(p.rsplit(".", 1)[0] for p in paths)


def _shiplist():
    return _modules(rel for rel, _ in shiplist.entries())


def test_reader_agrees_with_micropythons_manifest_tool():
    # MicroPython's own tools/manifestfile.py (from the vendored source, unpacked
    # by `make micropython32`) reads the same manifest to the same files.
    if not os.path.exists(os.path.join(TOOLS, "manifestfile.py")):
        need_runtime("micropython32")        # fails under CI, skips with the make target otherwise
        conftest.need(False, "vendored MicroPython source not unpacked: run `make micropython32`")
    sys.path.insert(0, TOOLS)
    try:
        import manifestfile
    finally:
        sys.path.remove(TOOLS)
    m = manifestfile.ManifestFile(manifestfile.MODE_COMPILE, {"MPY_DIR": os.path.dirname(TOOLS)})
    m.execute(shiplist.MANIFEST)
    theirs = sorted((f.target_path, os.path.realpath(f.full_path)) for f in m.files())
    ours = sorted((rel, os.path.realpath(src)) for rel, src in shiplist.entries())
    assert ours == theirs
    import ykt

    assert m.metadata().version == ykt.VERSION, "firmware/manifest.py's version is ykt.VERSION"


def test_deploy_bundle_and_frozen_image_carry_the_ship_list():
    ship = _shiplist()
    assert "ykt/app" in ship and "otaboot" in ship and "main" in ship
    built = deploy.build("x64")
    assert _modules(dp for dp, _ in built) == ship
    app = [m for m in ship if m.startswith(shiplist.APP_PACKAGE + "/")]
    with tempfile.TemporaryDirectory() as d:
        slot = release.slot_files(shiplist.compile_all(d, march="x64"))
    assert _modules(dp for dp, _ in slot) == app, "a bundle carries the application package, nothing else"
    # The frozen image: every module MicroPython lists as frozen under the
    # firmware's names is in the ship list, and every ship-list module is frozen.
    mp32 = need_runtime("micropython32")
    out = subprocess.run([mp32, "-c", "help('modules')"], capture_output=True, text=True,
                         env=dict(os.environ, MICROPYPATH=".frozen"), timeout=60).stdout
    listed = set(out.split())
    frozen = sorted(n for n in listed if n.startswith("ykt/") or n in ("otaboot", "main"))
    assert frozen == ship


def test_a_manifest_that_reaches_outside_its_list_is_refused(tmp_path):
    m = tmp_path / "manifest.py"
    m.write_text('require("ssl")\n')
    with pytest.raises(shiplist.ShipListError, match="require"):
        shiplist.entries(str(m))
    m.write_text('module("missing.py")\n')
    with pytest.raises(shiplist.ShipListError, match="missing module"):
        shiplist.entries(str(m))
