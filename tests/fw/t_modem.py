# The cellular modem driver (ykt.net.modem) against the simulated SIM7600
# (vhw/modemsim.py) over the fake machine.UART at 115200 baud, and the fake
# network.PPP it hands the line to: the AT dialogue byte for byte, each fault
# with its reason, the link drop mid-batch and the redial, the link choice
# (Wi-Fi first), and no allocation while the link is up. Portable.
import gc

import vclock
import machine
import network
from vhw import bus, chip, netsim
from vhw import ipnet
from vhw.modemsim import ModemSim
from ykt.net import modem as M
from ykt.net.link import Link


def setup():
    vclock.reset()
    bus.reset()
    netsim.reset()
    chip.configure(unique_id=b"\x24\x0a\xc4\x00\x12\x34")


def _rig(apn="cmnet", attach=True, **kw):
    sim = ModemSim("cmnet", **kw)
    if attach:
        sim.attach(2)
    u = machine.UART(2, baudrate=115200, tx=18, rx=19, timeout=0, rxbuf=1024)
    return sim, M.Modem(u, apn, network.PPP)


def _run(m, ms, until=None):
    """Step the driver every 10 ms of virtual time, as the app's loop does."""
    t0 = vclock.now_ms()
    while vclock.now_ms() - t0 < ms:
        m.step(vclock.now_ms())
        if until is not None and until():
            return True
        vclock.sleep_ms(10)
    return False


def test_dialogue_byte_for_byte_to_ppp():
    sim, m = _rig(reg_after=2)
    assert _run(m, 20000, m.isconnected), m.status()
    cmds = [c for _, c in sim.commands]
    # two searching polls of CREG (then CEREG), then registered on the third CREG
    assert cmds == [b"AT", b"ATE0", b"AT+CPIN?", b"AT+CSQ", b"AT+CREG?", b"AT+CEREG?",
                    b"AT+CREG?", b'AT+CGDCONT=1,"IP","cmnet"', b"ATD*99#"], cmds
    assert sim.cid == (1, "IP", "cmnet") and sim.data and sim.dials == 1
    st = m.status()
    assert st["state"] == "ppp" and st["reason"] == "ok" and st["csq"] == 23 and st["reg"] == 1, st
    assert m.ppp.status() == 4 and m.ppp.ifconfig()[0] == "10.64.18.52", m.ppp.ifconfig()
    assert network._ppp_up()


def _fails_with(reason, **fault):
    sim, m = _rig()
    for k in fault:
        sim.fault(k)
    _run(m, 15000)
    assert not m.isconnected() and m.reason == reason, m.status()
    assert sim.dials == 0 and not network._ppp_up()
    return sim, m


def test_no_sim():
    sim, m = _fails_with("no_sim", no_sim=1)
    assert [c for _, c in sim.commands][-1] == b"AT+CPIN?"


def test_weak_signal():
    _, m = _fails_with("weak_signal", weak_signal=1)
    assert m.csq == 5


def test_not_registered_after_bounded_polls():
    sim, m = _rig()
    sim.fault("no_registration")
    _run(m, 200000, lambda: m.reason != "")
    assert m.reason == "not_registered" and not m.isconnected(), m.status()
    polls = [c for _, c in sim.commands if c in (b"AT+CREG?", b"AT+CEREG?")]
    assert len(polls) == 2 * M.REG_TRIES, len(polls)


def test_silent_modem_times_out_then_retries():
    sim, m = _rig(attach=False)   # nothing on the line
    _run(m, 4000)
    assert m.reason == "timeout" and m.state == M.WAIT, m.status()
    sim.attach(2)                 # powered: the retry gets through
    assert _run(m, 60000, m.isconnected), m.status()


def test_bad_reply_and_overlong_line():
    sim, m = _rig()
    sim.csq = 99
    _run(m, 3000)
    assert m.reason == "weak_signal"   # 99 = not known: no link worth dialing
    sim2, m2 = _rig()
    _run(m2, 50)
    sim2.port.deliver(b"\r\n" + b"X" * 200 + b"\r\n")
    _run(m2, 500)
    assert m2.reason == "bad_reply", m2.status()


def test_wrong_apn_dials_but_no_link():
    sim, m = _rig(apn="cmiot")
    _run(m, 15000)
    assert sim.dials == 1 and not m.isconnected()
    # LCP got no answer on an APN the network does not serve: the driver
    # gives up after its window, hangs up (PPP back to active) and retries
    assert m.reason == "link_lost" and m.drops == 1 and m.ppp.status() == 1, (m.ppp.status(), m.status())


def test_drop_mid_batch_then_redial():
    sim, m = _rig()
    assert _run(m, 20000, m.isconnected)
    ipnet.reset()
    assert ipnet.link() == "ppp"
    sim.drop()                    # a tunnel
    vclock.sleep_ms(10)
    assert not m.isconnected() and ipnet.link() is None
    _run(m, 100)
    assert m.reason == "link_lost" and m.drops == 1
    assert _run(m, 60000, m.isconnected), m.status()
    assert sim.dials == 2 and m.dials == 2 and ipnet.link() == "ppp"


def test_link_prefers_wifi():
    sim, m = _rig()
    netsim.configure("ykt-depot", "k", connect_ms=1000)
    w = network.WLAN(0)
    w.active(True)
    w.connect("ykt-depot", "k")
    ln = Link(w, m)
    assert not ln.isconnected() and ln.name() == "none"
    _run(m, 20000, m.isconnected)
    assert ln.isconnected() and ln.name() == "wifi" and ipnet.link() == "wifi"
    netsim.set_up(False)          # leaving the depot
    vclock.sleep_ms(10)
    assert ln.isconnected() and ln.name() == "cellular" and ipnet.link() == "ppp"
    assert Link(None, None).isconnected() and Link(None, None).name() == "none"


def test_steady_state_allocates_nothing():
    sim, m = _rig()
    assert _run(m, 20000, m.isconnected)
    ln = Link(None, m)
    now = vclock.now_ms()
    for _ in range(5):
        m.step(now)
        ln.isconnected()
    gc.collect()
    a0 = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    for _ in range(100):
        m.step(now)
        ln.isconnected()
    a1 = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    assert a1 - a0 == 0 or not hasattr(gc, "mem_alloc"), a1 - a0


def test_fuzzed_replies_end_in_a_named_reason():
    # random bytes, and real reply lines cut and spliced, in place of the
    # modem's answers: the driver never raises, never keeps more than its
    # line buffer, and every failure has one of its reasons
    from t_denylist_util import Rng

    words = [b"OK", b"ERROR", b"+CPIN: READY", b"+CSQ: 31,99", b"+CSQ: ,", b"+CREG: 0,1", b"+CEREG: 0,",
             b"CONNECT", b"NO CARRIER", b"RDY", b"+CME ERROR: 10", b"\xff\x00", b"+CSQ: 99999999999"]
    reasons = ("", "no_sim", "not_registered", "weak_signal", "timeout", "bad_reply", "link_lost", "ok")
    for seed in range(40):
        setup()
        rnd = Rng(seed + 1)
        r = lambda n: rnd.next64() % n
        _, m = _rig(attach=False)
        for _ in range(30):
            m.step(vclock.now_ms())
            if r(2):
                b = bytes(r(256) for _ in range(1 + r(90)))
            else:
                b = b"\r\n" + words[r(len(words))][:1 + r(20)] + b"\r\n"
            m.uart._port.deliver(b)
            vclock.sleep_ms(1 + r(400))
            m.step(vclock.now_ms())
            assert m.reason in reasons and m._n <= len(m._line), (seed, m.status())
