"""`ykt flash --image`: a full custom image (boot loader, partition table, app)
checked against the board file before anything is written, without a chip.

The images are made with esptool's own image classes and `merge_bin`, the
partition tables in ESP-IDF's binary format as components/partition_table
documents it (32-byte entries, magic AA 50, an MD5 entry, 0xFF padding); the
flash step itself goes through the real esptool up to where a chip must
answer (a port that does not exist)."""
import hashlib
import json
import os
import struct

import pytest

import conftest
from ykt_tools.cli import board as cli_board
from ykt_tools.cli import main as cli
from ykt_tools.device import flash

from esptool import cmds
from esptool.bin_image import ELFSection, ESP32FirmwareImage, ESP32S3FirmwareImage
from esptool.targets import CHIP_DEFS

NOPORT = "/dev/ttyYKT-does-not-exist"
IRAM = {"esp32": 0x40080000, "esp32s3": 0x40370000}


def ykt(capsys, *argv):
    capsys.readouterr()
    rc = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _board(name):
    with open(os.path.join(conftest.ROOT, "boards", name + ".json")) as f:
        return json.load(f)


def esp_image(chip, payload, flash_mb=4):
    """A real ESP app/boot loader image for `chip` (esptool's classes, which
    write the chip's id): one IRAM segment."""
    img = {"esp32": ESP32FirmwareImage, "esp32s3": ESP32S3FirmwareImage}[chip]()
    img.entrypoint = IRAM[chip]
    img.flash_size_freq = CHIP_DEFS[chip].FLASH_SIZES["%dMB" % flash_mb]
    img.segments = [ELFSection(b".iram0.text", IRAM[chip], payload, 0)]
    return img.save(None)


def table_bin(parts):
    """ESP-IDF's binary partition table for [(label, type, subtype, offset, size)]."""
    body = b"".join(struct.pack("<2sBBII16sI", b"\xaa\x50", t, s, o, z, lab.encode(), 0)
                    for lab, t, s, o, z in parts)
    body += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(body).digest()
    return body + b"\xff" * (0xC00 - len(body))


def _layout(name):
    return cli_board._boardcfg().partition_table(_board(name))


def build_dir(tmp_path, name, app_bytes=300000, **kw):
    """An ESP-IDF build folder as idf.py leaves it, for board `name`."""
    b = _board(name)
    d = tmp_path / ("build-" + name)
    (d / "bootloader").mkdir(parents=True)
    (d / "partition_table").mkdir()
    (d / "bootloader" / "bootloader.bin").write_bytes(
        kw.get("bootloader") or esp_image(b["mcu"], bytes(20000), kw.get("flash_mb", b["flash_mb"])))
    (d / "partition_table" / "partition-table.bin").write_bytes(kw.get("table") or table_bin(_layout(name)))
    (d / "micropython.bin").write_bytes(kw.get("app") or esp_image(b["mcu"], os.urandom(app_bytes), b["flash_mb"]))
    return d


def merged(tmp_path, name, target_offset=0, **kw):
    """`esptool merge_bin` of a build folder: from flash 0 (esptool's default)
    or from the boot loader (as the port's own firmware.bin)."""
    b = _board(name)
    d = build_dir(tmp_path, name, **kw)
    app = [p for p in _layout(name) if p[1] == 0][0]
    out = tmp_path / ("%s-at-0x%x.bin" % (name, target_offset))
    cmds.merge_bin([(flash.OFFSETS[b["mcu"]], str(d / "bootloader" / "bootloader.bin")),
                    (0x8000, str(d / "partition_table" / "partition-table.bin")),
                    (app[3], str(d / "micropython.bin"))], b["mcu"], output=str(out), target_offset=target_offset)
    return str(out)


def _refused(name, image, capsys):
    rc, out, err = ykt(capsys, "flash", "--port", "/dev/ttyUSB0", "--board", name, "--image", image, "--dry-run")
    assert rc == 2 and out == "" and err.startswith("ykt flash: ") and err.count("\n") == 1, (rc, out, err)
    return err


def test_dry_run_of_a_merged_image_from_flash_0(tmp_path, capsys):
    img = merged(tmp_path, "bus_validator")
    with open(img, "rb") as f:
        assert f.read(0x1000) == b"\xff" * 0x1000    # esptool pads up to the ESP32's boot loader
    rc, out, err = ykt(capsys, "flash", "--port", "/dev/ttyUSB0", "--board", "bus_validator", "--image", img,
                       "--dry-run")
    assert rc == 0, err
    assert out.splitlines() == ["esptool --chip esp32 --port /dev/ttyUSB0 --baud 460800 erase-flash",
                                "esptool --chip esp32 --port /dev/ttyUSB0 --baud 460800 write-flash -z 0x0 " + img]


def test_dry_run_of_the_ports_firmware_bin_and_of_a_build_folder(tmp_path, capsys):
    # The port's firmware.bin starts at the boot loader: 0x1000 on an ESP32.
    img = merged(tmp_path, "turnstile", target_offset=0x1000)
    p = flash.plan_image("/dev/ttyUSB0", 460800, "turnstile", img)
    assert p["writes"] == [(0x1000, img)] and p["app"] == "ota_0" and p["app_room"] == 0x1F0000
    assert p["app_size"] == len(esp_image("esp32", bytes(300000)))
    d = build_dir(tmp_path / "f", "ferry_validator")
    rc, out, err = ykt(capsys, "flash", "--port", "/dev/ttyACM0", "--board", "ferry_validator", "--image", d,
                       "--dry-run")
    assert rc == 0, err
    assert out.splitlines()[1] == (
        "esptool --chip esp32s3 --port /dev/ttyACM0 --baud 460800 write-flash -z 0x0 %s 0x8000 %s 0x10000 %s"
        % (d / "bootloader" / "bootloader.bin", d / "partition_table" / "partition-table.bin",
           d / "micropython.bin"))


