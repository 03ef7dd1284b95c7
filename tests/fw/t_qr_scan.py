# The UART QR scanner driver against the simulated scanner module: bytes go
# through the fake machine.UART at 9600 baud (vhw.qrscanner -> port.deliver).
# Terminators, line noise, partial and oversized lines, baud mismatch,
# re-sent codes, no keys yet, and bounded work per poll.
import vclock
import machine
from vhw import bus, chip
from vhw.qrscanner import QRScannerSim

from ykt import cardread as CR, taprec as T
from ykt.qr import qrscan
from ykt.qr import qrtoken as Q
import t_qr_kit as K


def setup():
    vclock.reset()
    bus.reset()
    chip.configure()


def _rig(term=b"\r\n", sim_term=b"\r\n", baud=9600, sim_baud=9600, verifier=True, clock=None):
    sim = QRScannerSim(term=sim_term)
    sim.attach(2, sim_baud)
    u = machine.UART(2, baudrate=baud, tx=17, rx=16, timeout=0, rxbuf=512)
    clock = clock or K.Clock()
    v = Q.Verifier(K.ring(), clock) if verifier else None
    return sim, qrscan.QRScanner(u, v, term=term), clock


def _run(qr, cr, ms, step_ms=10):
    """Poll every step_ms for ms; -> [(t_ms, qr_reason)] of the reads."""
    out = []
    for _ in range(ms // step_ms):
        vclock.advance_us(step_ms * 1000)
        if qr.poll(cr):
            out.append((vclock.now_us() // 1000, cr.qr_reason))
    return out


_TEXT = []


def _text():
    if not _TEXT:
        _TEXT.append(K.text(K.mint()))
    return _TEXT[0]


def test_line_arrives_at_baud_rate_and_verifies():
    sim, qr, _ = _rig()
    assert sim.port is not None and bus.uart_device(2) is sim
    cr = CR.CardRead()
    text = _text()
    sim.scan(text)
    wire_ms = sim.line_us(text) // 1000          # 443 bytes at 9600 baud: ~461 ms
    assert 450 <= wire_ms <= 470
    got = _run(qr, cr, 700)
    assert len(got) == 1 and got[0][1] == Q.R_OK, got
    assert wire_ms <= got[0][0] <= wire_ms + 10  # the poll right after the terminator landed
    assert bytes(cr.qr_token) == K.HOLDER and cr.kind == CR.KIND_QR
    assert qr.stats() == {"lines": 1, "noise": 0, "partial": 0, "oversized": 0, "ignored": 0}


def test_terminators_cr_lf_crlf_and_gap():
    for sim_term, term in ((b"\r", b"\r\n"), (b"\n", b"\r\n"), (b"\r\n", b"\r\n"), (b"\t", b"\t")):
        setup()
        sim, qr, _ = _rig(term=term, sim_term=sim_term)
        cr = CR.CardRead()
        sim.scan(b"YQ:0")
        got = _run(qr, cr, 100)
        assert got and got[0][1] == T.R_QR_MALFORMED, (sim_term, got)
        assert len(got) == 1
    setup()
    sim, qr, _ = _rig(term=b"", sim_term=b"")   # module sends no terminator: silence ends a line
    cr = CR.CardRead()
    sim.scan(_text())
    got = _run(qr, cr, 800)
    assert len(got) == 1 and got[0][1] == Q.R_OK


def test_noise_then_code_after_a_gap():
    sim, qr, _ = _rig()
    cr = CR.CardRead()
    sim.garbage(40, seed=3)
    sim.garbage(25, seed=9, after_us=100000)
    assert _run(qr, cr, 300) == []
    sim.scan(_text())
    got = _run(qr, cr, 700)
    assert len(got) == 1 and got[0][1] == Q.R_OK
    assert qr.noise + qr.partial >= 1 and qr.stats()["lines"] >= 1


def test_noise_inside_a_line_is_dropped_not_a_tap():
    sim, qr, _ = _rig()
    cr = CR.CardRead()
    sim.send_raw(b"YQ:AB\x00\xffCD\r\n")
    assert _run(qr, cr, 100) == [] and qr.noise == 1


def test_partial_line_dropped_then_full_line():
    sim, qr, _ = _rig()
    cr = CR.CardRead()
    text = _text()
    sim.partial(text, keep=200)
    assert _run(qr, cr, 400) == []
    assert qr.partial == 1
    sim.scan(text)
    got = _run(qr, cr, 700)
    assert len(got) == 1 and got[0][1] == Q.R_OK


def test_oversized_line_refused_once_then_recovers():
    sim, qr, _ = _rig()
    cr = CR.CardRead()
    sim.scan(b"YQ:" + b"A" * 1500)
    got = _run(qr, cr, 1800)
    assert [g[1] for g in got] == [T.R_QR_MALFORMED] and qr.oversized == 1
    sim.scan(_text())
    got = _run(qr, cr, 700)
    assert [g[1] for g in got] == [Q.R_OK]


def test_baud_mismatch_is_noise():
    sim, qr, _ = _rig(sim_baud=115200)
    cr = CR.CardRead()
    sim.scan(_text())
    assert _run(qr, cr, 800) == []
    assert qr.noise + qr.partial >= 1


def test_rescan_ignored_replay_refused():
    sim, qr, clock = _rig()
    cr = CR.CardRead()
    text = _text()
    sim.scan(text)
    sim.scan_at(600000, text)                  # continuous mode: the same code again
    got = _run(qr, cr, 1300)
    assert [g[1] for g in got] == [Q.R_OK] and qr.ignored == 1
    clock.advance(10)
    sim.scan(text)                              # a screenshot, ten seconds later
    got = _run(qr, cr, 700)
    assert [g[1] for g in got] == [T.R_QR_REPLAY]


def test_no_verifier_yet_refuses_unknown_key():
    sim, qr, _ = _rig(verifier=False)
    cr = CR.CardRead()
    sim.scan(_text())
    got = _run(qr, cr, 700)
    assert [g[1] for g in got] == [T.R_QR_UNKNOWN_KEY]
    qr.verifier = Q.Verifier(K.ring(), K.Clock())   # the app sets it after boot
    sim.scan(_text())
    assert [g[1] for g in _run(qr, cr, 700)] == [Q.R_OK]


def test_bounded_work_per_poll_and_two_lines_in_one_burst():
    u = K.UART()
    qr = qrscan.QRScanner(u, None, chunk=16)
    cr = CR.CardRead()
    u.feed(b"x" * 40 + b"\r\n" + b"y" * 5 + b"\n")
    polls = 0
    reads = 0
    while u.any() or qr._pos < qr._len:
        polls += 1
        before = u.any()
        if qr.poll(cr):
            reads += 1
        assert before - u.any() <= 16
    assert reads == 2 and polls >= 3
    assert cr.qr_reason == T.R_QR_UNKNOWN_KEY
