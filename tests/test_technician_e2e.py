"""Technician tools end to end against the virtual device (`ykt sim device
--pty`: the real MicroPython unix port behind a pseudo-terminal, driven by the
real mpremote transport) and the real back office (uvicorn, SQLite):
deploy twice (the second pushes nothing), provision (refused when already
provisioned unless --force), diagnose, logs pull + upload, then the device's
own upload: every tap stored exactly once."""
import json
import os
import threading
import time

import pytest

import conftest  # noqa: F401  (sys.path)

from ykt_tools.cli import main as cli
from ykt_tools.device import deploy, provision
from ykt_tools.device.devconn import Device
from ykt_tools.sim.vdevice import VirtualDevice

# The firmware's heap budget on the virtual device (the simulated chip gets
# its own allowance on top, vhw.heapbudget): the ESP32-like 256K.
VDEV_HEAP = os.environ.get("YKT_VDEV_HEAP", "256K")

_TAPS = """import vhw.world as W
from ykt import app as A
from ykt.compat import sleep_ms
a=A.App('',lambda m:None)
a.boot()
f=W.current.field
f.clear()
for i in range(NTAPS):
 f.present('ssc_nanning',0,300000)
 for k in range(200):
  a.step()
  if a.taps>i:
   break
 f.clear()
 for k in range(20):
  a.step()
print(a.taps,a.journal.backlog,a.journal.next_seq)
"""

_OWN_UPLOAD = """import vhw.world as W
from ykt import app as A
from ykt.compat import sleep_ms
W.current.field.clear()
a=A.App('',lambda m:None)
a.boot()
a.uplink.flush()
for i in range(1500):
 a.step()
 if a.journal.backlog==0:
  break
 sleep_ms(5)
print(a.journal.cursor,a.journal.backlog,a.uplink.state_name(),a.uplink.errors)
"""


@pytest.fixture
def vdev(tmp_path):
    d = VirtualDevice(str(tmp_path / "vdev"), heap=VDEV_HEAP)
    t = threading.Thread(target=d.serve, daemon=True)
    t.start()
    yield d
    d.stop()
    t.join(5)


@pytest.fixture
def backoffice(tmp_path):
    from ykt_tools.backoffice import api

    db = "sqlite:///" + str(tmp_path / "bo.db")
    url, stop = api.start(db)
    yield url, db
    stop()


def ykt(capsys, *argv):
    capsys.readouterr()
    rc = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _taps_in_db(db, device_id):
    from sqlalchemy import func, select

    from ykt_tools.backoffice import api
    from ykt_tools.backoffice import schema as S

    with api.engine(db).connect() as c:
        n = c.execute(select(func.count()).select_from(S.taps).where(S.taps.c.device == device_id)).scalar()
        seqs = [r[0] for r in c.execute(select(S.taps.c.seq).where(S.taps.c.device == device_id)
                                        .order_by(S.taps.c.seq))]
    return n, seqs


def _device_key(db, device_id):
    from sqlalchemy import select

    from ykt_tools.backoffice import api
    from ykt_tools.backoffice import schema as S

    with api.engine(db).connect() as c:
        return bytes(c.execute(select(S.devices.c.key).where(S.devices.c.id == device_id)).scalar())


def _nvs(vdev):
    with open(os.path.join(vdev.devdir, "nvs.json")) as f:
        return json.load(f)["ykt"]


