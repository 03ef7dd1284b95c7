"""Issue 6's end-to-end check: an operator reports a card lost on the
dashboard (headless chromium), and a simulated validator — the real firmware
on the MicroPython unix port with an ESP32-like heap, synced from this back
office — refuses that card after its next sync."""
import json
import os

import conftest
from conftest import ROOT

PW = "dashboard password"
CARD_ID = "450100d156000005202103150000a001"   # host_tools/simhw/cards/ssc_nanning.json


def bus_and_dashboard(url, base, browser, before=None):
    """The back office at `base` with the catalog and route 301's fares, one
    simulated bus validator (the real firmware, MicroPython, 256K) booted and
    synced for 120 s of virtual time, and a chromium page logged in as
    operator olga. before(eng) runs before the device is provisioned.
    -> (device process, virtual ms reached, page)."""
    from ykt_tools.build import fares as fares_compile
    from ykt_tools.sim import scenario
    from ykt_tools.backoffice import api, auth

    eng = api.engine(url)
    auth.add_operator(eng, "olga", "operator", PW)
    with open(os.path.join(ROOT, "data", "catalog.json")) as f:
        api.publish(url, "catalog", fares_compile.compile_catalog(f.read()))
    with open(os.path.join(ROOT, "data", "fares", "bus_nanning_301.txt")) as f:
        api.publish(url, "fares", fares_compile.compile_fares(f.read()))
    if before is not None:
        before(eng)
    with open(os.path.join(ROOT, "data", "devices", "bus-nn301-0001.json")) as f:
        prof = json.load(f)
    reg = api.provision_device(url, "bus-301", entry=301)
    conftest.need_runtime("micropython")
    dev = scenario.DeviceProc("bus", "micropython", "256K", lambda s: None)
    url_dev, net = scenario.device_net(base)       # the simulated network: load cannot make it time out
    dev.call({"cmd": "init", "board": "bus_validator", "device_id": reg["id"], "backoffice": url_dev, "net": net,
              "dev_key": reg["key"], "tok_key": reg["token_key"], "keyring": reg["keyring"].hex(),
              "profile": prof, "sync_interval_s": 60})
    page = browser.new_page()
    page.goto(base + "/")
    page.wait_for_selector("#login-box:not([hidden])")
    page.fill("#login-name", "olga")
    page.fill("#login-password", PW)
    page.click("#login-submit")
    page.wait_for_selector("#devices tbody tr")
    return dev, 120000, page


def test_card_reported_lost_on_dashboard_is_refused_by_a_validator(browser, tmp_path):
    from ykt_tools.backoffice import api

    url = "sqlite:///" + str(tmp_path / "bo.db")
    base, stop = api.start(url)
    dev = None
    try:
        dev, t, page = bus_and_dashboard(url, base, browser)
        r = dev.call({"cmd": "run", "until": t, "events": [{"at": t - 60000, "card": "ssc_nanning"}]})
        assert [x["outcome"] for x in r["taps"]] == [0], r["taps"]        # accepted before the report

        page.select_option("#card-by", "card_id")
        page.fill("#card-value", CARD_ID)
        page.click("#card-submit")
        conftest.wait_js(page, "document.getElementById('card-result').dataset.dlVer === '1'")

        # one sync interval later, the same card on the same validator
        r = dev.call({"cmd": "run", "until": t + 75000, "events": [{"at": t + 70000, "card": "ssc_nanning"}]})
        from ykt import taprec
        assert [(x["outcome"], x["reason"]) for x in r["taps"]] == [(taprec.OUT_DENY, taprec.R_DENY_LOST)], r["taps"]
        st = dev.call({"cmd": "status"})
        assert st["versions"]["denylist"] == 1 and st["memory_errors"] == 0
    finally:
        if dev is not None:
            dev.close()
        stop()
