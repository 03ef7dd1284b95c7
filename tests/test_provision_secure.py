"""`ykt provision --secure`: the ESP32 flash and NVS encryption steps, in
order, with their irreversible eFuse burns, run for real by Espressif's
tools (espefuse, espsecure) on espefuse's virtual chip (a file of eFuses:
the real burning rules, no chip); the flash writes need a chip and are
skipped there. A failed step stops everything after it."""
import binascii
import json
import os
import subprocess
import sys

import pytest

import conftest  # noqa: F401
from ykt_tools.cli import main as cli
from ykt_tools.device import secure

BOARDS = os.path.join(conftest.ROOT, "boards")


def ykt(capsys, *argv):
    capsys.readouterr()
    rc = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def board(tmp_path):
    """bus_validator with an nvs_keys partition carved from the end of nvs
    (the layout a secure build uses: docs/operations.md)."""
    with open(os.path.join(BOARDS, "bus_validator.json")) as f:
        b = json.load(f)
    parts = b["partitions"]
    nvs = parts[0]
    assert nvs["name"] == "nvs"
    end = int(nvs["offset"], 16) + int(nvs["size"], 16)
    nvs["size"] = "0x%x" % (int(nvs["size"], 16) - 0x1000)
    parts.insert(1, {"name": "nvs_keys", "type": "data", "subtype": "nvs_keys", "offset": "0x%x" % (end - 0x1000),
                     "size": "0x1000"})
    p = tmp_path / "secure_bus.json"
    p.write_text(json.dumps(b))
    return str(p)


@pytest.fixture
def firmware(tmp_path):
    d = tmp_path / "fw"
    d.mkdir()
    for name, n in (("bootloader.bin", 0x6000), ("partition-table.bin", 0xC00), ("micropython.bin", 0x20000)):
        (d / name).write_bytes(os.urandom(n))
    return str(d)


