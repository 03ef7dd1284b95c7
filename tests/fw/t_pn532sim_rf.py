# PN532 simulator commands with cards in the field, over I2C without link time
# so the virtual clock shows the RF timing model alone (docs/design.md, "RF timing model":
# command 1 ms, -4 activation 8 ms, UID-only 3 ms, APDU 4 ms + 0.1 ms/byte +
# card processing: SELECT 10 ms, READ RECORD 6 ms, other 8 ms).
import vclock
from vhw import rfcards
from t_pn532sim_util import h, hx, cmd, parse, wait_ready, i2c_cmd, i2c_sim, ACK, SSC_DF

SELECT_SSC = h("00 A4 04 00 0F") + SSC_DF
FCI = h("6F 17 84 0F") + SSC_DF + h("A5 04 9F 08 01 03 90 00")


def timed(sim, code, data=b""):
    """-> (answer data, us from end of command write to answer ready)."""
    sim.i2c_write(cmd(code, data))
    t0 = vclock.now_us()
    wait_ready(sim, step=1)
    assert sim.i2c_read(7)[1:] == ACK
    wait_ready(sim, step=100)
    t = vclock.now_us() - t0
    kind, body = parse(sim.i2c_read(300)[1:])
    assert kind == "frame" and body[1] == code + 1
    return body[2:], t


def test_inlist_ssc_with_ats_exact_and_timed():
    sim = i2c_sim(card="ssc_nanning")
    got, t = timed(sim, 0x4A, h("01 00"))     # InListPassiveTarget MaxTg 1, 106 kbps type A
    # NbTg Tg SENS_RES SEL_RES NFCIDLength NFCID ATS(TL T0 TA TB TC "SSC-SIM")
    assert got == h("01 01 00 08 20 04 5A 3C 9E 21 0C 78 80 70 02 53 53 43 2D 53 49 4D")
    assert 9000 <= t < 9100                   # 1 ms + 8 ms
    assert sim.stats["activations"] == 1


def test_inlist_uid_only_cards_exact():
    sim = i2c_sim(card="mifare_classic")
    got, t = timed(sim, 0x4A, h("01 00"))
    assert got == h("01 01 00 04 08 04 3A 7F 12 C4") and 4000 <= t < 4100
    sim.field.clear()
    sim.field.present("ultralight")
    got, t = timed(sim, 0x4A, h("01 00"))
    assert got == h("01 01 00 44 00 07 04 A1 B2 C3 D4 E5 80")


def test_inlist_no_card_fails_after_retries():
    sim = i2c_sim(retries=2)
    got, t = timed(sim, 0x4A, h("01 00"))
    assert got == h("00")
    assert 10000 <= t < 10100                 # 1 ms + 3 attempts x 3 ms
    assert i2c_cmd(sim, 0x06, h("63 39")) == h("26")   # REQA still in CIU_FIFOData (nfcpy checks)


def test_inlist_retries_forever_until_a_card_comes():
    sim = i2c_sim(retries=0xFF)
    sim.field.present("ssc_nanning", after_us=50000)
    got, t = timed(sim, 0x4A, h("01 00"))
    assert got[:2] == h("01 01")
    assert 51000 <= t < 63100                 # next poll boundary + activation + overhead


def test_two_cards_maxtg_1_and_2():
    sim = i2c_sim(card="ssc_nanning")
    sim.fault("two_cards", card="mifare_classic")
    got, _ = timed(sim, 0x4A, h("01 00"))
    # UIDs 5A.. and 3A.. first differ at bit 5 of byte 0 (LSB first); the reader sends 1
    # there, so the MIFARE card (3A) wins. SENS_RES 0008|0004 collided: the OR is reported.
    assert got == h("01 01 00 0C 08 04 3A 7F 12 C4")
    sim.field.set_rf(False)
    got, _ = timed(sim, 0x4A, h("02 00"))
    assert got[:10] == h("02 01 00 0C 08 04 3A 7F 12 C4")
    assert got[10:] == h("02 00 08 20 04 5A 3C 9E 21 0C 78 80 70 02 53 53 43 2D 53 49 4D")


