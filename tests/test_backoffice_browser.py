"""The operator dashboard in a real browser (Debian's chromium driven by
Playwright), in Chinese (the default) and in English: login, the page opens
on the latest service day with its figures and charts, the day picker,
reports, device health with alerts, card lookup (the registry answer for a
card number), reporting a card lost, arrears paid from the page; every
string comes from the catalogs (no key left showing), and the layout holds
in both languages (nothing runs off the page or out of its box). SKIPs with
a reason when /usr/bin/chromium is missing (outside CI; CI fails instead)."""
import json
import os

import pytest

import conftest  # noqa: F401

os.environ.setdefault("YKT_RSA_BITS", "2048")

PW = "dashboard password"
STATIC = os.path.join(conftest.ROOT, "host_tools", "ykt_tools", "backoffice", "static")
T0 = 1795660000          # 2026-11-26 10:26 UTC+8
DAY = 20261126
CARD_ID = "450100d1560000050000000000000007"

# Layout check: no horizontal page scroll; no text sticking out of its box;
# nothing outside a scrolling table box reaches past the right edge.
LAYOUT_JS = """() => {
  const bad = [];
  const W = window.innerWidth;
  if (document.documentElement.scrollWidth > W + 1) bad.push("page " + document.documentElement.scrollWidth + " > " + W);
  const sel = "button, th, dt, dd, h1, h2, h3, nav a, label, .legend .key, p, td";
  for (const el of document.querySelectorAll(sel)) {
    if (!el.offsetParent) continue;
    const r = el.getBoundingClientRect();
    const scroller = el.closest(".scroll");
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && el.tagName !== "TD")
      bad.push("overflows its box: " + el.tagName + " " + (el.id || el.textContent.trim().slice(0, 24)));
    if (!scroller && r.right > W + 1)
      bad.push("past the edge: " + el.tagName + " " + (el.id || el.textContent.trim().slice(0, 24)) + " " + r.right);
  }
  return bad;
}"""
KEYS_JS = """() => Array.from(document.querySelectorAll("body *")).filter(e => e.offsetParent !== null
  && e.children.length === 0 && /^[a-z_]+\\.[a-z_.-]+$/.test(e.textContent.trim())).map(e => e.textContent.trim())"""


def _catalog(lang):
    with open(os.path.join(STATIC, "i18n", lang + ".json"), encoding="utf-8") as f:
        return json.load(f)


def test_catalogs_have_the_same_keys_and_every_key_used_exists():
    import re
    zh, en = _catalog("zh-CN"), _catalog("en")
    assert set(zh) == set(en)
    assert all(v.strip() for v in zh.values()) and all(v.strip() for v in en.values())
    # the Chinese catalog is Chinese: most values hold CJK characters
    cjk = sum(1 for v in zh.values() if re.search("[\u4e00-\u9fff]", v))
    assert cjk > 0.8 * len(zh)
    used = set()
    for name in ("index.html", "dashboard.js", "rollout.js"):
        with open(os.path.join(STATIC, name), encoding="utf-8") as f:
            text = f.read()
        used |= set(re.findall(r'data-i18n(?:-[a-z-]+)?="([a-z0-9_.-]+)"', text))
        used |= set(re.findall(r'\bt\("([a-z0-9_.-]+)"', text))
    # t("reason." + r): a prefix, completed at run time (checked in the browser)
    missing = sorted(k for k in used if k not in en and not (k.endswith(".") and any(x.startswith(k) for x in en)))
    assert not missing, missing
    # reasons and outcomes the back office can name all have texts
    from ykt_tools.backoffice import dash
    assert not [r for r in dash.REASONS.values() if "reason." + r not in en]


def test_no_inline_script_or_style():
    """A strict Content-Security-Policy (script-src 'self'; style-src 'self')
    holds: no inline <script>, no style attribute or element, no handler
    attribute, no .style writes in the scripts."""
    import re
    with open(os.path.join(STATIC, "index.html"), encoding="utf-8") as f:
        html = f.read()
    assert 'lang="zh-CN"' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html)
    for name in ("dashboard.js", "rollout.js", "charts.js", "i18n.js"):
        with open(os.path.join(STATIC, name), encoding="utf-8") as f:
            js = f.read()
        assert ".style" not in js and "innerHTML" not in js and "eval(" not in js, name


