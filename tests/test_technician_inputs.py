"""Technician tools: bad input and the esptool step.

Bad input: unknown board, a port that does not exist, a device without
firmware, parameters out of range, a CSV with errors (line-numbered report,
nothing done). The esptool step cannot write a chip here: what is tested is
the plan (chip, offset, esptool arguments, image checks) and the error
mapping, through the real esptool API up to where a chip must answer: a port
that does not exist, a serial line with nothing behind it, and a line where
an ESP32 ROM prints its boot banner in normal (not download) boot mode."""
import json
import os
import pty
import select
import threading
import tty

import pytest

import conftest  # noqa: F401  (sys.path)

from ykt_tools.cli import main as cli
from ykt_tools.device import fleet
from ykt_tools.device import flash
from ykt_tools.sim.vdevice import VirtualDevice

NOPORT = "/dev/ttyYKT-does-not-exist"


def ykt(capsys, *argv):
    capsys.readouterr()
    rc = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_unknown_board(capsys, tmp_path):
    rc, out, err = ykt(capsys, "deploy", "--port", NOPORT, "--board", "tram_validator")
    assert rc == 2
    assert "unknown board 'tram_validator'" in err and "bus_validator" in err and "turnstile" in err
    img = tmp_path / "mp.bin"
    img.write_bytes(b"\xe9" + bytes(4095))
    rc, out, err = ykt(capsys, "flash", "--port", NOPORT, "--board", "tram_validator", "--firmware", img)
    assert rc == 2 and "unknown board" in err


@pytest.mark.parametrize("cmd", [
    ["deploy", "--board", "bus_validator"],
    ["diagnose"],
    ["logs", "pull", "--out", "OUT"],
    ["provision", "--device-id", "5", "--entry", "301", "--backoffice", "http://127.0.0.1:1", "--db", "sqlite://"],
])
def test_port_that_does_not_exist(capsys, tmp_path, cmd):
    argv = [str(tmp_path / "o") if a == "OUT" else a for a in cmd]
    pos = 2 if argv[0] == "logs" else 1
    argv[pos:pos] = ["--port", NOPORT]
    rc, out, err = ykt(capsys, *argv)
    assert rc == 1
    assert "no serial port %s" % NOPORT in err and "plugged in" in err


@pytest.mark.parametrize("args,msg", [
    (["--device-id", "0", "--entry", "301"], "device id must be 1..2147483647"),
    (["--device-id", "5", "--entry", "0"], "entry (catalog entry id) must be 1..65535"),
    (["--device-id", "5", "--entry", "301", "--direction", "sideways"], "direction must be one of"),
])
def test_provision_bad_parameters(capsys, args, msg):
    rc, out, err = ykt(capsys, "provision", "--port", NOPORT, "--backoffice", "http://127.0.0.1:1",
                       "--db", "sqlite://", *args)
    assert rc == 2 and msg in err


def test_provision_bad_backoffice_url(capsys):
    rc, out, err = ykt(capsys, "provision", "--port", NOPORT, "--device-id", "5", "--entry", "301",
                       "--backoffice", "127.0.0.1:8000", "--db", "sqlite://")
    assert rc == 2 and "back office URL must look like http://host:port" in err


def test_provision_device_without_firmware(capsys, tmp_path):
    d = VirtualDevice(str(tmp_path / "vdev"))
    t = threading.Thread(target=d.serve, daemon=True)
    t.start()
    try:
        rc, out, err = ykt(capsys, "provision", "--port", d.path, "--device-id", "5", "--entry", "301",
                           "--backoffice", "http://127.0.0.1:1", "--db", "sqlite:///" + str(tmp_path / "bo.db"))
    finally:
        d.stop()
        t.join(5)
    assert rc == 1 and "run `ykt deploy --port P --board B` first" in err
    assert not os.path.exists(tmp_path / "bo.db") or _devices(tmp_path / "bo.db") == 0


def _devices(path):
    from sqlalchemy import func, select

    from ykt_tools.backoffice import api
    from ykt_tools.backoffice import schema as S

    with api.engine("sqlite:///" + str(path)).connect() as c:
        return c.execute(select(func.count()).select_from(S.devices)).scalar()