def test_inlist_with_uid_selects_that_card():
    sim = i2c_sim(card="ssc_nanning")
    sim.field.present("ultralight")
    got, _ = timed(sim, 0x4A, h("01 00 88 04 A1 B2 C3 D4 E5 80"))  # nfcpy's cascade form
    assert got == h("01 01 00 44 00 07 04 A1 B2 C3 D4 E5 80")


def test_select_and_read_record_exact_and_timed():
    sim = i2c_sim(card="ssc_nanning")
    timed(sim, 0x4A, h("01 00"))
    got, t = timed(sim, 0x40, h("01") + SELECT_SSC)           # InDataExchange Tg 1
    assert got == h("00") + FCI
    assert 19700 <= t < 19800                 # 1 + 4 + 0.1 x (20 + 27) + 10 ms
    got, t = timed(sim, 0x40, h("01 00 B2 01 2C 00"))
    assert got == h("00 01 10 45 01 00 D1 56 00 00 05 20 21 03 15 00 00 A0 01 90 00")
    assert 13500 <= t < 13600                 # 1 + 4 + 0.1 x (5 + 20) + 6 ms
    got, _ = timed(sim, 0x40, h("01 00 B2 07 2C 00"))
    assert got == h("00 07 09") + b"A12345678" + h("90 00")
    got, _ = timed(sim, 0x40, h("01 00 B2 08 34 00"))
    assert got[:3] == h("00 08 12") and got[3:21] == rfcards.load("ssc_nanning").citizen.encode()
    assert timed(sim, 0x40, h("01 00 B2 02 2C 00"))[0] == h("00 6A 83")   # no record 02
    assert timed(sim, 0x40, h("01 00 B2 01 2C 05"))[0] == h("00 6C 12")   # Le too small
    assert sim.stats["apdus"] == 6 and sim.stats["commands"][0x40] == 6


def test_unknown_application_and_transit():
    sim = i2c_sim(card="ssc_nanning")
    timed(sim, 0x4A, h("01 00"))
    transit = h("00 A4 04 00 08 A0 00 00 06 32 01 01 05")
    assert timed(sim, 0x40, h("01") + transit)[0] == h("00 6A 82")
    assert timed(sim, 0x40, h("01 00 B2 01 2C 00"))[0] == h("00 6A 82")  # nothing selected
    sim.field.set_rf(False)
    sim.field.clear()
    sim.field.present("ssc_transit")
    timed(sim, 0x4A, h("01 00"))
    got, _ = timed(sim, 0x40, h("01") + transit)
    assert got[:2] == h("00 6F") and got[-2:] == h("90 00")


def test_ef06_behind_pin():
    sim = i2c_sim(card="ssc_pin_ef06")
    timed(sim, 0x4A, h("01 00"))
    timed(sim, 0x40, h("01") + SELECT_SSC)
    assert timed(sim, 0x40, h("01 00 B2 08 34 00"))[0] == h("00 69 82")
    assert timed(sim, 0x40, h("01 00 20 00 00 03 12 34 56"))[0] == h("00 90 00")
    assert timed(sim, 0x40, h("01 00 B2 08 34 00"))[0][-2:] == h("90 00")


