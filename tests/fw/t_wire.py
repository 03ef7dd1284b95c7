# Pins the uplink batch and reply bytes (the back office decodes with the
# same module) and checks every refusal code.
import binascii
from ykt import taprec
from ykt.net import wire
from yktsrv import wiresrv

KEY = b"K" * 32
NONCE = b"\x01\x02\x03\x04\x05\x06\x07\x08"

# Format 2 (tap record with the driver shift): the header's defaults end with
# the first tap's shift; tap 1004 starts another shift (ctl bit CT_SHIFT 0x20).
BATCH_HEX = (
    "594b5442" "02" "00" "2a000000" "e8030000" "0300" "8887fd6a" "0102030405060708"  # header
    "c086fd6a" "00" "00" "c800" "00" "00" "2d01" "0c00" "01" "00" "07000000" "0300" "0200" "e7030000"
    "00" "00" "1011121314151617"                          # tap 1000: ctl 0, dt 0
    "00" "50" "2021222324252627"                          # tap 1001: dt +40
    "2f" "be01" "3031323334353637" "02" "00010100" "6400" "2d010d000100" "eb030000"  # 1004, dt +95
    "6cf48a8b14d5f59ce5ceca57579efb1b")                   # HMAC-SHA256[:16]
# Format 1 (record format 1, no shift), as devices sent before shifts: the back
# office still decodes it, every shift 0.
BATCH_HEX_V1 = (
    "594b5442" "01" "00" "2a000000" "e8030000" "0300" "8887fd6a" "0102030405060708"  # header
    "c086fd6a" "00" "00" "c800" "00" "00" "2d01" "0c00" "01" "00" "07000000" "0300" "0200"
    "00" "00" "1011121314151617"                          # tap 1000: ctl 0, dt 0
    "00" "50" "2021222324252627"                          # tap 1001: dt +40
    "0f" "be01" "3031323334353637" "02" "00010100" "6400" "2d010d000100"  # 1004, dt +95
    "777805f3618a30efc3884ac2abc291b2")                   # HMAC-SHA256[:16]
ACK_HEX = ("594b5452" "01" "01" "00" "00" "2a000000" "ec030000" "0102030405060708"
           "8987fd6a" "1f4c4d544ebe5b25e515227cdd462885")


def _taps():
    out = []
    for i, (dt, gap, fare, reason, stop) in enumerate(
            ((0, 0, 200, 0, 12), (40, 0, 200, 0, 12), (95, 2, 100, 1, 13))):
        t = taprec.Tap()
        t.seq = (out[-1].seq + 1 + gap) if out else 1000
        t.time = (out[-1].time if out else 1795000000) + dt
        t.token[:] = bytes([0x10 * (i + 1) + j for j in range(8)])
        t.fare = fare
        t.reason = reason
        t.concession = 1 if reason else 0
        t.entry = 301
        t.stop = stop
        t.direction = 1
        t.dl_ver = 7
        t.fare_ver = 3
        t.cat_ver = 2
        t.shift = 1003 if i == 2 else 999
        out.append(t)
    return out


def _keys(dev):
    return KEY if dev == 42 else None


def _code(body, code, lookup=_keys):
    try:
        wiresrv.decode_batch(body, lookup)
    except wire.WireError as e:
        assert e.code == code, (e.code, code, e.msg)
        return
    raise AssertionError("accepted, expected " + code)


def test_batch_vector():
    b = wire.encode_batch(42, KEY, _taps(), req_time=1795000200, nonce=NONCE)
    assert binascii.hexlify(b).decode() == BATCH_HEX


def test_decode_reconstructs_exact_taps():
    dev, taps = wiresrv.decode_batch(binascii.unhexlify(BATCH_HEX), _keys)
    assert dev == 42
    assert [taprec.pack(t) for t in taps] == [taprec.pack(t) for t in _taps()]
    assert [t.shift for t in taps] == [999, 999, 1003]
    assert wiresrv.peek_header(binascii.unhexlify(BATCH_HEX)) == (42, 1000, 3, 1795000200, NONCE, 0)


def test_format_1_batches_still_decode():
    # a device still running record format 1 (or its journal's old taps)
    dev, taps = wiresrv.decode_batch(binascii.unhexlify(BATCH_HEX_V1), _keys)
    want = _taps()
    for t in want:
        t.shift = 0
    assert dev == 42 and [taprec.pack(t) for t in taps] == [taprec.pack(t) for t in want]
    b = binascii.unhexlify(BATCH_HEX_V1)
    # ctl bit 0x20 (CT_SHIFT) is reserved in format 1
    body = bytearray(b[:-16])
    body[52] = 0x20
    from ykt.sec import hmac256
    _code(bytes(body) + hmac256.hmac_sha256(KEY, b"POST /v1/taps\n" + bytes(body))[:16], "malformed")


def test_ack_vector():
    a = wiresrv.encode_ack(KEY, 42, 1004, NONCE, 1795000201)
    assert binascii.hexlify(a).decode() == ACK_HEX
    assert wire.decode_ack(a, KEY, 42, NONCE) == (wire.RS_OK, 1004, 1795000201)