def test_refuses_what_is_not_a_full_image(tmp_path, capsys):
    uf2 = tmp_path / "ESP32_GENERIC.uf2"
    uf2.write_bytes(b"UF2\n" + bytes(70000))
    assert "is not a full image: no boot loader (0xE9) at 0x1000" in _refused("bus_validator", uf2, capsys)
    app_only = tmp_path / "micropython.bin"          # an app image: E9, but no table at 0x8000
    app_only.write_bytes(esp_image("esp32", bytes(70000)))
    err = _refused("bus_validator", app_only, capsys)
    assert "not a full image" in err and "a bare app image goes with --firmware" in err
    assert "not found" in _refused("bus_validator", tmp_path / "missing.bin", capsys)
    d = build_dir(tmp_path, "bus_validator")
    os.remove(d / "micropython.bin")
    assert "is not an ESP-IDF build folder: micropython.bin missing" in _refused("bus_validator", d, capsys)


def test_refuses_a_table_that_disagrees_with_the_board_file(tmp_path, capsys):
    # The image carries the turnstile's old table (1.5 MiB app slots).
    old = [("nvs", 1, 2, 0x9000, 0x4000), ("otadata", 1, 0, 0xD000, 0x2000), ("phy_init", 1, 1, 0xF000, 0x1000),
           ("ota_0", 0, 0x10, 0x10000, 0x180000), ("ota_1", 0, 0x11, 0x190000, 0x180000),
           ("dlist_a", 1, 0x40, 0x310000, 0x40000), ("dlist_b", 1, 0x40, 0x350000, 0x40000),
           ("vfs", 1, 0x81, 0x390000, 0x470000)]
    img = merged(tmp_path, "turnstile", table=table_bin(old))
    err = _refused("turnstile", img, capsys)
    assert ("the image's partition table differs from boards/turnstile.json: ota_0 (app/0x10 at 0x10000, "
            "0x180000 bytes) in the image, ota_0 (app/0x10 at 0x10000, 0x1f0000 bytes) in the board file") in err
    img = merged(tmp_path / "short", "turnstile", table=table_bin(_layout("turnstile")[:-1]))
    assert "vfs (data/0x81 at 0xc30000, 0x3d0000 bytes) is only in the board file" in _refused("turnstile", img,
                                                                                                 capsys)


def test_refuses_a_corrupt_table(tmp_path, capsys):
    t = bytearray(table_bin(_layout("bus_validator")))
    t[40] ^= 1                                         # a bit of phy_init's offset
    err = _refused("bus_validator", merged(tmp_path, "bus_validator", table=bytes(t)), capsys)
    assert "partition table MD5 does not match its entries" in err


def test_refuses_another_chip_and_another_flash_size(tmp_path, capsys):
    s3_app = esp_image("esp32s3", bytes(300000))
    err = _refused("bus_validator", merged(tmp_path, "bus_validator", app=s3_app), capsys)
    assert "the app at 0x10000 (ota_0) is built for ESP32-S3 (chip id 9), the board has an ESP32" in err
    err = _refused("turnstile", merged(tmp_path / "4", "turnstile", flash_mb=4), capsys)
    assert "the boot loader is built for 4MB of flash, the board has 16 MB" in err


def test_refuses_an_image_too_large_for_the_flash_or_the_app_partition(tmp_path, capsys):
    img = tmp_path / "big.bin"
    with open(merged(tmp_path, "bus_validator"), "rb") as f:
        img.write_bytes(f.read() + b"\xff" * (16 * 1024 * 1024))
    assert "larger than the board's 16 MB flash" in _refused("bus_validator", img, capsys)
    big = merged(tmp_path / "app", "bus_validator", app_bytes=0x1F0000)
    err = _refused("bus_validator", big, capsys)
    assert "the app image is %d bytes, partition ota_0 holds %d" % (len(esp_image("esp32", bytes(0x1F0000))),
                                                                     0x1F0000) in err


def test_board_and_chip_errors(tmp_path, capsys):
    img = merged(tmp_path, "bus_validator")
    rc, out, err = ykt(capsys, "flash", "--port", NOPORT, "--board", "tram_validator", "--image", img)
    assert rc == 2 and "unknown board 'tram_validator'" in err
    assert "--chip esp32s3 contradicts board bus_validator" in ykt(
        capsys, "flash", "--port", NOPORT, "--board", "bus_validator", "--image", img, "--chip", "esp32s3")[2]
    with pytest.raises(SystemExit) as e:                # argparse: one of the two is required
        cli.main(["flash", "--port", NOPORT, "--board", "bus_validator"])
    assert e.value.code == 2 and "one of the arguments --firmware --image is required" in capsys.readouterr().err


def test_port_that_does_not_exist_through_esptool(tmp_path, capsys):
    img = merged(tmp_path, "bus_validator")
    rc, out, err = ykt(capsys, "flash", "--port", NOPORT, "--board", "bus_validator", "--image", img)
    assert rc == 1 and "no serial port %s" % NOPORT in err