def test_long_answer_comes_in_parts_with_mi():
    card = rfcards.make_ssc(responses={"00B2012C00": "AB" * 300 + "9000"})
    sim = i2c_sim(card=card)
    timed(sim, 0x4A, h("01 00"))
    timed(sim, 0x40, h("01") + SELECT_SSC)
    sim.i2c_write(cmd(0x40, h("01 00 B2 01 2C 00")))
    wait_ready(sim)
    sim.i2c_read(7)
    wait_ready(sim)
    raw = sim.i2c_read(300)
    assert raw[1:9] == h("00 00 FF FF FF 01 09 F6")   # 265 bytes: an extended frame
    kind, body = parse(raw[1:])
    assert body[:3] == h("D5 41 40") and len(body) == 265   # status 0x40: more to come
    rest, _ = timed(sim, 0x40, h("01"))               # continuation: empty InDataExchange
    assert rest[0] == 0x00
    assert body[3:] + rest[1:] == h("AB" * 300 + "9000")


def test_endless_chaining_never_ends():
    sim = i2c_sim(card="hostile_endless_chaining")
    timed(sim, 0x4A, h("01 00"))
    got, _ = timed(sim, 0x40, h("01") + SELECT_SSC)
    for _ in range(4):
        assert got[0] == 0x40 and len(got) == 263
        got, _ = timed(sim, 0x40, h("01"))


def test_card_removed_after_k_apdus():
    sim = i2c_sim(card="ssc_nanning")
    timed(sim, 0x4A, h("01 00"))
    sim.fault("card_removed", after=1)
    assert timed(sim, 0x40, h("01") + SELECT_SSC)[0][:1] == h("00")
    got, t = timed(sim, 0x40, h("01 00 B2 01 2C 00"))
    assert got == h("01") and t >= 38000      # timeout after the card's FWT (FWI 7)
    assert len(sim.field) == 0


def test_card_leaving_during_the_exchange():
    sim = i2c_sim(card="ssc_nanning")
    timed(sim, 0x4A, h("01 00"))
    sim.field.remove(sim.field.cards[0], after_us=5000)   # leaves while SELECT runs
    assert timed(sim, 0x40, h("01") + SELECT_SSC)[0] == h("01")


def test_rf_error_fault_status():
    sim = i2c_sim(card="ssc_nanning")
    timed(sim, 0x4A, h("01 00"))
    sim.fault("rf_error", code=0x02, count=1)
    assert timed(sim, 0x40, h("01") + SELECT_SSC)[0] == h("02")
    assert timed(sim, 0x40, h("01") + SELECT_SSC)[0] == h("00") + FCI


def test_slow_cards():
    sim = i2c_sim(card="hostile_slow")                # FWI 8: FWT 77.3 ms, answers at 95 %
    timed(sim, 0x4A, h("01 00"))
    assert timed(sim, 0x40, h("01") + SELECT_SSC)[0][-2:] == h("90 00")
    got, t = timed(sim, 0x40, h("01 00 B2 01 2C 00"))
    assert got[-2:] == h("90 00") and 80900 < t < 81100   # 1 + 4 + 2.5 + 0.95 x 77.3 ms
    sim.fault("slow_card", exceed=True)               # answers after FWT: the PN532 times out
    got, t = timed(sim, 0x40, h("01 00 B2 01 2C 00"))
    assert got == h("01")
    sim.clear_faults()
    sim.fault("slow_card", fraction=0.9, wtx=2)       # asks for more time twice (S(WTX))
    got, t = timed(sim, 0x40, h("01 00 B2 01 2C 00"))
    assert got[-2:] == h("90 00")
    sim.clear_faults()
    assert sim.field.cards[0].slow_fraction == 0.95 and sim.field.cards[0].wtx_count == 0


def test_release_halts_and_left_on_card_retriggers():
    sim = i2c_sim(card="ssc_nanning", retries=1)
    assert timed(sim, 0x4A, h("01 00"))[0][0] == 1
    got, t = timed(sim, 0x4A, h("01 00"))             # not released: found again
    assert got[0] == 1 and t >= 12000                 # the first REQA only reset it
    assert timed(sim, 0x52, h("00"))[0] == h("00")    # InRelease all: S(DESELECT)
    assert timed(sim, 0x4A, h("01 00"))[0] == h("00")  # halted cards ignore REQA
    c = sim.field.cards[0]
    sim.field.remove(c)
    sim.field.present(c)                              # taken away and back
    assert timed(sim, 0x4A, h("01 00"))[0][0] == 1
    assert timed(sim, 0x52, h("02"))[0] == h("27")    # no target 2