def test_csv_with_errors_is_refused_whole(capsys, tmp_path):
    p = tmp_path / "devices.csv"
    p.write_text("device_id,entry,stop,direction,name,board\n"
                 "1001,301,1,up,bus-1001,bus_validator\n"
                 "x,301,2,up,bus-x,bus_validator\n"
                 "1003,0,1,down,bus-1003,bus_validator\n"
                 "1001,301,3,up,bus-1001b,bus_validator\n"
                 "1005,301,1,sideways,bus-1005,bus_validator\n"
                 "1006,301,1,up,bus-1006,tram_validator\n"
                 "1007,301,1\n")
    db = tmp_path / "bo.db"
    rc, out, err = ykt(capsys, "fleet", "provision", p, "--port-glob", str(tmp_path / "tty*"),
                       "--backoffice", "http://127.0.0.1:1", "--db", "sqlite:///%s" % db)
    assert rc == 2
    lines = [ln.strip() for ln in err.splitlines()]
    assert "nothing was done" in lines[0]
    assert lines[1:] == [
        "line 3: device id, entry and stop are integers",
        "line 4: entry (catalog entry id) must be 1..65535, got 0",
        "line 5: device id 1001 already on line 2",
        "line 6: direction must be one of none, up, down, entry, exit or 0..4, got 'sideways'",
        "line 7: unknown board 'tram_validator': known boards are bus_validator, ferry_validator, turnstile",
        "line 8: 3 fields, expected 6",
    ]
    assert not os.path.exists(fleet.state_path(str(p))) and not db.exists()


