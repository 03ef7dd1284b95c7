"""Power-loss proof of the tap journal on the real MicroPython + littlefs (CI
sample of the `make powercut` sweep), and the host AES stand-in against the
unix port's built-in cryptolib."""
import json
import os
import random
import shutil

import pytest

import conftest
from conftest import ROOT

from ykt_tools.powercut import journal as powercut
from ykt_tools.powercut import jring
from ykt_tools.sim import mp

pytestmark = pytest.mark.micropython


def _need_mp():
    conftest.need_runtime("micropython")


def test_powercut_sample_has_no_violation():
    _need_mp()
    res = powercut.run_sweep(sample=600, taps=powercut.TAPS, jobs=2, live_every=20)
    assert res["cut_points"] >= 500
    assert res["live_checked"] >= 25  # in-process cuts (DeviceReset) match the replayed images
    assert res["violations"] == 0, json.dumps(res["details"][:5], indent=1)
    assert res["total_cut_points"] == res["writes"] * 4 > 2000


@pytest.mark.parametrize("mutation", ["no_sync", "seq_from_scratch"])
def test_sweep_catches_a_broken_journal(tmp_path, mutation):
    """The sweep can fail: a journal that does not sync before returning, or
    that forgets the sequence high-water mark, is caught."""
    _need_mp()
    fw = tmp_path / "firmware"
    shutil.copytree(os.path.join(ROOT, "firmware"), fw)
    src = (fw / "ykt" / "journal.py").read_text()
    if mutation == "no_sync":
        bad = src.replace("            self._f.write(fr)\n            self._f.flush()\n", "            self._f.write(fr)\n")
    else:
        bad = src.replace("        if bases:\n            base = bases[-1]", "        if bases and 0:\n            base = bases[-1]")
    assert bad != src
    (fw / "ykt" / "journal.py").write_text(bad)
    res = powercut.run_sweep(sample=60, jobs=1, live_every=0, firmware=str(fw))
    assert res["violations"] > 0


def test_sweep_catches_remove_before_rename(tmp_path):
    """A replace_file that removes the old file before the rename (what
    syncsetup once did) loses data/keys.bin, the trust anchor, at some cut
    point: the sweep over every write of a short scenario finds it."""
    _need_mp()
    fw = tmp_path / "firmware"
    shutil.copytree(os.path.join(ROOT, "firmware"), fw)
    src = (fw / "ykt" / "fs.py").read_text()
    bad = src.replace("    f.close()\n    os.rename(tmp, path)",
                      "    f.close()\n    try:\n        os.remove(path)\n    except OSError:\n        pass\n"
                      "    os.rename(tmp, path)")
    assert bad != src
    (fw / "ykt" / "fs.py").write_text(bad)
    good = powercut.run_sweep(sample=0, taps=40, jobs=2, live_every=0)
    assert good["violations"] == 0 and good["cut_points"] == good["total_cut_points"] > 500
    res = powercut.run_sweep(sample=0, taps=40, jobs=2, live_every=0, firmware=str(fw))
    problems = [p for d in res["details"] for p in d["problems"]]
    assert any(p.startswith("keys does not load") for p in problems), problems[:5]


def test_every_writer_sample_boots_clean():
    """`ykt powercut --full` in small: each device writer (journal, ack,
    tables, keys, deny list) cut at a sample of its writes; the device boots,
    keeps every tap, verifies a signed download after each cut."""
    _need_mp()
    from ykt_tools.powercut import writers

    res = writers.run_full(jobs=2, writers=["journal", "ack", "tables", "keys", "denylist"],
                           samples={"journal": 30, "ack": 16, "tables": 24, "keys": 12, "denylist": 20})
    assert res["violations"] == 0, json.dumps(res["details"][:5], indent=1)
    assert {k: v["cut_points"] for k, v in res["writers"].items()} == \
        {"journal": 30, "ack": 16, "tables": 24, "keys": 12, "denylist": 20}
    assert all(w["writes"] >= 25 for w in res["writers"].values()), res["writers"]   # >= 100 cut points each


