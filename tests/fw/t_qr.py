# e-SSC QR tokens: format (base45 vectors), offline verification and each
# refusal with its reason (expired, not yet valid, wrong key, tampered,
# truncated, oversized, replayed, no trusted time), then the decision for a
# QR read: the signed holder token goes through the same rules as a card.
from ykt import cardread as CR, taprec as T
from ykt.qr import qrtoken as Q
from ykt.sec import sigverify as S
import t_qr_kit as K
import t_decide_kit as DK


def _v(clock=None, ring=None, **kw):
    return Q.Verifier(ring or K.ring(), clock or K.Clock(), **kw)


def _check(v, text, want, label=""):
    cr = CR.CardRead()
    r = v.verify_text(text, len(text), cr)
    assert r == want, "%s: got %r want %r" % (label, r, want)
    assert cr.kind == CR.KIND_QR
    if r != Q.IGNORE:
        assert cr.qr_reason == want
    return cr


def test_base45_rfc9285_vectors():
    for raw, enc in ((b"AB", b"BB8"), (b"Hello!!", b"%69 VD92EX0"), (b"base-45", b"UJCLQE7W581"),
                     (b"ietf!", b"QED8WEX0"), (b"", b"")):
        assert Q.b45_encode(raw) == enc
        out = bytearray(16)
        n = Q.b45_decode_into(enc, 0, len(enc), out)
        assert bytes(out[:n]) == raw
    out = bytearray(16)
    for bad in (b"GGW", b"ZZZZ", b"a00", b"0", b"00\x80"):   # > 65535, length 3k+1, lower case, 8-bit
        assert Q.b45_decode_into(bad, 0, len(bad), out) == -1
    assert Q.b45_decode_into(b"000000", 0, 6, bytearray(3)) == -1   # longer than the buffer


def test_layout_and_valid_token():
    tok = K.mint(region=450100, cat=T.C_DISABLED, flags=2)
    assert len(tok) == Q.MIN_TOKEN == 292
    assert tok[0] == 1 and tok[1:9] == K.key().kid and tok[9:17] == K.HOLDER
    assert tok[27] == 30
    text = K.text(tok)
    assert text[:3] == b"YQ:" and len(text) == 441
    v = _v()
    cr = _check(v, text, Q.R_OK, "valid")
    assert bytes(cr.qr_token) == K.HOLDER and cr.region == 450100
    assert cr.qr_ent == (T.C_DISABLED << 8) | 2 and cr.qr_expires == K.NOW + 30
    cr = _check(v, K.text(K.mint()), Q.R_OK, "no category")
    assert cr.qr_ent == -1


def test_validity_window_with_tolerance():
    v = _v(tol_s=20)
    _check(v, K.text(K.mint(iat=K.NOW - 100)), T.R_QR_EXPIRED, "expired")
    _check(v, K.text(K.mint(iat=K.NOW - 50)), Q.R_OK, "30 s + 20 s tolerance")
    _check(v, K.text(K.mint(iat=K.NOW - 51)), T.R_QR_EXPIRED, "one second late")
    _check(v, K.text(K.mint(iat=K.NOW + 60)), T.R_QR_NOT_YET_VALID, "future")
    _check(v, K.text(K.mint(iat=K.NOW + 20)), Q.R_OK, "device clock 20 s slow")
    assert v.counts[T.R_QR_EXPIRED] == 2 and v.counts[T.R_QR_NOT_YET_VALID] == 1


def test_wrong_key_and_usage():
    tb = K.mint(k=K.key("B"))
    _check(_v(), K.text(tb), T.R_QR_UNKNOWN_KEY, "not trusted")
    forged = K.mint(k=K.key("B"), kid=K.key("A").kid)
    _check(_v(), K.text(forged), T.R_QR_BAD_SIGNATURE, "signed by another key")
    # a download key may not sign QR codes, and a QR key may not sign downloads
    ta = K.mint()
    _check(_v(ring=K.ring(("A", S.U_DOWNLOADS))), K.text(ta), T.R_QR_UNKNOWN_KEY, "download key")
    assert K.ring(("A", S.U_QR)).get(K.key().kid, S.U_DOWNLOADS) is None
    _check(_v(ring=K.ring(("B", S.U_QR), ("A", S.U_QR))), K.text(ta), Q.R_OK, "rotation overlap")


