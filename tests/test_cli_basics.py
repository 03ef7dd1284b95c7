"""The `ykt` entry points a technician meets first: help, board checks, sim boot."""
import json
import os
import subprocess
import sys

from conftest import ROOT


def _ykt(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "host_tools"), os.path.join(ROOT, "firmware")]))
    return subprocess.run([sys.executable, "-m", "ykt_tools"] + list(args), capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


def test_help_lists_the_commands():
    p = _ykt("--help")
    assert p.returncode == 0
    for cmd in ("sim", "run", "bench", "deploy", "provision", "diagnose", "logs", "flash", "fleet",
                "backoffice", "denylist", "fares", "qr", "release", "powercut", "fuzz", "board"):
        assert cmd in p.stdout, cmd


def test_board_with_a_pin_used_twice_is_one_line(tmp_path):
    with open(os.path.join(ROOT, "boards", "bus_validator.json")) as f:
        b = json.load(f)
    b["pins"]["BUZZER"] = 22
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(b))
    p = _ykt("board", "check", str(bad))
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert lines == ["%s: pins.PN532_SCL: pin 22 used twice (also pins.BUZZER)" % bad]
    p = _ykt("sim", "--board", str(bad))
    assert p.returncode == 2 and p.stderr.strip().splitlines() == lines


def test_sim_boots_every_board_on_micropython_with_an_esp32_heap():
    for board in ("bus_validator", "turnstile", "ferry_validator"):
        p = _ykt("sim", "--board", board, "--runtime", "micropython", "--heap", "256K", "--seconds", "3", "--json")
        assert p.returncode == 0, p.stderr
        r = json.loads(p.stdout)
        assert r["runtime"] == "micropython" and "reader" in r["found"], r
        assert r["heap_free_bytes"] > 0 and r["heap_peak_bytes"] > 0 and not r["reader_fault"]


def test_board_with_a_missing_or_impossible_heap_is_one_line(tmp_path):
    """A board file's heap declaration is checked where every tool reads it:
    `ykt board check` and `ykt sim` print one line naming the file and the
    field, and nothing else."""
    with open(os.path.join(ROOT, "boards", "turnstile.json")) as f:
        good = json.load(f)
    cases = [("heap_bytes", None, "heap_bytes: missing"),
             ("heap_bytes", 131072, "heap_bytes: 131072 is impossible without PSRAM"),
             ("heap_bytes", "112K", "heap_bytes:"),
             ("psram", None, "psram: missing")]
    for field, value, want in cases:
        b = json.loads(json.dumps(good))
        if value is None:
            del b[field]
        else:
            b[field] = value
        bad = tmp_path / ("bad-%s-%s.json" % (field, value))
        bad.write_text(json.dumps(b))
        for args in (("board", "check", str(bad)), ("sim", "--board", str(bad), "--runtime", "cpython")):
            p = _ykt(*args)
            lines = p.stderr.strip().splitlines()
            assert p.returncode in (1, 2) and len(lines) == 1, (args, p.returncode, p.stderr)
            assert lines[0].startswith("%s: %s" % (bad, want)), (args, lines)
