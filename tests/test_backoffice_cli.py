"""`ykt backoffice ...` end to end through the real CLI entry point (in
process): first operator, device registration (key shown once), card status,
publishing, settlement, export."""
import json
import os

import conftest  # noqa: F401

os.environ.setdefault("YKT_RSA_BITS", "2048")

from ykt_tools import ROOT  # noqa: E402
from ykt_tools.cli import main as cli


def _run(capsys, *argv):
    rc = cli.main(["backoffice"] + list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_workflow(tmp_path, capsys):
    db = "sqlite:///" + str(tmp_path / "cli.db")
    pw = tmp_path / "pw"
    pw.write_text("a long enough password\n")
    assert _run(capsys, "operator", "add", "root", "--role", "operator", "--db", db, "--password-file", str(pw))[0] == 0
    rc, _o, err = _run(capsys, "operator", "add", "root", "--role", "operator", "--db", db, "--password-file", str(pw))
    assert rc == 2 and "exists" in err
    pw.write_text("short\n")
    assert _run(capsys, "operator", "add", "x", "--role", "viewer", "--db", db, "--password-file", str(pw))[0] == 2
    prov = tmp_path / "dev.json"
    rc, out, _ = _run(capsys, "device", "register", "bus-1", "--entry", "301", "--db", db, "--out", str(prov))
    assert rc == 0 and oct(os.stat(prov).st_mode & 0o777) == "0o600"
    d = json.loads(prov.read_text())
    assert len(d["key"]) == 64 and d["entry"] == 301
    rc, out, _ = _run(capsys, "device", "list", "--json", "--db", db)
    assert "key" not in json.loads(out)[0]
    rc, out, err = _run(capsys, "card-status", "lost", "--card-no", "A12345678", "--db", db)
    assert rc == 2 and err.strip() == "error: no registered card has this card number"   # nothing changed
    reg = tmp_path / "cards.csv"
    reg.write_text("card_id,card_no,citizen_id,generation,issued,expires,status,replaced_by\n"
                   "450100d15600000520200101000a0001,A12345678,450103199003030010,3,20200101,20300101,active,\n")
    assert _run(capsys, "registry-import", str(reg), "--db", db)[0] == 0
    rc, out, _ = _run(capsys, "card-status", "lost", "--card-no", "A12345678", "--db", db)
    assert rc == 0 and json.loads(out)["dl_ver"] == 1
    assert _run(capsys, "card-status", "lost", "--token", "nothex", "--db", db)[0] == 2
    rc, out, _ = _run(capsys, "publish", "fares", os.path.join(ROOT, "data", "fares", "bus_nanning_301.txt"),
                      "--db", db)
    assert rc == 2                                      # source text, not a compiled table: refused
    from ykt_tools.build import fares as fares_compile
    with open(os.path.join(ROOT, "data", "fares", "bus_nanning_301.txt")) as f:
        (tmp_path / "f.bin").write_bytes(fares_compile.compile_fares(f.read()))
    rc, out, _ = _run(capsys, "publish", "fares", str(tmp_path / "f.bin"), "--db", db)
    assert rc == 0 and json.loads(out)["version"] == 8
    rc, out, _ = _run(capsys, "settle", "--day", "20261126", "--cap", "600", "--json", "--db", db)
    assert rc == 0 and json.loads(out)["day"] == 20261126
    rc, out, err = _run(capsys, "export", "taps", "--format", "parquet", "--out", str(tmp_path / "t.parquet"), "--db", db)
    assert rc == 0 and (tmp_path / "t.parquet").exists()
    rc, out, _ = _run(capsys, "keys", "rotate", "--db", db)
    assert rc == 0 and json.loads(out)["keys_version"] == 2


def test_serve_with_two_workers_on_one_sqlite_file(tmp_path):
    """`ykt backoffice serve --workers 2`: two processes share the port and
    one SQLite file; batches through either are stored once, and Ctrl-C (SIGINT)
    stops the supervisor and its workers."""
    import signal
    import subprocess
    import sys
    import time

    import httpx
    from ykt.net import wire
    from ykt_tools.backoffice import ops, testing
    from ykt_tools.backoffice.db import open_db
    from ykt_tools.backoffice.server import free_port

    db = "sqlite:///" + str(tmp_path / "w.db")
    eng = open_db(db)
    d = ops.register_device(eng, "bus-w", "validator", 5)
    dev, key = d["id"], bytes.fromhex(d["key"])
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "host_tools"), os.path.join(ROOT, "firmware")]))
    p = subprocess.Popen([sys.executable, "-m", "ykt_tools.cli.main", "backoffice", "serve", "--db", db, "--port", str(port),
                          "--workers", "2"], env=env, cwd=str(tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        url = "http://127.0.0.1:%d" % port
        t0 = time.monotonic()
        while True:
            try:
                if httpx.get(url + "/v1/time", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            assert p.poll() is None and time.monotonic() - t0 < 60, "server did not come up"
            time.sleep(0.2)
        with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
            kids = f.read().split()
        assert len(kids) >= 2          # the workers (and uvicorn's own helper, if any)
        for i in range(10):
            b = testing.batch(dev, key, range(1 + i * 20, 21 + i * 20))
            r = httpx.post(url + "/v1/taps", content=b, timeout=10)       # a new connection each time
            assert r.status_code == 200 and wire.decode_ack(r.content, key, dev, b[20:28])[1] == 20 + i * 20
        assert [x["seq_acked"] for x in ops.list_devices(eng)] == [200]
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        eng.dispose()