def _efuses(path):
    p = subprocess.run([sys.executable, "-m", "espefuse", "--chip", "esp32", "--virt", "--path-efuse-file", path,
                        "summary", "--format", "json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout[p.stdout.index("{"):])
    return {k: v["value"] for k, v in d.items()}, d


def test_dry_run_prints_the_steps_in_order(capsys, tmp_path, board, firmware):
    rc, out, err = ykt(capsys, "provision", "--secure", "--dry-run", "--json", "--port", "/dev/ttyUSB7",
                       "--board", board, "--key-dir", tmp_path / "keys", "--firmware-dir", firmware)
    assert rc == 0, err
    steps = json.loads(out)
    what = [s["what"].split(" ")[0:2] for s in steps]
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
    tools = [" ".join(s["argv"][1:3]) + " " + next(a for a in s["argv"][3:] if not a.startswith("-") and
                                                  a not in ("esp32", "/dev/ttyUSB7")) for s in steps]
    # read, keys, encrypt x4, burn key, burn config, write, enable, release, verify
    assert tools == ["-m espefuse summary", "-m espsecure generate-flash-encryption-key",
                     "-m ykt_tools.device.secure nvs-keys"] + ["-m espsecure encrypt-flash-data"] * 4 + [
                     "-m espefuse burn-key", "-m espefuse burn-efuse", "-m esptool write-flash",
                     "-m espefuse burn-efuse", "-m espefuse burn-efuse", "-m espefuse summary"], what
    irrev = [s["step"] for s in steps if s["irreversible"]]
    assert irrev == [8, 9, 11, 12]
    assert "FLASH_CRYPT_CNT" in steps[10]["argv"] and "JTAG_DISABLE" in steps[11]["argv"]
    # the write puts each encrypted image at its partition (from the board file)
    parts = {p["name"]: p["offset"] for p in json.load(open(board))["partitions"]}
    app = parts.get("factory") or parts["ota_0"]
    wr = steps[9]["argv"]
    assert wr[wr.index("write-flash") + 2:] == [
        "0x1000", str(tmp_path / "keys" / "enc-bootloader.bin"), "0x8000",
        str(tmp_path / "keys" / "enc-partition-table.bin"), "0x%x" % int(app, 16), str(tmp_path / "keys" / "enc-micropython.bin"),
        "0x%x" % int(parts["nvs_keys"], 16), str(tmp_path / "keys" / "enc-nvs_keys.bin")]
    assert not os.path.exists(tmp_path / "keys")          # a dry run makes nothing
    rc, out, err = ykt(capsys, "provision", "--secure", "--dry-run", "--port", "/dev/ttyUSB7", "--board", board,
                       "--key-dir", tmp_path / "keys", "--firmware-dir", firmware)
    assert out.count("[IRREVERSIBLE]") == 4 and "burn-key flash_encryption" in out


def test_board_without_nvs_keys_partition_is_refused(capsys, tmp_path, firmware):
    rc, out, err = ykt(capsys, "provision", "--secure", "--dry-run", "--port", "/dev/ttyUSB7", "--board",
                       "bus_validator", "--key-dir", tmp_path / "k", "--firmware-dir", firmware)
    assert rc == 2 and "declares no nvs_keys partition" in err


def test_secure_on_a_virtual_chip_then_refused_a_second_time(capsys, tmp_path, board, firmware):
    ef = str(tmp_path / "efuses.bin")
    keys = tmp_path / "keys"
    rc, out, err = ykt(capsys, "provision", "--secure", "--json", "--port", "/dev/ttyUSB7", "--board", board,
                       "--key-dir", keys, "--firmware-dir", firmware, "--virt-efuse", ef)
    assert rc == 0, err
    done = json.loads(out)["steps"]
    assert [d["status"] for d in done].count("ok") == 12 and done[9]["status"].startswith("skipped")
    v, raw = _efuses(ef)
    assert v["FLASH_CRYPT_CNT"] == 1 and v["FLASH_CRYPT_CONFIG"] == 0xF
    assert all(v[f] for f in secure.RELEASE_FUSES)
    assert raw["BLOCK1"]["readable"] is False                   # the key cannot be read back
    key = (keys / secure.KEY_NAME).read_bytes()
    assert len(key) == 32 and key.hex() not in out + err          # never printed
    assert oct(os.stat(keys / secure.KEY_NAME).st_mode & 0o777) == "0o600"
    img = (keys / secure.NVS_KEYS_NAME).read_bytes()
    assert len(img) == 4096 and img[64:68] == binascii.crc32(img[:64]).to_bytes(4, "little")
    assert set(img[68:]) == {0xFF}
    enc = (keys / "enc-micropython.bin").read_bytes()
    assert len(enc) == 0x20000 and enc != (open(os.path.join(firmware, "micropython.bin"), "rb").read())
    # the same chip again: step 1 sees it encrypted; nothing else runs
    keys2 = tmp_path / "keys2"
    rc, out, err = ykt(capsys, "provision", "--secure", "--port", "/dev/ttyUSB7", "--board", board,
                       "--key-dir", keys2, "--firmware-dir", firmware, "--virt-efuse", ef)
    assert rc == 1 and "step 1" in err and "already on" in err and "nothing after it was run" in err
    assert not os.path.exists(keys2 / secure.KEY_NAME)


def test_a_failed_step_stops_before_any_efuse_is_burned(capsys, tmp_path, board, firmware):
    os.remove(os.path.join(firmware, "micropython.bin"))       # the app image is missing: its encryption fails
    ef = str(tmp_path / "efuses.bin")
    rc, out, err = ykt(capsys, "provision", "--secure", "--port", "/dev/ttyUSB7", "--board", board,
                       "--key-dir", tmp_path / "keys", "--firmware-dir", firmware, "--virt-efuse", ef)
    assert rc == 1 and "step 6 (encrypt micropython.bin" in err and "nothing after it was run" in err
    v, raw = _efuses(ef)
    assert v["FLASH_CRYPT_CNT"] == 0 and raw["BLOCK1"]["readable"] is True   # no key burned


@pytest.mark.parametrize("st,want", [
    ({"flash_crypt_cnt": 1, "nvs_keys": True}, "encrypted"),
    ({"flash_crypt_cnt": 3, "nvs_keys": True}, "plain"),      # two bits: encryption turned off again
    ({"flash_crypt_cnt": 1, "nvs_keys": False}, "plain"),     # flash encrypted, NVS not
    ({"flash_crypt_cnt": 0, "nvs_keys": True}, "plain"),
    ({"flash_crypt_cnt": None, "nvs_keys": None}, "plain"),   # a runtime that cannot tell
])
def test_storage_state(st, want):
    assert secure.storage_state(st) == want