def test_deploy_twice_second_pushes_nothing(vdev, capsys):
    t0 = time.monotonic()
    # stale modules left by an earlier version or a manual copy, one in a subpackage
    os.makedirs(os.path.join(vdev.flash, "ykt", "net"), exist_ok=True)
    for n in ("ykt/old_module.py", "ykt/dlbuild.mpy", "ykt/net/wire_srv.py"):
        with open(os.path.join(vdev.flash, n), "w") as f:
            f.write("x = 1\n")
    rc, out, err = ykt(capsys, "deploy", "--port", vdev.path, "--board", "bus_validator", "--json")
    assert rc == 0, err
    first = json.loads(out)
    assert first["pushed"] == first["files"] > 30 and first["removed"] == 3 and first["arch"] == "x64"
    on_dev = set(os.listdir(os.path.join(vdev.flash, "ykt")))
    assert "app.mpy" in on_dev and "glyphdata.mpy" in os.listdir(os.path.join(vdev.flash, "ykt", "ui"))
    for host_only in ("dlbuild.mpy", "wire_srv.mpy", "dlbuild.py", "wire_srv.py", "old_module.py"):
        assert host_only not in on_dev
    assert "wire_srv.py" not in os.listdir(os.path.join(vdev.flash, "ykt", "net"))
    assert os.path.exists(os.path.join(vdev.flash, "board.json"))
    # Twice more with one build (other engineers edit firmware/ meanwhile):
    # the last run finds every hash equal and pushes nothing.
    built = deploy.build("x64")
    with Device(vdev.path) as dev:
        deploy.deploy(dev, "bus_validator", built=built)
        again = deploy.deploy(dev, "bus_validator", built=built)
    assert again["pushed"] == 0 and again["removed"] == 0 and again["skipped"] == again["files"]
    # a file damaged on the device is found by its hash and pushed again
    with open(os.path.join(vdev.flash, "ykt", "taprec.mpy"), "ab") as f:
        f.write(b"\0")
    with Device(vdev.path) as dev:
        fix = deploy.deploy(dev, "bus_validator", built=built)
    assert fix["pushed"] == 1
    assert time.monotonic() - t0 < 60


def test_provision_refuses_plain_nvs_without_insecure_dev(vdev, backoffice, capsys):
    """The simulated board, like a stock ESP32, has flash encryption off and
    no nvs_keys partition: its secrets would be plain on the flash chip."""
    from ykt_tools.backoffice import api
    url, db = backoffice
    with Device(vdev.path) as dev:
        deploy.deploy(dev, "bus_validator")
    rc, out, err = ykt(capsys, "provision", "--port", vdev.path, "--device-id", 4301, "--entry", 301,
                       "--backoffice", url, "--db", db, "--no-reset")
    assert rc == 1, err
    assert "flash encryption is off" in err and "ykt provision --secure" in err and "--insecure-dev" in err
    assert api.fleet(db) == []                        # refused before the back office issued a key
    with Device(vdev.path) as dev:
        assert provision.device_state(dev)["nvs"] == []