def test_tampered_truncated_oversized():
    tok = bytearray(K.mint())
    v = _v()
    for off in (9, 17, 21, 23, 28, 100, len(tok) - 1):   # holder, region, category, iat, nonce, sig
        t = bytearray(tok)
        t[off] ^= 0x01
        _check(v, K.text(bytes(t)), T.R_QR_BAD_SIGNATURE, "flip at %d" % off)
    t = bytearray(tok)
    t[0] = 2
    _check(v, K.text(bytes(t)), T.R_QR_MALFORMED, "unknown version")
    _check(v, K.text(bytes(tok[:-1])), T.R_QR_MALFORMED, "truncated token")
    _check(v, K.text(bytes(tok[:40])), T.R_QR_MALFORMED, "body only")
    text = K.text(bytes(tok))
    _check(v, text[:-1], T.R_QR_MALFORMED, "truncated text")
    _check(v, text[:-2], T.R_QR_MALFORMED, "truncated text by a triple")
    _check(v, K.text(bytes(tok) + b"\x00"), T.R_QR_MALFORMED, "trailing byte")
    _check(v, K.text(bytes(tok) + bytes(300)), T.R_QR_MALFORMED, "oversized token")
    _check(v, b"YQ:" + b"0" * (Q.MAX_TEXT), T.R_QR_MALFORMED, "oversized text")
    _check(v, b"https://example.com/pay?id=1", T.R_QR_MALFORMED, "someone else's code")
    _check(v, b"yq:" + text[3:], T.R_QR_MALFORMED, "prefix case")
    _check(v, b"", T.R_QR_MALFORMED, "empty")
    assert v.counts.get(Q.R_OK, 0) == 0


def test_signed_but_bad_validity_is_malformed():
    import struct
    k = K.key()
    for valid in (0, 61, 255):
        body = bytearray(Q.pack_body(k.kid, K.HOLDER, 450100, 0, 0, K.NOW, 30, b"n" * 8))
        body[27] = valid
        tok = bytes(body) + k.sign(Q.signed_message(body))
        _check(_v(), K.text(tok), T.R_QR_MALFORMED, "validity %d" % valid)
    try:
        Q.pack_body(k.kid, K.HOLDER, 0, 0, 0, K.NOW, 61, b"n" * 8)
    except ValueError:
        pass
    else:
        raise AssertionError("validity 61 accepted")
    assert struct.calcsize(Q._FMT) == Q.BODY


def test_replay_refused_rescan_ignored():
    c = K.Clock()
    v = _v(clock=c)
    text = K.text(K.mint())
    _check(v, text, Q.R_OK, "first")
    c.advance(2)
    _check(v, text, Q.IGNORE, "scanner re-sent it")
    c.advance(4)
    cr = _check(v, text, T.R_QR_REPLAY, "replayed")
    assert bytes(cr.qr_token) == K.HOLDER   # signed: the back office may see who
    other = K.text(K.mint())
    _check(v, other, Q.R_OK, "another code")
    _check(v, text, T.R_QR_REPLAY, "still replayed after another code")
    c.advance(60)
    _check(v, text, T.R_QR_EXPIRED, "and then expired")


def test_replay_cache_bounded_fail_safe():
    c = K.Clock()
    v = _v(clock=c, cap=3)
    toks = [K.text(K.mint(nonce=bytes((i,)) * 8)) for i in range(4)]
    for t in toks[:3]:
        _check(v, t, Q.R_OK)
    assert v.live() == 3
    _check(v, toks[3], T.R_QR_REPLAY, "cache full of live tokens")
    assert v.full == 1
    c.advance(51)     # every window (30 s + 20 s tolerance) has closed
    assert v.live() == 0
    fresh = K.text(K.mint(iat=c.t, nonce=b"\x07" * 8))
    _check(v, fresh, Q.R_OK, "slots free again")


