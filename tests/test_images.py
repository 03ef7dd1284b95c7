"""The production images' definitions (boards/esp32/*, docs/images.md): the
committed partition CSVs are what the board files say, the ESP-IDF settings
agree with the board files, the image freezes exactly the ship list (the
manifest evaluated by MicroPython's own tools/manifestfile.py), and every app
partition holds a MicroPython image with the firmware frozen in.

What only an ESP-IDF build can confirm (the real image size, that the port
accepts these files) is listed in docs/images.md."""
import json
import os
import re
import sys

import pytest

import conftest
from ykt_tools.build import shiplist
from ykt_tools.cli import board as cli_board
from ykt_tools.cli import main as cli

ROOT = conftest.ROOT
PORT_BOARDS = os.path.join(ROOT, "boards", "esp32")
KIB = 1024

# The image-size assumption (docs/images.md, "Flash arithmetic"): a stock
# MicroPython ESP32 image is at most 1,700 KiB (the largest measured build found:
# v1.21.0 ESP32_GENERIC 1,563 KiB; a 2024 build with extra modules 1,672 KiB;
# MicroPython's own 4 MiB OTA table gives an image 1,536 KiB). Frozen bytecode
# takes 1.10 bytes of image per byte of .mpy (measured 1.09: micropython32,
# the 32-bit unix build freezing the firmware, the simulator and asyncio, has
# 216,594 bytes of frozen_content.o for 198,630 bytes of .mpy). 64 KiB stays
# free for growth.
STOCK_IMAGE = 1700 * KIB
FROZEN_PER_MPY = 1.10
MARGIN = 64 * KIB


def _board(name):
    with open(os.path.join(ROOT, "boards", name + ".json")) as f:
        return json.load(f)


def _table(b):
    return cli_board._boardcfg().partition_table(b)


def _read(*parts):
    with open(os.path.join(PORT_BOARDS, *parts)) as f:
        return f.read()


def test_every_port_board_belongs_to_a_board_file():
    dirs = sorted(d for d in os.listdir(PORT_BOARDS) if os.path.isdir(os.path.join(PORT_BOARDS, d)))
    assert dirs == sorted(cli_board.IMAGE_BOARDS.values())
    boards = sorted(f[:-5] for f in os.listdir(os.path.join(ROOT, "boards")) if f.endswith(".json"))
    assert boards == sorted(cli_board.IMAGE_BOARDS)
    for d in dirs:
        have = set(os.listdir(os.path.join(PORT_BOARDS, d)))
        assert {"mpconfigboard.cmake", "mpconfigboard.h", "sdkconfig.board", "manifest.py",
                "partitions.csv"} <= have, d


@pytest.mark.parametrize("name", sorted(cli_board.IMAGE_BOARDS))
def test_committed_csv_is_what_the_board_file_gives(name):
    want = cli_board.partition_csv(_board(name))
    with open(cli_board.csv_path(name)) as f:
        assert f.read() == want, "stale: run `ykt board partitions %s --csv --write`" % name


# ESP-IDF's names (components/partition_table/gen_esp32part.py)
_TYPES = {"app": 0, "data": 1}
_SUBTYPES = {0: dict([("factory", 0), ("test", 0x20)] + [("ota_%d" % i, 0x10 + i) for i in range(16)]),
             1: {"ota": 0, "phy": 1, "nvs": 2, "coredump": 3, "nvs_keys": 4, "fat": 0x81, "spiffs": 0x82}}


@pytest.mark.parametrize("name", sorted(cli_board.IMAGE_BOARDS))
def test_csv_carries_the_layout_as_esp_idf_reads_it(name):
    rows = []
    with open(cli_board.csv_path(name)) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                lab, ty, sub, off, size, flags = [c.strip() for c in line.split(",")]
                t = _TYPES[ty]
                rows.append((lab, t, _SUBTYPES[t].get(sub) if sub in _SUBTYPES[t] else int(sub, 0),
                             int(off, 0), int(size, 0)))
                assert flags == ""
    assert rows == _table(_board(name))


