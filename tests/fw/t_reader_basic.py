# Reader state machine over exact-frame scripts (I2C link).
import gc
import vclock
import fwtest
from t_pn532_script import Script, ScriptI2C, ScriptSPI, ScriptUART, Pin, CMD, RSP, ACK, \
    HOST_ACK, init_items, idle_items, found, x, ssc_items, release, rf_off, SELECT, TRANSIT, asc, h
from ykt.nfc.pn532 import PN532
from ykt.nfc.pn532_i2c import PN532_I2C
from ykt.nfc.pn532_spi import PN532_SPI
from ykt.nfc.pn532_hsu import PN532_HSU
from ykt.nfc.reader import Reader, DEFAULT_OPTS, OPT_TRANSIT, OPT_ISSUE
from ykt.cardread import CardRead
from ykt import cardread as C


def setup():
    vclock.reset()


def _reader(items, opts=DEFAULT_OPTS, rst=None, loop=False):
    s = Script(items, loop=loop)
    r = Reader(PN532(PN532_I2C(ScriptI2C(s))), rst_pin=rst, opts=opts)
    return s, r


def test_start_sequence_exact():
    s, r = _reader(init_items())
    assert r.start() is True
    assert r.fw_version == (0x32, 1, 6, 7) and not r.fault
    assert s.done()


def test_idle_poll_no_event():
    s, r = _reader(init_items() + idle_items() * 3)
    cr = CardRead()
    assert r.start()
    for _ in range(3):
        assert r.poll(cr) is False
    assert s.done()


def test_ssc_read_full():
    items = init_items() + found() + ssc_items() + release() + rf_off()
    s, r = _reader(items)
    cr = CardRead()
    assert r.start()
    assert r.poll(cr) is True
    assert cr.error == C.OK and cr.kind == C.KIND_SSC
    assert cr.uid_bytes() == h("11223344") and cr.sel_res == 0x20 and cr.sens_res == 0x0004
    assert cr.ats_len == 5 and cr.ats[3] == 0x70
    assert cr.region == 450100 and bytes(cr.card_id) == h("450100d1560000050000000000000001")
    assert bytes(cr.card_no) == b"A12345678"
    assert cr.expiry_date == 20350101 and cr.generation == 3
    assert cr.birth_date == 19850315
    assert s.done()
    # the citizen ID does not linger in any driver buffer
    for b in (r.pn.buf, r.pn.out, r.ssc.resp):
        assert bytes(b).find(b"450103198503151234") < 0


def test_ssc_identity_only_and_transit_profile():
    items = init_items() + found() + ssc_items(version=None, citizen=None)
    items += x("00b2052c00", "0504 20200115 9000")
    items += x(TRANSIT, "9000") + release() + rf_off()
    s, r = _reader(items, opts=OPT_ISSUE | OPT_TRANSIT)
    cr = CardRead()
    assert r.start() and r.poll(cr)
    assert cr.error == C.OK and cr.has_transit and cr.issue_date == 20200115
    assert cr.generation == 0 and cr.birth_date == 0
    assert s.done()


def test_card_left_on_reader_one_event():
    items = init_items() + found() + ssc_items() + release() + rf_off()
    items += (found() + rf_off()) * 3        # still there: no event
    items += idle_items() * 2                # left the field
    items += found() + ssc_items() + release() + rf_off()   # comes back: new tap
    s, r = _reader(items)
    cr = CardRead()
    assert r.start()
    ev = [r.poll(cr) for _ in range(7)]
    assert ev == [True, False, False, False, False, False, True]
    assert s.done()


def test_single_miss_is_not_departure():
    items = init_items() + found("04a1b2c3", sak="08", ats=None) + rf_off()
    items += idle_items() + found("04a1b2c3", sak="08", ats=None) + rf_off()
    s, r = _reader(items)
    cr = CardRead()
    assert r.start()
    assert [r.poll(cr) for _ in range(3)] == [True, False, False]


def test_new_card_always_event():
    items = init_items() + found("04a1b2c3", sak="08", ats=None) + rf_off()
    items += found("04112233445566", sak="00", ats=None, sens="0044") + rf_off()
    s, r = _reader(items)
    cr = CardRead()
    assert r.start()
    assert r.poll(cr) and cr.kind == C.KIND_UID_ONLY and cr.uid_len == 4
    assert r.poll(cr) and cr.kind == C.KIND_UID_ONLY and cr.uid_len == 7
    assert cr.error == C.OK and s.done()


