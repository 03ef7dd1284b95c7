# The reader over the fake machine buses against the PN532 simulator and its
# card profiles: taps on every transport, presence, UID-only cards, hostile
# cards and injected faults. Every case ends in a correct read or a specific
# error, and a good card reads again within 1 s of modeled time.
import gc
import vclock
# The simulator and the fake machine are big: compile them first, with a
# collection in between, so the 256K heap is not fragmented.
from vhw.pn532sim import PN532Sim
gc.collect()
import machine
gc.collect()
from vhw import bus, chip, rfcards
from ykt.nfc.pn532 import PN532
from ykt.nfc.pn532_i2c import PN532_I2C
from ykt.nfc.pn532_spi import PN532_SPI
from ykt.nfc.pn532_hsu import PN532_HSU
from ykt.nfc.reader import Reader, DEFAULT_OPTS, OPT_TRANSIT, OPT_ISSUE
from ykt.cardread import CardRead
from ykt import cardread as C

RST = 4
IRQ = 35
POLL_MS = 50    # the app's poll cadence assumed by the recovery checks


def setup():
    vclock.reset()
    bus.reset()
    chip.configure()


def rig(kind="i2c", freq=400000, rst=True, opts=DEFAULT_OPTS, irq=False, baud=115200):
    sim = PN532Sim()
    if kind == "i2c":
        sim.attach_i2c(0, freq=0)      # the fake bus models the line time
        ipin = None
        if irq:
            sim.attach_pins(irq=IRQ)
            ipin = machine.Pin(IRQ, machine.Pin.IN)
        t = PN532_I2C(machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21), freq=freq), irq=ipin)
    elif kind == "spi":
        sim.attach_spi(1, 5, baud=0)
        cs = machine.Pin(5, machine.Pin.OUT, value=1)
        spi = machine.SPI(1, baudrate=5000000, polarity=0, phase=0, firstbit=machine.SPI.MSB,
                          sck=machine.Pin(18), mosi=machine.Pin(23), miso=machine.Pin(19))
        t = PN532_SPI(spi, cs)
    else:
        u = machine.UART(2, 115200, tx=17, rx=16, timeout=0)
        sim.attach_hsu(2, bus.uart_port(2))
        t = PN532_HSU(u, baud=baud)
    pin = None
    if rst:
        pin = machine.Pin(RST, machine.Pin.OUT, value=1)
        sim.attach_pins(rst=RST)
    r = Reader(PN532(t), rst_pin=pin, opts=opts)
    return sim, r


def poll_until(r, cr, limit_ms=1000, want=None):
    """Poll at the app cadence until an event; returns (event, elapsed ms)."""
    t0 = vclock.now_us()
    while vclock.now_us() - t0 <= limit_ms * 1000:
        if r.poll(cr):
            if want is None or cr.error == want:
                return True, (vclock.now_us() - t0) // 1000
        vclock.advance_us(POLL_MS * 1000)
    return False, (vclock.now_us() - t0) // 1000


def good_again(sim, r, cr, name="ssc_nanning"):
    """After a fault: a good card must read within 1 s of modeled time."""
    sim.field.clear()
    for _ in range(3):             # let the old card's session end
        r.poll(cr)
        vclock.advance_us(POLL_MS * 1000)
    sim.field.present(name)
    ok, ms = poll_until(r, cr, 1000, C.OK)
    assert ok, "no good read within 1 s (last error %d, fault %s)" % (cr.error, r.fault)
    assert cr.kind == C.KIND_SSC and cr.region != 0
    return ms


def _tap(kind):
    sim, r = rig(kind)
    cr = CardRead()
    assert r.start() and r.fw_version == (0x32, 1, 6, 7)
    assert r.poll(cr) is False
    sim.field.present("ssc_nanning")
    assert r.poll(cr) is True
    assert cr.error == C.OK and cr.kind == C.KIND_SSC
    assert cr.region == 450100 and cr.generation == 3 and cr.birth_date // 10000 == 1985
    assert cr.uid_len in (4, 7) and cr.ats_len > 1 and cr.sel_res & 0x20
    assert cr.expiry_date > cr.issue_date == 0
    assert not sim.field.rf_on           # field off between polls
    for _ in range(3):
        assert r.poll(cr) is False       # left on the reader: no second tap
    sim.field.clear()
    assert r.poll(cr) is False and r.poll(cr) is False
    sim.field.present("ssc_nanning")
    assert r.poll(cr) is True and cr.error == C.OK


def test_tap_i2c():
    _tap("i2c")


def test_tap_spi():
    _tap("spi")


def test_tap_hsu():
    _tap("hsu")


def test_i2c_100k_and_irq_free_timing():
    sim, r = rig("i2c", freq=100000)
    cr = CardRead()
    assert r.start()
    sim.field.present("ssc_nanning")
    t0 = vclock.now_us()
    assert r.poll(cr) and cr.error == C.OK
    assert vclock.now_us() - t0 < 400000


