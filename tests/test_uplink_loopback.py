"""The uplink state machine and the real httpc client against a real loopback
HTTP server (http.server in a thread) that implements the back-office side of
the protocol with ykt.net.wire. Faults injected per request: connection drop
before and after commit, TCP reset, server stall (client timeout), HTTP 5xx,
truncated reply, duplicate delivery, a reordered (stale) ack, a forged ack,
a partial commit and clock skew. The server must end with exactly the
journaled set, each tap once, and the device cursor must never move back."""
import select
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import conftest  # noqa: F401  (sys.path)
import vclock
from ykt import taprec
from ykt.net import httpc
from ykt.net import uplink
from ykt.net import wire
from yktsrv import wiresrv
from t_uplink_mem import MemJournal, make_tap

KEY = bytes(range(32))
DEV = 4501001


class Backoffice(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.taps = {}            # (dev, seq) -> packed taprec, committed once
        self.deliveries = 0       # taps received including duplicates
        self.faults = []
        self.seen = []            # (fault, first_seq, count, flags, req_time)
        self.last_nonce = None
        self.release = threading.Event()

    def keys(self, dev):
        return KEY if dev == DEV else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _reply(self, code, body, ctype="application/octet-stream"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _commit(self, dev, taps):
        with self.server.lock:
            for t in taps:
                self.server.deliveries += 1
                self.server.taps.setdefault((dev, t.seq), taprec.pack(t))

    def do_POST(self):
        srv = self.server
        n = int(self.headers.get("Content-Length", "0"))
        if self.path != wire.PATH_TAPS or n > wire.MAX_BODY:
            return self._reply(404 if self.path != wire.PATH_TAPS else 413, b"")
        body = self.rfile.read(n)
        with srv.lock:
            fault = srv.faults.pop(0) if srv.faults else None
        try:
            dev, first, count, rt, nonce, flags = wiresrv.peek_header(body)
            dev, taps = wiresrv.decode_batch(body, srv.keys)
        except wire.WireError as e:
            return self._reply(401 if e.code == "bad_mac" else 400, e.code.encode())
        srv.seen.append((fault, first, count, flags, rt))
        prev_nonce, srv.last_nonce = srv.last_nonce, nonce
        if fault == "drop_before":
            self.close_connection = True
            return
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if fault == "hold":
            srv.release.wait(10)
            self.close_connection = True
            return
        if fault == "503":
            return self._reply(503, b"busy")
        if fault == "partial":
            taps = taps[:len(taps) // 2]
        self._commit(dev, taps)
        last = taps[-1].seq
        if fault == "drop_after":          # committed, reply lost: device resends
            self.close_connection = True
            return
        ack = wiresrv.encode_ack(KEY, dev, last, nonce, 1795000000)
        if fault == "truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(ack)))
            self.end_headers()
            self.wfile.write(ack[:20])
            self.close_connection = True
            return
        if fault == "stale":               # an ack for an earlier request
            ack = wiresrv.encode_ack(KEY, dev, last, prev_nonce or b"\0" * 8, 1795000000)
        if fault == "forged":              # a fake server without the device key
            ack = wiresrv.encode_ack(b"\x55" * 32, dev, 10 ** 6, nonce, 1795000000)
        if fault == "behind":              # claims less than the device's cursor
            ack = wiresrv.encode_ack(KEY, dev, 0, nonce, 1795000000)
        if fault == "garbage":
            ack = b"<html>proxy error</html>"
        self._reply(200, ack)


class SkewedClock:
    """Device clock three days fast and not trusted (no time sync yet)."""

    def now(self):
        return vclock.time() + 3 * 86400

    def trusted(self):
        return False


@pytest.fixture
def server():
    vclock.reset()
    srv = Backoffice()
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def _pump(up):
    # wait for real socket readiness (bounded), so the server thread can run;
    # virtual time is what the firmware's timers see
    h = up.http
    if up.state == uplink.SEND and h.sock is not None:
        w = [h.sock] if h.state in (httpc.CONNECTING, httpc.SENDING) else []
        select.select([h.sock], w, [], 0.05)
    vclock.advance_us(20000)


def _run(srv, faults, n_taps=240, batch_max=50, clock=None, max_iter=20000):
    srv.faults = list(faults)
    j = MemJournal()
    http = httpc.HttpClient("http://127.0.0.1:%d" % srv.server_address[1], timeout_ms=1000)
    up = uplink.Uplink(j, http, DEV, KEY, clock=clock, batch_max=batch_max, max_age_ms=2000,
                       poll_ms=100, backoff_base_ms=100, backoff_cap_ms=2000)
    i = 0
    appended = 0
    while i < max_iter:
        if appended < n_taps and i % 3 == 0:
            j.append(make_tap(appended))
            appended += 1
        if i % 700 == 350:
            srv.release.set()              # let a held request finish (closes it)
        up.step()
        _pump(up)
        i += 1
        if appended == n_taps and j.backlog == 0:
            break
    assert j.backlog == 0, (j.backlog, up.errors, srv.faults)
    assert srv.faults == [], "not every fault was exercised: %r" % srv.faults
    expect = {(DEV, taprec.unpack_from(r).seq): r for r in j.recs}
    assert srv.taps == expect              # exactly the journaled set, byte for byte
    assert j.acks == sorted(j.acks)        # the cursor never moved back
    return j, up


def test_clean_run_batches_by_size_and_age(server):
    j, up = _run(server, [])
    counts = [s[2] for s in server.seen]
    assert max(counts) <= 50 and sum(counts) == 240 and server.deliveries == 240
    assert up.failures == 0 and up.errors == []
    # after the last append the tail is sent by age, not size
    assert counts[-1] < 50


def test_every_fault_still_yields_exactly_the_journal(server):
    faults = ["drop_before", "reset", "503", "truncated", "drop_after", "stale", "forged",
              "behind", "garbage", "partial", "hold"]
    j, up = _run(server, faults)
    assert server.deliveries > 240         # duplicates were delivered and deduplicated
    c = up.error_counts
    # drop_before, reset, truncated, hold -> net; 503 -> http; stale, forged,
    # garbage -> reply; behind, partial -> ack (drop_after is also net)
    assert c["net"] >= 5 and c["http"] >= 1 and c["reply"] >= 3 and c["ack"] >= 2, c
    retries = [s for s in server.seen if s[3] & wire.BF_RETRY]
    assert retries                         # resent batches say so


def test_forged_ack_never_moves_cursor(server):
    server.faults = ["forged"] * 3
    j = MemJournal()
    for i in range(5):
        j.append(make_tap(i))
    http = httpc.HttpClient("http://127.0.0.1:%d" % server.server_address[1], timeout_ms=1000)
    up = uplink.Uplink(j, http, DEV, KEY, batch_max=50, max_age_ms=0, poll_ms=10,
                       backoff_base_ms=100, backoff_cap_ms=400)
    for _ in range(400):
        up.step()
        _pump(up)
        if len(server.seen) == 3 and up.state == uplink.BACKOFF:
            break
    assert j.cursor == 0 and j.acks == []
    assert [e for e in up.errors if e == ("reply", "bad_mac")]


def test_clock_skew_is_not_a_reason_to_refuse(server):
    j, up = _run(server, [], n_taps=60, clock=SkewedClock())
    for fault, first, count, flags, rt in server.seen:
        assert flags & wire.BF_TIME_UNTRUSTED
        assert rt - vclock.time() > 2 * 86400


def test_backoff_is_capped_full_jitter(server):
    server.faults = ["503"] * 12
    j = MemJournal()
    j.append(make_tap(0))
    http = httpc.HttpClient("http://127.0.0.1:%d" % server.server_address[1], timeout_ms=1000)
    seen_ceil = []

    def rand(n):
        seen_ceil.append(n)
        return n - 1                       # worst case of the jitter

    up = uplink.Uplink(j, http, DEV, KEY, max_age_ms=0, poll_ms=10, backoff_base_ms=100,
                       backoff_cap_ms=3000, rand=rand)
    for _ in range(3000):
        up.step()
        _pump(up)
        if j.backlog == 0:
            break
    assert j.backlog == 0
    assert seen_ceil[:6] == [100, 200, 400, 800, 1600, 3000]
    assert max(seen_ceil) == 3000


def test_each_step_is_bounded(server):
    """Stepping never waits on the network: with the server stalled, every
    step returns after at most one non-blocking socket call."""
    import time

    server.faults = ["hold"]
    j = MemJournal()
    for i in range(100):
        j.append(make_tap(i))
    http = httpc.HttpClient("http://127.0.0.1:%d" % server.server_address[1], timeout_ms=5000)
    up = uplink.Uplink(j, http, DEV, KEY, batch_max=100, max_age_ms=0, poll_ms=10)
    worst = 0.0
    for _ in range(200):
        t = time.perf_counter()
        up.step()
        worst = max(worst, time.perf_counter() - t)
        vclock.advance_us(10000)
    # a stalled server cannot hold a step: generous bound, it is ~0.1 ms
    assert worst < 0.25, worst
    assert up.state in (uplink.SEND, uplink.BACKOFF)


def test_real_journal_through_faults_and_reopen(server, tmp_path):
    """The real ykt.journal.Journal (files on tmp): faults, then a device
    reset in the middle (journal reopened, uplink rebuilt): the server still
    ends with exactly the journaled set and the cursor survives the reset."""
    from ykt.journal import Journal

    jdir = str(tmp_path / "j")
    jkey = bytes(range(16))
    j = Journal(jdir, jkey, seg_recs=40).open()
    url = "http://127.0.0.1:%d" % server.server_address[1]

    def mk(journal):
        return uplink.Uplink(journal, httpc.HttpClient(url, timeout_ms=1000), DEV, KEY,
                             batch_max=30, max_age_ms=500, poll_ms=50, backoff_base_ms=50,
                             backoff_cap_ms=500)

    up = mk(j)
    server.faults = ["drop_after", "503", "partial", "stale"]
    for i in range(100):
        j.append(make_tap(i))
        for _ in range(3):
            up.step()
            _pump(up)
    # device reset: drop the uplink mid-flight, reopen the journal from flash
    up.http.close()
    j.close()
    j = Journal(jdir, jkey, seg_recs=40).open()
    assert j.cursor > 0 and j.next_seq == 101
    up = mk(j)
    for i in range(100, 130):
        j.append(make_tap(i))
    for _ in range(3000):
        up.step()
        _pump(up)
        if j.backlog == 0:
            break
    assert j.backlog == 0, (j.backlog, up.errors)
    assert server.faults == []
    # acked segments are deleted from flash: compare with what was journaled
    made = {}
    for i in range(130):
        t = make_tap(i)
        t.seq = i + 1
        made[(DEV, t.seq)] = taprec.pack(t)
    assert server.taps == made