def test_random_uid_same_card():
    items = init_items() + found("08aabbcc", sak="08", ats=None) + rf_off()
    items += found("08ddeeff", sak="08", ats=None) + rf_off()
    s, r = _reader(items)
    cr = CardRead()
    assert r.start()
    assert [r.poll(cr), r.poll(cr)] == [True, False]


def test_unknown_application():
    items = init_items() + found() + x(SELECT, "6a82") + release() + rf_off()
    s, r = _reader(items)
    cr = CardRead()
    assert r.start() and r.poll(cr)
    assert cr.error == C.ERR_UNKNOWN_APP and cr.kind == C.KIND_NONE and s.done()


def test_ef06_pin_keeps_no_birth():
    items = init_items() + found() + ssc_items(ef06_sw="6982") + release() + rf_off()
    s, r = _reader(items)
    cr = CardRead()
    assert r.start() and r.poll(cr)
    assert cr.error == C.OK and cr.birth_date == 0 and cr.expiry_date == 20350101


def test_chained_answer():
    it = init_items() + found() + x(SELECT, "6f028400 9000")
    # record 01 arrives in two parts (MI bit 0x40 in the status byte)
    it += [CMD("40 01 00b2012c00"), ACK(), RSP("41 40 0110450100d156")]
    it += [CMD("40 01"), ACK(), RSP("41 00 0000050000000000000001 9000")]
    it += x("00b2072c00", "0709" + asc("A12345678") + "9000")
    it += x("00b2062c00", "0604 20350101 9000") + release() + rf_off()
    s, r = _reader(it, opts=0)
    cr = CardRead()
    assert r.start() and r.poll(cr)
    assert cr.error == C.OK and cr.region == 450100 and cr.card_id[15] == 1
    assert s.done()


def test_endless_chaining_malformed():
    it = init_items() + found() + x(SELECT, "6f028400 9000")
    it += [CMD("40 01 00b2012c00"), ACK(), RSP("41 40 0110")]
    for _ in range(4):
        it += [CMD("40 01"), ACK(), RSP("41 40 0000")]
    it += release() + rf_off()
    s, r = _reader(it, opts=0)
    cr = CardRead()
    assert r.start() and r.poll(cr)
    assert cr.error == C.ERR_MALFORMED and s.done()


def test_wrong_sw_and_lying_length():
    it = init_items() + found() + x(SELECT, "9000") + x("00b2012c00", "0120" + "45" * 16 + "9000")
    it += release() + rf_off()
    s, r = _reader(it, opts=0)
    cr = CardRead()
    assert r.start() and r.poll(cr) and cr.error == C.ERR_MALFORMED
    # ISO 7816-4: 62 83 = application locked, 6A 81 = card blocked: refused, not "tap again"
    it = init_items() + found() + x(SELECT, "6283") + release() + rf_off()
    s, r = _reader(it, opts=0)
    assert r.start() and r.poll(cr) and cr.error == C.ERR_LOCKED
    it = init_items() + found() + x(SELECT, "6a81") + release() + rf_off()
    s, r = _reader(it, opts=0)
    assert r.start() and r.poll(cr) and cr.error == C.ERR_BLOCKED
    # any other unexpected status word is still malformed
    it = init_items() + found() + x(SELECT, "6f00") + release() + rf_off()
    s, r = _reader(it, opts=0)
    assert r.start() and r.poll(cr) and cr.error == C.ERR_MALFORMED


def test_bad_uid_length_is_malformed_once():
    it = init_items() + found("0102030405", sak="08", ats=None) + rf_off()
    it += found("0102030405", sak="08", ats=None) + rf_off()
    s, r = _reader(it)
    cr = CardRead()
    assert r.start()
    assert r.poll(cr) and cr.error == C.ERR_MALFORMED
    assert r.poll(cr) is False


def test_removed_mid_read():
    it = init_items() + found() + x(SELECT, "6f028400 9000")
    it += x("00b2012c00", "", status="01")        # RF timeout from the chip
    it += rf_off() + [CMD("4a 01 00"), ACK(), RSP("4b 00")] + rf_off()
    it += idle_items()
    s, r = _reader(it, opts=0)
    cr = CardRead()
    assert r.start() and r.poll(cr)
    assert cr.error == C.ERR_REMOVED and cr.kind == C.KIND_SSC
    assert r.poll(cr) is False and not r.present
    assert s.done()


