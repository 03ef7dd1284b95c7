"""Host-side fare compiler, entitlement and catalog compilers, and the CLI:
the example sources compile, errors name the line, the bytes equal the
portable test fixtures, and mangled files never crash the device loader."""
import glob
import os

import pytest
from hypothesis import given, settings, strategies as st

import conftest
from ykt_tools.build import fares as FC
from ykt_tools.cli.main import main
from ykt.rules import fares as F
from ykt.rules import catalog as C
from ykt import taprec as T
import t_decide_kit as K

ROOT = conftest.ROOT
FUZZ = int(os.environ.get("YKT_FUZZ_EXAMPLES", "300"))


def test_examples_compile():
    srcs = sorted(glob.glob(os.path.join(ROOT, "data", "fares", "*.txt")))
    assert len(srcs) >= 4
    modes = set()
    for s in srcs:
        with open(s) as f:
            t = F.FareTable(FC.compile_fares(f.read(), s))
        modes.add(t.mode)
    assert modes == {F.MODE_FLAT, F.MODE_OD, F.MODE_SCENIC, F.MODE_IDENTITY}


def test_bus_example_values():
    with open(os.path.join(ROOT, "data", "fares", "bus_nanning_301.txt")) as f:
        t = F.FareTable(FC.compile_fares(f.read()))
    assert (t.entry, t.version, t.base, t.double_tap_s, t.transfer_s) == (301, 8, 200, 30, 3600)
    assert t.day_type(20261003, 5) == F.D_HOLIDAY and t.day_type(20260927, 6) == F.D_WEEKDAY
    assert t.base_fare(6 * 60 + 30, F.D_WEEKDAY) == 100 and t.base_fare(6 * 60 + 30, F.D_HOLIDAY) == 200


def test_same_bytes_as_fixture_builder():
    src = """table 301 version 7
mode flat
fare 2.00
band 06:00-07:00 days nonholiday fare 1.00
double_tap 30s
transfer 60m minus 0.50
age 0-6 free as child
age 60-64 half as elderly_half
category disabled free
companion 30s
daily_free 4 deny
holiday 20261001-20261007
workday 20260927
"""
    want = K.fare_table(301, version=7, base=200, double_tap=30, transfer=3600, tact=F.A_MINUS, tval=50,
                        companion=30, daily_free=4, daily_act=F.DL_DENY,
                        bands=((360, 420, 3, F.A_FARE, 100),),
                        ages=((0, 6, F.A_FREE, T.C_CHILD, 7, 0, 0), (60, 64, F.A_HALF, T.C_ELDERLY_HALF, 7, 0, 0)),
                        cats=((T.C_DISABLED, F.A_FREE, 7, 0, 0),), hols=((20261001, 20261007),), work=(20260927,))
    assert FC.compile_fares(src) == want
    od = "table 820 version 1\nmode od\nod 1 2 10.00 both\nod 1 3 120\n"
    assert FC.compile_fares(od) == K.fare_table(820, mode=F.MODE_OD, base=0, double_tap=0,
                                                od=((1, 2, 1000), (2, 1, 1000), (1, 3, 120)))


ERRORS = (
    ("table 1 version 1\nmode flat\nfare 2.00\nfare 3.00\n", 4, "twice"),
    ("table 1 version 1\nmode bus\n", 2, "unknown mode"),
    ("table 1 version 1\nmode flat\nfare two\n", 3, "fen"),
    ("table 1 version 1\nmode flat\nfare 700.00\n", 3, "655.35"),
    ("table 1 version 1\nmode flat\nfare 2\nband 07:00-06:00 fare 1\n", 4, "before it starts"),
    ("table 1 version 1\nmode flat\nfare 2\nband 07:00-25:00 fare 1\n", 4, "HH:MM"),
    ("table 1 version 1\nmode flat\nfare 2\nage 60-64 half as grandpa\n", 4, "unknown concession"),
    ("table 1 version 1\nmode flat\nfare 2\nage 65-60 free as elderly_free\n", 4, "MIN-MAX"),
    ("table 1 version 1\nmode flat\nfare 2\ncategory disabled pct 120\n", 4, "out of range"),
    ("table 1 version 1\nmode flat\nfare 2\nholiday 20261301\n", 4, "no such date"),
    ("table 1 version 1\nmode flat\nfare 2\ndouble_tap 30x\n", 4, "duration"),
    ("table 1 version 1\nmode flat\nfare 2\ndaily_free 3 maybe\n", 4, "full or deny"),
    ("table 1 version 1\nmode flat\nfare 2\nwhatever 1\n", 4, "unknown keyword"),
    ("table 1 version 1\nmode flat\nfare 2 3\n", 3, "unexpected"),
    ("table 1 version 1\nmode od\nod 1 2 5\nod 1 2 6\n", 4, "twice"),
    ("table 1 version 1\nmode od\n", 2, "'od' pair"),
    ("mode flat\nfare 2\n", 0, "table"),
    ("table 1 version 1\nmode scenic\n", 2, "needs a 'fare'"),
    ("table 1 version 1\nmode flat\nfare 2\ncompanion 20m\n", 4, "over 600s"),
    # a concession label that names its charge must match the rule (subsidy claims go by label)
    ("table 1 version 1\nmode flat\nfare 2\n\nage 60-64 free as elderly_half\n", 5,
     "concession label 'elderly_half' contradicts its rule 'free'"),
    ("table 1 version 1\nmode flat\nfare 2\nage 65-150 half as elderly_free\n", 4,
     "concession label 'elderly_free' contradicts its rule 'half'"),
    ("table 1 version 1\nmode flat\nfare 2\ntransfer 60m free same_bus\n", 4, "unknown transfer option"),
)


