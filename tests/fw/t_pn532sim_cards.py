# The simulated cards (host_tools/simhw/cards/*.json, vhw.rfcards) and the
# ISO/IEC 14443 pieces under them: APDU answers per the shared SSC data model,
# -4 block rules, CRC_A, anticollision. Portable.
from vhw import rfcards, iso14443 as iso
from t_pn532sim_util import h, SSC_DF

NAMES = ("ssc_nanning", "ssc_elderly_62", "ssc_elderly_70", "ssc_transit", "ssc_expired",
         "ssc_not_yet_valid", "ssc_guangzhou", "ssc_pin_ef06", "ssc_liuzhou_replaced_old",
         "ssc_liuzhou_replaced_new", "mifare_classic", "ultralight", "hostile_oversized",
         "hostile_inconsistent", "hostile_deep_cascade", "hostile_endless_chaining",
         "hostile_wrong_sw", "hostile_slow")
SELECT = h("00 A4 04 00 0F") + SSC_DF


def rec(card, n, sfi=5):
    card.apdu(SELECT)
    return card.apdu(bytes((0x00, 0xB2, n, (sfi << 3) | 4, 0x00)))[0]


def test_every_named_profile_loads():
    have = rfcards.names()
    for n in NAMES:
        assert n in have, n
        c = rfcards.load(n)
        assert c.name == n
        assert (c.sak & 0x20 != 0) == c.iso4
    assert rfcards.load("mifare_classic").sak == 0x08 and len(rfcards.load("mifare_classic").uid) == 4
    u = rfcards.load("ultralight")
    assert u.sak == 0x00 and len(u.uid) == 7 and not u.iso4


def test_ssc_records_follow_the_data_model():
    c = rfcards.load("ssc_nanning")
    assert c.apdu(SELECT)[0][-2:] == h("90 00")
    r1 = rec(c, 1)
    assert r1[:2] == h("01 10") and r1[2:5] == h("45 01 00") and r1[-2:] == h("90 00")
    assert rec(c, 3) == b"\x03\x043.00\x90\x00"
    assert rec(c, 5) == h("05 04 20 21 03 15 90 00")
    assert rec(c, 6) == h("06 04 20 31 03 15 90 00")
    assert rec(c, 7) == b"\x07\x09A12345678\x90\x00"
    assert rec(c, 4)[:2] == h("04 0C")
    assert rec(c, 2) == h("6A 83")
    cid = rec(c, 8, 6)[2:20].decode()
    assert cid[6:14] == "19850612" and len(cid) == 18
    assert rec(c, 9, 6)[:2] == h("09 1E")


def test_profiles_carry_what_the_other_parts_test():
    def birth(n):
        return rec(rfcards.load(n), 8, 6)[8:16]
    assert birth("ssc_elderly_62") == b"19640301"
    assert birth("ssc_elderly_70")[:4] == b"1956"
    assert rec(rfcards.load("ssc_expired"), 6)[2:6] == h("20 24 01 01")
    assert rec(rfcards.load("ssc_not_yet_valid"), 5)[2:6] == h("20 27 01 15")
    assert rec(rfcards.load("ssc_guangzhou"), 1)[2:5] == h("44 01 00")
    old, new = rfcards.load("ssc_liuzhou_replaced_old"), rfcards.load("ssc_liuzhou_replaced_new")
    assert rec(old, 8, 6) == rec(new, 8, 6)                  # same citizen
    assert rec(old, 1) != rec(new, 1) and rec(old, 7) != rec(new, 7) and old.uid != new.uid
    assert rec(old, 1)[2:5] == h("45 02 00")
    t = rfcards.load("ssc_transit")
    assert t.apdu(h("00 A4 04 00 08 A0 00 00 06 32 01 01 05"))[0][-2:] == h("90 00")
    assert rfcards.load("ssc_nanning").apdu(h("00 A4 04 00 08 A0 00 00 06 32 01 01 05"))[0] == h("6A 82")


def test_pin_protected_ef06():
    c = rfcards.load("ssc_pin_ef06")
    assert rec(c, 8, 6) == h("69 82")
    assert c.apdu(h("00 20 00 00 03 11 11 11"))[0] == h("63 C2")
    assert c.apdu(h("00 20 00 00 03 12 34 56"))[0] == h("90 00")
    assert rec(c, 8, 6)[-2:] == h("90 00")


def test_hostile_profiles():
    assert rec(rfcards.load("hostile_oversized"), 1)[:2] == h("01 F0")
    c = rfcards.load("hostile_inconsistent")
    assert rec(c, 7) == h("07 04") + b"A66600002" + h("90 00")
    assert rec(c, 1)[0] == 0x02 and rec(c, 5) == h("05 04 20 21 03 90 00")
    w = rfcards.load("hostile_wrong_sw")
    assert rec(w, 1)[-2:] == h("6F 00") and rec(w, 3) == h("03 04 33 2E 30 30 90")
    assert len(rfcards.load("hostile_deep_cascade").uid) == 13
    assert len(iso.cascade(rfcards.load("hostile_deep_cascade").uid)) == 4
    s = rfcards.load("hostile_slow")
    assert s.fwi == 8 and s.slow_fraction == 0.95
    assert rfcards.load("hostile_endless_chaining").endless