def _fixture_db(url):
    """A settled day with two buses, a shift, a refusal, a card in arrears
    and a device that stopped reporting."""
    from ykt_tools.backoffice import api, auth, collect, ops, settle
    from ykt_tools.build import fares as fc
    from test_backoffice_report import _tap
    from test_backoffice_admin import _ingest, _src
    from ykt import taprec as T
    eng = api.engine(url)
    auth.add_operator(eng, "olga", "operator", PW)
    ops.publish_file(eng, "catalog", fc.compile_catalog(open(os.path.join(conftest.ROOT, "data", "catalog.json")).read()))
    ops.publish_file(eng, "fares", fc.compile_fares(_src("bus_nanning_301.txt")))
    a = api.provision_device(url, "bus-301-a", entry=301)
    b = api.provision_device(url, "bus-301-b", entry=301)
    tok = ops.tokenize(eng, card_id=CARD_ID).hex()
    rows = [_tap(a["id"], 1, "d0" * 8, T0, 0, reason=T.R_SHIFT_ON, shift=1),
            _tap(a["id"], 2, tok, T0 + 60, 200, shift=1),
            _tap(a["id"], 3, "bb" * 8, T0 + 120, 100, conc=T.C_ELDERLY_HALF, reason=T.R_CONCESSION, shift=1),
            _tap(a["id"], 4, "cc" * 8, T0 + 3700, 0, outcome=T.OUT_DENY, reason=T.R_EXPIRED, shift=1),
            _tap(b["id"], 1, "ee" * 8, T0 + 7300, 200)]
    rows += [_tap(b["id"], 10 + i, "%02x" % i * 8, T0 + 86400 * -1 + i * 60, 200) for i in range(3)]  # the day before
    _ingest(eng, rows)
    settle.settle_day(eng, DAY)
    collect.set_account(eng, "GXRCU", "MD-1", token=tok)
    f = collect.create(eng, DAY)["files"][0]
    collect.import_return(eng, collect.return_file(f["body"], {1: "AM04"}))
    return eng, a, b, tok


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_dashboard_in_each_language(browser, tmp_path, lang):
    import httpx
    from ykt.net import heartbeat
    from ykt_tools.backoffice import api, db, ops, testing

    url = "sqlite:///" + str(tmp_path / "dash.db")
    db.set_clock(lambda: T0 + 4 * 3600)        # the back office's "now": the afternoon of the day
    base, stop = api.start(url)
    try:
        eng, a, b, tok = _fixture_db(url)
        db.set_clock(lambda: T0 + 4 * 3600 + 1200)   # 20 min on: bus-b (last upload) is offline
        key = bytes.fromhex(a["key"])
        hb = heartbeat.build("1.2.3", a["id"], 100, T0, True, {"denylist": 0, "fares": 7, "catalog": 4},
                             4, 30, 30, {"ok": 0, "err": 3, "resets": 1}, [])
        r = httpx.post(base + "/v1/heartbeat", content=hb,
                       headers=testing.auth_headers(a["id"], key, "POST", "/v1/heartbeat", hb))
        assert r.status_code == 200
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/")
        assert page.get_attribute("html", "lang") == "zh-CN"          # Chinese by default
        page.wait_for_selector("#login-box:not([hidden])")
        assert page.inner_text("#login-submit") == "登录"
        if lang == "en":
            page.click("#lang-switch")
            conftest.wait_js(page, "document.documentElement.lang === 'en'")
            assert page.inner_text("#login-submit") == "Log in"
        page.fill("#login-name", "olga")
        page.fill("#login-password", "wrong password")
        page.click("#login-submit")
        conftest.wait_js(page, "document.getElementById('login-err').textContent.length > 0")
        assert page.inner_text("#login-err") == ("用户名或密码错误" if lang == "zh-CN" else "Wrong name or password")
        page.fill("#login-password", PW)
        page.click("#login-submit")
        page.wait_for_selector("body[data-ready='1']")
        # the latest day with taps, its figures and charts
        assert page.input_value("#day-picker") == str(DAY)
        assert page.get_attribute("#sum-taps", "data-value") == "4"
        assert page.get_attribute("#sum-revenue", "data-value") == "500"
        assert page.get_attribute("#sum-shifts", "data-value") == "1"
        assert page.locator("#chart-device rect.bar").count() == 3        # bus-a at 10 h and 11 h, bus-b at 12 h
        assert page.locator("#refusals tr[data-reason='expired']").count() == 1
        assert page.inner_text("#refusals tr[data-reason='expired'] td") == ("卡已过期" if lang == "zh-CN" else "card expired")
        assert page.get_attribute("#report-note", "data-reconciled") == "1"
        assert page.locator("#report-table tbody tr").count() == 1       # route 301
        page.select_option("#report-by", "vehicle")
        conftest.wait_js(page, "document.querySelectorAll('#report-table tbody tr').length === 2")
        assert page.get_attribute("#report-table tfoot td[data-col='fares']", "data-value") == "500"
        # the day picker: the day before
        page.click("#day-prev")
        conftest.wait_js(page, "document.getElementById('sum-taps').dataset.value === '3'")
        assert page.input_value("#day-picker") == str(DAY - 1)
        page.select_option("#day-picker", str(DAY))
        conftest.wait_js(page, "document.getElementById('sum-taps').dataset.value === '4'")
        # device health: bus-a's reader is down, bus-b never reported
        page.wait_for_selector("#devices tbody tr[data-device]")
        alerts_a = page.get_attribute("#devices tr[data-device='%d']" % a["id"], "data-alerts")
        alerts_b = page.get_attribute("#devices tr[data-device='%d']" % b["id"], "data-alerts")
        assert "reader_down" in alerts_a and "denylist_behind" in alerts_a and alerts_b == "offline", \
            (alerts_a, alerts_b)
        # card lookup by identification code: pseudonymous history, arrears
        page.select_option("#lookup-by", "card_id")
        page.fill("#lookup-value", CARD_ID)
        page.click("#lookup-submit")
        page.wait_for_selector("#lookup-result:not([hidden])")
        assert page.inner_text("#lookup-token") == tok and page.input_value("#lookup-value") == ""
        assert page.get_attribute("#lookup-status", "data-status") == "unpaid"
        assert page.get_attribute("#lookup-arrears", "data-amount") == "200"
        assert page.locator("#lookup-taps tbody tr").count() == 1
        # by a card number the card registry does not know: said plainly
        page.select_option("#lookup-by", "card_no")
        page.fill("#lookup-value", "A12345678")
        page.click("#lookup-submit")
        conftest.wait_js(page, "document.getElementById('lookup-msg').dataset.status === '404'")
        assert page.inner_text("#lookup-msg") == _catalog(lang)["lookup.registry"]
        # layout holds with this language's text, wide and narrow
        for w in (1280, 820):
            page.set_viewport_size({"width": w, "height": 900})
            bad = page.evaluate(LAYOUT_JS)
            assert not bad, (lang, w, bad)
        assert page.evaluate(KEYS_JS) == [] and page.evaluate("window.ykt.i18n.missing()") == []
        # arrears paid from the page: the card comes off the deny list
        page.wait_for_selector("#arrears tr[data-token='%s'] button.pay" % tok)
        page.fill("#arrears tr[data-token='%s'] input.pay-ref" % tok, "desk-0001")
        page.click("#arrears tr[data-token='%s'] button.pay" % tok)
        conftest.wait_js(page, "document.getElementById('pay-result').dataset.dlVer > 0")
        conftest.wait_js(page, "document.querySelectorAll('#arrears tbody tr').length === 0")
        assert page.is_visible("#arrears-none")
        # report a card lost by its identity
        page.select_option("#card-by", "card_id")
        page.fill("#card-value", CARD_ID)
        page.click("#card-submit")
        conftest.wait_js(page, "document.getElementById('card-result').dataset.dlVer === '3'")
        assert page.input_value("#card-value") == ""
        assert ops.card_history(eng, tok)[-1]["actor"] == "op:olga"
        page.click("#sync-all")
        conftest.wait_js(page, "document.getElementById('sync-result').dataset.devices === '2'")
        page.click("#logout")
        page.wait_for_selector("#login-box:not([hidden])")
        assert httpx.get(base + "/admin/api/fleet").status_code == 401
    finally:
        stop()
        db.set_clock(None)
