# Compiled fare tables, entitlement lists, catalogs and device profiles as the
# device loads them: corrupted, truncated or wrong-version files are refused
# with a specific reason and the previous table stays in force.
import struct
from t_decide_kit import fare_table, catalog_bin, ent_bin, std_fares, FERRY_OD
from ykt.rules import fares as F
from ykt.rules import catalog as C


def _code(fn, *a):
    try:
        fn(*a)
    except F.LoadError as e:
        return e.code
    raise AssertionError("accepted")


def test_load_fields():
    t = std_fares("bus_validator", version=7, transfer=3600, tact=F.A_FREE, daily_free=4)
    assert t.version == 7 and t.entry == 301 and t.mode == F.MODE_FLAT and t.base == 200
    assert t.double_tap_s == 30 and t.transfer_s == 3600 and t.daily_free == 4
    assert len(t.ages) == 3 and len(t.cats) == 4
    f = std_fares("ferry_validator")
    assert f.od_fare(1, 3) == 12000 and f.od_fare(3, 2) == 11000 and f.od_fare(1, 9) == -1
    assert f.od_max(1) == 12000 and f.od_max(2) == 11000 and f.od_max(9) == -1


def test_corruptions_rejected_with_reason():
    good = fare_table(301)
    F.FareTable(good)
    bad_magic = b"XKTF" + good[4:]
    bad_ver = good[:4] + b"\x02" + good[5:]
    flipped = bytearray(good)
    flipped[-1] ^= 0x40
    cases = (
        (b"", "truncated"), (good[:10], "truncated"), (good[:-1], "truncated"),
        (bad_magic, "magic"), (bad_ver, "version"), (bytes(flipped), "crc"),
        (good + b"\x00", "range"),
    )
    for buf, code in cases:
        assert _code(F.FareTable, buf) == code, (code, len(buf))


def test_body_bounds_checked():
    # CRC-valid files with lying counts or values are still refused
    assert _code(F.FareTable, fare_table(301, bands=((0, 1500, 7, 0, 0),))) == "range"
    assert _code(F.FareTable, fare_table(301, ages=((0, 6, 9, 8, 7, 0, 0),))) == "range"
    assert _code(F.FareTable, fare_table(301, cats=((3, F.A_PCT, 7, 0, 150),))) == "range"
    assert _code(F.FareTable, fare_table(301, mode=9)) == "range"
    good = bytearray(fare_table(301))
    body = bytearray(good[F.HDR_SIZE:])
    struct.pack_into("<H", body, 26, 5)  # claims 5 od pairs that are not there
    from t_decide_kit import hdr
    assert _code(F.FareTable, hdr(b"YKTF", 1, 1, 301, bytes(body))) == "truncated"
    unsorted = fare_table(820, mode=F.MODE_OD, od=((1, 2, 5), (1, 2, 6)))
    assert _code(F.FareTable, unsorted) == "range"


def test_old_table_stays_on_failed_load():
    current = std_fares("bus_validator", version=7)
    incoming = bytearray(fare_table(301, version=8))
    incoming[30] ^= 0xFF
    try:
        current = F.FareTable(bytes(incoming))
    except F.LoadError as e:
        assert e.code == "crc"
    assert current.version == 7


def test_file_load(tmp="fares_test.bin"):
    import os
    with open(tmp, "wb") as f:
        f.write(fare_table(301, version=3))
    try:
        assert F.load(tmp).version == 3
    finally:
        os.remove(tmp)


def test_entitlements():
    rows = [(bytes([i, 1, 2, 3, 4, 5, 6, 7]), 3 + i % 3, i & 3) for i in range(50)]
    e = F.Entitlements(ent_bin(rows, version=12))
    assert e.version == 12 and e.n == 50
    for t, c, fl in rows:
        assert e.lookup(t) == (c << 8) | fl
    assert e.lookup(bytes(8)) == -1 and e.lookup(b"\xff" * 8) == -1
    body = b"".join(t + bytes((c, f)) for t, c, f in reversed(rows))
    from t_decide_kit import hdr
    assert _code(F.Entitlements, hdr(b"YKTE", 0, 1, 0, body)) == "range"
    assert _code(F.Entitlements, hdr(b"YKTE", 0, 1, 0, body[:15])) == "range"
    assert _code(F.Entitlements, fare_table(301)) == "magic"


def test_catalog():
    c = C.Catalog(catalog_bin(version=4))
    assert c.version == 4 and c.get(301).kind == C.K_BUS and c.get(7) is None
    assert c.get(301).accepts(450300) and not c.get(301).accepts(530100)
    assert c.get(4001).accepts(0)   # "*" takes any card, even without a region
    from t_decide_kit import hdr
    bad = hdr(b"YKTC", 0, 1, 0, struct.pack("<HBBBB", 1, 9, 0, 0, 0))
    assert _code(C.Catalog, bad) == "range"
    bad = hdr(b"YKTC", 0, 1, 0, struct.pack("<HBBBBI", 1, 1, 1, 0, 0, (2 << 24) | 450))
    assert _code(C.Catalog, bad) == "range"
    bad = hdr(b"YKTC", 0, 1, 0, struct.pack("<HBBBB", 1, 1, 3, 0, 0))
    assert _code(C.Catalog, bad) == "truncated"
    for r in ("4", "4501000", "4x"):
        try:
            C.encode_region(r)
            raise AssertionError(r)
        except ValueError:
            pass


def test_profile_validation():
    p = C.profile_from({"device": "D1", "entry": 301, "board": "bus_validator"})
    assert p.tz_min == 480 and p.recent_cap == 512 and p.feedback["relay_ms"] == 600
    bad = (({"entry": 301, "board": "bus_validator"}, "device"),
           ({"device": "D", "entry": 0, "board": "bus_validator"}, "entry"),
           ({"device": "D", "entry": 1, "board": "tram"}, "board"),
           ({"device": "D", "entry": 1, "board": "turnstile", "recent_cap": 100}, "recent_cap"),
           ({"device": "D", "entry": 1, "board": "turnstile", "feedback": {"relay_ms": 1}}, "relay_ms"),
           ({"device": "D", "entry": 1, "board": "turnstile", "feedback": {"x": 1}}, "feedback.x"),
           ({"device": "D", "entry": 1, "board": "turnstile", "colour": 1}, "colour"))
    for d, field in bad:
        try:
            C.profile_from(d)
            raise AssertionError(field)
        except C.ProfileError as e:
            assert e.field == field, (e.field, field)


def test_data_profiles_load():
    import os
    n = 0
    for fn in sorted(os.listdir("data/devices")):
        if fn.endswith(".json"):
            p = C.load_profile("data/devices/" + fn)
            assert p.entry > 0
            n += 1
    assert n >= 4
