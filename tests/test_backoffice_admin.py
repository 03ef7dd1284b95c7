"""Back office operations: operator auth and roles, audit log, device keys
never reach /admin, card status by identity, publishing with validation,
entitlements, settlement (transfers, concession limits, caps, audit trail)
and pseudonymous exports. SQLite and PostgreSQL."""
import csv
import io
import os

import pytest

import conftest  # noqa: F401

os.environ.setdefault("YKT_RSA_BITS", "2048")

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import select  # noqa: E402

from ykt_tools import ROOT  # noqa: E402
from ykt_tools.build import fares as fares_compile
from ykt_tools.build import signing
from ykt_tools.backoffice import app as bo_app, auth, ops, settle, testing  # noqa: E402
from ykt_tools.backoffice import schema as S  # noqa: E402
from ykt_tools.backoffice.db import service_day  # noqa: E402
from ykt import taprec  # noqa: E402
from ykt.sec import signed as ksigned
from ykt.sec import token as ktoken

PW = "correct horse battery"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def bo(request, tmp_path):
    if request.param == "postgresql":
        conftest.need_postgres()
    with testing.temp_db(request.param, tmp_path) as url:
        app = bo_app.create_app(url)
        with TestClient(app) as client:
            client.eng = app.state.eng
            auth.add_operator(client.eng, "alice", "operator", PW)
            auth.add_operator(client.eng, "victor", "viewer", PW)
            yield client
        app.state.eng.dispose()


def _login(bo, name):
    r = bo.post("/admin/login", json={"name": name, "password": PW})
    assert r.status_code == 200
    bo.cookies.clear()
    return {"Authorization": "Bearer " + r.json()["token"]}


def test_no_default_credentials_and_roles(bo):
    assert bo.get("/admin/api/fleet").status_code == 401
    assert bo.post("/admin/login", json={"name": "admin", "password": "admin"}).status_code == 401
    assert bo.post("/admin/login", json={"name": "alice", "password": "wrong password"}).status_code == 401
    v = _login(bo, "victor")
    assert bo.get("/admin/api/fleet", headers=v).status_code == 200
    tph = bo.get("/admin/api/taps_per_hour?hours=6", headers=v).json()
    assert len(tph) == 6 and all(h["taps"] == 0 for h in tph)
    r = bo.post("/admin/api/devices", json={"name": "x"}, headers=v)
    assert r.status_code == 403
    o = _login(bo, "alice")
    r = bo.post("/admin/api/devices", json={"name": "bus-9", "entry": 301}, headers=o)
    assert r.status_code == 200 and len(r.json()["key"]) == 64
    # the key is returned once: the fleet view never shows it
    assert "key" not in bo.get("/admin/api/fleet", headers=o).json()["devices"][0]
    # a device key is no admin credential, whatever header it comes in
    dkey = r.json()["key"]
    assert bo.get("/admin/api/fleet", headers={"Authorization": "Bearer " + dkey}).status_code == 401
    assert bo.get("/admin/api/fleet", headers=testing.auth_headers(r.json()["id"], bytes.fromhex(dkey),
                                                                    "GET", "/admin/api/fleet")).status_code == 401
    with pytest.raises(ValueError):
        auth.add_operator(bo.eng, "short", "viewer", "1234")
    with pytest.raises(ValueError):
        auth.add_operator(bo.eng, "bob", "root", PW)


def test_card_lost_by_identity_and_audit(bo):
    o = _login(bo, "alice")
    cid = "450100d1560000050000000000000001"
    r = bo.post("/admin/api/cards/status", json={"status": "lost", "card_id": cid, "note": "phoned in"}, headers=o)
    assert r.status_code == 200, r.text
    with bo.eng.connect() as c:
        key = c.execute(select(S.settings.c.v).where(S.settings.c.k == "token_key")).scalar_one()
        events = c.execute(select(S.card_events)).all()
        log = c.execute(select(S.audit.c.actor, S.audit.c.action, S.audit.c.detail)).all()
    tok = ktoken.card_token(key, bytes.fromhex(cid)).hex()
    assert r.json()["token"] == tok and r.json()["dl_ver"] == 1
    assert bytes(events[0].token).hex() == tok
    assert ("op:alice", "card.lost") in [(a, b) for a, b, _ in log]
    assert not any(cid in d for _, _, d in log)            # the identity is never stored
    r = bo.post("/admin/api/cards/status", json={"status": "lost", "card_id": cid}, headers=o)
    assert r.status_code == 409
    r = bo.post("/admin/api/cards/status", json={"status": "replaced", "token": tok,
                                                 "replaced_by": "0102030405060708"}, headers=o)
    assert r.json()["dl_ver"] == 2
    assert [e["status"] for e in bo.get("/admin/api/cards/" + tok, headers=o).json()] == ["lost", "replaced"]
    # a token that is no token: refused by the schema (pattern) before any rule
    assert bo.post("/admin/api/cards/status", json={"status": "lost", "token": "zz"}, headers=o).status_code == 422
    v = _login(bo, "victor")
    assert bo.post("/admin/api/cards/status", json={"status": "lost", "token": tok}, headers=v).status_code == 403
    actions = [a["action"] for a in bo.get("/admin/api/audit", headers=v).json()]
    assert "card.replaced" in actions and "operator.add" in actions