def test_profiles():
    sim, r = rig(opts=DEFAULT_OPTS | OPT_TRANSIT | OPT_ISSUE)
    cr = CardRead()
    assert r.start()
    cases = [("ssc_pin_ef06", lambda: cr.birth_date == 0 and cr.error == C.OK),
             ("ssc_transit", lambda: cr.has_transit and cr.error == C.OK),
             ("ssc_nanning", lambda: not cr.has_transit and cr.issue_date > 20000000),
             ("ssc_guangzhou", lambda: cr.region == 440100),
             ("ssc_elderly_62", lambda: cr.birth_date == 19640301),
             ("ssc_expired", lambda: cr.expiry_date // 10000 == 2024),
             ("mifare_classic", lambda: cr.kind == C.KIND_UID_ONLY and cr.uid_len == 4),
             ("ultralight", lambda: cr.kind == C.KIND_UID_ONLY and cr.uid_len == 7)]
    for name, check in cases:
        sim.field.clear()
        r.poll(cr)
        r.poll(cr)
        sim.field.present(name)
        assert r.poll(cr), name
        assert check(), "%s: %r err=%d" % (name, cr, cr.error)
    # replaced card: same citizen, different identity
    sim.field.clear()
    r.poll(cr)
    r.poll(cr)
    sim.field.present("ssc_liuzhou_replaced_old")
    assert r.poll(cr) and cr.error == C.OK
    old = bytes(cr.card_no)
    sim.field.clear()
    sim.field.present("ssc_liuzhou_replaced_new")
    assert r.poll(cr) and cr.error == C.OK and bytes(cr.card_no) != old


def test_hostile_cards():
    sim, r = rig()
    cr = CardRead()
    assert r.start()
    expect = {"hostile_oversized": (C.ERR_MALFORMED,),
              "hostile_inconsistent": (C.ERR_MALFORMED,),
              "hostile_deep_cascade": (C.ERR_MALFORMED, C.ERR_UNSUPPORTED),
              "hostile_endless_chaining": (C.ERR_MALFORMED,),
              "hostile_wrong_sw": (C.ERR_MALFORMED,),
              "hostile_slow": (C.OK,)}
    for name in sorted(expect):
        sim.field.clear()
        r.poll(cr)
        r.poll(cr)
        sim.field.present(name)
        t0 = vclock.now_us()
        assert r.poll(cr), name
        assert vclock.now_us() - t0 <= 1000000
        assert cr.error in expect[name], "%s: error %d" % (name, cr.error)
        assert r.poll(cr) is False, name     # one event per presentation
        good_again(sim, r, cr)
        assert not r.fault


def test_silent_chip_reset_recovers():
    sim, r = rig()
    cr = CardRead()
    assert r.start()
    sim.fault("silent")
    assert r.poll(cr) is False
    ms = good_again(sim, r, cr)
    assert r.resets >= 1 and not r.fault and ms <= 1000


def test_silent_chip_without_reset_pin_faults_then_recovers():
    sim, r = rig(rst=False)
    cr = CardRead()
    assert r.start()
    sim.fault("silent")
    for _ in range(4):
        r.poll(cr)
        vclock.advance_us(POLL_MS * 1000)
    assert r.fault and r.fault_count == 1 and r.health.fault
    sim.clear_faults()
    ms = good_again(sim, r, cr)
    assert not r.fault and ms <= 1000 and r.fault_count == 1


def test_stale_reply_garbage_nack_errorframe():
    sim, r = rig()
    cr = CardRead()
    assert r.start()
    sim.field.present("ssc_nanning")
    sim.fault("stale_reply")
    assert r.poll(cr) is True and cr.error == C.OK
    for fault, kw in (("garbage", {"count": 4}), ("garbage", {"count": 2, "inside": 1}),
                      ("nack_storm", {"count": 2}), ("error_frame", {"count": 1}),
                      ("i2c_timeout", {"reads": 1, "writes": 1})):
        sim.field.clear()
        r.poll(cr)
        r.poll(cr)
        sim.fault(fault, **kw)
        sim.field.present("ssc_nanning")
        ok, ms = poll_until(r, cr, 1000)
        assert ok and cr.error in (C.OK, C.ERR_READER), (fault, cr.error)
        sim.clear_faults()
        good_again(sim, r, cr)


def test_removed_mid_read():
    sim, r = rig()
    cr = CardRead()
    assert r.start()
    sim.field.present("ssc_nanning")
    sim.fault("card_removed", after=2)
    assert r.poll(cr) is True
    assert cr.error == C.ERR_REMOVED and cr.kind == C.KIND_SSC
    sim.clear_faults()
    good_again(sim, r, cr)


def test_removed_mid_read_by_time():
    sim, r = rig()
    cr = CardRead()
    assert r.start()
    sim.field.present("ssc_nanning", for_us=30000)   # leaves 30 ms into the read
    assert r.poll(cr) is True and cr.error == C.ERR_REMOVED
    assert r.poll(cr) is False
    good_again(sim, r, cr)


def test_two_cards_one_event_each():
    sim, r = rig()
    cr = CardRead()
    assert r.start()
    sim.field.present("ssc_nanning")
    sim.fault("two_cards", card="mifare_classic")
    seen = []
    for _ in range(6):
        if r.poll(cr):
            seen.append((cr.kind, cr.error))
    assert 1 <= len(seen) <= 2, seen
    for kind, err in seen:
        assert err == C.OK and kind in (C.KIND_SSC, C.KIND_UID_ONLY)
    sim.clear_faults()
    good_again(sim, r, cr)


def test_slow_card_over_fwt_is_timeout():
    sim, r = rig()
    cr = CardRead()
    assert r.start()
    card = sim.field.present("ssc_nanning")
    sim.fault("slow_card", card=card, exceed=True)
    assert r.poll(cr) is True
    assert cr.error == C.ERR_TIMEOUT
    assert r.poll(cr) is False             # still on the reader: no second event
    sim.clear_faults()
    good_again(sim, r, cr)


def test_rf_error_then_good():
    sim, r = rig()
    cr = CardRead()
    assert r.start()
    sim.field.present("ssc_nanning")
    sim.fault("rf_error", code=0x02, count=1)
    assert r.poll(cr) is True and cr.error in (C.ERR_TIMEOUT, C.ERR_REMOVED)
    sim.clear_faults()
    good_again(sim, r, cr)


def test_hsu_gap_fault_tolerated():
    sim, r = rig("hsu")
    cr = CardRead()
    sim.fault("hsu_gap", gap_us=1000)
    assert r.start()
    sim.field.present("ssc_nanning")
    assert r.poll(cr) and cr.error == C.OK


def test_hsu_moves_the_line_to_the_board_rate():
    sim, r = rig("hsu", baud=921600)
    cr = CardRead()
    assert r.start()
    t = r.pn.t
    assert (t.rate, sim.hsu_baud, bus.uart_port(2).baudrate) == (921600, 921600, 921600)
    assert sim.stats["commands"].get(0x10) == 1 and r.resets == 0
    sim.field.present("ssc_nanning")
    assert r.poll(cr) and cr.error == C.OK and cr.region != 0


def test_hsu_falls_back_to_115200_when_the_line_cannot_carry_the_rate():
    sim, r = rig("hsu", baud=921600)
    sim.fault("hsu_max_baud", baud=230400)
    cr = CardRead()
    assert r.start()
    t = r.pn.t
    # the chip stopped answering at 921600: reset, and the reader stays at the power-up rate
    assert (t.rate, t.fast, sim.hsu_baud, r.resets) == (115200, False, 115200, 1)
    sim.field.present("ssc_nanning")
    assert r.poll(cr) and cr.error == C.OK
    assert r.start() and sim.stats["commands"].get(0x10) == 1   # not tried again until the next boot


def test_hsu_follows_a_chip_that_reset_itself():
    sim, r = rig("hsu", baud=460800, rst=False)
    cr = CardRead()
    assert r.start() and sim.hsu_baud == 460800
    sim.reset()                      # a brown-out: the chip is back at 115200, the host is not
    vclock.advance_us(10000)
    good_again(sim, r, cr)
    assert (r.pn.t.rate, sim.hsu_baud) == (460800, 460800)
    assert sim.stats["commands"].get(0x10) == 2


def test_generated_rider_card():
    sim, r = rig()
    cr = CardRead()
    assert r.start()
    sim.field.present(rfcards.make_ssc(region=450300, birth=19560815, transit=True))
    assert r.poll(cr) and cr.error == C.OK and cr.region == 450300 and cr.birth_date == 19560815


def test_i2c_with_irq_pin():
    sim, r = rig(irq=True)
    cr = CardRead()
    assert r.start()
    assert r.poll(cr) is False
    sim.field.present("ssc_nanning")
    b0 = r.pn.t.bytes
    assert r.poll(cr) and cr.error == C.OK and cr.birth_date // 10000 == 1985
    assert r.pn.t.bytes - b0 < 560       # no status polling on the bus (~700 with it)


def test_transport_drain_drops_a_stale_reply():
    # A command whose ACK and answer nobody read (a resync after a fault):
    # drain() is the transports' public way to drop them. I2C and SPI read
    # out one pending frame per call; HSU empties its buffer and the UART.
    for kind, drains in (("i2c", 2), ("spi", 2), ("hsu", 1)):
        setup()
        sim, r = rig(kind)
        assert r.start(), kind
        pn = r.pn
        t = pn.t
        t.write(pn.out, pn._frame(0x02, 0))          # GetFirmwareVersion, left unread
        vclock.advance_us(20000)
        assert t.ready(), kind
        for _ in range(drains):
            t.drain()
        assert not t.ready(), kind
        if kind == "hsu":
            assert t.n == 0 and t.uart.any() == 0
        e = pn.errors
        assert pn.firmware_version()[0] == 0x32 and pn.errors == e, kind
