# Trusted time: authenticated back-office time, weak sources (HTTP Date,
# SNTP), monotonic fallback, clock jumps and ticks wrap-around.
import vclock
from ykt.net import httpc
from ykt.net.timesync import TimeSync, TRUST_NONE, TRUST_WEAK, TRUST_AUTH


def setup():
    vclock.reset(epoch=946684800)     # RTC at 2000-01-01: an unset clock


def test_boot_is_untrusted_monotonic():
    ts = TimeSync()
    assert ts.level == TRUST_NONE and not ts.trusted() and ts.age_s() == -1
    t0 = ts.now()
    vclock.advance_us(5000000)
    assert ts.now() == t0 + 5


def test_authenticated_time_trusted_then_ages_out():
    ts = TimeSync(max_age_s=3600)
    assert ts.from_reply(1795000000, rtt_ms=400)
    assert ts.trusted() and ts.now() == 1795000000 and ts.level == TRUST_AUTH
    vclock.advance_us(3601 * 1000000)
    assert not ts.trusted() and ts.now() == 1795003601


def test_weak_source_never_overrides_trusted():
    ts = TimeSync()
    ts.from_reply(1795000000)
    assert not ts.from_http_date("Wed, 18 Nov 2026 13:00:00 GMT")
    assert ts.now() == 1795000000
    ts2 = TimeSync()
    assert ts2.from_http_date("Wed, 18 Nov 2026 11:06:40 GMT")
    assert ts2.level == TRUST_WEAK and ts2.now() == 1795000000 and not ts2.trusted()
    assert not ts2.from_http_date("garbage")


def test_rtc_jump_does_not_move_device_time():
    ts = TimeSync()
    ts.from_reply(1795000000)
    vclock.set_epoch(2000000000)       # someone moves the RTC
    vclock.advance_us(10 * 1000000)
    assert ts.now() == 1795000010


def test_correction_counts_jumps_and_sets_rtc():
    seen = []
    ts = TimeSync(set_rtc=seen.append)
    ts.from_reply(1795000000)
    ts.from_reply(1795000001)          # within the 1 s resolution: anchor kept
    assert ts.now() == 1795000000 and ts.last_offset == 1
    ts.from_reply(1795000500)
    assert ts.jumps == 2 and ts.last_offset == 500 and seen[-1] == 1795000500
    assert not ts.update(12345, TRUST_AUTH)      # absurd values refused


def test_survives_ticks_wraparound_for_weeks():
    ts = TimeSync(max_age_s=40 * 86400)
    ts.from_reply(1795000000)
    for _ in range(30 * 24):           # 30 days in 1 h steps; ticks wrap every 12.4 days
        vclock.advance_us(3600 * 1000000)
        ts.step()
    assert ts.now() == 1795000000 + 30 * 86400
    assert ts.uptime_s == 30 * 86400 and ts.trusted()


def test_http_date_parse():
    assert httpc.http_date_to_unix("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
    assert httpc.http_date_to_unix("Wed, 18 Nov 2026 11:06:40 GMT") == 1795000000
    assert httpc.http_date_to_unix("Sun, 06 Nov") is None


def test_time_query_over_tcp_authenticated_and_forged():
    from ykt.net.timesync import TimeQuery
    from t_uplink_srv import LoopServer, Backoffice

    key = b"\x03" * 32
    app = Backoffice(77, key, now=1795000000)
    srv = LoopServer(app)
    try:
        ts = TimeSync()
        q = TimeQuery(ts, httpc.HttpClient(srv.url(), timeout_ms=500), 77, key)
        for _ in range(100):
            srv.step()
            if not q.step():
                break
            vclock.advance_us(1000)
        assert q.ok and ts.trusted() and abs(ts.now() - 1795000000) <= 1
        # a server without the device key: only its Date header, as weak time
        app.key = b"\x04" * 32
        ts2 = TimeSync()
        q2 = TimeQuery(ts2, httpc.HttpClient(srv.url(), timeout_ms=500), 77, key)
        app.keys = lambda d: key          # it still accepts our request
        for _ in range(100):
            srv.step()
            if not q2.step():
                break
            vclock.advance_us(1000)
        assert q2.error == "bad_mac" and ts2.level == TRUST_WEAK and not ts2.trusted()
        assert ts2.source == "date"
    finally:
        srv.close()


def test_sntp_over_loopback_udp_is_weak_time():
    import socket
    import struct
    from ykt.net.timesync import Sntp

    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    port = 0
    for p in range(23123, 23323):
        try:
            srv.bind(socket.getaddrinfo("127.0.0.1", p)[0][-1])
            port = p
            break
        except OSError:
            pass
    assert port
    srv.setblocking(False)
    ts = TimeSync()
    q = Sntp(ts, "127.0.0.1", port, timeout_ms=1000)
    q.start()
    answered = False
    try:
        for _ in range(200):
            if not answered:
                try:
                    data, addr = srv.recvfrom(64)
                    r = bytearray(48)
                    r[0] = 0x24                # LI 0, version 4, mode 4 (server)
                    struct.pack_into(">I", r, 40, 1795000000 + 2208988800)
                    srv.sendto(r, addr)
                    answered = True
                except OSError:
                    pass
            if q.step():
                break
            vclock.advance_us(1000)
    finally:
        srv.close()
        q.close()
    assert q.ok and ts.level == TRUST_WEAK and ts.source == "ntp"
    assert abs(ts.now() - 1795000000) <= 1 and not ts.trusted()


def test_sntp_timeout_leaves_time_alone():
    from ykt.net.timesync import Sntp

    ts = TimeSync()
    q = Sntp(ts, "127.0.0.1", 9, timeout_ms=50)    # discard port: no answer
    q.start()
    for _ in range(100):
        if q.step():
            break
        vclock.advance_us(1000)
    assert q.done and not q.ok and ts.level == TRUST_NONE
