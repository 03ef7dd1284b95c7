"""`make run` as a newcomer meets it: `ykt run` on a terminal (a pty here)
plays scenarios/day.json, prints each tap with the voice prompt the bus's
module played, settles the day, then keeps the back office serving with a
demo operator whose one-time password it prints, until Ctrl-C. One run, all
checked: the prompts per tap in the log, the day's reports reconcile with
its settlement for every --by, and chromium logs in with the printed
credentials and sees the scripted day with its taps (in Chinese, then
English). Then Ctrl-C stops it and the demo operator is disabled."""
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest

import conftest

DAY = 20261126


def _read_until(fd, buf, pattern, timeout):
    t0 = time.monotonic()
    while not re.search(pattern, buf[0]):
        if time.monotonic() - t0 > timeout:
            raise AssertionError("no %r within %d s; output so far:\n%s" % (pattern, timeout, buf[0][-4000:]))
        r, _, _ = select.select([fd], [], [], 5)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:          # EIO: the other side closed
                data = b""
            if not data:
                raise AssertionError("ykt run ended before %r:\n%s" % (pattern, buf[0][-4000:]))
            buf[0] += data.decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.mark.micropython
@pytest.mark.browser
def test_make_run_on_a_terminal(browser, tmp_path):
    conftest.need_runtime("micropython")
    env = dict(os.environ, PYTHONPATH=os.path.join(conftest.ROOT, "host_tools") + os.pathsep
               + os.path.join(conftest.ROOT, "firmware"))
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "ykt_tools", "run", "--workdir", str(tmp_path)], stdin=slave,
                         stdout=slave, stderr=slave, cwd=conftest.ROOT, env=env, start_new_session=True)
    os.close(slave)
    buf = [""]
    try:
        _read_until(master, buf, r"password:\s+(\S+)", 2400)
        out = buf[0]
        assert "RESULT: ok" in out, out[-4000:]
        url = re.search(r"dashboard: (http://\S+?)/?\n", out).group(1)
        user = re.search(r"operator:\s+(\S+)", out).group(1)
        pw = re.search(r"password:\s+(\S+)", out).group(1)

        # 1. the prompts the bus's voice module played, per tap
        bus = [ln for ln in out.splitlines() if re.match(r"\d\d:\d\d:\d\d  bus +seq", ln)]
        assert len(bus) > 40 and all("voice: " in ln for ln in bus), bus[:5]
        def line(hms):
            return next(ln for ln in bus if ln.startswith(hms))
        assert "司机签到" in line("06:01:00") and "shift_on" in line("06:01:00")
        assert "老年卡" in line("06:06:00") and "残疾人卡" in line("06:07:00") and "优抚卡" in line("06:08:00")
        assert "卡已过期" in line("06:09:00") and "卡已挂失" in line("06:21:05") and "普通卡" in line("06:05:00")
        assert "司机签退" in line("15:50:07")
        assert "vol 10" in line("06:05:00") and "vol 22" in line("12:17:01")   # quiet hours end 06:30
        for name in ("ferry", "museum", "scenic"):       # boards without a voice module
            assert not [ln for ln in out.splitlines() if re.match(r"\d\d:\d\d:\d\d  %s +seq" % name, ln)
                        and "voice:" in ln]

        # the bus has no Wi-Fi on the road: it uploaded over its modem, and
        # the lost card was still refused 65 s after the report (above)
        assert re.search(r"\n  bus +journaled.*uplink cellular", out), out[-3000:]
        assert re.search(r"\n  ferry +journaled.*uplink wifi", out), out[-3000:]

        # 2. reports of the day reconcile with its settlement, every --by
        from ykt_tools.backoffice import api, report
        eng = api.engine("sqlite:///" + str(tmp_path / "backoffice.db"))
        amount = int(re.search(r'"amount": (\d+)', out[out.index("== settlement for the day"):]).group(1))
        for by in report.BY:
            r = report.build(eng, DAY, DAY, by)
            assert r["reconciled"] and r["totals"]["fares"] == amount == r["settlement"], (by, r["totals"])
        shifts = report.build(eng, DAY, DAY, "shift")
        drivers = {row[3] for row in shifts["rows"] if row[0] == 1001}
        assert len(drivers) == 2 and "" not in drivers, shifts["rows"]          # two drivers, every bus tap in a shift
        taps = report.build(eng, DAY, DAY, "route")["totals"]["taps"]

        # 3. chromium logs in with the printed credentials and sees the day
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "/")
        page.wait_for_selector("#login-box:not([hidden])")
        assert page.get_attribute("html", "lang") == "zh-CN"
        page.fill("#login-name", user)
        page.fill("#login-password", pw)
        page.click("#login-submit")
        page.wait_for_selector("body[data-ready='1']")
        assert page.input_value("#day-picker") == str(DAY)
        assert page.get_attribute("#sum-taps", "data-value") == str(taps)
        assert page.get_attribute("#sum-settled", "data-value") == "1"
        assert page.locator("#chart-device rect.bar").count() > 10
        assert page.get_attribute("#report-note", "data-reconciled") == "1"
        page.click("#lang-switch")
        conftest.wait_js(page, "document.documentElement.lang === 'en'")
        assert page.inner_text("#nav a[href='#day']") == "Day"
    finally:
        # 4. Ctrl-C stops it; the demo operator is disabled
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
        try:
            # stopping waits for the back office thread (up to 30 s) after a
            # database write: generous for a loaded 2-core CI, still a hang check
            _read_until(master, buf, r"back office stopped", 180)
        finally:
            rc = p.wait(180)
            os.close(master)
    assert rc == 0, buf[0][-2000:]
    from sqlalchemy import select as sselect
    from ykt_tools.backoffice import schema as S
    with eng.connect() as c:
        assert c.execute(sselect(S.operators.c.active).where(S.operators.c.name == user)).scalar_one() is False
