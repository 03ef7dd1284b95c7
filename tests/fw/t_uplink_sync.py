# Signed downloads over real loopback TCP: applied when valid; tampered,
# truncated, rolled-back and foreign-key files refused with a reason while
# the last good copy stays; heartbeat sent, signed, bounded.
import binascii
import json
import vclock
from ykt.net import httpc
from ykt.sec import sigverify
from ykt.net import sync
from ykt.net import heartbeat
from ykt.sec import signed
from t_uplink_srv import LoopServer, Backoffice
import t_signed_vec as V

KEY = b"\x09" * 32
DEV = 42


def setup():
    vclock.reset()


def _b(s):
    return binascii.unhexlify(s)


class Owner:
    """A module that owns one kind: keeps the applied payload (last good)."""

    def __init__(self, refuse=False):
        self.applied = []
        self.refuse = refuse

    def __call__(self, hdr, payload):
        if self.refuse:
            raise ValueError("parse error")
        self.applied.append((hdr.version, bytes(payload)))


def _rig(files, faults=()):
    app = Backoffice(DEV, KEY, files)
    app.faults = list(faults)
    srv = LoopServer(app)
    ring = sigverify.parse_keys(_b(V.KEYS_AB))
    fares, cat, ent = Owner(), Owner(), Owner()
    hs = [sync.MemHandler("fares", fares, 4), sync.MemHandler("catalog", cat, 0),
          sync.MemHandler("entitlements", ent, 0)]
    http = httpc.HttpClient(srv.url(), timeout_ms=500)
    s = sync.Sync(http, DEV, KEY, ring, hs, interval_s=60)
    return app, srv, s, hs, (fares, cat, ent)


def _cycle(srv, s, n=1):
    """Run n sync cycles (each ends in IDLE, then the 60 s interval passes)."""
    for _ in range(n):
        for _ in range(400):
            srv.step()
            s.step()
            vclock.advance_us(2000)
            if s.state == sync.IDLE and s._i > 0:
                break
        s._i = 0
        vclock.advance_us(61 * 1000000)


def test_applies_valid_files_and_refuses_tampered():
    files = {"fares": (5, _b(V.FARES_V5_A)), "catalog": (2, _b(V.CATALOG_V2_B)),
             "entitlements": (3, _b(V.ENT_V3_DEV42_B))}
    app, srv, s, hs, (fares, cat, ent) = _rig(files, ["tamper"])
    try:
        _cycle(srv, s)
        assert fares.applied == [] and hs[0].ver == 4          # last good stays
        assert ("fares", "bad_signature") in s.errors
        assert cat.applied == [(2, b"catalog-v2")] and ent.applied == [(3, b"ent")]
        _cycle(srv, s)                                         # next cycle: good copy
        assert fares.applied == [(5, b"fare-table-v5:bus301=200")]
        assert s.versions() == {"fares": 5, "catalog": 2, "entitlements": 3}
        _cycle(srv, s)                                         # all 304 now
        assert len(fares.applied) == 1 and 0 <= s.age_s("fares") <= 61
        paths = [r[1] for r in app.requests]
        assert "/v1/sync/fares?have=5" in paths
    finally:
        srv.close()


def test_truncated_rollback_foreign_refused_last_good_kept():
    files = {"fares": (5, _b(V.FARES_V5_A))}
    app, srv, s, hs, (fares, cat, ent) = _rig(files, ["short"])
    try:
        _cycle(srv, s)
        assert ("fares", "truncated") in s.errors and hs[0].ver == 4
        app.faults = ["truncated"]
        _cycle(srv, s)                           # cut in transit: a network error
        assert ("fares", "net") in s.errors and hs[0].ver == 4
        _cycle(srv, s)
        assert hs[0].ver == 5
        app.faults = ["push_old"]                # server pushes v5 again to a v5 device
        _cycle(srv, s)
        assert ("fares", "rollback") in s.errors and len(fares.applied) == 1
        app.files["fares"] = (6, _b(V.FARES_V6_C))   # signed by an untrusted key
        _cycle(srv, s)
        assert ("fares", "foreign_key") in s.errors and hs[0].ver == 5
    finally:
        srv.close()


