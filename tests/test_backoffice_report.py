"""Reports (backoffice/report.py, `ykt backoffice report`, /admin/api/report):
every --by, the figures of a known day worked out by hand, totals that
reconcile with settlement to the fen, csv / parquet / xlsx, refusal of days
not (or no longer) settled. SQLite and PostgreSQL."""
import csv
import io
import os

import pytest

import conftest  # noqa: F401

os.environ.setdefault("YKT_RSA_BITS", "2048")

from fastapi.testclient import TestClient  # noqa: E402

from ykt import taprec as T  # noqa: E402
from ykt_tools.backoffice import app as bo_app, auth, ops, report, settle, testing, xlsx  # noqa: E402
from ykt_tools.backoffice.errors import OpError  # noqa: E402
from ykt_tools.build import fares as fares_compile  # noqa: E402
from test_backoffice_admin import _bus_src, _ingest, _src, _tap  # noqa: E402

PW = "report password"
T0 = 1795660000          # 2026-11-26 10:26:40 UTC+8: the day fare (2.00), a Thursday
DAY = 20261126
DRV, A, B, C, D = "d0" * 8, "aa" * 8, "bb" * 8, "cc" * 8, "dd" * 8


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def bo(request, tmp_path):
    if request.param == "postgresql" and not testing.pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    with testing.temp_db(request.param, tmp_path) as url:
        app = bo_app.create_app(url)
        with TestClient(app) as client:
            client.eng = app.state.eng
            auth.add_operator(client.eng, "olga", "viewer", PW)
            yield client
        app.state.eng.dispose()


def _day(eng):
    """Two buses on route 301: bus-a's driver signs on (seq 1) and off (seq 9);
    bus-b has no driver signed on. Rider A pays 2.00 then transfers (free) on
    bus-b; B is elderly, half fare (1.00 of 2.00); C elderly free on an
    e-card; D is refused (lost) and once not read; A's double tap is free;
    B rides bus-b past the transfer window."""
    from ykt_tools.build import fares as fc
    ops.publish_file(eng, "catalog", fc.compile_catalog(open(os.path.join(conftest.ROOT, "data", "catalog.json")).read()))
    ops.publish_file(eng, "fares", fares_compile.compile_fares(_bus_src()))
    a = ops.register_device(eng, "bus-a", "validator", 301)["id"]
    b = ops.register_device(eng, "bus-b", "validator", 301)["id"]
    rows = [
        _tap(a, 1, DRV, T0, 0, reason=T.R_SHIFT_ON, shift=1),
        _tap(a, 2, A, T0 + 60, 200, shift=1),
        _tap(a, 3, A, T0 + 70, 0, reason=T.R_ALREADY_PAID, shift=1),
        _tap(a, 4, B, T0 + 120, 100, conc=T.C_ELDERLY_HALF, reason=T.R_CONCESSION, shift=1),
        _tap(a, 5, C, T0 + 180, 0, conc=T.C_ELDERLY_FREE, reason=T.R_CONCESSION, shift=1, flags=T.F_QR),
        _tap(a, 6, D, T0 + 240, 0, outcome=T.OUT_DENY, reason=T.R_DENY_LOST, shift=1),
        _tap(a, 7, D, T0 + 250, 0, outcome=T.OUT_ERROR, reason=T.R_READ_FAILED, shift=1),
        _tap(a, 9, DRV, T0 + 3600, 0, reason=T.R_SHIFT_OFF, shift=1),
        _tap(b, 1, A, T0 + 1800, 200),                       # within 60 min on another bus: transfer
        _tap(b, 2, B, T0 + 5000, 100, conc=T.C_ELDERLY_HALF, reason=T.R_CONCESSION),   # past the window
    ]
    _ingest(eng, rows)
    return a, b