def test_card_mute_mid_read_is_timeout():
    it = init_items() + found() + x(SELECT, "6f028400 9000")
    it += x("00b2012c00", "", status="01")
    it += rf_off() + found() + rf_off()
    s, r = _reader(it, opts=0)
    cr = CardRead()
    assert r.start() and r.poll(cr)
    assert cr.error == C.ERR_TIMEOUT and r.present and s.done()


def test_silent_chip_ladder_reset_fault_then_recover():
    rst = Pin()
    # start: no ACK twice -> resync (abort + no ack twice) -> reset -> no ack twice -> fault
    silent = [CMD("02"), HOST_ACK(), CMD("02")]
    it = silent + [HOST_ACK()] + silent + silent
    # a later poll after RETRY_MS: the chip is back
    it += init_items() + idle_items()
    s, r = _reader(it, rst=rst)
    cr = CardRead()
    assert r.start() is False
    assert r.fault and r.fault_count == 1 and r.resets == 1 and r.health.fault
    assert rst.history[-2:] == [0, 1]
    assert r.poll(cr) is False           # not due yet: no bus traffic
    vclock.advance_us(300000)
    assert r.poll(cr) is False           # this poll recovers ...
    assert not r.fault and r.fw_version == (0x32, 1, 6, 7)
    assert r.poll(cr) is False           # ... the next one polls for cards
    assert s.done()


def test_no_alloc_idle_polls():
    s, r = _reader(init_items())
    cr = CardRead()
    assert r.start()
    s.items = idle_items()
    s.loop = True
    s.i = 0
    s._advance_reads()
    for _ in range(3):           # warm up: cached views, dict slots
        r.poll(cr)
    try:
        import micropython
        lock = micropython.heap_lock
    except (ImportError, AttributeError):
        lock = None
    if lock is not None:
        micropython.heap_lock()
        try:
            for _ in range(50):
                r.poll(cr)
        finally:
            micropython.heap_unlock()
        return
    if fwtest.runtime() != "micropython":
        # CPython cannot prove it (every int is an object); check the logic ran.
        for _ in range(50):
            assert r.poll(cr) is False
        return
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for _ in range(50):
        r.poll(cr)
    b = gc.mem_alloc()
    gc.enable()
    assert a == b


def test_spi_and_hsu_reader_tap():
    for kind in ("spi", "hsu"):
        vclock.reset()
        items = init_items() + found() + ssc_items() + release() + rf_off()
        s = Script(items)
        if kind == "spi":
            spi = ScriptSPI(s)
            t = PN532_SPI(spi, spi)
        else:
            t = PN532_HSU(ScriptUART(s))
        r = Reader(PN532(t))
        cr = CardRead()
        assert r.start() and r.poll(cr)
        assert cr.error == C.OK and cr.birth_date == 19850315 and s.done()


def test_no_alloc_taps_and_presence():
    # Steady state with cards: tap, card stays (presence polls), leaves, again.
    s, r = _reader(init_items())
    cr = CardRead()
    assert r.start()
    s.items = found() + ssc_items() + release() + rf_off() + (found() + rf_off()) * 2 \
        + idle_items() * 2
    s.loop = True
    s.i = 0
    s._advance_reads()
    for _ in range(5):            # warm up one full cycle
        r.poll(cr)
    assert cr.error == C.OK and cr.birth_date == 19850315
    try:
        import micropython
        micropython.heap_lock
    except (ImportError, AttributeError):
        if fwtest.runtime() == "micropython":
            raise fwtest.Skip("no micropython.heap_lock on this port")
        ev = [r.poll(cr) for _ in range(10)]
        assert ev == [True, False, False, False, False] * 2
        return
    ev = bytearray(10)
    micropython.heap_lock()
    try:
        for i in range(10):
            ev[i] = 1 if r.poll(cr) else 0
    finally:
        micropython.heap_unlock()
    assert list(ev) == [1, 0, 0, 0, 0] * 2
    assert cr.error == C.OK and cr.expiry_date == 20350101