def test_ack_refusals():
    a = binascii.unhexlify(ACK_HEX)
    for body, code, key, dev, nonce in (
            (a, "bad_mac", b"X" * 32, 42, NONCE),              # fake server
            (a, "nonce_mismatch", KEY, 42, b"\x00" * 8),       # stale / replayed ack
            (a, "unknown_device", KEY, 43, NONCE),
            (a[:-1], "truncated", KEY, 42, NONCE),
            (a + b"\x00", "oversized", KEY, 42, NONCE),
            (b"HTTP" + a[4:], "bad_magic", KEY, 42, NONCE)):
        try:
            wire.decode_ack(body, key, dev, nonce)
            raise AssertionError("accepted " + code)
        except wire.WireError as e:
            assert e.code == code, (e.code, code)
    t = wiresrv.encode_reply(KEY, wire.RK_TIME, 42, 0, NONCE, 1)
    try:
        wire.decode_ack(t, KEY, 42, NONCE)
        raise AssertionError("time reply taken as an ack")
    except wire.WireError as e:
        assert e.code == "bad_kind"


def test_batch_refusals():
    b = binascii.unhexlify(BATCH_HEX)
    _code(b"XKTB" + b[4:], "bad_magic")
    _code(b[:4] + b"\x03" + b[5:], "bad_version")
    _code(b[:4] + b"\x00" + b[5:], "bad_version")
    _code(b[:40], "truncated")
    _code(b + b"\x00" * wire.MAX_BODY, "oversized")
    _code(b, "unknown_device", lambda d: None)
    _code(b[:60] + bytes([b[60] ^ 1]) + b[61:], "bad_mac")
    _code(b[:-1], "bad_mac")        # a cut body no longer matches its MAC


def test_malformed_after_a_valid_mac():
    # a correctly MACed but inconsistent body (count says 4, three records)
    from ykt.sec import hmac256

    body = bytearray(binascii.unhexlify(BATCH_HEX)[:-16])
    body[14] = 4
    bad = bytes(body) + hmac256.hmac_sha256(KEY, b"POST /v1/taps\n" + bytes(body))[:16]
    _code(bad, "truncated")
    body[14] = 2
    bad = bytes(body) + hmac256.hmac_sha256(KEY, b"POST /v1/taps\n" + bytes(body))[:16]
    _code(bad, "malformed")


def test_hundred_taps_under_budget():
    taps = []
    for i in range(100):
        t = taprec.Tap()
        t.seq = 5000 + i
        t.time = 1795000000 + i * 53
        t.token[:] = bytes([(i * 13 + j) & 0xFF for j in range(8)])
        t.fare = 200 if i % 4 else 100
        t.reason = 0 if i % 4 else 1
        t.concession = 0 if i % 4 else 1
        t.entry = 301
        t.stop = 10 + i // 7
        t.direction = 1
        t.dl_ver = 7 + i // 50
        taps.append(t)
    b = wire.encode_batch(7, KEY, taps)
    assert len(b) <= 48 * 100, len(b)
    dev, out = wiresrv.decode_batch(b, lambda d: KEY)
    assert [taprec.pack(t) for t in out] == [taprec.pack(t) for t in taps]


def test_seq_must_increase_and_records_accepted():
    t = _taps()
    w = wire.BatchWriter(4).begin(42)
    w.add(taprec.pack(t[0]))               # a raw journal record (taprec.SIZE bytes)
    try:
        w.add(t[0])
        raise AssertionError("accepted a repeated seq")
    except ValueError:
        pass
    w.add(t[1])
    dev, out = wiresrv.decode_batch(bytes(w.finish(KEY, 0, NONCE)), _keys)
    assert [x.seq for x in out] == [1000, 1001]


def test_clock_going_back_and_extreme_values():
    a = taprec.Tap()
    a.seq = 0xFFFFFFF0
    a.time = 0xFFFFFFFF
    b = taprec.Tap()
    b.seq = 0xFFFFFFFF
    b.time = 0                            # clock reset to epoch 0
    b.fare = 0xFFFF
    b.dl_ver = 0xFFFFFFFF
    body = wire.encode_batch(42, KEY, [a, b])
    dev, out = wiresrv.decode_batch(body, _keys)
    assert [taprec.pack(t) for t in out] == [taprec.pack(a), taprec.pack(b)]


def test_request_signing():
    auth = wire.sign_request(42, KEY, "GET", "/v1/sync/fares?have=3", b"", 1795000000, NONCE)
    assert auth == "42:1795000000:0102030405060708:34d53ed19daa10a4a7ce950316da289e"
    assert wiresrv.verify_request(auth, "GET", "/v1/sync/fares?have=3", b"", _keys) == \
        (42, 1795000000, NONCE)
    for meth, path, body, code in (("GET", "/v1/sync/fares?have=9", b"", "bad_mac"),
                                   ("POST", "/v1/sync/fares?have=3", b"", "bad_mac"),
                                   ("GET", "/v1/sync/fares?have=3", b"x", "bad_mac")):
        try:
            wiresrv.verify_request(auth, meth, path, body, _keys)
            raise AssertionError("accepted")
        except wire.WireError as e:
            assert e.code == code
    for bad in (None, "", "1:2:3", "42:x:0102030405060708:" + "0" * 32, "9" * 200):
        try:
            wiresrv.verify_request(bad, "GET", "/v1/time", b"", _keys)
            raise AssertionError("accepted " + str(bad))
        except wire.WireError as e:
            assert e.code == "bad_auth"
