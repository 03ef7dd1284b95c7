"""Fuzzing the reader's parsers (CPython, hypothesis): PN532 frame scanner,
APDU / record / BCD / ATS parsers and a whole Reader.poll against a chip that
answers arbitrary bytes. Property: no exception other than the project's
ReaderError, every index stays in bounds, every poll ends within the
documented bound of virtual time, and every event carries a defined code."""
import os

import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

import conftest  # noqa: F401  (sys.path: firmware/, simhw/, tests/fw/)
import vclock
from ykt.nfc import pn532 as P
from ykt.nfc import apdu
from ykt import cardread as C
from ykt.nfc.pn532 import PN532, scan_frame, ReaderError
from ykt.nfc.reader import Reader, MAX_POLL_MS, OPT_TRANSIT, OPT_ISSUE, DEFAULT_OPTS

N = int(os.environ.get("YKT_FUZZ_EXAMPLES", "300"))
CFG = settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def frame(tfi, body):
    b = bytes([tfi]) + body
    ln = len(b)
    if ln > 255:
        return bytes([0, 0, 0xFF, 0xFF, 0xFF, ln >> 8, ln & 0xFF, (-(ln >> 8) - ln) & 0xFF]) + b \
            + bytes([(-sum(b)) & 0xFF, 0])
    return bytes([0, 0, 0xFF, ln, (-ln) & 0xFF]) + b + bytes([(-sum(b)) & 0xFF, 0])


frames = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda pre, body, post: pre + frame(0xD5, body) + post,
              st.binary(max_size=20), st.binary(max_size=270), st.binary(max_size=10)),
    st.builds(lambda f, i, v: f[:i] + bytes([v]) + f[i + 1:],
              st.builds(lambda b: frame(0xD5, b), st.binary(min_size=1, max_size=40)),
              st.integers(0, 60), st.integers(0, 255)),
)


@pytest.mark.fuzz
@CFG
@given(frames, st.integers(0, 20))
def test_scan_frame_bounded(data, start):
    buf = bytearray(P.BUFSZ)
    n = min(len(data), P.BUFSZ)
    buf[:n] = data[:n]
    res = [0, 0, 0]
    r = scan_frame(buf, min(start, n), n, res)
    assert r in (P.F_NONE, P.F_ACK, P.F_NACK, P.F_ERR, P.F_DATA, P.F_MORE)
    if r in (P.F_DATA, P.F_ERR):
        assert 0 <= res[0] and res[0] + res[1] + 1 == res[2] <= n
        assert 1 <= res[1] <= P.MAXLEN
    if r == P.F_MORE:
        assert n < res[2] <= P.BUFSZ


@pytest.mark.fuzz
@CFG
@given(st.binary(max_size=300), st.integers(-3, 310), st.integers(-3, 310), st.integers(0, 255))
def test_apdu_parsers_bounded(data, a, b, tag):
    buf = bytearray(data)
    res = [0]
    s = apdu.sw(buf, a, b)
    assert s == apdu.BAD or 0 <= s <= 0xFFFF
    ln = apdu.record(buf, a, b, tag, res)
    if ln >= 0:
        assert a <= res[0] and res[0] + ln + 2 == b <= len(buf)
    for n in (3, 4):
        v = apdu.bcd(buf, a, n)
        assert v == apdu.BAD or 0 <= v < 10 ** (2 * n)
    d = apdu.bcd_date(buf, a)
    assert d == apdu.BAD or apdu.valid_date(d)
    d = apdu.citizen_birth(buf, a, b)
    assert d == apdu.BAD or apdu.valid_date(d)
    apdu.printable(buf, a, b)
    f = apdu.ats_fwi(buf, b)
    assert f == apdu.BAD or 0 <= f <= 14