def test_make_ssc_is_deterministic_and_valid():
    a = rfcards.make_ssc(region=450900, birth=19490101, seq=5, transit=True, pin_ef06=True)
    b = rfcards.make_ssc(region=450900, birth=19490101, seq=5)
    assert a.uid == b.uid and a.card_no == b.card_no and a.card_id == b.card_id
    assert a.card_id[:3] == h("45 09 00") and len(a.card_id) == 16 and len(a.card_no) == 9
    assert a.citizen[6:14] == "19490101" and a.transit and a.pin_ef06
    assert rfcards.citizen_id(110100, 19491231, 3) == "110103194912310032"[:17] + \
        rfcards.citizen_id(110100, 19491231, 3)[17]
    c = rfcards.make_ssc(card_no="B00000001", card_id="450100D1560000050000000000000001",
                         uid="01020304050607", birth=20000229, issue=20200101, expiry=20300101)
    assert c.card_no == b"B00000001" and len(c.uid) == 7 and c.atqa == h("00 48")
    assert rec(c, 7) == b"\x07\x09B00000001\x90\x00"


def test_citizen_id_check_digit():
    # ISO 7064 MOD 11-2 on the published GB 11643 example 11010519491231002X
    w = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    body = "11010519491231002"
    s = 0
    for i in range(17):
        s += int(body[i]) * w[i]
    assert "10X98765432"[s % 11] == "X"
    cid = rfcards.citizen_id(450100, 19850612, 1)
    s = 0
    for i in range(17):
        s += int(cid[i]) * w[i]
    assert cid[17] == "10X98765432"[s % 11]


def test_apdu_errors():
    c = rfcards.load("ssc_nanning")
    assert c.apdu(h("80 B2 01 2C 00"))[0] == h("6E 00")
    assert c.apdu(h("00 CA 00 00 00"))[0] == h("6D 00")
    assert c.apdu(h("00 A4"))[0] == h("67 00")
    assert c.apdu(h("00 A4 04 00 0F 73 78"))[0] == h("67 00")
    assert c.apdu(h("00 A4 02 00 02 EF 05"))[0] == h("6A 86")
    c.apdu(SELECT)
    assert c.apdu(h("00 B2 01 2D 00"))[0] == h("6A 86")
    assert c.apdu(h("00 B2 01 3C 00"))[0] == h("6A 82")   # SFI 7 does not exist


def test_crc_a_and_fwt():
    assert iso.crc_a(h("00 00")) == h("A0 1E")             # ISO/IEC 14443-3 annex B example
    assert iso.crc_a(h("12 34")) == h("26 CF")
    assert iso.fwt_us(4) == 4833 and iso.fwt_us(7) == 38664 and iso.fwt_us(8) == 77328
    assert iso.parse_ats(h("0C 78 80 70 02")) == (256, 7, True)
    assert iso.parse_ats(h("05 72 80 40 00")) == (32, 4, False)


def test_iso_dep_block_rules():
    c = rfcards.load("ssc_nanning")
    c.power(True)
    assert c.answers_req(False)
    c.selected()
    assert c.rats(0x80) == c.ats and c.state == iso.PROTO   # FSD 256, CID 0
    T = {"select_us": 1, "read_record_us": 1, "apdu_other_us": 1}
    ans, _, done = c.block(h("02") + SELECT, T)
    assert ans[0] == 0x02 and ans[-2:] == h("90 00") and done
    assert c.block(h("A2"), T)[0] == ans                    # R(ACK) same number: resend
    assert c.block(h("B3"), T)[0] == h("A2")                # R(NAK) other number: R(ACK)
    # chained command from the PCD: 00 B2 01 | 2C 00
    assert c.block(h("13 00 B2 01"), T)[0] == h("A3")
    ans, _, done = c.block(h("02 2C 00"), T)
    assert ans[0] == 0x02 and ans[1:3] == h("01 10") and done
    assert c.block(h("CA 01"), T)[0] is None                # CID 1: not ours
    assert c.block(h("C2"), T)[0] == h("C2") and c.state == iso.HALT
    assert not c.answers_req(False) and c.answers_req(True)  # HALT: only WUPA


def test_card_chains_long_answers_to_the_fsd():
    c = rfcards.make_ssc(responses={"00B2012C00": "CD" * 150 + "9000"})
    c.power(True)
    c.answers_req(False)
    c.selected()
    c.rats(0x50)                                             # FSD 64
    T = {"select_us": 1, "read_record_us": 1, "apdu_other_us": 1}
    a1 = c.block(h("02 00 B2 01 2C 00"), T)[0]
    assert a1[0] == 0x12 and len(a1) == 62                   # chaining; INF = 64 - PCB - CRC
    a2 = c.block(h("A3"), T)[0]
    assert a2[0] == 0x13 and len(a2) == 62
    a3 = c.block(h("A2"), T)[0]
    assert a3[0] == 0x02 and a1[1:] + a2[1:] + a3[1:] == h("CD" * 150 + "9000")


def test_anticollision_picks_the_one_bit():
    a = rfcards.make_ssc(uid="01000000")
    b = rfcards.make_ssc(uid="03000000")
    c = rfcards.make_ssc(uid="01000080")
    assert iso.resolve([a, b], 0) == (b, True)
    assert iso.resolve([a, c], 0) == (c, True)
    assert iso.resolve([a], 0) == (a, False)
    assert iso.cascade(h("04 A1 B2 C3 D4 E5 80")) == [h("88 04 A1 B2"), h("C3 D4 E5 80")]


def test_field_presence_and_power():
    import vclock
    vclock.reset()
    f = rfcards.Field()
    seen = []
    f.listener = lambda c, p: seen.append((c.name, p))
    c = f.present("ssc_nanning")
    assert c.state == iso.OFF                                # no RF yet
    f.set_rf(True)
    assert c.state == iso.IDLE
    f.present("ultralight", after_us=1000, for_us=5000)
    vclock.advance_us(1000)
    assert len(f) == 2
    vclock.advance_us(5000)
    assert len(f) == 1
    f.remove(c)
    assert c.state == iso.OFF and len(f) == 0
    assert seen == [("ssc_nanning", True), ("ultralight", True), ("ultralight", False),
                    ("ssc_nanning", False)]
