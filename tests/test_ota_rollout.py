"""Back-office distribution of OTA bundles (ykt_tools/backoffice/rollout.py):
staged offers (canary, percentage, all; per entry or board), the resumable
bundle endpoint, progress states, the automatic halt on a canary rollback,
and a real firmware Updater (ykt.ota.updater over ykt.net.httpc) updating a virtual
device from the back office. The app runs in process: HTTP tests call it
through Starlette's TestClient, the device reaches it over the simulated
network on the virtual clock (ykt_tools.sim.asgipeer), so no real-time
server races the device's timers."""
import json
import os
import sys

import pytest
from fastapi.testclient import TestClient

import conftest
from conftest import ROOT

os.environ.setdefault("YKT_RSA_BITS", "2048")
sys.path.insert(0, os.path.join(ROOT, "tests", "fw"))

from ykt_tools.backoffice import api, rollout, testing  # noqa: E402
from ykt_tools.backoffice.app import create_app  # noqa: E402
from ykt_tools.sim import asgipeer  # noqa: E402


def _server(tmp_path):
    """-> (database URL, the app, a TestClient on it, stop)."""
    url = "sqlite:///" + str(tmp_path / "ota.db")
    app = create_app(url)
    return url, app, TestClient(app), app.state.ingestor.close


def _bundle(tmp_path, version="0.2.0", **kw):
    import t_ota_kit as K

    p = str(tmp_path / ("b-%s.ykb" % version))
    K.build(p, version, files=[("ykt/x.py", b"x = 1\n" * 2000)], **kw)
    with open(p, "rb") as f:
        return p, f.read()


def _get(client, d, path, headers=None):
    h = testing.auth_headers(d["id"], bytes.fromhex(d["key"]), "GET", path)
    h.update(headers or {})
    return client.get(path, headers=h)


def _offer(client, d, have="0.1.0", board="bus_validator", st="ok", rb=None):
    path = "/v1/ota/offer?have=%s&board=%s&st=%s" % (have, board, st) + ("&rb=" + rb if rb else "")
    return _get(client, d, path)


def test_staged_offers_resumable_download_and_progress(tmp_path):
    url, app, base, stop = _server(tmp_path)
    try:
        eng = api.engine(url)
        devs = [api.provision_device(url, "bus-%02d" % i, entry=301 if i < 8 else 302) for i in range(10)]
        _, blob = _bundle(tmp_path)
        rel = rollout.add_release(eng, blob)
        with pytest.raises(rollout.RolloutError):
            rollout.add_release(eng, blob)                         # same version twice
        rid = rollout.start_rollout(eng, rel["id"], "entry:301", canary=[devs[0]["id"], devs[1]["id"]])
        # canary stage: only the canaries get an offer; entry 302 never does
        offered = [d for d in devs if _offer(base, d).status_code == 200]
        assert [d["id"] for d in offered] == [devs[0]["id"], devs[1]["id"]]
        o = _offer(base, devs[0]).json()
        assert o == {"version": "0.2.0", "size": len(blob), "url": "/v1/ota/bundle/%d" % rel["id"]}
        # the download resumes with Range
        r = _get(base, devs[0], o["url"])
        assert r.status_code == 200 and r.content == blob
        r = _get(base, devs[0], o["url"], {"Range": "bytes=1000-"})
        assert r.status_code == 206 and r.content == blob[1000:]
        assert r.headers["content-range"] == "bytes 1000-%d/%d" % (len(blob) - 1, len(blob))
        assert _get(base, devs[0], o["url"], {"Range": "bytes=%d-" % len(blob)}).status_code == 416
        assert _get(base, devs[5], o["url"]).status_code == 404    # not offered to it
        # device 0 boots it on trial, then confirms; device 1 rolls it back
        assert _offer(base, devs[0], have="0.2.0", st="trial").status_code == 204
        assert _offer(base, devs[0], have="0.2.0").status_code == 204
        p = {r["id"]: r for r in rollout.progress(eng)}[rid]
        assert p["counts"]["live"] == 1 and p["total"] == 8 and p["stage"] == "canary"
        # percentage stage: a stable share of the target
        rollout.set_stage(eng, rid, "percent", 50)
        got = {d["id"] for d in devs[1:8] if _offer(base, d).status_code == 200}
        want = {d["id"] for d in devs[1:8] if rollout.bucket(rid, d["id"]) < 50} | {devs[1]["id"]}
        assert 0 < len(got) < 7
        assert got == want
        rollout.set_stage(eng, rid, "all")
        assert all(_offer(base, d).status_code == 200 for d in devs[1:8])
        assert all(_offer(base, d).status_code == 204 for d in devs[8:])
        for d in devs[:8]:
            _offer(base, d, have="0.2.0")
        p = {r["id"]: r for r in rollout.progress(eng)}[rid]
        assert p["counts"]["live"] == 8, p
    finally:
        stop()