def test_writers_sweep_catches_a_stale_delta_that_stops_boot(tmp_path):
    """Before this sweep existed, a cut between a deny-list image's commit
    and the removal of the old delta left a delta for the old image, which
    the boot refused with an exception: the device did not come up. The
    sweep over every deny-list write of a short scenario finds it."""
    _need_mp()
    from ykt_tools.powercut import writers

    fw = tmp_path / "firmware"
    shutil.copytree(os.path.join(ROOT, "firmware"), fw)
    src = (fw / "ykt" / "net" / "syncsetup.py").read_text()
    bad = src.replace("        except (ValueError, DenyListError):\n", "        except ValueError:\n")
    assert bad != src
    (fw / "ykt" / "net" / "syncsetup.py").write_text(bad)
    res = writers.run_full(jobs=2, writers=["denylist"], samples={"denylist": 0}, taps=30, firmware=str(fw))
    problems = [p for d in res["details"] for p in d["problems"]]
    assert any("boot failed" in p and "base_mismatch" in p for p in problems), problems[:5]


def test_cli_prints_the_summary_line(capsys):
    _need_mp()
    from ykt_tools.cli import main as cli

    rc = cli.main(["powercut", "--sample", "24", "--jobs", "1"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and out[-1] == "cut points: 24, violations: 0"


def test_host_cryptolib_is_byte_identical_to_micropython(tmp_path):
    _need_mp()
    rnd = random.Random(5)
    cases = []
    for i in range(40):
        klen = rnd.choice((16, 32))
        mode = rnd.choice((1, 2))
        key = bytes(rnd.randrange(256) for _ in range(klen))
        iv = bytes(rnd.randrange(256) for _ in range(16))
        data = bytes(rnd.randrange(256) for _ in range(16 * rnd.randint(1, 4)))
        cases.append((key.hex(), mode, iv.hex(), data.hex()))
    vec = tmp_path / "cases.json"
    vec.write_text(json.dumps(cases))
    # nothing on the module path that could stand in for the built-in module
    r = mp.run("micropython", os.path.join(conftest.WORKERS, "cryptolib_vectors.py"), [str(vec)], firmware=None,
               sim=False, host=False, timeout=60)
    got = r.require("cryptolib vectors")
    import cryptolib  # the host stand-in on the simulator's path (CPython has no built-in)

    assert not hasattr(cryptolib, "_builtin")
    for n, (k, m, iv, d) in enumerate(cases):
        k, iv, d = bytes.fromhex(k), bytes.fromhex(iv), bytes.fromhex(d)
        a = cryptolib.aes(k, m, iv) if m == 2 else cryptolib.aes(k, m)
        b = cryptolib.aes(k, m, iv) if m == 2 else cryptolib.aes(k, m)
        assert [a.encrypt(d).hex(), b.decrypt(d).hex()] == got[n]


def test_ring_sweep_sample_has_no_violation():
    """The ring journal (raw partition): a sample of the cut points of a
    scenario that laps a 4-sector ring and fills it (make powercut: all)."""
    _need_mp()
    res = jring.run_sweep(sample=400, taps=1000, jobs=2)
    assert res["cut_points"] == 400
    assert res["violations"] == 0, json.dumps(res["details"][:5], indent=1)
    assert res["laps"] >= 2 and res["full_refusals"] > 0
    assert res["total_cut_points"] == res["writes"] * 4


@pytest.mark.parametrize("mutation", ["erase_unacked", "trust_unverified_sector"])
def test_ring_sweep_catches_a_broken_ring(tmp_path, mutation):
    """The ring sweep can fail: a ring that erases sectors holding unacked
    taps, or that takes a sector with a valid header for erased without
    reading its slots (after a cut in its erase), is caught."""
    _need_mp()
    fw = tmp_path / "firmware"
    shutil.copytree(os.path.join(ROOT, "firmware"), fw)
    src = (fw / "ykt" / "jring.py").read_text()
    if mutation == "erase_unacked":
        bad = src.replace("        return s != self.head and (not self._first[s] or self._upper(s) <= self.cursor)",
                          "        return s != self.head")
    else:
        bad = src.replace("            if not self._blank():\n                return False\n        return True",
                          "            pass\n        return True")
    assert bad != src
    (fw / "ykt" / "jring.py").write_text(bad)
    res = jring.run_sweep(sample=300, taps=1000, jobs=1, firmware=str(fw))
    assert res["violations"] > 0
