"""Operator access: wrong passwords throttled per account and per address
(429 with Retry-After on the injected clock, the lockout audited), security
headers on every response, session cookies HttpOnly/SameSite and Secure over
TLS, the password policy; in chromium, the dashboard works under its
Content-Security-Policy and a framed dashboard does not render."""
import os

import pytest
from fastapi.testclient import TestClient

import conftest  # noqa: F401
from ykt_tools.backoffice import auth, db
from ykt_tools.backoffice.app import create_app

PW = "access test password"
T0 = 1795660000


@pytest.fixture
def app(tmp_path):
    clock = [T0]
    db.set_clock(lambda: clock[0])
    a = create_app("sqlite:///" + str(tmp_path / "bo.db"))
    a.state.clock = clock
    auth.add_operator(a.state.eng, "olga", "operator", PW)
    yield a
    db.set_clock(None)


def _audit(app, action):
    with app.state.eng.connect() as c:
        return [dict(r._mapping) for r in c.execute(auth.S.audit.select().where(auth.S.audit.c.action == action))]


def test_account_locked_after_20_wrong_passwords_for_a_stated_time(app):
    c = TestClient(app)
    for i in range(auth.ACCOUNT_FAILS):
        r = c.post("/admin/login", json={"name": "olga", "password": "wrong password %d" % i})
        assert r.status_code == 401, (i, r.text)
        app.state.clock[0] += 5
    last = app.state.clock[0] - 5
    r = c.post("/admin/login", json={"name": "olga", "password": PW})     # the right one: still refused
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) == last + auth.LOCK_S - app.state.clock[0]
    assert "retry after" in r.json()["detail"]
    assert len(_audit(app, "login.fail")) == auth.ACCOUNT_FAILS
    (lock,) = _audit(app, "login.lockout")                              # audited once, with its end
    assert lock["object"] == "olga" and '"until": %d' % (last + auth.LOCK_S) in lock["detail"]
    app.state.clock[0] = last + auth.LOCK_S - 1
    assert c.post("/admin/login", json={"name": "olga", "password": PW}).status_code == 429
    app.state.clock[0] = last + auth.LOCK_S
    r = c.post("/admin/login", json={"name": "olga", "password": PW})
    assert r.status_code == 200, r.text
    # a success starts the count again
    assert c.post("/admin/login", json={"name": "olga", "password": "nope nope nope"}).status_code == 401
    assert c.post("/admin/login", json={"name": "olga", "password": PW}).status_code == 200


def test_19_failures_do_not_lock_and_old_failures_expire(app):
    c = TestClient(app)
    for i in range(auth.ACCOUNT_FAILS - 1):
        assert c.post("/admin/login", json={"name": "olga", "password": "x" * 12}).status_code == 401
    app.state.clock[0] += auth.WINDOW_S + 1                             # those fall out of the window
    for i in range(auth.ACCOUNT_FAILS - 1):
        assert c.post("/admin/login", json={"name": "olga", "password": "x" * 12}).status_code == 401
    assert c.post("/admin/login", json={"name": "olga", "password": PW}).status_code == 200


def test_one_address_trying_many_names_is_locked(app):
    auth.add_operator(app.state.eng, "victor", "viewer", PW + " v")
    c = TestClient(app)
    for i in range(auth.SOURCE_FAILS):
        assert c.post("/admin/login", json={"name": "guess%d" % i, "password": "y" * 12}).status_code == 401
    r = c.post("/admin/login", json={"name": "victor", "password": PW + " v"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) == auth.LOCK_S
    (lock,) = _audit(app, "login.lockout")
    assert '"scope": "address"' in lock["detail"] and lock["actor"] == "anon@testclient"
    # another address is not locked out by this one
    assert auth.login(app.state.eng, "victor", PW + " v", source="10.0.0.9")[1]["name"] == "victor"


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/dashboard.js", "/admin/api/me", "/openapi.json",
                                  "/v1/time", "/nowhere"])
def test_security_headers_on_every_response(app, path):
    r = TestClient(app).get(path)
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("scheme,secure", [("https", True), ("http", False)])
def test_session_cookie_flags(app, scheme, secure):
    c = TestClient(app, base_url="%s://testserver" % scheme)
    r = c.post("/admin/login", json={"name": "olga", "password": PW})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert ("; secure" in cookie) == secure


@pytest.mark.parametrize("pw,why", [("short pass", "characters"), ("aaaaaaaaaaaaaaa", "different"),
                                    ("my name is olga!", "account name"), ("Password1234", "common"),
                                    ("x" * 257, "characters")])
def test_password_policy_on_operator_creation(app, pw, why):
    with pytest.raises(ValueError) as e:
        auth.add_operator(app.state.eng, "olga2" if why != "account name" else "olga", "viewer", pw)
    assert why in str(e.value)
    assert auth.password_problem("a fine long passphrase") is None


@pytest.mark.browser
def test_dashboard_works_under_its_csp_and_does_not_render_framed(browser, tmp_path):
    from ykt_tools.backoffice import api
    url = "sqlite:///" + str(tmp_path / "csp.db")
    auth.add_operator(api.engine(url), "olga", "operator", PW)
    base, stop = api.start(url)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        violations = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        resp = page.goto(base + "/")
        assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
        page.evaluate("() => { window.__csp = []; document.addEventListener('securitypolicyviolation', "
                      "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI)); }")
        page.wait_for_selector("#login-box:not([hidden])")
        page.fill("#login-name", "olga")
        page.fill("#login-password", PW)
        page.click("#login-submit")
        page.wait_for_selector("#login-box", state="hidden")
        conftest.wait_js(page, "document.querySelectorAll('svg, canvas, table tbody tr').length > 0")
        assert page.evaluate("() => window.__csp") == []
        assert violations == []
        # the same page inside a frame of another origin: refused by the browser
        other = browser.new_page()
        other.set_content('<iframe id="f" src="%s/dashboard/" width="800" height="600"></iframe>' % base)
        other.wait_for_timeout(1500)
        frame = [f for f in other.frames if f != other.main_frame][0]
        assert frame.query_selector("#login-box") is None
        assert frame.query_selector("#login-name") is None
        # a locked account: the page says so, in its language, with the time
        eng = api.engine(url)
        auth.add_operator(eng, "boris", "viewer", PW + " b")
        for i in range(auth.ACCOUNT_FAILS):
            with pytest.raises(auth.AuthError):
                auth.login(eng, "boris", "wrong password %d" % i)
        page = browser.new_page()
        page.goto(base + "/")
        page.wait_for_selector("#login-box:not([hidden])")
        page.fill("#login-name", "boris")
        page.fill("#login-password", PW + " b")
        page.click("#login-submit")
        conftest.wait_js(page, "document.getElementById('login-err').textContent.length > 0")
        assert page.inner_text("#login-err") == "登录失败次数过多，请 15 分钟后再试"
    finally:
        stop()