def test_provision_diagnose_logs_and_own_upload(vdev, backoffice, capsys, tmp_path):
    t0 = time.monotonic()
    url, db = backoffice
    with Device(vdev.path) as dev:
        deploy.deploy(dev, "bus_validator")
    prov = ["provision", "--port", vdev.path, "--device-id", 4101, "--entry", 301, "--stop", 7,
            "--direction", "up", "--backoffice", url, "--db", db, "--name", "bus-4101", "--no-reset", "--insecure-dev"]
    rc, out, err = ykt(capsys, *prov)
    assert rc == 0, err
    key = _device_key(db, 4101)
    nvs = _nvs(vdev)
    assert nvs["dev_key"] == key.hex()          # the key the back office issued, in NVS
    assert key.hex() not in out + err             # and never printed
    with open(os.path.join(vdev.flash, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["device_id"] == 4101 and cfg["backoffice"] == url
    assert "dev_key" not in json.dumps(cfg) and key.hex() not in json.dumps(cfg)
    with open(os.path.join(vdev.flash, "data", "profile.json")) as f:
        prof = json.load(f)
    assert prof == {"board": "bus_validator", "device": "bus-4101", "direction": 1, "entry": 301, "stop": 7}
    assert os.path.getsize(os.path.join(vdev.flash, "data", "keys.bin")) > 0

    # already provisioned: refused (exit 3) and nothing changes; --force issues a new key
    rc, out, err = ykt(capsys, *prov)
    assert rc == 3 and "already provisioned" in err and "--force" in err
    assert _nvs(vdev)["dev_key"] == key.hex()
    # --force, and this time the device is soft-reset: the validator starts
    # (main.py), and the next command must interrupt it like on a board
    rc, out, err = ykt(capsys, *([a for a in prov if a != "--no-reset"] + ["--force"]))
    assert rc == 0, err
    key = _device_key(db, 4101)
    assert _nvs(vdev)["dev_key"] == key.hex() and key.hex() not in out + err

    # diagnose: reader self-test reads the test card on the virtual reader
    rc, out, err = ykt(capsys, "diagnose", "--port", vdev.path, "--json")
    rep = json.loads(out)
    d = rep["device"]
    assert d["pn532"] == "1.6" and d["rf"] is True and d["card"]["error"] == 0
    assert d["device_id"] == 4101
    b0 = d["journal"]["backlog"]      # the running validator may have read the test card once
    assert b0 in (0, 1) and d["journal"]["next_seq"] == b0 + 1
    n = b0 + 3
    probs = [f["problem"] for f in rep["findings"] if f["severity"] == "fail"]
    assert probs == ["fare tables not on the device yet (tables missing or invalid)"]
    assert rc == 1
    assert key.hex() not in out

    # three taps while the device is out of coverage
    with Device(vdev.path) as dev:
        res = dev.exec(_TAPS.replace("NTAPS", "3")).split()
    assert res[:2] == ["3", str(n)]

    # logs pull -> files sealed on the device; upload from the laptop
    logdir = tmp_path / "pulled"
    rc, out, err = ykt(capsys, "logs", "pull", "--port", vdev.path, "--out", logdir, "--json")
    assert rc == 0, err
    pulled = json.loads(out)
    assert pulled["taps"] == n and pulled["files"] == 1 and pulled["device"] == 4101
    assert key.hex() not in out + err
    rc, out, err = ykt(capsys, "logs", "upload", logdir, "--backoffice", url, "--json")
    assert rc == 0, err
    up = json.loads(out)
    assert up["new"] == n and up["dup"] == 0 and up["files"] == 1
    assert _taps_in_db(db, 4101) == (n, list(range(1, n + 1)))
    # uploading again does nothing; pulling again (device cursor unchanged) then uploading counts nothing twice
    rc, out, err = ykt(capsys, "logs", "upload", logdir, "--backoffice", url, "--json")
    assert rc == 0 and json.loads(out)["files"] == 0
    rc, out, err = ykt(capsys, "logs", "pull", "--port", vdev.path, "--out", tmp_path / "again", "--json")
    assert rc == 0 and json.loads(out)["taps"] == n
    rc, out, err = ykt(capsys, "logs", "upload", tmp_path / "again", "--backoffice", url, "--json")
    again = json.loads(out)
    assert rc == 0 and again["new"] == 0 and again["dup"] == n

    # the device comes back into coverage and uploads the same taps itself
    with Device(vdev.path) as dev:
        cursor, backlog = dev.exec(_OWN_UPLOAD).split()[:2]
    assert (cursor, backlog) == (str(n), "0")
    assert _taps_in_db(db, 4101) == (n, list(range(1, n + 1)))
    assert time.monotonic() - t0 < 60


def test_provision_through_admin_api(vdev, backoffice, capsys, tmp_path):
    """No database access from the laptop: register through the admin HTTP API
    with operator credentials from a file; the trusted keys come from the
    back office's signed keys file, checked against its own signature."""
    from ykt_tools.backoffice import api, auth

    url, db = backoffice
    auth.add_operator(api.engine(db), "depot3", "operator", "s3cret-depot-pass")
    auth.add_operator(api.engine(db), "looker", "viewer", "viewer-pass-123")
    creds = tmp_path / "op.json"
    creds.write_text(json.dumps({"name": "depot3", "password": "s3cret-depot-pass"}))
    with Device(vdev.path) as dev:
        deploy.deploy(dev, "bus_validator")
    base = ["provision", "--port", vdev.path, "--device-id", 4202, "--entry", 301, "--backoffice", url,
            "--insecure-dev", "--operator-file", creds, "--no-reset"]
    os.chmod(creds, 0o644)
    rc, out, err = ykt(capsys, *base)
    assert rc == 1 and "readable by others: chmod 600" in err
    os.chmod(creds, 0o600)
    viewer = tmp_path / "viewer.txt"
    viewer.write_text("looker:viewer-pass-123\n")
    os.chmod(viewer, 0o600)
    rc, out, err = ykt(capsys, *(base[:-3] + ["--operator-file", viewer, "--no-reset"]))
    assert rc == 1 and "may not register devices" in err
    rc, out, err = ykt(capsys, *base)
    assert rc == 0, err
    key = _device_key(db, 4202)
    assert _nvs(vdev)["dev_key"] == key.hex() and key.hex() not in out + err
    assert "s3cret-depot-pass" not in out + err
    from ykt_tools.device import provision

    info = provision.provision_info_db(api.engine(db))
    with open(os.path.join(vdev.flash, "data", "keys.bin"), "rb") as f:
        assert f.read() == info["keyring"]
    assert _nvs(vdev)["tok_key"] == info["token_key"]