def test_transfer_options_and_default():
    base = "table 1 version 1\nmode flat\nfare 2\n"
    t = F.FareTable(FC.compile_fares(base + "transfer 60m free\n"))
    assert t.transfer_s == 3600 and t.flags == 0          # same route and same vehicle excluded
    t = F.FareTable(FC.compile_fares(base + "transfer 60m half same_route same_vehicle\n"))
    assert t.flags == F.FL_XFER_SAME_ROUTE | F.FL_XFER_SAME_VEHICLE and t.transfer_act == F.A_HALF


def test_shipped_tables_labels_match_their_rules():
    import glob
    for path in glob.glob(os.path.join(ROOT, "data", "fares", "*.txt")):
        with open(path) as f:
            t = F.FareTable(FC.compile_fares(f.read(), path))
        for a in t.ages:
            if a[3] == T.C_ELDERLY_HALF:
                assert a[2] == F.A_HALF, path
            if a[3] == T.C_ELDERLY_FREE:
                assert a[2] == F.A_FREE, path


@pytest.mark.parametrize("src,line,frag", ERRORS)
def test_errors_name_the_line(src, line, frag):
    with pytest.raises(FC.CompileError) as ei:
        FC.compile_fares(src, "route.txt")
    assert ei.value.line == line and frag in str(ei.value)
    assert str(ei.value).startswith("route.txt:%d: " % line)


def test_entitlements_compile():
    src = "version 3\n# comment\n00000000000000ff disabled companion green\n0000000000000001 soldier\n"
    e = F.Entitlements(FC.compile_entitlements(src))
    assert e.version == 3 and e.n == 2
    assert e.lookup(bytes.fromhex("00000000000000ff")) == (T.C_DISABLED << 8) | F.E_COMPANION | F.E_GREEN
    assert e.lookup(bytes.fromhex("0000000000000001")) == T.C_SOLDIER << 8
    for bad, frag in (("0000000000000001 soldier\n", "version"), ("version 1\nabc disabled\n", "16 hex"),
                      ("version 1\n0000000000000001 king\n", "unknown category"),
                      ("version 1\n0000000000000001 soldier\n0000000000000001 soldier\n", "twice"),
                      ("version 1\n0000000000000001 soldier vip\n", "unknown flag")):
        with pytest.raises(FC.CompileError, match=frag):
            FC.compile_entitlements(bad)


def test_catalog_compile():
    with open(os.path.join(ROOT, "data", "catalog.json")) as f:
        c = C.Catalog(FC.compile_catalog(f.read(), "catalog.json"))
    assert c.version == 5
    kinds = {e.kind for e in c.entries.values()}
    assert kinds == {C.K_BUS, C.K_FERRY, C.K_MUSEUM, C.K_LIBRARY, C.K_SCENIC}
    assert c.get(302).accepts(450100) and not c.get(302).accepts(450200)
    assert c.get(820).accepts(440100) and c.get(820).accepts(440305) and not c.get(820).accepts(440200)
    for bad, frag in (('{"version": 1, "entries": [{"id": 1, "kind": "tram", "regions": ["*"]}]}', "kind"),
                      ('{"version": 1, "entries": [{"id": 1, "kind": "bus", "regions": ["4"]}]}', "region"),
                      ('{"version": 1, "entries": [{"id": 1, "kind": "bus", "regions": ["*"]},'
                       ' {"id": 1, "kind": "bus", "regions": ["*"]}]}', "unique"),
                      ('{"version": 1, "entries": []}', "non-empty"), ("{", "JSON")):
        with pytest.raises(FC.CompileError, match=frag):
            FC.compile_catalog(bad)