def test_deselect_and_select_again():
    sim = i2c_sim(card="ssc_nanning")
    timed(sim, 0x4A, h("01 00"))
    timed(sim, 0x40, h("01") + SELECT_SSC)
    assert timed(sim, 0x44, h("01"))[0] == h("00")    # InDeselect
    assert timed(sim, 0x40, h("01") + SELECT_SSC)[0] == h("01")  # deselected card is mute
    assert timed(sim, 0x54, h("01"))[0] == h("00")    # InSelect: WUPA, SELECT, RATS
    assert timed(sim, 0x40, h("01") + SELECT_SSC)[0] == h("00") + FCI


def test_communicate_thru_like_nfcpy():
    sim = i2c_sim(card="ssc_nanning")
    i2c_cmd(sim, 0x12, h("00"))                       # SetParameters: no automatic RATS
    got, _ = timed(sim, 0x4A, h("01 00"))
    assert got == h("01 01 00 08 20 04 5A 3C 9E 21")  # no ATS
    assert i2c_cmd(sim, 0x06, h("63 02 63 03 63 05")) == h("80 80 40")
    assert timed(sim, 0x42, h("E0 80"))[0] == h("00 0C 78 80 70 02 53 53 43 2D 53 49 4D")
    got, _ = timed(sim, 0x42, h("02") + SELECT_SSC)   # I-block, block number 0
    assert got == h("00 02") + FCI
    got, _ = timed(sim, 0x42, h("03 00 B2 07 2C 00"))  # block number 1
    assert got == h("00 03 07 09") + b"A12345678" + h("90 00")
    # presence check R(NAK) with the PCD's next number 0: the card (at 1) answers R(ACK) 1
    assert timed(sim, 0x42, h("B2"))[0] == h("00 A3")
    assert timed(sim, 0x42, h("C2"))[0] == h("00 C2")  # S(DESELECT)
    assert timed(sim, 0x42, h("02") + SELECT_SSC)[0] == h("01")


def test_thru_with_crc_off_ultralight():
    sim = i2c_sim(card="ultralight")
    timed(sim, 0x4A, h("01 00"))
    i2c_cmd(sim, 0x08, h("63 03 00"))                 # RxMode: CRC check off (nfcpy, type 2)
    got, _ = timed(sim, 0x42, h("30 00"))
    assert got[0] == 0 and len(got) == 1 + 16 + 2
    from vhw.iso14443 import crc_a
    assert crc_a(got[1:17]) == got[17:]
    assert got[1:4] == h("04 A1 B2")


def test_mifare_classic_exchange():
    sim = i2c_sim(card="mifare_classic")
    timed(sim, 0x4A, h("01 00"))
    assert timed(sim, 0x40, h("01 30 04"))[0] == h("14")                       # not authenticated
    assert timed(sim, 0x40, h("01 60 04 00 00 00 00 00 00 3A 7F 12 C4"))[0] == h("14")
    assert timed(sim, 0x40, h("01 60 04 FF FF FF FF FF FF 3A 7F 12 C4"))[0] == h("00")
    assert timed(sim, 0x40, h("01 30 04"))[0] == h("00") + bytes(16)
    assert timed(sim, 0x40, h("01") + SELECT_SSC)[0] == h("01")              # no APDUs here
    assert timed(sim, 0x40, h("02 00"))[0] == h("27")                        # no target 2


def test_deep_cascade_uid_reported_in_full():
    sim = i2c_sim(card="hostile_deep_cascade")
    got, _ = timed(sim, 0x4A, h("01 00"))
    assert got[4] == 0x20 and got[5] == 13 and got[6:19] == h("01 02 03 04 05 06 07 08 09 0A 0B 0C 0D")


