import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FW_PATHS = [
    os.path.join(ROOT, "firmware"),
    os.path.join(ROOT, "host_tools", "simhw"),
    os.path.join(ROOT, "tests", "fw"),
    os.path.join(ROOT, "host_tools"),
]
for p in reversed(FW_PATHS + [os.path.join(ROOT, "host_tools")]):
    if p not in sys.path:
        sys.path.insert(0, p)

HEAP = os.environ.get("YKT_HEAP", "256K")


def micropython_bin():
    venv = os.path.join(ROOT, ".venv", "bin", "micropython")
    if os.path.exists(venv):
        return venv
    return shutil.which("micropython")


def mp_required():
    return bool(os.environ.get("CI") or os.environ.get("YKT_REQUIRE_MP"))


def mp_env():
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([".frozen"] + FW_PATHS)
    env["YKT_FW_HEAP"] = HEAP
    return env


def mp_heap(fw_heap):
    """Interpreter heap: the firmware's budget plus room for the simulated
    hardware, which vhw.heapbudget takes back once the world is built."""
    n = int(fw_heap[:-1]) * (1024 if fw_heap[-1] in "kK" else 1024 * 1024)
    return "%dK" % ((n + 512 * 1024) // 1024)


def run_mp_test(module, test, timeout=900, heap=None):
    """Run one portable test under the real MicroPython unix port."""
    mp = micropython_bin()
    if mp is None:
        if mp_required():
            pytest.fail("micropython binary missing: run `make setup` (CI must not skip MicroPython runs)")
        pytest.skip("micropython binary not installed (run `make setup`)")
    env = mp_env()
    env["YKT_FW_HEAP"] = heap or HEAP
    cmd = [mp, "-X", "heapsize=" + mp_heap(heap or HEAP), os.path.join(ROOT, "tests", "fw", "fwtest.py"), module, test]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    res = None
    for line in p.stdout.splitlines():
        if line.startswith("@@FWTEST "):
            res = json.loads(line[9:])
    if res is None:
        pytest.fail("micropython run produced no result (rc=%s)\nstdout:\n%s\nstderr:\n%s"
                    % (p.returncode, p.stdout[-4000:], p.stderr[-4000:]))
    if res["status"] == "skip":
        pytest.skip("micropython: " + res["reason"])
    if res["status"] != "pass":
        pytest.fail("micropython:\n" + res.get("error", "?") + "\n--- stdout ---\n" + p.stdout[-3000:])
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


@pytest.fixture
def browser():
    """Debian's headless chromium driven by Playwright (never `playwright
    install`). SKIP with the reason outside CI when it is missing; CI fails."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium missing: apt-get install -y chromium (make test installs it as root)")
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
