"""`ykt fleet provision`: devices plugged in one after another (virtual
devices appearing as a symlink that matches --port-glob, like /dev/ttyUSB0
appearing), interrupted after the first, resumed: the first is skipped, the
second done, the back office holds each device once."""
import json
import os
import threading
import time

import conftest  # noqa: F401  (sys.path)

from ykt_tools.cli import main as cli
from ykt_tools.device import fleet
from ykt_tools.sim.vdevice import VirtualDevice

VDEV_HEAP = os.environ.get("YKT_VDEV_HEAP", "256K")


class Plugged:
    """A virtual device plugged in at `link` until unplug()."""

    def __init__(self, devdir, link):
        self.d = VirtualDevice(devdir, heap=VDEV_HEAP, link=link)
        self.t = threading.Thread(target=self.d.serve, daemon=True)
        self.t.start()
        end = time.monotonic() + 5
        while not os.path.islink(link) and time.monotonic() < end:
            time.sleep(0.02)

    def unplug(self):
        self.d.stop()
        self.t.join(5)


def _wait_done(csv, key, timeout=40):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if key in fleet.load_state(csv)["done"] or key in fleet.load_state(csv)["failed"]:
            return fleet.load_state(csv)
        time.sleep(0.05)
    raise AssertionError("device %s not done in time" % key)


def _run_fleet(argv, box):
    box["rc"] = cli.main(argv)


def test_fleet_provision_resume(tmp_path, capsys):
    from ykt_tools.backoffice import api

    db = "sqlite:///" + str(tmp_path / "bo.db")
    csv = str(tmp_path / "devices.csv")
    with open(csv, "w") as f:
        f.write("device_id,entry,stop,direction,name\n# depot 3, Nanning route 301\n"
                "5001,301,1,up,bus-5001\n5002,301,2,down,bus-5002\n")
    link = str(tmp_path / "ttyV0")
    argv = ["fleet", "provision", csv, "--port-glob", str(tmp_path / "ttyV*"), "--board", "bus_validator",
            "--backoffice", "http://127.0.0.1:8000", "--db", db, "--port-wait", "3", "--insecure-dev"]
    t0 = time.monotonic()

    # run 1: the first device is plugged in, provisioned and unplugged; no second one comes
    dev1 = Plugged(str(tmp_path / "v1"), link)
    box = {}
    th = threading.Thread(target=_run_fleet, args=(argv, box))
    th.start()
    st = _wait_done(csv, "5001")
    dev1.unplug()
    th.join(30)
    assert box["rc"] == 1                       # one device still pending
    assert list(st["done"]) == ["5001"] and not st["failed"]
    out = capsys.readouterr().out
    assert "done    device 5001 (bus-5001, line 3)" in out and "1 done, 0 failed, 1 pending" in out

    # run 2 (resume): 5001 is skipped, 5002 is done
    dev2 = Plugged(str(tmp_path / "v2"), link)
    box = {}
    th = threading.Thread(target=_run_fleet, args=(argv, box))
    th.start()
    st = _wait_done(csv, "5002")
    dev2.unplug()
    th.join(30)
    assert box["rc"] == 0, st
    out = capsys.readouterr().out
    assert "skip    device 5001" in out and "2 done, 0 failed, 0 pending" in out
    with open(os.path.join(str(tmp_path / "v2"), "flash", "config.json")) as f:
        assert json.load(f)["device_id"] == 5002
    assert sorted((d["id"], d["name"]) for d in api.fleet(db)) == [(5001, "bus-5001"), (5002, "bus-5002")]
    assert time.monotonic() - t0 < 60