@pytest.mark.parametrize("name", sorted(cli_board.IMAGE_BOARDS))
def test_esp_idf_settings_agree_with_the_board_file(name):
    b = _board(name)
    d = cli_board.IMAGE_BOARDS[name]
    cmake, sdk, h = _read(d, "mpconfigboard.cmake"), _read(d, "sdkconfig.board"), _read(d, "mpconfigboard.h")
    cmake = "\n".join(ln for ln in cmake.splitlines() if not ln.startswith("#"))   # settings, not comments
    assert re.search(r"^set\(IDF_TARGET %s\)$" % b["mcu"], cmake, re.M)
    sizes = re.findall(r"^CONFIG_ESPTOOLPY_FLASHSIZE_(\d+)MB=y$", sdk, re.M)
    assert sizes == [str(b["flash_mb"])]
    assert "${MICROPY_BOARD_DIR}/sdkconfig.board" in cmake and "ykt_common.cmake" in cmake
    assert "CONFIG_PARTITION_TABLE_OFFSET=0x8000" in sdk   # where ykt flash --image looks for it
    psram = "boards/sdkconfig.spiram_sx" in cmake and "CONFIG_SPIRAM=y" in sdk
    assert psram == b["psram"]
    ota = any(p[1] == 0 and p[2] >= 0x10 for p in _table(b))
    assert ("CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y" in sdk) == ota
    assert "sdkconfig.ble" not in cmake and "MICROPY_PY_BLUETOOTH                (0)" in h
    common = _read("ykt_common.cmake")
    assert '${MICROPY_BOARD_DIR}/partitions.csv' in common
    assert "set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)" in common


def _manifestfile():
    """MicroPython's own tools/manifestfile.py, from the vendored source as
    `make micropython32` unpacks it (the same copy tests/test_shiplist.py reads)."""
    from test_shiplist import TOOLS

    if not os.path.exists(os.path.join(TOOLS, "manifestfile.py")):
        conftest.need_runtime("micropython32")   # fails under CI, skips with the make target otherwise
        pytest.skip("vendored MicroPython source not unpacked: run `make micropython32`")
    sys.path.insert(0, TOOLS)
    try:
        import manifestfile
    finally:
        sys.path.remove(TOOLS)
    return manifestfile


@pytest.mark.parametrize("name", sorted(cli_board.IMAGE_BOARDS))
def test_image_freezes_exactly_the_ship_list(name, tmp_path):
    mf = _manifestfile()
    # The port's default manifest (not vendored: ports/esp32 is not in the
    # unix subset) stands in as one marker module, to see that it is included.
    port = tmp_path / "port"
    (port / "boards").mkdir(parents=True)
    (port / "boards" / "_port_default.py").write_text("")
    (port / "boards" / "manifest.py").write_text('module("_port_default.py")\n')
    board_dir = os.path.join(PORT_BOARDS, cli_board.IMAGE_BOARDS[name])
    m = mf.ManifestFile(mf.MODE_FREEZE, {"MPY_DIR": str(tmp_path), "MPY_LIB_DIR": str(tmp_path),
                                         "PORT_DIR": str(port), "BOARD_DIR": board_dir})
    m.execute(os.path.join(board_dir, "manifest.py"))
    frozen = sorted((f.target_path, os.path.realpath(f.full_path)) for f in m.files())
    assert ("_port_default.py", os.path.realpath(str(port / "boards" / "_port_default.py"))) in frozen
    frozen.remove(("_port_default.py", os.path.realpath(str(port / "boards" / "_port_default.py"))))
    assert all(f.kind == mf.KIND_FREEZE_AS_MPY for f in m.files())
    assert frozen == [(dp, os.path.realpath(src)) for dp, src in shiplist.entries()]


@pytest.fixture(scope="module")
def frozen_estimate(tmp_path_factory):
    """Bytes the ship list adds to an image: its .mpy (mpy-cross, as the
    freezer compiles it) times the measured frozen-per-.mpy factor."""
    built = shiplist.compile_all(str(tmp_path_factory.mktemp("mpy")), march="xtensawin")
    mpy = sum(os.path.getsize(p) for _, p in built)
    assert 60 * KIB < mpy < 400 * KIB, mpy    # the whole ship list was compiled
    return int(mpy * FROZEN_PER_MPY)


