"""`ykt backoffice ...` end to end through the real CLI entry point (in
process): first operator, device registration (key shown once), card status,
publishing, settlement, export."""
import json
import os

import conftest  # noqa: F401

os.environ.setdefault("YKT_RSA_BITS", "2048")

from ykt_tools import ROOT, cli  # noqa: E402


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
    rc, out, _ = _run(capsys, "card-status", "lost", "--card-no", "A12345678", "--db", db)
    assert rc == 0 and json.loads(out)["dl_ver"] == 1
    assert _run(capsys, "card-status", "lost", "--token", "nothex", "--db", db)[0] == 2
    rc, out, _ = _run(capsys, "publish", "fares", os.path.join(ROOT, "data", "fares", "bus_nanning_301.txt"),
                      "--db", db)
    assert rc == 2                                      # source text, not a compiled table: refused
    from ykt_tools import fares_compile
    with open(os.path.join(ROOT, "data", "fares", "bus_nanning_301.txt")) as f:
        (tmp_path / "f.bin").write_bytes(fares_compile.compile_fares(f.read()))
    rc, out, _ = _run(capsys, "publish", "fares", str(tmp_path / "f.bin"), "--db", db)
    assert rc == 0 and json.loads(out)["version"] == 7
    rc, out, _ = _run(capsys, "settle", "--day", "20261126", "--cap", "600", "--json", "--db", db)
    assert rc == 0 and json.loads(out)["day"] == 20261126
    rc, out, err = _run(capsys, "export", "taps", "--format", "parquet", "--out", str(tmp_path / "t.parquet"), "--db", db)
    assert rc == 0 and (tmp_path / "t.parquet").exists()
    rc, out, _ = _run(capsys, "keys", "rotate", "--db", db)
    assert rc == 0 and json.loads(out)["keys_version"] == 2