class FuzzChip:
    """A transport whose chip mostly follows the protocol but answers with
    fuzz-shaped contents: targets with odd UIDs / SAKs / ATS, APDU answers
    with wrong tags, lengths, status words and chaining bits; and sometimes
    raw garbage, a missing ACK, or silence."""

    stream = False

    def __init__(self, pick):
        self.p = pick
        self.q = []
        self.bytes = 0
        self.clock = None

    def bind(self, pn):
        self.clock = pn.clock
        self.buf = pn.buf

    def wakeup(self):
        return True

    def drain(self):
        if self.ready():
            self.read(self.buf, 64)

    def wipe(self):
        pass

    def ready(self):
        return bool(self.q)

    def _target(self):
        p = self.p
        sak = p.one([0x00, 0x08, 0x20, 0x28, 0x60])
        ulen = p.one([4, 7, 10, 0, 5, 11, 200])
        uid = p.bin(12)
        ats = p.one([b"\x05\x78\x80\x70\x02", p.bin(40)])
        return bytes([1, 1, 0, 4, sak, ulen & 0xFF]) + uid + ats

    def _apdu(self, cmdframe):
        p = self.p
        rec = cmdframe[10] if len(cmdframe) > 12 else 0
        status = p.one([0, 0, 0, 0, 0x40, 0x01, 0x2B])
        shape = p.int(0, 3)
        if shape == 0:
            body = p.bin(30)
        else:
            val = p.bin(40)
            tag = rec if shape < 3 else p.int(0, 255)
            ln = len(val) if shape == 1 else p.int(0, 255)
            body = bytes([tag, ln]) + val
        sw = p.one([b"\x90\x00", b"\x6a\x82", b"\x69\x82", b"\x62\x83", b""])
        return bytes([status]) + body + sw

    def write(self, buf, n):
        b = bytes(buf[:n])
        self.q = []
        if b in (P.ACK, P.NACK) or n < 7:
            return True
        cmd = b[6]
        mode = self.p.int(0, 19)
        if mode == 0:
            return True                                   # silent
        if mode == 1:
            self.q = [self.p.bin(40)]                     # garbage instead of ACK
            return True
        self.q.append(P.ACK)
        if mode == 2:
            return True                                   # ACK then silence
        if mode == 3:
            self.q.append(self.p.bin(80))
            return True
        if cmd == 0x02:
            body = b"\x32\x01\x06\x07"
        elif cmd == 0x4A:
            body = self._target() if mode > 6 else b"\x00"
        elif cmd == 0x40:
            body = self._apdu(b) if mode > 4 else self.p.bin(262)
        elif cmd == 0x52:
            body = b"\x00"
        else:
            body = b""
        self.q.append(frame(0xD5, bytes([cmd + 1]) + body))
        return True

    def read(self, buf, n):
        if not self.q:
            return -1
        f = self.q.pop(0)
        buf[0] = 1
        for k in range(1, n + 1):
            buf[k] = f[k - 1] if k - 1 < len(f) else 0
        if len(f) > n:          # a NACK will ask for it again
            self.q.insert(0, f)
        return 1


class HypPick:
    def __init__(self, data):
        self.d = data.draw

    def int(self, a, b):
        return self.d(st.integers(a, b))

    def bin(self, n):
        return self.d(st.binary(max_size=n))

    def one(self, xs):
        return self.d(st.sampled_from(xs))


class RndPick:
    def __init__(self, rng):
        self.r = rng

    def int(self, a, b):
        return self.r.randint(a, b)

    def bin(self, n):
        return bytes(self.r.randrange(256) for _ in range(self.r.randint(0, n)))

    def one(self, xs):
        return self.r.choice(xs)


def _polls(pick, opts, events=None):
    vclock.reset()
    rd = Reader(PN532(FuzzChip(pick)), opts=opts)
    cr = C.CardRead()
    try:
        rd.start()
        for _ in range(6):
            t0 = vclock.now_us()
            ev = rd.poll(cr)
            assert vclock.now_us() - t0 <= MAX_POLL_MS * 1000
            if ev:
                if events is not None:
                    events[cr.error] = events.get(cr.error, 0) + 1
                assert 0 <= cr.error < len(C.ERR_NAMES)
                assert cr.uid_len in (0, 4, 7, 10) and cr.ats_len <= len(cr.ats)
                if cr.error == C.OK and cr.kind == C.KIND_SSC:
                    assert apdu.valid_date(cr.expiry_date)
            vclock.advance_us(300000)
    except ReaderError:
        pass


@pytest.mark.fuzz
@settings(max_examples=max(20, N // 3), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.sampled_from([DEFAULT_OPTS, 0, OPT_TRANSIT | OPT_ISSUE]))
def test_reader_poll_against_fuzz_chip(data, opts):
    _polls(HypPick(data), opts)


@pytest.mark.fuzz
def test_fuzz_chip_reaches_the_read_paths():
    """The seeded twin of the poll fuzzer: proves its chip reaches good reads,
    malformed answers, removals and link faults (the hypothesis run above
    explores further but cannot report coverage)."""
    import random
    events = {}
    rng = random.Random(1234)
    for i in range(max(1000, N)):
        _polls(RndPick(rng), (DEFAULT_OPTS, 0, OPT_TRANSIT | OPT_ISSUE)[i % 3], events)
        if i >= 100 and events.get(C.OK) and events.get(C.ERR_MALFORMED) and \
                events.get(C.ERR_REMOVED) and events.get(C.ERR_READER):
            break
    for e in (C.OK, C.ERR_MALFORMED, C.ERR_REMOVED, C.ERR_READER):
        assert events.get(e), events
