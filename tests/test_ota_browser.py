"""The OTA roll-out on the fleet dashboard in a real browser (Debian's chromium
via Playwright): a canary roll-out shows its canaries live and the rest not
yet offered; after `all`, the whole fleet updated. SKIPs with a reason when
/usr/bin/chromium is missing (outside CI; CI fails instead)."""
import os
import sys

import pytest

import conftest  # noqa: F401
from conftest import ROOT

os.environ.setdefault("YKT_RSA_BITS", "2048")
sys.path.insert(0, os.path.join(ROOT, "tests", "fw"))

PW = "rollout password"




def _row(page, rid):
    sel = "#rollout-table tr[data-rollout='%d']" % rid
    page.wait_for_selector(sel)
    return {k: page.inner_text(sel + " td." + k) for k in ("live", "offered", "trial", "rolled-back")}


@pytest.mark.browser
def test_dashboard_shows_canary_then_whole_fleet(browser, tmp_path):
    import httpx
    import t_ota_kit as K
    from ykt_tools.backoffice import api, auth, rollout, testing
    from ykt_tools.backoffice.app import create_app
    from ykt_tools.backoffice.server import run_in_thread

    url = "sqlite:///" + str(tmp_path / "dash.db")
    base, stop = run_in_thread(url, app=rollout.install(create_app(url)))
    try:
        eng = api.engine(url)
        auth.add_operator(eng, "olga", "operator", PW)
        devs = [api.provision_device(url, "bus-%02d" % i, entry=301) for i in range(6)]
        p = str(tmp_path / "b.ykb")
        K.build(p, "0.2.0", files=[("ykt/x.py", b"x = 1\n")])
        rel = rollout.add_release(eng, open(p, "rb").read())
        rid = rollout.start_rollout(eng, rel["id"], "entry:301", canary=[devs[0]["id"], devs[1]["id"]])

        def poll(d, have="0.1.0", st="ok"):
            path = "/v1/ota/offer?have=%s&board=bus_validator&st=%s" % (have, st)
            h = testing.auth_headers(d["id"], bytes.fromhex(d["key"]), "GET", path)
            return httpx.get(base + path, headers=h).status_code

        for d in devs:
            poll(d)
        poll(devs[0], "0.2.0")                         # canary 1 live
        poll(devs[1], "0.2.0", "trial")                # canary 2 on trial

        page = browser.new_page()
        page.goto(base + "/")
        if page.locator("script[src='rollout.js']").count() == 0:
            # until index.html carries the <script src="rollout.js"> line
            page.add_script_tag(url=base + "/dashboard/rollout.js")
        page.wait_for_selector("#login-box:not([hidden])")
        page.fill("#login-name", "olga")
        page.fill("#login-password", PW)
        page.click("#login-submit")
        page.wait_for_selector("#rollout-table tr[data-rollout]")
        row = page.inner_text("#rollout-table tr[data-rollout='%d']" % rid)
        assert "0.2.0" in row and "entry:301" in row and "1/6" in row, row
        assert page.get_attribute("#rollout-table tr[data-rollout='%d'] td.stage" % rid, "data-stage") == "canary"
        r = _row(page, rid)
        assert r["live"] == "1" and r["trial"] == "1" and r["offered"] == "0", r

        rollout.set_stage(eng, rid, "all")
        for d in devs:
            assert poll(d, "0.2.0" if d is devs[0] else "0.1.0") in (200, 204)
        for d in devs:
            poll(d, "0.2.0")
        conftest.wait_js(page, "document.querySelector(\"#rollout-table tr[data-rollout='%d'] td.live\")"
                               ".textContent === '6'" % rid, timeout=15000)
        row = page.inner_text("#rollout-table tr[data-rollout='%d']" % rid)
        assert "6/6" in row, row
        assert page.get_attribute("#rollout-table tr[data-rollout='%d'] td.stage" % rid, "data-stage") == "all"
        assert page.eval_on_selector("#rollout-table tr[data-rollout='%d'] meter" % rid, "m => m.value") == 6
    finally:
        stop()
