"""Back office device API: batch ingest, dedup, bad input, signed downloads,
time, heartbeat. Runs against SQLite and PostgreSQL (parametrized)."""
import json
import os

import pytest

import conftest  # noqa: F401  (sys.path)

os.environ.setdefault("YKT_RSA_BITS", "2048")

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from ykt_tools.backoffice import app as bo_app, api, ingest, ops, testing  # noqa: E402
from ykt_tools.backoffice import schema as S  # noqa: E402
from ykt.net import wire  # noqa: E402
from ykt.sec import signed as ksigned
from ykt_tools.build import signing  # noqa: E402


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "postgresql":
        conftest.need_postgres()
    with testing.temp_db(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def bo(db_url):
    app = bo_app.create_app(db_url)
    with TestClient(app) as client:
        client.eng = app.state.eng
        yield client
    app.state.eng.dispose()


def _dev(bo, name="bus-1", entry=5):
    d = ops.register_device(bo.eng, name, "validator", entry)
    return d["id"], bytes.fromhex(d["key"])


def _count(bo, dev=None):
    with bo.eng.connect() as c:
        q = select(func.count()).select_from(S.taps)
        if dev is not None:
            q = q.where(S.taps.c.device == dev)
        return c.execute(q).scalar_one()


def _post(bo, body):
    return bo.post("/v1/taps", content=bytes(body), headers={"Content-Type": "application/octet-stream"})


def test_ingest_ack_and_permanent_dedup(bo):
    dev, key = _dev(bo)
    b = testing.batch(dev, key, range(1, 101))
    r = _post(bo, b)
    assert r.status_code == 200
    st, ack, _t = wire.decode_ack(r.content, key, dev, b[20:28])
    assert (st, ack) == (wire.RS_OK, 100)
    assert r.headers["x-ykt-new"] == "100" and r.headers["x-ykt-dup"] == "0"
    # a retry (fresh nonce, same taps, plus 20 new) stores only the new ones
    b2 = testing.batch(dev, key, range(1, 121), flags=0)
    r = _post(bo, b2)
    assert r.status_code == 200
    assert wire.decode_ack(r.content, key, dev, b2[20:28])[1] == 120
    assert r.headers["x-ykt-new"] == "20" and r.headers["x-ykt-dup"] == "100"
    assert _count(bo, dev) == 120


def test_replayed_batch_is_409_and_stores_nothing(bo):
    dev, key = _dev(bo)
    b = testing.batch(dev, key, range(1, 11))
    assert _post(bo, b).status_code == 200
    r = _post(bo, b)
    assert r.status_code == 409 and r.headers["x-ykt-error"] == "replay"
    assert _count(bo, dev) == 10


def test_bad_mac_another_devices_key_unknown_device(bo):
    a, ka = _dev(bo, "a")
    b, kb = _dev(bo, "b")
    body = bytearray(testing.batch(a, ka, range(1, 11)))
    body[-1] ^= 1
    r = _post(bo, body)
    assert r.status_code == 401 and r.headers["x-ykt-error"] == "bad_mac"
    r = _post(bo, testing.batch(a, kb, range(1, 11)))           # device a's id, device b's key
    assert r.status_code == 401 and r.headers["x-ykt-error"] == "bad_mac"
    r = _post(bo, testing.batch(999, ka, range(1, 11)))
    assert r.status_code == 403 and r.headers["x-ykt-error"] == "unknown_device"
    ops.set_device_active(bo.eng, a, False)
    bo.app.state.keys.forget()
    r = _post(bo, testing.batch(a, ka, range(1, 11)))
    assert r.status_code == 403
    assert _count(bo) == 0


def test_truncated_oversized_malformed(bo):
    dev, key = _dev(bo)
    good = testing.batch(dev, key, range(1, 51))
    r = _post(bo, good[:30])
    assert r.status_code == 400 and r.headers["x-ykt-error"] == "truncated"
    r = _post(bo, b"")
    assert r.status_code == 415 and r.headers["x-ykt-error"] == "bad_magic"
    r = _post(bo, b"GARBAGE" * 10)
    assert r.status_code == 415
    r = _post(bo, good + b"\x00" * (wire.MAX_BODY))
    assert r.status_code == 413 and r.headers["x-ykt-error"] == "oversized"
    bad = bytearray(good)
    bad[4] = 9                                                  # format version
    assert _post(bo, bad).status_code == 400
    # a record cut short but re-MACed with the right key: decoded, refused
    from ykt.sec.hmac256 import hmac_sha256
    cut = bytearray(good[:-16 - 5])
    cut += hmac_sha256(key, b"POST /v1/taps\n" + bytes(cut))[:16]
    r = _post(bo, cut)
    assert r.status_code == 400 and r.headers["x-ykt-error"] in ("truncated", "malformed")
    # reserved ctl bits in an authentic body: malformed
    bad = bytearray(good[:-16])
    bad[wire.HDR_SIZE] |= 0x80
    bad += hmac_sha256(key, b"POST /v1/taps\n" + bytes(bad))[:16]
    r = _post(bo, bad)
    assert r.status_code == 400 and r.headers["x-ykt-error"] == "malformed"
    # the MAC missing altogether
    r = _post(bo, good[:-16])
    assert r.status_code == 401 and r.headers["x-ykt-error"] == "bad_mac"
    assert _count(bo) == 0


def test_sequence_far_in_future_rejected_with_signed_ack(bo):
    dev, key = _dev(bo)
    assert _post(bo, testing.batch(dev, key, range(1, 6))).status_code == 200
    b = testing.batch(dev, key, range(ingest.MAX_AHEAD + 100, ingest.MAX_AHEAD + 110))
    r = _post(bo, b)
    assert r.status_code == 422 and r.headers["x-ykt-error"] == "seq_ahead"
    st, ack, _ = wire.decode_ack(r.content, key, dev, b[20:28])
    assert st == wire.RS_REJECTED and ack == 5
    assert _count(bo, dev) == 5


def test_gap_reported_and_recorded(bo):
    dev, key = _dev(bo)
    assert _post(bo, testing.batch(dev, key, range(1, 11))).status_code == 200
    b = testing.batch(dev, key, range(21, 31))
    r = _post(bo, b)
    assert r.status_code == 200 and r.headers["x-ykt-gap"] == "11-20"
    assert wire.decode_ack(r.content, key, dev, b[20:28])[1] == 30
    assert ops.seq_gaps(bo.eng, dev) == [{"first": 11, "last": 20, "at": ops.seq_gaps(bo.eng, dev)[0]["at"]}]


def test_time_and_heartbeat(bo):
    dev, key = _dev(bo)
    h = testing.auth_headers(dev, key, "GET", "/v1/time")
    nonce = bytes.fromhex(h["X-YKT-Auth"].split(":")[2])
    r = bo.get("/v1/time", headers=h)
    assert r.status_code == 200
    st, value, server_t = wire.decode_reply(r.content, key, dev, nonce, wire.RK_TIME)
    assert value == server_t and value > 1_700_000_000
    assert bo.get("/v1/time").status_code == 401
    from ykt.net import heartbeat
    hb = heartbeat.build("0.1.0", dev, 3600, 1795660000, True, {"denylist": 3, "fares": 7, "catalog": 2},
                         12, 40, 99, {"ok": 500, "err": 2, "resets": 1}, [("net", "timeout")], "idle")
    h = testing.auth_headers(dev, key, "POST", "/v1/heartbeat", hb)
    r = bo.post("/v1/heartbeat", content=hb, headers=h)
    assert r.status_code == 200
    nonce = bytes.fromhex(h["X-YKT-Auth"].split(":")[2])
    assert wire.decode_reply(r.content, key, dev, nonce, wire.RK_HEARTBEAT)[1] == 0
    assert bo.post("/v1/heartbeat", content=hb, headers=h).status_code == 409      # replay
    # an operator asks the fleet to sync now: delivered once, in the next heartbeat reply
    assert ops.request_device(bo.eng, "all", "sync-now")["devices"] == 1
    for want in (heartbeat.HB_SYNC_NOW, 0):
        h2 = testing.auth_headers(dev, key, "POST", "/v1/heartbeat", hb)
        r = bo.post("/v1/heartbeat", content=hb, headers=h2)
        n2 = bytes.fromhex(h2["X-YKT-Auth"].split(":")[2])
        assert wire.decode_reply(r.content, key, dev, n2, wire.RK_HEARTBEAT)[1] == want
    r = bo.post("/v1/heartbeat", content=hb + b" ", headers=h)                     # body changed
    assert r.status_code == 401
    d = [x for x in ops.list_devices(bo.eng) if x["id"] == dev][0]
    assert (d["fw"], d["dl_ver"], d["fare_ver"], d["cat_ver"], d["backlog"], d["reader_faults"]) == \
        ("0.1.0", 3, 7, 2, 12, 2)
    other = heartbeat.build("0.1.0", dev + 1, 1, 1, True, {}, 0, -1, 0, {}, [])
    r = bo.post("/v1/heartbeat", content=other, headers=testing.auth_headers(dev, key, "POST", "/v1/heartbeat", other))
    assert r.status_code == 400


def _sync(bo, dev, key, kind, have):
    p = "/v1/sync/%s?have=%d" % (kind, have)
    return bo.get(p, headers=testing.auth_headers(dev, key, "GET", p))


def test_denylist_versions_deltas_and_signatures(bo):
    dev, key = _dev(bo)
    ring = signing.device_keyring(ops.signing_public_keys(bo.eng))
    assert _sync(bo, dev, key, "denylist", 0).status_code == 304
    t1 = ops.set_card_status(bo.eng, "lost", token="00112233445566aa")
    t2 = ops.set_card_status(bo.eng, "suspended", card_id="450100d1560000050000000000000001")
    assert (t1["dl_ver"], t2["dl_ver"]) == (1, 2)
    r = _sync(bo, dev, key, "denylist", 0)
    h, payload = ksigned.verify_blob(r.content, ring, (ksigned.K_DENYLIST,), 0, 1 << 20, dev)
    assert h.version == 2 and not h.flags & ksigned.F_DELTA
    r = _sync(bo, dev, key, "denylist", 1)
    h, payload = ksigned.verify_blob(r.content, ring, (ksigned.K_DENYLIST_DELTA,), 1, 1 << 20, dev)
    assert (h.version, h.base) == (2, 1)
    ops.set_card_status(bo.eng, "restored", token="00112233445566aa")
    r = _sync(bo, dev, key, "denylist", 1)                       # merged delta 1 -> 3
    h, _ = ksigned.verify_blob(r.content, ring, (ksigned.K_DENYLIST_DELTA,), 1, 1 << 20, dev)
    assert (h.version, h.base) == (3, 1)
    assert _sync(bo, dev, key, "denylist", 3).status_code == 304
    # the payloads are the firmware's formats: image entries and delta records
    from ykt.rules import dlformat
    from ykt_tools.build import denylist as denylist_build
    r = _sync(bo, dev, key, "denylist", 0)
    h, img = ksigned.verify_blob(r.content, ring, (ksigned.K_DENYLIST,), 0, 1 << 20, dev)
    assert denylist_build.image_entries(img) == {int(t2["token"], 16): dlformat.ST_SUSPENDED}
    r = _sync(bo, dev, key, "denylist", 1)
    h, delta = ksigned.verify_blob(r.content, ring, (ksigned.K_DENYLIST_DELTA,), 1, 1 << 20, dev)
    base, ver, cnt, _c = dlformat.parse_delta(delta)
    assert (base, ver, cnt) == (1, 3, 2)          # merged: token 1 removed, token 2 suspended
    with pytest.raises(ops.OpError):
        ops.set_card_status(bo.eng, "restored", token="00112233445566aa")   # not on the list
    assert _sync(bo, dev, key, "nonsense", 0).status_code == 404
    assert bo.get("/v1/sync/keys?have=0").status_code == 401


def test_keys_file_and_rotation(bo):
    dev, key = _dev(bo)
    old_ring = signing.device_keyring(ops.signing_public_keys(bo.eng))
    r = _sync(bo, dev, key, "keys", 0)
    h, _ = ksigned.verify_blob(r.content, old_ring, (ksigned.K_KEYS,), 0, 8192, dev)
    assert h.version == 1
    rot = ops.rotate_keys(bo.eng)
    r = _sync(bo, dev, key, "keys", 1)
    # the new keys file is signed by the OLD key, which devices already trust
    h, payload = ksigned.verify_blob(r.content, old_ring, (ksigned.K_KEYS,), 1, 8192, dev)
    assert payload[0] == 2
    ops.retire_keys(bo.eng)
    new_ring = signing.device_keyring(ops.signing_public_keys(bo.eng))
    assert len(ops.signing_public_keys(bo.eng)) == 1
    ops.set_card_status(bo.eng, "lost", token="0011223344556677")
    r = _sync(bo, dev, key, "denylist", 0)
    ksigned.verify_blob(r.content, new_ring, (ksigned.K_DENYLIST,), 0, 1 << 20, dev)
    with pytest.raises(ksigned.SignedError):
        ksigned.verify_blob(r.content, old_ring, (ksigned.K_DENYLIST,), 0, 1 << 20, dev)
    assert rot["kid"] == signing.keyid_hex(ops.signing_public_keys(bo.eng)[0])


def test_config_publish_scoped(bo):
    dev, key = _dev(bo)
    other, okey = _dev(bo, "other")
    ops.publish_file(bo.eng, "config", b'{"beep_ms": 80}')
    ops.publish_file(bo.eng, "config", b'{"beep_ms": 120}', ident=dev)
    ring = signing.device_keyring(ops.signing_public_keys(bo.eng))
    h, p = ksigned.verify_blob(_sync(bo, dev, key, "config", 0).content, ring, (ksigned.K_CONFIG,), 0, 4096, dev)
    assert json.loads(p) == {"beep_ms": 120} and h.scope == dev
    h, p = ksigned.verify_blob(_sync(bo, other, okey, "config", 0).content, ring, (ksigned.K_CONFIG,), 0, 4096, other)
    assert json.loads(p) == {"beep_ms": 80} and h.scope == 0
    with pytest.raises(ops.OpError):
        ops.publish_file(bo.eng, "config", b"[1,2]")


def test_python_api_for_the_simulator(db_url):
    base, stop = api.start(db_url)
    try:
        import httpx
        d = api.provision_device(db_url, "sim-bus", entry=5)
        key = bytes.fromhex(d["key"])
        assert d["keys_file"][:4] == b"YKTS"
        from ykt.sec import sigverify
        ring = sigverify.parse_keys(d["keyring"])          # what provisioning installs
        ksigned.verify_blob(d["keys_file"], ring, (ksigned.K_KEYS,), 0, 8192, d["id"])
        b = testing.batch(d["id"], key, range(1, 6))
        r = httpx.post(base + "/v1/taps", content=b)
        assert r.status_code == 200
        assert api.set_card_status(db_url, "lost", token="aabbccddeeff0011")["dl_ver"] == 1
        assert api.fleet(db_url)[0]["seq_acked"] == 5
    finally:
        stop()


def test_storage_failure_is_503_and_nothing_acknowledged(bo):
    dev, key = _dev(bo)
    assert _post(bo, testing.batch(dev, key, range(1, 11))).status_code == 200
    with bo.eng.begin() as c:
        c.exec_driver_sql("ALTER TABLE taps RENAME TO taps_away")
    try:
        r = _post(bo, testing.batch(dev, key, range(11, 21)))
        assert r.status_code == 503 and r.headers["x-ykt-error"] == "storage"
    finally:
        with bo.eng.begin() as c:
            c.exec_driver_sql("ALTER TABLE taps_away RENAME TO taps")
    assert [d["seq_acked"] for d in ops.list_devices(bo.eng)] == [10]     # the cursor did not move
    b = testing.batch(dev, key, range(11, 21))                           # the device retries
    r = _post(bo, b)
    assert r.status_code == 200 and wire.decode_ack(r.content, key, dev, b[20:28])[1] == 20
    assert _count(bo, dev) == 20


def test_server_clock_hook_for_the_simulator(bo):
    from ykt_tools.backoffice import db
    dev, key = _dev(bo)
    db.set_clock(lambda: 1_900_000_000.5)
    try:
        h = testing.auth_headers(dev, key, "GET", "/v1/time")
        r = bo.get("/v1/time", headers=h)
        nonce = bytes.fromhex(h["X-YKT-Auth"].split(":")[2])
        assert wire.decode_reply(r.content, key, dev, nonce, wire.RK_TIME)[1] == 1_900_000_000
        assert _post(bo, testing.batch(dev, key, [1], flags=0)).status_code == 200
        with bo.eng.connect() as c:
            assert c.execute(select(S.taps.c.rx)).scalar_one() == 1_900_000_000
    finally:
        db.set_clock(None)


def _rows(dev, seqs):
    return ingest.rows_from_taps(dev, testing.make_taps(seqs), 1795700000)


def test_one_group_with_overlapping_batches_counts_each_tap_once(db_url):
    """Two batches of one device in one group transaction: the second's
    overlap with the first is a duplicate, its tail is new (both backends,
    PostgreSQL's direct COPY and its ON CONFLICT path)."""
    from ykt_tools.backoffice.db import open_db
    eng = open_db(db_url)
    dev = ops.register_device(eng, "bus-g", "validator", 5)["id"]
    ing = ingest.Ingestor(eng)
    try:
        raw, dbc = ing._connect()
        a = ingest._Item(dev, b"n1______", _rows(dev, range(1, 101)))
        b = ingest._Item(dev, b"n2______", _rows(dev, range(50, 151)))
        c2 = ingest._Item(dev, b"n2______", _rows(dev, range(50, 151)))     # same nonce: replay
        (ing._commit_sqlite if ing.sqlite else ing._commit_pg)(dbc, [a, b, c2])
        ingest._discard(raw, dbc, ing.sqlite)
        assert (a.res.status, a.res.new, a.res.dups) == (ingest.OK, 100, 0)
        assert (b.res.status, b.res.new, b.res.dups, b.res.ack) == (ingest.OK, 50, 51, 150)
        assert c2.res.status == ingest.REPLAY
    finally:
        ing.close()
    with eng.connect() as c:
        assert c.execute(select(func.count()).select_from(S.taps)).scalar_one() == 150
    eng.dispose()


def test_tap_stored_above_seq_max_is_still_deduplicated(db_url):
    """A row written outside ingest (a restore, a manual fix) breaks the
    'nothing stored above seq_max' rule the direct COPY relies on: the commit
    falls back to ON CONFLICT and nothing is stored twice or lost."""
    from ykt_tools.backoffice.db import open_db
    eng = open_db(db_url)
    dev = ops.register_device(eng, "bus-r", "validator", 5)["id"]
    with eng.begin() as c:
        c.execute(S.taps.insert(), [dict(zip(ingest.COLS, r)) for r in _rows(dev, [7])])
    ing = ingest.Ingestor(eng)
    try:
        res = ing.submit_sync(dev, b"nonce-01", _rows(dev, range(1, 11)))
        assert (res.status, res.new, res.dups, res.ack) == (ingest.OK, 9, 1, 10)
    finally:
        ing.close()
    with eng.connect() as c:
        assert c.execute(select(func.count()).select_from(S.taps)).scalar_one() == 10
    eng.dispose()


def test_binary_copy_layout():
    """pg_copy_binary is PostgreSQL's binary COPY layout: signature, 19
    length-prefixed big-endian fields per row, trailer."""
    rows = _rows(3, [1, 2])
    blob = ingest.pg_copy_binary(rows)
    assert blob[:11] == b"PGCOPY\n\xff\r\n\x00" and blob[-2:] == b"\xff\xff"
    # per row: field count, 19 length words, 5 int8 + 13 int4 values, the 8-byte token
    assert len(blob) == 19 + 2 * (2 + 19 * 4 + 5 * 8 + 13 * 4 + 8) + 2
    assert blob[19:21] == b"\x00\x13" and blob[21:29] == b"\x00\x00\x00\x04\x00\x00\x00\x03"
    with pytest.raises(ValueError):
        ingest.pg_copy_binary([rows[0][:4] + (b"short",) + rows[0][5:]])


def test_openapi_route_and_fast_path_answer_alike(bo):
    """POST /v1/taps is served by the TapsFastPath middleware; the FastAPI
    route it shadows (the OpenAPI description) runs the same exchange."""
    from fastapi import FastAPI
    from ykt_tools.backoffice import devapi
    bare = FastAPI()
    bare.state = bo.app.state
    bare.include_router(devapi.router)
    dev, key = _dev(bo)
    assert "post" in bo.get("/openapi.json").json()["paths"]["/v1/taps"]
    with TestClient(bare) as plain:
        for client, seqs in ((bo, range(1, 11)), (plain, range(5, 21))):
            b = testing.batch(dev, key, seqs)
            r = client.post("/v1/taps", content=b)
            assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
            assert wire.decode_ack(r.content, key, dev, b[20:28])[1] == seqs[-1]
        assert r.headers["x-ykt-new"] == "10" and r.headers["x-ykt-dup"] == "6"
        for client in (bo, plain):
            r = client.post("/v1/taps", content=b"YKTB" + b"\0" * 10)
            assert (r.status_code, r.headers["x-ykt-error"], r.json()["error"]) == (400, "truncated", "truncated")
            r = client.post("/v1/taps", content=b"x" * (wire.MAX_BODY + 1))
            assert (r.status_code, r.headers["x-ykt-error"]) == (413, "oversized")
    assert _count(bo, dev) == 20
