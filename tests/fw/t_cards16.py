# Issue 16 on the reader and the rule engine: status words handled as ISO
# 7816-4 says (61 xx -> GET RESPONSE, 6C xx -> the command again with that
# Le), a locked (62 83) or blocked (6A 81) application refused with its own
# reason and message, the transport-function requirement, and the catalog's
# expiry policies (refuse, accept, accept with grace days).
import gc
import vclock
from vhw.pn532sim import PN532Sim
gc.collect()
import machine
gc.collect()
from vhw import bus, chip, rfcards
from ykt.nfc.pn532 import PN532
from ykt.nfc.pn532_i2c import PN532_I2C
from ykt.nfc.reader import Reader, DEFAULT_OPTS, OPT_TRANSIT
from ykt.cardread import CardRead
from ykt import cardread as C
from ykt import taprec as T
from ykt import outcome as O
from ykt.rules import catalog as CAT
from t_decide_kit import Rig, card, NOW, check


def setup():
    vclock.reset()
    bus.reset()
    chip.configure()


def _reader(opts=DEFAULT_OPTS):
    sim = PN532Sim()
    sim.attach_i2c(0, freq=0)
    t = PN532_I2C(machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21), freq=400000))
    r = Reader(PN532(t), opts=opts)
    assert r.start()
    return sim, r


def _read(sim, r, cr, name):
    sim.field.clear()
    r.poll(cr)
    r.poll(cr)
    sim.field.present(name)
    assert r.poll(cr), name
    return cr


def test_get_response_61xx():
    sim, r = _reader()
    cr = _read(sim, r, CardRead(), "ssc_get_response")
    want = rfcards.load("ssc_get_response")
    assert cr.error == C.OK and cr.kind == C.KIND_SSC
    assert bytes(cr.card_no) == want.card_no and bytes(cr.card_id) == bytes(want.card_id)


def test_wrong_le_6cxx_reissued():
    sim, r = _reader()
    cr = _read(sim, r, CardRead(), "ssc_wrong_le")
    want = rfcards.load("ssc_wrong_le")
    assert cr.error == C.OK and bytes(cr.card_id) == bytes(want.card_id) and cr.region == 450100


def test_locked_and_blocked_are_refused_not_tap_again():
    sim, r = _reader()
    cr = CardRead()
    assert _read(sim, r, cr, "ssc_locked").error == C.ERR_LOCKED
    rig = Rig("bus_validator")
    t = rig.tap_card(cr)
    check(t, T.OUT_DENY, T.R_CARD_LOCKED, 0)
    assert rig.fb == O.FB_DENY and rig.msg == O.M_CARD_LOCKED and O.MESSAGES[rig.msg][2] == "Card locked"
    assert _read(sim, r, cr, "ssc_blocked").error == C.ERR_BLOCKED
    t = rig.tap_card(cr, now=NOW + 60)
    check(t, T.OUT_DENY, T.R_CARD_BLOCKED, 0)
    assert rig.fb == O.FB_DENY and rig.msg == O.M_CARD_BLOCKED
    # a good card right after still reads
    assert _read(sim, r, cr, "ssc_nanning").error == C.OK


def _cat_flags(flags, grace=0):
    """The test rig's catalog with entry 301's flags / grace days replaced."""
    rig = Rig("bus_validator")
    e = rig.catalog.get(301)
    e.flags = flags
    e.grace = grace
    return rig


def test_transit_required():
    sim, r = _reader(DEFAULT_OPTS | OPT_TRANSIT)
    cr = CardRead()
    rig = _cat_flags(CAT.F_REQ_TRANSIT)
    _read(sim, r, cr, "ssc_nanning")
    assert cr.error == C.OK and not cr.has_transit
    check(rig.tap_card(cr), T.OUT_DENY, T.R_NO_TRANSIT, 0)
    assert rig.msg == O.M_NO_TRANSIT and rig.fb == O.FB_DENY
    _read(sim, r, cr, "ssc_transit")
    assert cr.error == C.OK and cr.has_transit
    assert rig.tap_card(cr, now=NOW + 60).outcome == T.OUT_ACCEPT
    # an entry without the requirement takes the card without the function
    rig = _cat_flags(0)
    _read(sim, r, cr, "ssc_nanning")
    assert rig.tap_card(cr).outcome == T.OUT_ACCEPT


def test_expiry_policies():
    # NOW is 2026-11-26 (t_decide_kit); the card expired 2026-11-20, 6 days before
    exp = card(expiry=20261120)
    check(_cat_flags(CAT.EXP_REFUSE).tap_card(exp), T.OUT_DENY, T.R_EXPIRED, 0)
    assert _cat_flags(CAT.EXP_ACCEPT).tap_card(exp).outcome == T.OUT_ACCEPT
    assert _cat_flags(CAT.EXP_GRACE, 7).tap_card(exp).outcome == T.OUT_ACCEPT     # within 7 days
    assert _cat_flags(CAT.EXP_GRACE, 6).tap_card(exp).outcome == T.OUT_ACCEPT     # the 6th day still counts
    check(_cat_flags(CAT.EXP_GRACE, 5).tap_card(exp), T.OUT_DENY, T.R_EXPIRED, 0)
    # across a month and a year end
    old = card(expiry=20261031)
    check(_cat_flags(CAT.EXP_GRACE, 25).tap_card(old), T.OUT_DENY, T.R_EXPIRED, 0)
    assert _cat_flags(CAT.EXP_GRACE, 26).tap_card(old).outcome == T.OUT_ACCEPT


def test_catalog_file_carries_flags():
    from t_decide_kit import catalog_bin
    import struct
    from ykt.rules import fares as F
    import binascii
    body = struct.pack(CAT._ENTRY, 301, CAT.K_BUS, 1, CAT.F_REQ_TRANSIT | CAT.EXP_GRACE, 30) + \
        struct.pack("<I", CAT.encode_region("45"))
    hdr = struct.pack(F.HDR_FMT, b"YKTC", F.FORMAT_VERSION, 0, 1, 0, 0, len(body),
                      binascii.crc32(body) & 0xFFFFFFFF)
    e = CAT.Catalog(hdr + body).get(301)
    assert e.flags & CAT.F_REQ_TRANSIT and e.flags & CAT.F_EXP_MASK == CAT.EXP_GRACE and e.grace == 30
    bad = struct.pack(CAT._ENTRY, 301, CAT.K_BUS, 1, 0x80, 0) + struct.pack("<I", 0)
    hdr = struct.pack(F.HDR_FMT, b"YKTC", F.FORMAT_VERSION, 0, 1, 0, 0, len(bad), binascii.crc32(bad) & 0xFFFFFFFF)
    try:
        CAT.Catalog(hdr + bad)
        assert False, "unknown flags accepted"
    except F.LoadError as ex:
        assert ex.code == "range"
