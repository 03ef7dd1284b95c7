# Uplink, sync and heartbeat over real loopback TCP on both runtimes: the
# real httpc client and the uplink state machine against a server stepped in
# the same loop (t_uplink_srv). Faults: drop before/after commit, 5xx,
# truncated reply, stall (timeout), stale and forged acks, partial commit.
import vclock
from ykt import taprec
from ykt.net import httpc
from ykt.net import uplink
from t_uplink_mem import MemJournal, make_tap
from t_uplink_srv import LoopServer, Backoffice

KEY = b"\x07" * 32
DEV = 4501002


def setup():
    vclock.reset()


def _rig(faults=(), batch_max=40, timeout_ms=500):
    app = Backoffice(DEV, KEY)
    app.faults = list(faults)
    srv = LoopServer(app)
    j = MemJournal()
    http = httpc.HttpClient(srv.url(), timeout_ms=timeout_ms)
    up = uplink.Uplink(j, http, DEV, KEY, batch_max=batch_max, max_age_ms=1000, poll_ms=50,
                       backoff_base_ms=50, backoff_cap_ms=800)
    return app, srv, j, up


def _drive(app, srv, j, up, n_taps, max_iter=6000):
    appended = 0
    try:
        for i in range(max_iter):
            if appended < n_taps and i % 2 == 0:
                j.append(make_tap(appended))
                appended += 1
            if i % 400 == 200:
                srv.release_held()
            srv.step()
            up.step()
            srv.step()
            vclock.advance_us(5000)
            if appended == n_taps and j.backlog == 0:
                break
    finally:
        srv.close()
        up.http.close()
    assert j.backlog == 0, (j.backlog, up.errors)
    assert app.faults == [], app.faults
    want = {}
    for r in j.recs:
        want[(DEV, taprec.unpack_from(r).seq)] = r
    assert app.taps == want
    assert j.acks == sorted(j.acks)


def test_clean_upload_over_tcp():
    app, srv, j, up = _rig()
    _drive(app, srv, j, up, 100)
    assert app.deliveries == 100 and up.failures == 0
    assert up.acked_seq == 100


def test_faults_end_with_exactly_the_journal():
    app, srv, j, up = _rig(["close", "503", "truncated", "close_after", "stale", "forged",
                            "partial", "hold"])
    _drive(app, srv, j, up, 120)
    assert app.deliveries > 120                     # duplicates were deduplicated
    c = up.error_counts
    assert c["net"] >= 3 and c["http"] == 1 and c["reply"] >= 2 and c["ack"] >= 1, c


def test_step_is_bounded_while_server_stalls():
    app, srv, j, up = _rig(["hold"], timeout_ms=200)
    for i in range(5):
        j.append(make_tap(i))
    up.flush()
    states = []
    try:
        for _ in range(120):
            srv.step()
            states.append(up.step())
            vclock.advance_us(5000)
    finally:
        srv.close()
        up.http.close()
    # it waited in SEND across many steps, then timed out into BACKOFF and
    # retried; the loop was never blocked (we are here)
    assert states.count(uplink.SEND) > 10
    assert ("net", "timeout") in up.errors
    assert j.backlog == 0


def test_ack_beyond_sent_is_clamped_and_time_learned():
    from ykt.net.timesync import TimeSync, TRUST_AUTH

    app, srv, j, up = _rig()
    ts = TimeSync()
    up.clock = ts
    j.append(make_tap(0))
    up.flush()
    _drive(app, srv, j, up, 0, 500)
    assert ts.level == TRUST_AUTH and ts.trusted() and abs(ts.now() - 1795000000) <= 1


def test_encode_steps_are_small():
    # 100 pending taps are encoded ENC_PER_STEP at a time, not in one step
    j = MemJournal()
    for i in range(100):
        j.append(make_tap(i))

    class NoNet:
        base = ""
        owner = None

        def acquire(self, o):
            return False            # keep the uplink from sending

        def release(self, o):
            pass

    up = uplink.Uplink(j, NoNet(), DEV, KEY, batch_max=100, poll_ms=0)
    up.step()
    assert up.state == uplink.BUILD
    steps = 0
    while up.state == uplink.BUILD:
        up.step()
        steps += 1
    assert steps >= 100 // uplink.ENC_PER_STEP and up.w.count == 100


def test_batch_in_the_shared_buffer_waits_while_it_is_lent():
    # Built in ykt.compat.Scratch's buffer: nothing is built while another
    # owner (a deny-list update) holds it; held from the batch's first record
    # to its ack, then free again; every tap arrives once.
    from ykt.compat import Scratch

    app = Backoffice(DEV, KEY)
    srv = LoopServer(app)
    j = MemJournal()
    http = httpc.HttpClient(srv.url(), timeout_ms=500)
    sc = Scratch()
    up = uplink.Uplink(j, http, DEV, KEY, batch_max=40, max_age_ms=1000, poll_ms=50,
                       backoff_base_ms=50, backoff_cap_ms=800, scratch=sc)
    assert up.w.buf is sc.buf
    dl = object()
    sc.take(dl)
    for i in range(50):
        j.append(make_tap(i))
    try:
        for _ in range(400):
            srv.step()
            up.step()
            srv.step()
            vclock.advance_us(5000)
        assert up.state_name() == "idle" and j.backlog == 50 and app.taps == {} and sc.owner is dl
        sc.give(dl)
        held = False
        for _ in range(4000):
            srv.step()
            up.step()
            held = held or sc.owner is up
            srv.step()
            vclock.advance_us(5000)
            if j.backlog == 0:
                break
    finally:
        srv.close()
        http.close()
    assert held and j.backlog == 0 and sc.owner is None
    assert len(app.taps) == 50