def test_every_by_reconciles_and_the_figures_are_right(bo):
    a, b = _day(bo.eng)
    with pytest.raises(OpError) as e:
        report.build(bo.eng, DAY, DAY, "route")
    assert e.value.status == 409 and "settle --day %d" % DAY in str(e.value)
    st = settle.settle_day(bo.eng, DAY)
    assert st["amount"] == 200 + 0 + 100 + 0 + 100      # A, A's transfer, B, C free, B again
    assert st["taps"] == 6                              # shift taps are no rides; refusals are not settled
    reps = {by: report.build(bo.eng, DAY, DAY, by) for by in report.BY}
    for by, r in reps.items():
        assert r["reconciled"] and r["settlement"] == st["amount"] == r["totals"]["fares"], by
        for m in report.METRICS:
            if m != "riders":
                assert sum(row[r["columns"].index(m)] for row in r["rows"]) == r["totals"][m], (by, m)
        assert r["totals"]["taps"] == 8 and r["totals"]["riders"] == 3, (by, r["totals"])
        assert r["totals"]["concession_value"] == 100 + 200 + 100, by
    cols = reps["vehicle"]["columns"]
    rows = {tuple(x[:2]): dict(zip(cols, x)) for x in reps["vehicle"]["rows"]}
    va, vb = rows[(a, "bus-a")], rows[(b, "bus-b")]
    assert (va["taps"], va["accepted"], va["refused"], va["riders"], va["fares"]) == (6, 4, 2, 3, 300)
    assert (vb["taps"], vb["accepted"], vb["riders"], vb["fares"], vb["provisional"]) == (2, 2, 2, 100, 300)
    # the subsidy claim by concession class
    cols = reps["concession"]["columns"]
    conc = {x[1]: dict(zip(cols, x)) for x in reps["concession"]["rows"]}
    assert conc["elderly_half"]["concession_rides"] == 2 and conc["elderly_half"]["full_fares"] == 400
    assert conc["elderly_half"]["concession_value"] == 200 and conc["elderly_half"]["class_zh"] == "老年半价"
    assert conc["elderly_free"]["concession_value"] == 200 and conc["none"]["concession_value"] == 0
    # driver shifts: bus-a's shift 1 signed on 10:26, off 11:26; bus-b outside any shift
    cols = reps["shift"]["columns"]
    sh = {(x[0], x[2]): dict(zip(cols, x)) for x in reps["shift"]["rows"]}
    s1 = sh[(a, 1)]
    assert (s1["driver"], s1["start"], s1["end"], s1["taps"], s1["fares"]) == (DRV[:8], "10:26", "11:26", 6, 300)
    assert sh[(b, 0)]["driver"] == "" and sh[(b, 0)]["fares"] == 100
    ct = {tuple(x[:2]): dict(zip(reps["card-type"]["columns"], x)) for x in reps["card-type"]["rows"]}
    assert ct[("elderly", "e-ssc")]["accepted"] == 1 and ct[("elderly", "ssc")]["accepted"] == 2
    route = reps["route"]["rows"]
    assert [x[:2] for x in route] == [[301, "bus"]]
    # a tap arriving after the settlement: refused until settled again
    _ingest(bo.eng, [_tap(b, 3, C, T0 + 7200, 200)])
    with pytest.raises(OpError) as e:
        report.build(bo.eng, DAY, DAY, "vehicle")
    assert e.value.status == 409
    settle.settle_day(bo.eng, DAY)
    assert report.build(bo.eng, DAY, DAY, "vehicle")["reconciled"]


def test_formats_and_the_api(bo):
    import pyarrow.parquet as pq
    _day(bo.eng)
    settle.settle_day(bo.eng, DAY)
    rep = report.build(bo.eng, DAY, DAY, "concession")
    buf = io.BytesIO()
    report.write(rep, "csv", buf)
    got = list(csv.reader(io.StringIO(buf.getvalue().decode())))
    assert got[0] == rep["columns"] and got[-1][0] == "total"
    assert int(got[-1][rep["columns"].index("fares")]) == rep["settlement"]
    buf = io.BytesIO()
    report.write(rep, "xlsx", buf)
    sheets = xlsx.read_sheets(buf.getvalue())
    assert sheets["by concession"] == report.table_rows(rep)
    assert ["reconciled", "yes"] in sheets["about"]
    buf = io.BytesIO()
    report.write(rep, "parquet", buf)
    buf.seek(0)
    tbl = pq.read_table(buf)
    assert tbl.column_names == rep["columns"] and tbl.num_rows == len(rep["rows"])
    h = {"Authorization": "Bearer " + bo.post("/admin/login", json={"name": "olga", "password": PW}).json()["token"]}
    bo.cookies.clear()
    r = bo.get("/admin/api/report?day=%d&by=card-type" % DAY, headers=h)
    assert r.status_code == 200 and r.json()["reconciled"] and r.json()["from"] == DAY
    r = bo.get("/admin/api/report.xlsx?day=%d&by=shift" % DAY, headers=h)
    assert r.status_code == 200 and "by shift" in xlsx.read_sheets(r.content)
    assert bo.get("/admin/api/report?day=%d&by=weather" % DAY, headers=h).status_code == 422
    assert bo.get("/admin/api/report.pdf?day=%d&by=route" % DAY, headers=h).status_code == 404
    assert bo.get("/admin/api/report?day=20261127&by=route", headers=h).json()["rows"] == []
    assert bo.get("/admin/api/report?day=%d&by=route" % DAY).status_code == 401
    d = bo.get("/admin/api/day/%d" % DAY, headers=h).json()
    assert d["settled"] and d["fares"] == rep["settlement"] and d["shifts"] == 1
    assert d["outcomes"] == {"accept": 6, "deny": 1, "error": 1}
    assert {x["reason"] for x in d["refusals"]} == {"deny_lost", "read_failed"}
    assert sum(sum(s["hours"]) for s in d["per_device"]) == 8 and d["per_device"][0]["hours"][10] == 6
    assert bo.get("/admin/api/days", headers=h).json()[0] == {"day": DAY, "taps": 8, "settled": True,
                                                               "amount": rep["settlement"]}


def test_cli_writes_each_format(bo, tmp_path, capsys):
    from ykt_tools.cli.main import main
    _day(bo.eng)
    url = str(bo.eng.url.render_as_string(hide_password=False))
    assert main(["backoffice", "report", "--db", url, "--day", str(DAY), "--by", "route"]) == 2   # not settled
    settle.settle_day(bo.eng, DAY)
    capsys.readouterr()
    assert main(["backoffice", "report", "--db", url, "--day", str(DAY), "--by", "vehicle"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("device,name,taps") and "reconciled" in err
    for fmt in ("xlsx", "parquet", "csv"):
        p = tmp_path / ("r." + fmt)
        assert main(["backoffice", "report", "--db", url, "--day", str(DAY), "--to", str(DAY), "--by", "shift",
                     "--format", fmt, "--out", str(p)]) == 0
        assert p.stat().st_size > 100
    assert main(["backoffice", "report", "--db", url, "--day", str(DAY), "--by", "shift", "--format", "xlsx"]) == 2