def _src(name):
    with open(os.path.join(ROOT, "data", "fares", name)) as f:
        return f.read()


def test_publish_validation_fares_catalog_entitlements(bo):
    o = _login(bo, "alice")
    good = fares_compile.compile_fares(_src("bus_nanning_301.txt"))
    r = bo.post("/admin/api/files/fares", content=good, headers=o)
    assert r.status_code == 200 and r.json()["version"] == 8 and r.json()["ident"] == 301
    assert bo.post("/admin/api/files/fares", content=good, headers=o).status_code == 409   # no rollback
    bad = bytearray(good)
    bad[-1] ^= 0xFF                                                                         # CRC
    r = bo.post("/admin/api/files/fares", content=bytes(bad), headers=o)
    assert r.status_code == 422 and "crc" in r.json()["detail"]
    with open(os.path.join(ROOT, "data", "catalog.json")) as f:
        cat = fares_compile.compile_catalog(f.read())
    assert bo.post("/admin/api/files/catalog", content=cat, headers=o).status_code == 200
    assert bo.post("/admin/api/files/catalog", content=good, headers=o).status_code == 422  # wrong magic
    assert bo.post("/admin/api/entitlements", json={"token": "0011223344556677", "concession": 3,
                                                    "flags": 1}, headers=o).status_code == 200
    r = bo.post("/admin/api/entitlements/publish", headers=o)
    assert r.status_code == 200 and r.json()["version"] == 1
    # the device fetches its entry's table and verifies it
    d = ops.register_device(bo.eng, "bus", "validator", 301)
    ring = signing.device_keyring(ops.signing_public_keys(bo.eng))
    for kind, k in (("fares", ksigned.K_FARES), ("entitlements", ksigned.K_ENTITLEMENTS)):
        p = "/v1/sync/%s?have=0" % kind
        r = bo.get(p, headers=testing.auth_headers(d["id"], bytes.fromhex(d["key"]), "GET", p))
        h, payload = ksigned.verify_blob(r.content, ring, (k,), 0, 1 << 16, d["id"])
        if kind == "fares":
            assert payload == good


def _ingest(eng, rows):
    """Store taps straight into the table (settlement input)."""
    from ykt_tools.backoffice import ingest
    ing = ingest.Ingestor(eng)
    try:
        by = {}
        for r in rows:
            by.setdefault(r[0], []).append(r)
        for dev, rs in by.items():
            rs.sort(key=lambda r: r[1])
            res = ing.submit_sync(dev, os.urandom(8), rs)
            assert res.status == ingest.OK
    finally:
        ing.close()


def _bus_src():
    """Route 301 with transfers between its own buses allowed (the shipped
    table excludes the same route: tests/test_backoffice_admin.py
    test_no_transfer_on_the_same_route_by_default)."""
    return _src("bus_nanning_301.txt").replace("transfer 60m free", "transfer 60m free same_route", 1)


def _tap(dev, seq, tok, t, fare, conc=0, reason=0, entry=301, fv=8, outcome=0, shift=0, flags=0):
    """A row in ingest.COLS order."""
    return (dev, seq, service_day(t), t, bytes.fromhex(tok), outcome, reason, fare, conc, flags, entry, 1, 1, 0, 1,
            fv, 1, shift, t)


def test_no_transfer_on_the_same_route_by_default(bo):
    ops.publish_file(bo.eng, "fares", fares_compile.compile_fares(_src("bus_nanning_301.txt")))
    d1 = ops.register_device(bo.eng, "bus-a", "validator", 301)["id"]
    d2 = ops.register_device(bo.eng, "bus-b", "validator", 301)["id"]
    t0 = 1795660000
    A = "ab" * 8
    _ingest(bo.eng, [_tap(d1, 1, A, t0, 200), _tap(d2, 1, A, t0 + 1800, 200)])
    day = service_day(t0)
    settle.settle_day(bo.eng, day)
    assert [(c["device"], c["charged"], c["rule"]) for c in settle.charges(bo.eng, day, A)] == [
        (d1, 200, "provisional"), (d2, 200, "provisional")]


