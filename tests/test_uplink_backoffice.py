"""End to end: the device's uplink, sync and heartbeat (ykt.net.uplink, ykt.net.sync,
ykt.net.heartbeat over the real ykt.net.httpc) against the real back office (the
FastAPI app, SQLite) on the simulated network (vhw/ipnet, the app in process:
ykt_tools.sim.asgipeer), all on the virtual clock: nothing here waits in real
time, so a loaded machine cannot turn into a timeout. Taps arrive exactly once;
signed downloads verify with the keys the back office provisions."""
import os

import pytest

import conftest  # noqa: F401  (sys.path)

os.environ.setdefault("YKT_RSA_BITS", "2048")

import vclock  # noqa: E402
from ykt.net import httpc  # noqa: E402
from ykt.sec import signed
from ykt.sec import sigverify
from ykt.net import sync
from ykt.net import uplink
from ykt.net import heartbeat
from t_uplink_mem import MemJournal, make_tap  # noqa: E402


@pytest.fixture
def backoffice(tmp_path, monkeypatch):
    from ykt_tools.backoffice import ops
    from ykt_tools.backoffice.app import create_app
    from ykt_tools.sim import asgipeer

    app = create_app("sqlite:///" + str(tmp_path / "bo.db"))
    url = asgipeer.attach(app, monkeypatch)
    yield url, app.state.eng, ops
    app.state.ingestor.close()


def _pump(h):
    vclock.advance_us(20000)        # the loop's idle period, virtual


def test_device_against_real_backoffice(backoffice):
    from sqlalchemy import func, select as sqsel
    from ykt_tools.backoffice import schema as S

    url, eng, ops = backoffice
    vclock.reset()
    d = ops.register_device(eng, "bus-e2e", "validator", 301)
    dev, key = d["id"], bytes.fromhex(d["key"])
    http = httpc.HttpClient(url, timeout_ms=3000)
    j = MemJournal()
    up = uplink.Uplink(j, http, dev, key, batch_max=50, max_age_ms=500, poll_ms=50)
    for i in range(120):
        j.append(make_tap(i))
    for _ in range(3000):
        up.step()
        _pump(http)
        if j.backlog == 0:
            break
    assert j.backlog == 0, up.errors
    with eng.connect() as c:
        n = c.execute(sqsel(func.count()).select_from(S.taps).where(S.taps.c.device == dev)).scalar_one()
    assert n == 120 and up.failures == 0

    # signed downloads with the keys the back office provisions
    kp = ops.trusted_keys_payload(eng)
    if kp[:4] == signed.MAGIC:
        h = signed.parse_header(kp)
        kp = kp[signed.HDR_SIZE:signed.HDR_SIZE + h.length]
    ring = sigverify.parse_keys(kp)
    got = {}
    hs = [sync.KeysHandler(ring), sync.MemHandler("denylist", lambda h, p: got.setdefault("dl", h.version))]
    s = sync.Sync(http, dev, key, ring, hs)
    for _ in range(1000):
        s.step()
        _pump(http)
        if s.state == sync.IDLE and s._i > 0:
            break
    bad = [e for e in s.errors if e[1] not in ("http 404",)]
    assert not bad, s.errors
    assert hs[0].version() >= 1

    # heartbeat: signed, accepted, reply verified
    hb = heartbeat.Heartbeat(http, dev, key, lambda: heartbeat.build(
        "0.1.0", dev, 60, vclock.time(), False, s.versions(), j.backlog, -1, up.acked_seq,
        {"ok": 1, "err": 0}, up.errors, up.state_name()))
    for _ in range(500):
        hb.step()
        _pump(http)
        if hb.sent or hb.last_error:
            break
    assert hb.sent == 1, hb.last_error
