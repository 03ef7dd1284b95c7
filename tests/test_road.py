"""A bus without Wi-Fi (scenarios/road.json): every tap reaches the back
office over the SIM7600's PPP link (vhw/modemsim.py, the fake network.PPP),
a loss report is refused on the road 65 s later, a tunnel drops the carrier
and a dead zone keeps the modem unregistered, and the device says it used
the cellular link. Run on micropython32 within the bus board's own 112 KiB
heap with 16 KiB held in reserve (the deny-list update borrows the shared
block buffer since issue 14: it used to run out of heap there)."""
import json
import os

import pytest

import conftest
from conftest import ROOT

pytestmark = pytest.mark.micropython


def test_bus_on_the_road_uploads_over_cellular(tmp_path):
    from ykt_tools.sim import scenario

    conftest.need_runtime("micropython32")
    with open(os.path.join(ROOT, "scenarios", "road.json")) as f:
        sc = json.load(f)
    assert sc["devices"][0]["wifi"] is False
    r = scenario.Runner(sc, runtime="micropython32", heap="board", reserve="16K", quiet=True,
                        workdir=str(tmp_path))
    try:
        rep = r.play()
    finally:
        r.close()
    assert rep["ok"], rep["failures"]
    # every expectation held, the refusal 65 s after the loss report among them
    assert rep["expectations"] == sum(1 for e in sc["events"] if "expect" in e) + 30
    assert rep["lost"] == 0 and rep["duplicates"] == 0
    assert rep["records_compared"] == rep["taps_journaled"] == 34
    bus = rep["devices"]["bus"]
    assert bus["memory_errors"] == 0 and not bus["psram"] and bus["heap_budget_bytes"] <= 114688, bus
    assert bus["link"] == "cellular", bus
    # nothing went over Wi-Fi; the tunnel and the dead zone are two drops,
    # each followed by a redial
    assert list(bus["network"]["used"]) == ["ppp"] and bus["network"]["used"]["ppp"] > 100, bus["network"]
    m = bus["modem"]
    assert m["state"] == "ppp" and m["reason"] == "ok" and m["drops"] == 2 and m["dials"] == 3, m