def test_settlement_transfers_limits_caps_and_trail(bo):
    ops.publish_file(bo.eng, "fares", fares_compile.compile_fares(_bus_src()))
    d1 = ops.register_device(bo.eng, "bus-a", "validator", 301)["id"]
    d2 = ops.register_device(bo.eng, "bus-b", "validator", 301)["id"]
    t0 = 1795660000                     # 10:26 UTC+8
    A, B, C = "aa" * 8, "bb" * 8, "cc" * 8
    H = 3600
    rows = [_tap(d1, 1, A, t0, 200), _tap(d2, 1, A, t0 + 1800, 200),            # transfer -> 0
            _tap(d2, 2, A, t0 + 2 * H, 200), _tap(d1, 2, A, t0 + 2 * H + 600, 200),  # paid, transfer
            _tap(d1, 3, A, t0 + 2 * H + 700, 200)]                               # paid, over the cap
    for i in range(6):                                                           # elderly free x6
        rows.append(_tap(d1 if i % 2 else d2, 10 + i, B, t0 + i * 2 * H, 0, conc=taprec.C_ELDERLY_FREE))
    for i in range(4):
        rows.append(_tap(d1, 30 + i, C, t0 + i * 2 * H, 200))
    rows.append(_tap(d1, 40, C, t0 + 5, 0, reason=taprec.R_ALREADY_PAID))
    _ingest(bo.eng, rows)
    day = service_day(t0)
    settle.set_policy(bo.eng, 500)
    r = settle.settle_day(bo.eng, day)
    amounts = {s["token"]: s["amount"] for s in settle.settlements(bo.eng, day)}
    assert amounts == {A: 500, B: 400, C: 500}
    assert r["cards"] == 3 and r["taps"] == len(rows)
    trail = settle.charges(bo.eng, day, A)
    assert [(c["device"], c["seq"], c["charged"], c["rule"]) for c in trail] == [
        (d1, 1, 200, "provisional"), (d1, 2, 0, "transfer"), (d1, 3, 100, "cap"),
        (d2, 1, 0, "transfer"), (d2, 2, 200, "provisional")]
    rules_b = sorted(c["rule"] for c in settle.charges(bo.eng, day, B))
    assert rules_b.count("concession_limit") == 2
    assert sorted(c["charged"] for c in settle.charges(bo.eng, day, C)) == [0, 0, 100, 200, 200]
    # idempotent: settling again gives the same rows
    settle.settle_day(bo.eng, day)
    assert {s["token"]: s["amount"] for s in settle.settlements(bo.eng, day)} == amounts
    o = _login(bo, "alice")
    assert bo.get("/admin/api/charges?day=%d&token=%s" % (day, A), headers=o).json() == trail
    # taps per hour (by tap time) for the dashboard chart
    from ykt_tools.backoffice import db
    db.set_clock(lambda: t0 + 10 * H + 1)
    try:
        tph = bo.get("/admin/api/taps_per_hour?hours=24", headers=o).json()
    finally:
        db.set_clock(None)
    assert sum(h["taps"] for h in tph) == len(rows)
    by_hour = {h["hour"]: h["taps"] for h in tph}
    assert by_hour[t0 - t0 % 3600] == 5 and all(h % 3600 == 0 for h in by_hour)


def test_exports_csv_parquet_pseudonymous(bo):
    import pyarrow.parquet as pq
    from ykt_tools.backoffice import export
    d1 = ops.register_device(bo.eng, "bus-a", "validator", 301)["id"]
    t0 = 1795660000
    _ingest(bo.eng, [_tap(d1, i, "%016x" % (0xabc0 + i), t0 + i, 200) for i in range(1, 51)])
    day = service_day(t0)
    settle.settle_day(bo.eng, day)
    buf = io.BytesIO()
    assert export.export(bo.eng, "taps", "csv", buf) == 50
    rows = list(csv.reader(io.StringIO(buf.getvalue().decode())))
    assert rows[0] == list(export.TAP_COLS) and len(rows) == 51
    assert rows[1][4] == "%016x" % 0xabc1
    pbuf = io.BytesIO()
    assert export.export(bo.eng, "settlements", "parquet", pbuf) == 50
    tbl = pq.read_table(io.BytesIO(pbuf.getvalue()))
    assert tbl.num_rows == 50 and tbl.column_names == list(export.SET_COLS)
    rk = io.BytesIO()
    export.export(bo.eng, "taps", "csv", rk, rekey=True)
    rrows = list(csv.reader(io.StringIO(rk.getvalue().decode())))
    assert len(rrows) == 51 and all(a[4] != b[4] for a, b in zip(rows[1:], rrows[1:]))
    o = _login(bo, "alice")
    r = bo.get("/admin/api/export/taps.parquet?day_from=%d&day_to=%d" % (day, day), headers=o)
    assert r.status_code == 200 and pq.read_table(io.BytesIO(r.content)).num_rows == 50
    assert bo.get("/admin/api/export/taps.parquet").status_code == 401


def test_migrations_match_models(bo):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    with bo.eng.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), S.metadata) == []


def test_migrations_downgrade_and_upgrade(bo):
    from alembic import command
    from alembic.config import Config
    from ykt_tools.backoffice import PKG_DIR, db
    from sqlalchemy import inspect
    eng = bo.eng
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(PKG_DIR, "alembic"))
    with eng.begin() as c:
        cfg.attributes["connection"] = c
        command.downgrade(cfg, "0001")
    assert "requests" not in [col["name"] for col in inspect(eng).get_columns("devices")]
    db.migrate(eng)                                   # what every start does: back to head
    assert "requests" in [col["name"] for col in inspect(eng).get_columns("devices")]