@pytest.mark.parametrize("name", sorted(cli_board.IMAGE_BOARDS))
def test_app_partitions_hold_an_image_with_the_firmware_frozen(name, frozen_estimate):
    need = STOCK_IMAGE + frozen_estimate + MARGIN
    for lab, ty, sub, off, size in _table(_board(name)):
        if ty == 0:
            assert size >= need, ("%s: %s is %d KiB; a stock image (%d KiB) + the frozen firmware (%d KiB) "
                                  "+ %d KiB margin need %d KiB" % (name, lab, size // KIB, STOCK_IMAGE // KIB,
                                                                   frozen_estimate // KIB, MARGIN // KIB,
                                                                   need // KIB))


def test_every_board_holds_two_images_beside_the_province_list():
    # 16 MB modules: two app slots for interpreter updates, two 3 MiB deny-list
    # slots (1M Guangxi + 100k foreign entries, docs/denylist.md) and the vfs.
    for n in cli_board.IMAGE_BOARDS:
        t = {p[0]: p for p in _table(_board(n))}
        assert [p[0] for p in t.values() if p[1] == 0] == ["ota_0", "ota_1"], n
        assert t["dlist_a"][4] >= 3 * 1024 * KIB and t["dlist_b"][4] >= 3 * 1024 * KIB, n


def _ykt(capsys, *argv):
    capsys.readouterr()
    rc = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_board_partitions_cli(capsys, tmp_path):
    rc, out, err = _ykt(capsys, "board", "partitions", "bus_validator")
    lines = out.splitlines()
    assert rc == 0 and lines[0] == "bus_validator: 16 MB flash (boards/bus_validator.json)"
    assert [ln.split()[0] for ln in lines[2:-1]] == [p[0] for p in _table(_board("bus_validator"))]
    assert lines[-1].startswith("unused: 0 KiB")
    rc, out, err = _ykt(capsys, "board", "partitions", "turnstile", "--csv")
    assert rc == 0 and out == cli_board.partition_csv(_board("turnstile"))
    rc, out, err = _ykt(capsys, "board", "partitions", "tram_validator")
    assert rc == 2 and "unknown board 'tram_validator'" in err
    bad = _board("turnstile")
    bad["partitions"][4]["offset"] = "0x1f0000"        # ota_1 into ota_0
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(bad))
    rc, out, err = _ykt(capsys, "board", "partitions", str(f))
    assert rc == 2 and err.strip() == ("%s: partitions.ota_1.offset: 0x1f0000 overlaps ota_0 (ends at 0x200000); "
                                       "list partitions in flash order" % f)


_SHADOW = r"""
import sys
d = sys.argv[1]
sys.path.insert(0, d)              # like otaboot.enter: the slot first on sys.path
import asyncio.event
print("slot", asyncio.event.SHADOW)
try:
    import asyncio.core
    print("core", asyncio.core.__file__)
except ImportError as e:
    print("core ImportError")
"""

_OVERLAY = r"""
import sys
d = sys.argv[1]
import asyncio                     # the frozen package
old = asyncio.__path__
asyncio.__path__ = d + "/asyncio"  # only while the fixed module loads
import asyncio.event
asyncio.__path__ = old
from asyncio import event
import asyncio.core
print("slot", event.SHADOW, "core", asyncio.core.__file__, "path", asyncio.__path__)
"""


def test_a_slot_shadows_a_frozen_package_whole_and_a_path_swap_shadows_one_module(tmp_path):
    # docs/images.md, "Updates with frozen code": the MicroPython import rule the
    # update scheme depends on, on the real unix port with its frozen asyncio.
    import subprocess

    mp = conftest.need_runtime("micropython")
    slot = tmp_path / "slot"
    (slot / "asyncio").mkdir(parents=True)
    (slot / "asyncio" / "event.py").write_text("SHADOW = 1\n")
    for name, code in (("shadow.py", _SHADOW), ("overlay.py", _OVERLAY)):
        (tmp_path / name).write_text(code)
    frozen = subprocess.run([mp, "-c", "import asyncio.core; print(asyncio.core.__file__)"],
                            capture_output=True, text=True, timeout=60).stdout.strip()
    assert frozen == "asyncio/core.py"        # frozen: no folder in its name
    out = subprocess.run([mp, str(tmp_path / "shadow.py"), str(slot)], capture_output=True, text=True,
                         timeout=60).stdout.split("\n")
    assert out[:2] == ["slot 1", "core ImportError"]
    out = subprocess.run([mp, str(tmp_path / "overlay.py"), str(slot)], capture_output=True, text=True,
                         timeout=60).stdout.strip()
    assert out == "slot 1 core asyncio/core.py path .frozen/asyncio"