def test_cli(tmp_path, capsys):
    out = tmp_path / "bus.bin"
    assert main(["fares", "compile", os.path.join(ROOT, "data", "fares", "bus_nanning_301.txt"), "-o", str(out)]) == 0
    assert F.FareTable(out.read_bytes()).entry == 301
    assert main(["fares", "show", str(out)]) == 0
    assert '"mode": "flat"' in capsys.readouterr().out
    bad = tmp_path / "bad.txt"
    bad.write_text("table 1 version 1\nmode flat\nfare x\n")
    assert main(["fares", "compile", str(bad), "-o", str(tmp_path / "x.bin")]) == 1
    assert "bad.txt:3:" in capsys.readouterr().err and not (tmp_path / "x.bin").exists()
    cat = tmp_path / "cat.bin"
    assert main(["catalog", "compile", os.path.join(ROOT, "data", "catalog.json"), "-o", str(cat)]) == 0
    assert C.Catalog(cat.read_bytes()).version == 5
    ent = tmp_path / "e.txt"
    ent.write_text("version 2\n0102030405060708 fire_rescue\n")
    assert main(["fares", "entitlements", str(ent), "-o", str(tmp_path / "e.bin")]) == 0
    assert F.Entitlements((tmp_path / "e.bin").read_bytes()).n == 1


def _good():
    with open(os.path.join(ROOT, "data", "fares", "ferry_beihai_weizhou.txt")) as f:
        return FC.compile_fares(f.read())


@pytest.mark.fuzz
@settings(max_examples=FUZZ, deadline=None)
@given(st.data())
def test_fuzz_loader_only_raises_loaderror(data):
    buf = bytearray(_good())
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    for b in (bytes(buf), bytes(buf[:cut])):
        try:
            F.FareTable(b)
        except F.LoadError:
            pass


@pytest.mark.fuzz
@settings(max_examples=FUZZ, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_fuzz_body_with_valid_crc(body, as_catalog):
    # A correctly signed/CRC'd but hostile body still only raises LoadError.
    magic = b"YKTC" if as_catalog else b"YKTF"
    buf = FC.header(magic, 1 + len(body) % 4, 1, 301, body)
    try:
        (C.Catalog if as_catalog else F.FareTable)(buf)
    except F.LoadError:
        pass


def test_catalog_requires_and_expiry_policy():
    src = {"version": 2, "entries": [
        {"id": 1, "kind": "bus", "regions": ["45"], "requires": ["transit"]},
        {"id": 2, "kind": "museum", "regions": ["*"], "expiry": "accept"},
        {"id": 3, "kind": "ferry", "regions": ["45"], "expiry": {"grace_days": 30}},
        {"id": 4, "kind": "bus", "regions": ["45"]}]}
    import json
    cat = C.Catalog(FC.compile_catalog(json.dumps(src)))
    assert cat.get(1).flags == C.F_REQ_TRANSIT
    assert cat.get(2).flags == C.EXP_ACCEPT and cat.get(2).grace == 0
    assert cat.get(3).flags == C.EXP_GRACE and cat.get(3).grace == 30
    assert cat.get(4).flags == 0                       # refuse expired cards, no transit needed
    shipped = C.Catalog(FC.compile_catalog(open(os.path.join(ROOT, "data", "catalog.json")).read()))
    assert shipped.get(302).flags & C.F_REQ_TRANSIT and not shipped.get(301).flags & C.F_REQ_TRANSIT


@pytest.mark.parametrize("entry,frag", [
    ({"requires": ["nfc"]}, "requires:"), ({"requires": "transit"}, "requires:"),
    ({"expiry": "sometimes"}, "expiry:"), ({"expiry": {"grace_days": 0}}, "expiry:"),
    ({"expiry": {"grace_days": 400}}, "expiry:"), ({"expiry": {"days": 3}}, "expiry:")])
def test_catalog_bad_requires_or_expiry(entry, frag):
    import json
    e = {"id": 1, "kind": "bus", "regions": ["45"]}
    e.update(entry)
    with pytest.raises(FC.CompileError) as ei:
        FC.compile_catalog(json.dumps({"version": 1, "entries": [e]}), "cat.json")
    assert frag in str(ei.value) and "entries[0]" in str(ei.value)
