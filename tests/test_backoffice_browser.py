"""Fleet dashboard in a real browser (Debian's chromium driven by Playwright):
login, devices with their versions, the taps-per-hour chart, and reporting a
card lost by identity. SKIPs with a reason when /usr/bin/chromium is missing
(outside CI; CI fails instead)."""
import os
import time

import pytest

import conftest  # noqa: F401

os.environ.setdefault("YKT_RSA_BITS", "2048")

PW = "dashboard password"




@pytest.mark.browser
def test_dashboard_login_fleet_chart_and_report_lost(browser, tmp_path):
    import httpx
    from ykt.net import heartbeat
    from ykt_tools.backoffice import api, auth, ops, testing

    url = "sqlite:///" + str(tmp_path / "dash.db")
    base, stop = api.start(url)
    try:
        eng = api.engine(url)
        auth.add_operator(eng, "olga", "operator", PW)
        d = api.provision_device(url, "bus-301-a", entry=301)
        key = bytes.fromhex(d["key"])
        now = int(time.time())
        r = httpx.post(base + "/v1/taps", content=testing.batch(d["id"], key, range(1, 31), t0=now - 600, step=10))
        assert r.status_code == 200
        hb = heartbeat.build("1.2.3", d["id"], 100, now, True, {"denylist": 0, "fares": 7, "catalog": 3},
                             4, 30, 30, {"ok": 30, "err": 1, "resets": 0}, [])
        r = httpx.post(base + "/v1/heartbeat", content=hb,
                       headers=testing.auth_headers(d["id"], key, "POST", "/v1/heartbeat", hb))
        assert r.status_code == 200

        page = browser.new_page()
        page.goto(base + "/")
        page.wait_for_selector("#login-box:not([hidden])")
        page.fill("#login-name", "olga")
        page.fill("#login-password", "wrong password")
        page.click("#login-submit")
        page.wait_for_function("document.getElementById('login-err').textContent.length > 0")
        page.fill("#login-password", PW)
        page.click("#login-submit")
        page.wait_for_selector("#devices tbody tr")
        row = page.inner_text("#devices tbody tr")
        assert "bus-301-a" in row and "1.2.3" in row and "30" in row
        assert page.locator("#chart rect.bar").count() == 24
        heights = [float(h) for h in page.eval_on_selector_all("#chart rect.bar", "els => els.map(e => e.getAttribute('height'))")]
        assert max(heights) > 0
        # report a card lost by its identity: tokenized server-side
        page.select_option("#card-by", "card_id")
        page.fill("#card-value", "450100d1560000050000000000000007")
        page.click("#card-submit")
        page.wait_for_function("document.getElementById('card-result').textContent.includes('deny list version 1')")
        assert page.input_value("#card-value") == ""
        page.wait_for_function("document.getElementById('dl-info').textContent.includes('version 1')")
        assert "1 behind" in page.inner_text("#devices tbody tr")
        tok = ops.tokenize(eng, card_id="450100d1560000050000000000000007").hex()
        assert ops.card_history(eng, tok)[0]["actor"] == "op:olga"
        page.click("#sync-all")
        page.wait_for_function("document.getElementById('sync-result').textContent.includes('1 devices')")
        page.click("#logout")
        page.wait_for_selector("#login-box:not([hidden])")
        assert httpx.get(base + "/admin/api/fleet").status_code == 401
    finally:
        stop()
