"""The content-compared day (`ykt sim`, ykt_tools/sim/scenario.py): every
journal record, read back from each device's flash as soon as it is durable,
is compared byte for byte with the row the back office stored; `lost` counts
records missing or different there, `duplicates` taps the back office
acknowledged as new more than once. A day under network faults
(--net-faults, vhw/netfault.py) ends with every record compared. And the
comparison catches real faults, each of which the old counters (journaled
minus committed rows, COUNT(*) - COUNT(DISTINCT seq)) called clean or could
not see."""
import json
import os

import pytest
from sqlalchemy import text

import conftest
from conftest import ROOT

pytestmark = pytest.mark.micropython


def _scenario(riders=40, hours=0.5, seed=3):
    from ykt_tools.sim import scenario

    with open(os.path.join(ROOT, "scenarios", "soak.json")) as f:
        sc = json.load(f)
    sc["devices"] = sc["devices"][:1]          # one bus: the checks are per device
    return scenario.random_riders(sc, riders, hours, seed)


def _day(tmp_path, **kw):
    from ykt_tools.sim import scenario

    conftest.need_runtime("micropython")
    sc = _scenario(**{k: kw.pop(k) for k in ("riders", "hours") if k in kw})
    r = scenario.Runner(sc, runtime="micropython", heap="256K", quiet=True, workdir=str(tmp_path), **kw)
    try:
        rep = r.play()
    finally:
        r.close()
    with r.api.engine(r.db).connect() as c:
        rep["rows"], rep["distinct"] = c.execute(text("SELECT COUNT(*), COUNT(DISTINCT seq) FROM taps")).one()
    return rep


def test_faulted_run_compares_every_record_and_loses_nothing(tmp_path):
    from vhw import netfault

    rep = _day(tmp_path, riders=60, hours=1.2, net_faults=200)
    assert rep["ok"], rep["failures"]
    assert rep["lost"] == 0 and rep["duplicates"] == 0 and rep["unknown_rows"] == 0
    assert rep["records_compared"] == rep["taps_journaled"] == rep["rows"] > 50
    f = rep["network_faults"]
    assert rep["network_faults_total"] == 200 == sum(f.values())
    assert [k for k in netfault.KINDS if not f.get(k)] == [], f      # every kind happened
    assert rep["network"]["retry_after_ignored"] == 0 and rep["network"]["stalled"] == 0


def test_lost_counts_rows_the_back_office_stored_wrong(tmp_path, monkeypatch):
    """A back office that files taps under their receive time: the old check
    (journaled == committed) passed; every record now differs."""
    from ykt_tools.backoffice import ingest

    good = ingest.rows_from_fields

    def wrong_time(dev, recs, rx):
        return [r[:3] + (rx,) + r[4:] for r in good(dev, recs, rx)]

    monkeypatch.setattr(ingest, "rows_from_fields", wrong_time)
    rep = _day(tmp_path, riders=20, hours=0.3)
    assert rep["taps_committed"] == rep["taps_journaled"] > 10      # the counters agree ...
    assert rep["lost"] == rep["taps_journaled"] and rep["records_compared"] == 0   # ... the contents do not
    assert not rep["ok"] and any("lost" in f for f in rep["failures"])


def test_lost_counts_taps_acknowledged_but_not_stored(tmp_path, monkeypatch):
    """A writer that acknowledges every third batch without storing it."""
    from ykt_tools.backoffice import ingest

    good = ingest._sqlite_insert
    calls = [0]

    def sometimes_nothing(n):
        calls[0] += 1
        sql = good(n)
        if calls[0] % 3:
            return sql
        return sql.replace(" VALUES ", " SELECT * FROM (VALUES ", 1).replace(" ON CONFLICT", ") WHERE 0 ON CONFLICT")

    monkeypatch.setattr(ingest, "_sqlite_insert", sometimes_nothing)
    rep = _day(tmp_path, riders=30, hours=0.5)
    assert rep["lost"] > 0 and rep["lost"] == rep["taps_journaled"] - rep["rows"]
    assert rep["records_compared"] == rep["rows"]
    assert not rep["ok"]


def test_duplicates_counts_taps_acknowledged_new_twice(tmp_path, monkeypatch):
    """An upsert where the insert must be ignored: a batch resent after its
    reply was lost is stored again and acknowledged as new again. The table's
    primary key keeps one row per seq, so COUNT(*) - COUNT(DISTINCT seq), the
    old figure, stays 0."""
    from ykt_tools.backoffice import ingest

    good = ingest._sqlite_insert
    monkeypatch.setattr(ingest, "_sqlite_insert", lambda n: good(n).replace(
        "ON CONFLICT DO NOTHING", "ON CONFLICT (device, seq) DO UPDATE SET rx = excluded.rx"))
    rep = _day(tmp_path, riders=30, hours=0.5, net_faults=12, fault_kinds=["drop_after_commit"])
    assert rep["network_faults"]["drop_after_commit"] == 12
    assert rep["rows"] == rep["distinct"]                          # the old figure: 0
    assert rep["duplicates"] > 0 and not rep["ok"]
    assert rep["lost"] == 0 and rep["records_compared"] == rep["taps_journaled"]
