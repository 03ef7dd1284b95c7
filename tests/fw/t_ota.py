# Over-the-air application updates on a virtual device: a good bundle goes
# live through otaboot's trial; bad signature, download-only key, wrong board,
# older version, too new an interpreter and a truncated download are refused;
# an interrupted download resumes; taps are served while it downloads.
import vclock
import otaboot
from ykt.ota import updater as ota
import t_ota_kit as K


def setup():
    vclock.reset()


def _update(dev, path, version, app=None, **kw):
    http = K.FileHttp(path, version)
    up = dev.updater(http, interval_s=60, **kw)
    up.request_now()
    st = K.drive(up, app)
    return up, http, st


def test_good_update_goes_live():
    dev = K.Device()
    try:
        dev.boot()
        assert dev.version() == "" and dev.takes_taps()
        b = K.scratch("good.ykb")
        K.build(b, "0.2.0")
        up, http, st = _update(dev, b, "0.2.0", dev.app)
        assert st == ota.READY and up.reboot_wanted, up.errors
        assert otaboot.status(dev.root)["pending"] == "0.2.0"
        up = http = None
        dev.reboot("hard")
        s = otaboot.status(dev.root)
        assert s["version"] == "0.2.0" and s["active"] == "a" and not s["pending"], (s, dev.log)
        assert dev.takes_taps()
        # a later update goes into the other slot; the running one is kept
        K.build(b, "0.3.0")
        up, http, st = _update(dev, b, "0.3.0", dev.app)
        assert st == ota.READY, up.errors
        up = http = None
        dev.reboot("hard")
        s = otaboot.status(dev.root)
        assert s["version"] == "0.3.0" and s["active"] == "b", (s, dev.log)
        assert dev.takes_taps()
    finally:
        dev.close()


def _refused(build_kw, up_kw=None, version="0.2.0"):
    dev = K.Device()
    try:
        app = dev.boot()
        b = K.scratch("bad.ykb")
        kw = {"files": [("ykt/x.py", b"x = 1\n")]}
        kw.update(build_kw)
        K.build(b, version, **kw)
        up, http, st = _update(dev, b, version, app, **(up_kw or {}))
        assert st == ota.IDLE and not up.reboot_wanted
        assert otaboot.status(dev.root)["pending"] == ""
        dev.reboot("hard")
        assert dev.version() == "" and dev.takes_taps()
        return up.errors
    finally:
        dev.close()


def test_bad_signature_refused():
    assert _refused({"tamper": True, "files": None}) == ["refused bad_signature"]


def test_download_key_cannot_sign_a_release():
    assert _refused({"signer": "dl"}) == ["refused foreign_key"]


def test_wrong_board_refused():
    assert _refused({"boards": ("bus_validator", "turnstile")}) == ["refused wrong_board"]


def test_interpreter_too_old_refused():
    assert _refused({"min_interp": ota.interp_int((1, 24, 0))}) == ["refused interpreter_too_old"]


def test_older_version_refused():
    # the offer claims 0.2.0 but the signed envelope is 0.0.5: refused by
    # the verifier (no rollback), whatever the offer said
    errs = _refused({"env_version": ota.ver_int("0.0.5")}, {"running": "0.1.0"})
    assert errs == ["refused rollback"], errs


def test_truncated_download_resumes_then_verifies():
    dev = K.Device()
    try:
        app = dev.boot()
        b = K.scratch("small.ykb")
        size = K.build(b, "0.2.0", files=[("ykt/x.py", b"x = 1\n" * 900)])
        http = K.FileHttp(b, "0.2.0")
        http.cut_at = 3000
        up = dev.updater(http, interval_s=60)
        st = K.drive(up, app)
        assert st == ota.IDLE and up.errors == ["download cut at 3000"], up.errors
        # a reboot in between: the part on flash and ota/dl.json survive
        app = dev.reboot("power")
        up = dev.updater(http, interval_s=60)
        assert up.offer is not None and up.offer["version"] == "0.2.0"
        st = K.drive(up, app)
        assert st == ota.READY, up.errors
        assert http.requests[-1] == ("/v1/ota/bundle/1", "bytes=3000-"), http.requests
        assert http.sent == size
    finally:
        dev.close()


def test_truncated_bundle_refused():
    dev = K.Device()
    try:
        app = dev.boot()
        b = K.scratch("small.ykb")
        size = K.build(b, "0.2.0", files=[("ykt/x.py", b"x = 2\n" * 100)])
        # the offer (and the server) only ever has the first size-40 bytes
        http = K.FileHttp(b, "0.2.0", size=size - 40)
        up = dev.updater(http, interval_s=60)
        st = K.drive(up, app)
        assert st == ota.IDLE and up.errors == ["refused truncated"], up.errors
        assert otaboot.status(dev.root)["pending"] == ""
    finally:
        dev.close()


def test_taps_served_while_downloading():
    dev = K.Device()
    try:
        app = dev.boot()
        b = K.scratch("small.ykb")
        K.build(b, "0.2.0", files=[("ykt/x.py", b"y = 3\n" * 3000)])
        http = K.FileHttp(b, "0.2.0")
        up = dev.updater(http, interval_s=60)
        ev = []
        app.on_event = lambda tap, kind, msg: ev.append(http.sent)
        dev.w.field.present("ssc_nanning", after_us=20000, for_us=300000)
        st = K.drive(up, app)
        assert st == ota.READY
        assert len(ev) == 1 and 0 < ev[0] < http.sent, (ev, http.sent)
    finally:
        dev.close()