def test_same_low_bits_different_nonce():
    v = _v()
    a = K.text(K.mint(nonce=b"\x01\x02\x03\x04\x05\x06\x07\x08"))
    b = K.text(K.mint(nonce=b"\x01\x02\x03\x04\xff\xff\xff\xff"))
    _check(v, a, Q.R_OK)
    _check(v, b, Q.R_OK, "same cache key, another nonce")


def test_no_trusted_time_and_boot_guard():
    _check(_v(clock=K.Clock(trusted=False)), K.text(K.mint()), T.R_NO_TRUSTED_TIME, "untrusted")
    c = K.Clock(uptime_s=10)    # rebooted 10 s ago: the replay cache is empty
    v = _v(clock=c)
    _check(v, K.text(K.mint(iat=K.NOW - 12)), T.R_QR_REPLAY, "issued before the reboot")
    c.advance(30)
    _check(v, K.text(K.mint(iat=c.t - 2)), Q.R_OK, "issued after boot + tolerance")


def test_decide_qr_like_a_card():
    r = DK.Rig("turnstile")
    now = DK.NOW
    c = K.Clock(now=now)
    v = _v(clock=c)
    cr = _check(v, K.text(K.mint(iat=now)), Q.R_OK)
    t = r.tap_card(cr, now)
    DK.check(t, T.OUT_ACCEPT, T.R_OK, fare=5500, label="qr accepted")
    assert bytes(t.token) == K.HOLDER and t.flags & T.F_QR
    # anti-passback uses the holder token: a fresh code does not get a second entry
    c.advance(10)
    cr = _check(v, K.text(K.mint(iat=now + 10)), Q.R_OK)
    DK.check(r.tap_card(cr, now + 10), T.OUT_DENY, T.R_PASSBACK, label="passback")
    # deny list on the holder token
    r.deny.d[K.HOLDER] = 1
    cr = _check(v, K.text(K.mint(iat=now + 10)), Q.R_OK)
    DK.check(r.tap_card(cr, now + 10), T.OUT_DENY, T.R_DENY_LOST, label="lost card")
    assert r.key == "deny_lost"


def test_decide_qr_category_region_refusals():
    r = DK.Rig("bus_validator")
    now = DK.NOW
    v = _v(clock=K.Clock(now=now))
    h2 = b"\x99" * 8
    cr = _check(v, K.text(K.mint(iat=now, holder=h2, cat=T.C_DISABLED)), Q.R_OK)
    t = r.tap_card(cr, now)
    DK.check(t, T.OUT_ACCEPT, T.R_CONCESSION, fare=0, conc=T.C_DISABLED, label="signed category")
    cr = _check(v, K.text(K.mint(iat=now, holder=b"\x98" * 8, region=530100)), Q.R_OK)
    DK.check(r.tap_card(cr, now), T.OUT_DENY, T.R_REGION, label="region")
    # every refusal reaches the journal with its reason, the F_QR flag and (if signed) the holder
    for text, reason, holder in ((K.text(K.mint(iat=now - 999)), T.R_QR_EXPIRED, K.HOLDER),
                                 (b"YQ:!!", T.R_QR_MALFORMED, bytes(8))):
        cr = _check(v, text, reason)
        t = r.tap_card(cr, now)
        DK.check(t, T.OUT_DENY, reason, fare=0, label="refused %d" % reason)
        assert t.flags & T.F_QR and bytes(t.token) == holder
        assert T.unpack_from(T.pack(t)).reason == reason
    # without trusted time the verifier refuses; the decider records it as such
    cr = _check(_v(clock=K.Clock(now=now, trusted=False)), K.text(K.mint(iat=now)), T.R_NO_TRUSTED_TIME)
    DK.check(r.tap_card(cr, now, trusted=False), T.OUT_DENY, T.R_NO_TRUSTED_TIME, fare=0)