def test_canary_rollback_halts_the_rollout(tmp_path):
    url, app, base, stop = _server(tmp_path)
    try:
        eng = api.engine(url)
        devs = [api.provision_device(url, "gate-%d" % i, entry=9) for i in range(3)]
        _, blob = _bundle(tmp_path, boards=("turnstile",))
        rel = rollout.add_release(eng, blob)
        rid = rollout.start_rollout(eng, rel["id"], "board:turnstile", canary=[devs[0]["id"]])
        assert _offer(base, devs[0], board="bus_validator").status_code == 204   # other board
        assert _offer(base, devs[0], board="turnstile").status_code == 200
        r = _offer(base, devs[0], board="turnstile", rb="0.2.0")
        assert r.status_code == 204                       # not offered again after its rollback
        p = {r["id"]: r for r in rollout.progress(eng)}[rid]
        assert p["stage"] == "halted" and p["counts"]["rolled_back"] == 1 and "rollback" in p["note"]
        rollout.set_stage(eng, rid, "all")                # an operator may resume deliberately
        assert _offer(base, devs[1], board="turnstile").status_code == 200
        assert _offer(base, devs[0], board="turnstile").status_code == 204
    finally:
        stop()


def test_admin_api_needs_an_operator(tmp_path):
    from ykt_tools.backoffice import auth

    url, app, base, stop = _server(tmp_path)
    try:
        eng = api.engine(url)
        auth.add_operator(eng, "olga", "operator", "canary-stage-pass")
        auth.add_operator(eng, "vic", "viewer", "viewer-of-rollouts")
        _, blob = _bundle(tmp_path)
        assert base.post("/admin/api/releases", content=blob).status_code == 401
        c = TestClient(app)
        assert c.post("/admin/login", json={"name": "vic", "password": "viewer-of-rollouts"}).status_code == 200
        assert c.post("/admin/api/releases", content=blob).status_code == 403
        c = TestClient(app)
        assert c.post("/admin/login", json={"name": "olga", "password": "canary-stage-pass"}).status_code == 200
        r = c.post("/admin/api/releases", content=blob)
        assert r.status_code == 200, r.text
        assert c.post("/admin/api/releases", content=b"YKTS" + b"\0" * 40).status_code == 400
        r = c.post("/admin/api/rollouts", json={"release": r.json()["id"], "target": "nowhere"})
        assert r.status_code == 422         # the schema's pattern for target
        r = c.post("/admin/api/rollouts", json={"release": 1, "target": "all", "canary": [1]})
        assert r.status_code == 200
        assert c.post("/admin/api/rollouts/%d/stage" % r.json()["id"], json={"stage": "all"}).json() == {"ok": True}
        assert c.get("/admin/api/rollouts").json()[0]["stage"] == "all"
    finally:
        stop()


def test_firmware_updater_over_http_from_the_back_office(tmp_path, monkeypatch):
    """The device side for real: ykt.ota.updater.Updater on ykt.net.httpc against uvicorn,
    a network cut mid-download (resumed with Range), install, otaboot trial."""
    import vclock
    import otaboot
    import t_ota_kit as K
    from ykt.net import httpc
    from ykt.ota import updater as ota

    url, bo, _client, stop = _server(tmp_path)
    dev = None
    try:
        eng = api.engine(url)
        d = api.provision_device(url, "ferry-1", entry=5)
        p = str(tmp_path / "full.ykb")
        K.build(p, "0.2.0")
        with open(p, "rb") as f:
            blob = f.read()
        rel = rollout.add_release(eng, blob)
        rid = rollout.start_rollout(eng, rel["id"], "all", canary=[d["id"]])
        vclock.reset()
        dev = K.Device()
        app = dev.boot()
        base = asgipeer.attach(bo, monkeypatch, httpc)
        http = httpc.HttpClient(base, timeout_ms=5000)
        up = ota.Updater(http, d["id"], bytes.fromhex(d["key"]), K.keyring(), root=dev.root,
                         board="ferry_validator", interp=K.INTERP, interval_s=1)
        cut = [True]
        orig = up._chunk

        def chunk(mv):                                     # the link drops once at ~100 KB
            if cut[0] and up.got > 100000:
                cut[0] = False
                return False
            return orig(mv)
        up._chunk = chunk
        for _ in range(200000):
            st = up.step()
            if st == ota.READY:
                break
            if st == ota.IDLE and up.errors and "refused" in up.errors[-1]:
                break
            app.wdt.feed()               # as the app's loop does between steps
            vclock.advance_us(1000)      # virtual time: the reply arrives a modeled round trip later
        assert up.state == ota.READY, up.errors
        assert any(e.startswith("download") for e in up.errors), up.errors   # it was cut, then resumed
        p = {r["id"]: r for r in rollout.progress(eng)}[rid]
        assert p["counts"]["downloading"] == 1
        dev.reboot("hard")
        assert otaboot.status(dev.root)["version"] == "0.2.0"
        assert dev.takes_taps()
        up2 = ota.Updater(httpc.HttpClient(base, timeout_ms=5000), d["id"], bytes.fromhex(d["key"]),
                          K.keyring(), root=dev.root, board="ferry_validator", interp=K.INTERP)
        assert _until(up2, ota.OFFER) and _until(up2, ota.IDLE)
        p = {r["id"]: r for r in rollout.progress(eng)}[rid]
        assert p["counts"]["live"] == 1, p
    finally:
        if dev is not None:
            dev.close()
        stop()


