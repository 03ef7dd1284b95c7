"""Power cuts during an over-the-air update (download, verify, install, stage,
first boot on trial) on the real MicroPython + littlefs: a bounded CI sample of
`ykt ota-powercut --full`. Every cut ends in a device that boots a good
version and takes taps, and the update then completes."""
import json

import pytest

import conftest
from ykt_tools.powercut import ota as ota_powercut

pytestmark = pytest.mark.micropython


def test_powercut_sample_ends_on_a_good_version():
    conftest.need_runtime("micropython")
    res = ota_powercut.run_sweep(sample=6, jobs=2)
    assert res["writes"] > 1000                      # the whole update, install and first boot
    assert res["cut_points"] >= 7
    assert res["violations"] == 0, json.dumps(res["details"][:3], indent=1)
    # the sample reaches download, install and the first boot
    phases = set(p.rstrip("*") for p in res["phases"])
    assert {"download", "install", "firstboot"} <= phases, res["phases"]
