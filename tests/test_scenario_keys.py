"""The scenario runner refuses unknown keys -- in the file, its lists and
each event and expectation -- with one line naming the key, before any
device starts: a misspelt expectation can never pass silently."""
import copy
import json
import os

import pytest

import conftest

from ykt_tools.cli import main as cli
from ykt_tools.sim import scenario

DAY = os.path.join(conftest.ROOT, "scenarios", "day.json")


def _day():
    with open(DAY) as f:
        return json.load(f)


def test_shipped_scenarios_validate():
    for n in ("day.json", "collection.json", "soak.json", "road.json"):
        with open(os.path.join(conftest.ROOT, "scenarios", n)) as f:
            scenario.validate(json.load(f), n)


@pytest.mark.parametrize("where,mutate,key", [
    ("top level", lambda d: d.update(ends="10:00"), "ends"),
    ("events[2]", lambda d: d["events"][2].update(exepct={"outcome": "accept"}), "exepct"),
    ("events[2].expect", lambda d: d["events"][2]["expect"].update(reasn="ok"), "reasn"),
    ("devices[0]", lambda d: d["devices"][0].update(boards="x"), "boards"),
    ("cards.ordinary", lambda d: d["cards"]["ordinary"].update(prof="x"), "prof"),
    ("traffic[0]", lambda d: d["traffic"][0].update(cnt=3), "cnt"),
    ("entitlements[0]", lambda d: d["entitlements"][0].update(flag=1), "flag"),
])
def test_unknown_key_exits_non_zero_with_one_line(tmp_path, capsys, where, mutate, key):
    d = copy.deepcopy(_day())
    mutate(d)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(d))
    rc = cli.main(["sim", "--scenario", str(f), "--json"])
    out = capsys.readouterr()
    assert rc == 2 and out.out == ""
    assert out.err == "error: %s: %s: unknown key %r\n" % (f, where, key)


@pytest.mark.parametrize("mutate,frag", [
    (lambda d: d["events"].append({"at": "00:30:00", "backoffice": "card_status", "card": "losing",
                                   "by": "nickname", "status": "lost"}), '"by" must be one of'),
    (lambda d: d["events"].append({"at": "00:30:00", "backoffice": "card_status", "card": "losing",
                                   "status": "lost", "replaced_by": "nobody"}), "replaced_by names no card"),
    (lambda d: d["events"].append({"at": "00:30:00", "backoffice": "refund"}), "unknown back-office action"),
    (lambda d: d["events"].append({"at": "00:30:00", "device": "bus", "modem": "sunspots"}), "unknown modem event"),
])
def test_bad_values_named(mutate, frag):
    d = copy.deepcopy(_day())
    mutate(d)
    with pytest.raises(scenario.ScenarioError) as e:
        scenario.validate(d, "x.json")
    assert frag in str(e.value) and "\n" not in str(e.value)