def test_owner_refusal_keeps_version_and_reports():
    files = {"fares": (5, _b(V.FARES_V5_A))}
    app, srv, s, hs, (fares, cat, ent) = _rig(files)
    fares.refuse = True
    try:
        _cycle(srv, s)
        assert hs[0].ver == 4 and ("fares", "apply parse error") in s.errors
    finally:
        srv.close()


def test_network_down_reports_and_retries_next_interval():
    app, srv, s, hs, owners = _rig({"fares": (5, _b(V.FARES_V5_A))}, ["close"])
    try:
        _cycle(srv, s)
        assert ("fares", "net") in s.errors and hs[0].ver == 4
        _cycle(srv, s)
        assert hs[0].ver == 5
    finally:
        srv.close()


def test_denylist_delta_on_matching_base_only():
    app = Backoffice(DEV, KEY, {"denylist": (8, _b(V.DELTA_V8_ON_7_A))})
    srv = LoopServer(app)
    got = []
    dl = sync.MemHandler("denylist", lambda h, p: got.append((h.flags, h.base, bytes(p))), 6)
    s = sync.Sync(httpc.HttpClient(srv.url(), timeout_ms=500), DEV, KEY,
                  sigverify.parse_keys(_b(V.KEYS_AB)), [dl])
    try:
        _cycle(srv, s)                       # held 6: a delta on 7 does not apply
        assert got == [] and s.errors[-1] == ("denylist", "base_mismatch") and dl.ver == 6
        dl.ver = 7
        _cycle(srv, s)
        assert got == [(signed.F_DELTA, 7, b"+0011223344556677")] and dl.ver == 8
    finally:
        srv.close()


def test_keys_rotation_handler():
    ring = sigverify.Keyring()
    kh = sync.KeysHandler(ring)
    saved = []
    kh.persist = lambda p, v: saved.append(v)

    class H:
        version = 3

    kh.commit(H(), None, _b(V.KEYS_AB))
    assert len(ring.keys) == 2 and saved == [3] and kh.version() == 3
    # a key list without any download key would lock the device out: refused
    bad = bytearray(_b(V.KEYS_AB))
    bad[2] = sigverify.U_QR
    bad[2 + 8 + 384 + 1] = sigverify.U_QR
    try:
        kh.commit(H(), None, bytes(bad))
        raise AssertionError("accepted a lock-out key list")
    except ValueError:
        pass
    assert len(ring.keys) == 2


def test_heartbeat_built_bounded_and_sent():
    app = Backoffice(DEV, KEY)
    app.hb_flags = heartbeat.HB_SYNC_NOW
    srv = LoopServer(app)
    http = httpc.HttpClient(srv.url(), timeout_ms=500)

    def collect():
        return heartbeat.build("0.1.0", DEV, 3600, 1795000000, True, {"denylist": 7}, 12, 95, 1004,
                               {"ok": 1, "err": 0}, [("net", "timeout")] * 10, "idle")

    body = collect()
    d = json.loads(body)
    assert len(body) <= heartbeat.MAX_BYTES and d["bl"] == 12 and len(d["e"]) == 4
    hb = heartbeat.Heartbeat(http, DEV, KEY, collect, interval_s=300)
    try:
        for _ in range(200):
            srv.step()
            hb.step()
            vclock.advance_us(2000)
            if hb.sent:
                break
    finally:
        srv.close()
    assert hb.sent == 1 and hb.last_error is None
    assert hb.take_requests() == heartbeat.HB_SYNC_NOW and hb.take_requests() == 0
    assert len(app.heartbeats) == 1
    got = json.loads(app.heartbeats[0])
    del got["heap"], d["heap"]                   # free heap moves between calls
    assert got == d


def test_huge_heartbeat_errors_are_trimmed():
    long_errs = [("x" * 30, "y" * 90)] * 4
    b = heartbeat.build("0.1.0", DEV, 1, 2, False, {"denylist": 1, "fares": 2, "catalog": 3},
                        0, -1, None, {}, long_errs)
    assert len(b) <= heartbeat.MAX_BYTES
    assert len(json.loads(b)["e"][0][0]) == 16
