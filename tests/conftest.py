import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "host_tools"))
from ykt_tools.sim import mp  # noqa: E402  (the launcher: runtimes, module path, workers)

FW_TESTS = os.path.join(ROOT, "tests", "fw")
WORKERS = os.path.join(ROOT, "tests", "workers")
# firmware/, the simulated chip, host_tools/ and the portable tests, as a worker sees them
mp.in_process([FW_TESTS])

# The firmware's heap budget in MicroPython runs: the 64-bit proxy's 256K, or
# on micropython32 each test board's own heap_bytes (mp.default_heap).
HEAP = os.environ.get("YKT_HEAP")


def mp_required():
    return bool(os.environ.get("CI") or os.environ.get("YKT_REQUIRE_MP"))


def need(ok, reason):
    """The one skip policy for what `make test` can install or build
    (PostgreSQL, chromium, nfcpy, unifont, the MicroPython runtimes): when
    it is missing the test skips naming the reason and the fix, except
    under CI (CI=1, set by .ci/run), where it fails: CI cannot skip
    silently."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail("%s (CI=1: a missing dependency fails, it does not skip)" % reason)
    pytest.skip(reason)


def need_runtime(runtime="micropython"):
    """The runtime's binary. Missing: the test fails under CI or with
    YKT_REQUIRE_MP (make can build every runtime), else it skips saying how
    to get it."""
    try:
        return mp.binary(runtime)
    except mp.Missing as e:
        if mp_required():
            pytest.fail("%s (CI must not skip runs on %s)" % (e, runtime))
        pytest.skip(str(e))


def need_postgres():
    from ykt_tools.backoffice import testing

    need(testing.pg_available(), "PostgreSQL not reachable at 127.0.0.1:5432")


def run_fw_test(runtime, module, test, timeout=900, heap=None):
    """Run one portable firmware test (tests/fw) as a worker on a runtime."""
    need_runtime(runtime)
    r = mp.run(runtime, os.path.join(FW_TESTS, "fwtest.py"), [module, test], fw_heap=heap or HEAP or mp.default_heap(runtime),
               path=[FW_TESTS], timeout=timeout)
    res = r.json
    if res is None:
        pytest.fail("%s run produced no result (rc=%s)\noutput:\n%s" % (runtime, r.rc, r.out[-6000:]))
    if res["status"] == "skip":
        # a MicroPython runtime lacks nothing the firmware tests need: under CI a skip there is a failure
        need(False, "%s: %s" % (runtime, res["reason"]))
    if res["status"] != "pass":
        pytest.fail("%s:\n%s\n--- output ---\n%s" % (runtime, res.get("error", "?"), r.out[-3000:]))
    return res


def _firmware_modules():
    return {k: v for k, v in sys.modules.items() if k == "ykt" or k.startswith("ykt.") or k == "otaboot"}


@pytest.fixture(autouse=True)
def _isolate_firmware_modules():
    """Tests of the boot code switch application slots (sys.path and the ykt
    modules) as a device reboot would; in one CPython process the next test
    must see the firmware modules it imported before, not a slot's copies."""
    saved = _firmware_modules()
    path = list(sys.path)
    yield
    sys.path[:] = path
    fw = os.path.join(ROOT, "firmware") + os.sep
    for k in list(sys.modules):
        if (k == "ykt" or k.startswith("ykt.") or k == "otaboot") and k not in saved:
            if not (getattr(sys.modules[k], "__file__", None) or "").startswith(fw):
                del sys.modules[k]
    for k, v in saved.items():
        sys.modules[k] = v
    pkg = saved.get("ykt")
    if pkg is not None:
        for k, v in saved.items():
            if k.startswith("ykt.") and k.count(".") == 1:
                setattr(pkg, k[4:], v)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def wait_js(page, expr, timeout=30000):
    """Wait until the JavaScript expression expr is truthy on page (timeout
    in ms, as Playwright's). Playwright's own wait_for_function polls by
    eval'ing a string inside the page, which the dashboard's
    Content-Security-Policy forbids (no 'unsafe-eval', as it should); this
    evaluates over the DevTools protocol, which the page's policy does not
    govern, so the page runs under its real CSP."""
    import time
    t_end = time.monotonic() + timeout / 1000.0
    while True:
        try:
            if page.evaluate(expr):
                return
        except Exception as e:     # the page navigating away mid-evaluation: try again
            if "navigat" not in str(e) and "destroyed" not in str(e):
                raise
        if time.monotonic() > t_end:
            raise AssertionError("timed out waiting for: %s" % expr)
        time.sleep(0.05)


@pytest.fixture
def browser():
    """Debian's headless chromium driven by Playwright (never `playwright
    install`). SKIP with the reason outside CI when it is missing; CI fails."""
    need(os.path.exists(CHROMIUM), "chromium not installed: apt-get install -y chromium (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