def test_csv_header_errors(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("id,entry,colour\n1,2,red\n")
    with pytest.raises(fleet.CsvError) as e:
        fleet.load_csv(str(p))
    assert e.value.problems == ["line 1: unknown column 'id' (columns: device_id, entry, stop, direction, name, board)",
                                "line 1: unknown column 'colour' (columns: device_id, entry, stop, direction, name, board)",
                                "line 1: missing column 'device_id'"]


# --- the esptool step -------------------------------------------------------

def _image(tmp_path, first=b"\xe9"):
    p = tmp_path / "ESP32_GENERIC.bin"
    p.write_bytes(first + bytes(8191))
    return str(p)


def test_flash_plan(tmp_path):
    img = _image(tmp_path)
    p = flash.plan("/dev/ttyUSB0", 460800, "bus_validator", img)
    assert p["chip"] == "esp32" and p["offset"] == 0x1000 and p["size"] == 8192
    assert p["argv"] == [
        ["--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800", "erase-flash"],
        ["--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800", "write-flash", "-z", "0x1000", img]]
    with open(os.path.join(conftest.ROOT, "boards", "turnstile.json")) as f:
        mcu = json.load(f)["mcu"]
    assert flash.plan("/dev/ttyUSB0", 460800, "turnstile", img)["offset"] == flash.OFFSETS[mcu]
    with pytest.raises(flash.FlashError, match="contradicts board bus_validator"):
        flash.plan("/dev/ttyUSB0", 460800, "bus_validator", img, chip="esp32s3")


def test_flash_refuses_what_is_not_an_image(tmp_path, capsys):
    with pytest.raises(flash.FlashError, match="not an ESP firmware image"):
        flash.plan("/dev/ttyUSB0", 460800, "bus_validator", _image(tmp_path, b"UF2\n"))
    rc, out, err = ykt(capsys, "flash", "--port", "/dev/ttyUSB0", "--board", "bus_validator",
                       "--firmware", tmp_path / "missing.bin")
    assert rc == 2 and "not found: download the ESP32 image" in err


def test_flash_dry_run_prints_esptool_steps(tmp_path, capsys):
    img = _image(tmp_path)
    rc, out, err = ykt(capsys, "flash", "--port", "/dev/ttyUSB0", "--board", "bus_validator",
                       "--firmware", img, "--dry-run")
    assert rc == 0
    assert out.splitlines() == ["esptool --chip esp32 --port /dev/ttyUSB0 --baud 460800 erase-flash",
                                "esptool --chip esp32 --port /dev/ttyUSB0 --baud 460800 write-flash -z 0x1000 " + img]


@pytest.mark.parametrize("esptool_msg,expect", [
    # messages as esptool 5 words them (esptool/loader.py)
    ("Could not open /dev/ttyUSB0, the port is busy or doesn't exist.\n([Errno 2] could not open port "
     "/dev/ttyUSB0: [Errno 2] No such file or directory: '/dev/ttyUSB0')\n", "no serial port /dev/ttyUSB0"),
    ("Could not open /dev/ttyUSB0, the port is busy or doesn't exist.\n([Errno 13] could not open port "
     "/dev/ttyUSB0: [Errno 13] Permission denied: '/dev/ttyUSB0')\nHint: Try to add user into dialout or uucp group.",
     "permission denied on /dev/ttyUSB0: add yourself to the dialout group"),
    ("This chip is ESP32-S3, not ESP32. Wrong chip argument?",
     "wrong chip: the board has an ESP32-S3 but ESP32. was asked for"),
    ("Failed to connect to ESP32: Wrong boot mode detected (0x13)! The chip needs to be in download mode.",
     "did not enter download mode: hold BOOT (IO0)"),
    ("Failed to connect to ESP32: No serial data received.", "no answer from the ESP32 boot loader"),
    ("Failed to connect to ESP32: Download mode successfully detected, but getting no sync reply: "
     "The serial TX path seems to be down.", "the chip is in download mode but nothing it sends"),
    ("Invalid head of packet (0x65): Possible serial noise or corruption.", "corrupted data"),
    ("Failed to connect to Espressif device: Invalid head of packet (0x65): Possible serial noise or corruption.",
     "answered with its normal output, not the boot loader"),
])
def test_flash_error_table(esptool_msg, expect):
    assert expect in flash.explain(RuntimeError(esptool_msg), "/dev/ttyUSB0")


def _silent_or_banner_pty(banner):
    m, s = pty.openpty()
    tty.setraw(s)
    stop = threading.Event()

    def rom():
        # What an ESP32 ROM prints after a reset in normal boot mode.
        while not stop.is_set():
            r, _, _ = select.select([m], [], [], 0.02)
            if r:
                try:
                    os.read(m, 4096)
                except OSError:
                    return
            if banner:
                os.write(m, b"ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n")
    th = threading.Thread(target=rom, daemon=True)
    th.start()
    return os.ttyname(s), (m, s, stop, th)


def _close(h):
    m, s, stop, th = h
    stop.set()
    th.join(2)
    os.close(m)
    os.close(s)


@pytest.mark.parametrize("banner,expect", [
    (False, "no answer from the ESP32 boot loader on"),
    # a pty cannot toggle DTR/RTS, so the "ROM" keeps printing: esptool reads text, not SLIP
    (True, "the chip did not enter download mode: hold BOOT (IO0)"),
])
def test_flash_through_real_esptool_without_chip(tmp_path, banner, expect):
    path, h = _silent_or_banner_pty(banner)
    try:
        p = flash.plan(path, 115200, "bus_validator", _image(tmp_path))
        p["attempts"] = 1
        with pytest.raises(flash.FlashError) as e:
            flash.run(p)
    finally:
        _close(h)
    assert expect in str(e.value)


def test_flash_port_that_does_not_exist_through_esptool(tmp_path, capsys):
    rc, out, err = ykt(capsys, "flash", "--port", NOPORT, "--board", "bus_validator", "--firmware", _image(tmp_path))
    assert rc == 1 and "no serial port %s" % NOPORT in err


def _answers_with_text_pty(text):
    """A line that answers every write with one fixed text (not a REPL)."""
    m, s = pty.openpty()
    tty.setraw(s)
    stop = threading.Event()

    def dev():
        while not stop.is_set():
            r, _, _ = select.select([m], [], [], 0.02)
            if r:
                try:
                    os.read(m, 4096)
                    os.write(m, text)
                except OSError:
                    return
    th = threading.Thread(target=dev, daemon=True)
    th.start()
    return os.ttyname(s), (m, s, stop, th)


def test_no_repl_error_names_what_came_and_keeps_stdout_clean(capsys):
    """A line that answers with a boot traceback instead of a REPL: a clear
    error that quotes what came, and nothing on stdout (mpremote prints what
    it got there, which would corrupt a command's --json output)."""
    from ykt_tools.device.devconn import Device, DeviceError

    path, h = _answers_with_text_pty(b"Traceback (most recent call last):\r\nMemoryError: boot\r\n")
    try:
        capsys.readouterr()
        with pytest.raises(DeviceError) as e:
            Device(path, timeout_s=1).open()
        out = capsys.readouterr().out
    finally:
        _close(h)
    assert "no MicroPython REPL came up" in str(e.value) and "MemoryError: boot" in str(e.value)
    assert out == ""