def _drive_http(up, http, app, limit=200000):
    """Step a device updater against the back office until it is READY or
    refused something (the app's loop feeds the watchdog in between)."""
    import vclock

    for _ in range(limit):
        st = up.step()
        if st == 5 or (st == 0 and up.errors and "refused" in up.errors[-1]):
            return st
        app.wdt.feed()
        vclock.advance_us(1000)
    return up.state


def _until(up, state, limit=20000):
    """Step an updater, 1 ms of virtual time per step, until it is in `state`."""
    import vclock

    for _ in range(limit):
        if up.step() == state:
            return True
        vclock.advance_us(1000)
    return False


def test_firmware_image_rolled_out_over_http(tmp_path, monkeypatch):
    """A PSRAM-less board (turnstile) gets a full firmware image from the back
    office like a release: `ykt release build --image`, upload, roll-out,
    the device's updater downloads it, the envelope's kind sends it to the
    image writer (next OTA partition, set_boot), the bootloader boots it on
    trial, otaboot confirms it; a tampered image is refused by the device."""
    import esp32
    import otaboot
    import vclock
    import t_ota_kit as K
    from ykt_tools.build import release, signing
    from ykt.net import httpc

    url, bo, _client, stop = _server(tmp_path)
    dev = None
    try:
        eng = api.engine(url)
        d = api.provision_device(url, "gate-1", entry=9)
        key = signing.generate_key(2048)
        img = K.esp_image(60000)
        (tmp_path / "fw.bin").write_bytes(img)
        out = str(tmp_path / "fw.ykb")
        rep = release.build_image("0.2.0", str(tmp_path / "fw.bin"), out, key)
        assert rep["kind"] == "image"
        with open(out, "rb") as f:
            blob = f.read()
        rel = rollout.add_release(eng, blob)
        assert rel["kind"] == "image" and rel["version"] == "0.2.0"
        rid = rollout.start_rollout(eng, rel["id"], "board:turnstile", canary=[d["id"]])
        vclock.reset()
        dev = K.Device("turnstile")
        app = dev.boot()
        base = asgipeer.attach(bo, monkeypatch, httpc)
        ring = release.release_keyring([key])
        devkey = bytes.fromhex(d["key"])

        def updater():
            # the updater of the package the device booted (otaboot reloads it)
            mod = __import__("ykt.ota.updater", None, None, ("Updater",))
            http = httpc.HttpClient(base, timeout_ms=5000)
            return mod.Updater(http, d["id"], devkey, ring, root=dev.root, board="turnstile",
                               interp=K.INTERP, interval_s=1, part=esp32.Partition), http

        up, http = updater()
        assert _drive_http(up, http, app) == 5, up.errors          # READY
        assert up.image == "ota_1" and dev.w.chip.ota_boot == "ota_1"
        buf = bytearray(len(img))
        esp32.Partition("ota_1").readblocks(0, buf)
        assert bytes(buf) == img
        p = {r["id"]: r for r in rollout.progress(eng)}[rid]
        assert p["counts"]["downloading"] == 1
        up = http = None
        dev.reboot("hard")                                          # the app's idle reset
        chip = dev.w.chip
        assert chip.ota_running == "ota_1" and chip.ota_state["ota_1"] == "valid", (chip.ota_state, dev.log)
        assert otaboot.status(dev.root)["version"] == "0.2.0" and dev.takes_taps()
        # the device reports the new version: live; nothing more is offered
        up, http = updater()
        assert up.running == "0.2.0"
        assert _until(up, 1) and _until(up, 0)
        p = {r["id"]: r for r in rollout.progress(eng)}[rid]
        assert p["counts"]["live"] == 1 and up.offer is None, (p, up.errors)
        # a tampered image (one byte of the payload) is stored, offered, refused by the device
        bad = bytearray(blob)
        bad[10000] ^= 1
        bad[8:12] = ota_ver("0.3.0")
        rel2 = rollout.add_release(eng, bytes(bad))
        rollout.start_rollout(eng, rel2["id"], "board:turnstile", canary=[d["id"]])
        up, http = updater()
        assert _drive_http(up, http, app) == 0 and up.errors[-1] == "refused bad_signature", up.errors
        assert chip.ota_boot == "ota_1" and not up.reboot_wanted
    finally:
        if dev is not None:
            dev.close()
        stop()


def ota_ver(v):
    from ykt.ota import updater as ota

    return ota.ver_int(v).to_bytes(4, "little")