def test_misc_commands():
    sim = i2c_sim(card="ssc_nanning")
    assert i2c_cmd(sim, 0x04) == h("00 00 00 00")     # GetGeneralStatus: no target
    timed(sim, 0x4A, h("01 00"))
    assert i2c_cmd(sim, 0x04) == h("00 00 01 01 00 00 00 00")
    assert i2c_cmd(sim, 0x00, h("01")) == h("00")     # Diagnose ROM test
    assert i2c_cmd(sim, 0x00, h("06")) == h("00")     # attention request: card there
    assert i2c_cmd(sim, 0x08, h("63 05 00 63 06 11")) == b""
    assert i2c_cmd(sim, 0x06, h("63 05 63 06 12 34")) == h("00 11 00")
    assert i2c_cmd(sim, 0x32, h("01 00")) == b""      # RF off: cards lose power
    assert sim.field.cards[0].state == 0
    for code, data in ((0x32, h("05 01")), (0x32, h("63 00")), (0x14, h("00")), (0x4A, h("03 00")),
                       (0x06, h("63")), (0x10, h("09"))):
        sim.i2c_write(cmd(code, data))
        wait_ready(sim)
        sim.i2c_read(7)
        wait_ready(sim)
        assert sim.i2c_read(9)[1:] == h("00 00 FF 01 FF 7F 81 00"), hx(data)


def test_power_down_over_i2c():
    sim = i2c_sim(card="ssc_nanning")
    assert i2c_cmd(sim, 0x16, h("88 00")) == h("00")  # PowerDown, wake on I2C or RF
    assert not sim.field.rf_on
    assert i2c_cmd(sim, 0x02) == h("32 01 06 07")     # I2C wakes it
    i2c_cmd(sim, 0x16, h("20"))                       # wake on SPI only
    try:
        sim.i2c_write(cmd(0x02))
        assert False
    except OSError as e:
        assert e.args[0] == 19


def test_timing_overrides_and_stats():
    sim = i2c_sim(timing={"cmd_us": 500, "activate_iso4_us": 6000}, card="ssc_nanning")
    _, t = timed(sim, 0x4A, h("01 00"))
    assert 6500 <= t < 6600
    st = sim.stats
    assert st["commands"][0x4A] == 1 and st["commands"][0x14] == 1 and st["commands"][0x32] == 1
    assert st["rf_us"] == 6000 and st["bytes_in"] > 0 and st["bytes_out"] > 0
    sim.reset_stats()
    assert sim.stats["commands"] == {} and sim.stats["rf_us"] == 0


def test_second_target_gets_cid_and_answers_apdus():
    sim = i2c_sim(card="ssc_nanning")
    b = rfcards.make_ssc(uid="11223344", card_no="B00000002")
    sim.field.present(b)
    got, _ = timed(sim, 0x4A, h("02 00"))
    assert got[0] == 2
    assert b.cid == 1 or sim.field.cards[0].cid == 1           # RATS CID = Tg-1
    for tg in (1, 2):
        assert timed(sim, 0x40, bytes((tg,)) + SELECT_SSC)[0] == h("00") + FCI
    a7 = timed(sim, 0x40, h("02 00 B2 07 2C 00"))[0]
    a1 = timed(sim, 0x40, h("01 00 B2 07 2C 00"))[0]
    assert sorted((a1[3:12], a7[3:12])) == [b"A12345678", b"B00000002"]


def test_host_chaining_with_mi_bit():
    sim = i2c_sim(card="ssc_nanning")
    timed(sim, 0x4A, h("01 00"))
    part1, part2 = SELECT_SSC[:10], SELECT_SSC[10:]
    assert timed(sim, 0x40, h("41") + part1)[0] == h("00")    # Tg 1 | MI: more to come
    assert timed(sim, 0x40, h("01") + part2)[0] == h("00") + FCI
