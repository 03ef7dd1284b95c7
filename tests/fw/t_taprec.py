# Pins the tap record bytes: journal, wire and back office all depend on them.
import binascii
from ykt import taprec


def _sample():
    t = taprec.Tap()
    t.seq = 0x01020304
    t.time = 1795000000
    t.token[:] = b"\x11\x22\x33\x44\x55\x66\x77\x88"
    t.outcome = taprec.OUT_ACCEPT
    t.reason = taprec.R_CONCESSION
    t.fare = 100
    t.concession = taprec.C_ELDERLY_HALF
    t.flags = taprec.F_TIME_UNTRUSTED
    t.entry = 301
    t.stop = 12
    t.direction = 1
    t.stage = 0
    t.dl_ver = 7
    t.fare_ver = 3
    t.cat_ver = 2
    t.shift = 0x00012345
    return t


def test_vector():
    b = taprec.pack(_sample())
    assert len(b) == taprec.SIZE == 40 and taprec.FORMAT == 2
    assert binascii.hexlify(b).decode() == (
        "04030201" "c086fd6a" "1122334455667788" "00" "01" "6400" "01" "01"
        "2d01" "0c00" "01" "00" "07000000" "0300" "0200" "45230100")
    # format 1 was the same bytes without the shift
    assert taprec.SIZE_V1 == 36 and b[:36] == bytes(b[:36])


def test_roundtrip():
    t = taprec.unpack_from(taprec.pack(_sample()))
    d = taprec.to_dict(t)
    assert d["seq"] == 0x01020304 and d["token"] == "1122334455667788"
    assert d["entry"] == 301 and d["dl_ver"] == 7 and d["cat_ver"] == 2 and d["shift"] == 0x12345


def test_truncated_rejected():
    try:
        taprec.unpack_from(b"\x00" * 39)
        raise AssertionError("accepted a truncated record")
    except ValueError as e:
        assert "truncated" in str(e)
