# Signed downloads: pinned vectors verify on both runtimes; tampered,
# truncated, rolled-back, foreign-key, wrong-kind and wrong-scope files are
# refused with a reason before anything is applied.
import binascii
from ykt.sec import signed
from ykt.sec import sigverify
import t_signed_vec as V


def _b(s):
    return binascii.unhexlify(s)


def _ring():
    return sigverify.parse_keys(_b(V.KEYS_AB))


def _refused(blob, code, kinds=(signed.K_FARES,), have=4, dev=0, max_len=4096, chunk=0):
    r = signed.Reader(_ring(), kinds, have, max_len, dev)
    try:
        if chunk:
            for i in range(0, len(blob), chunk):
                r.feed(blob[i:i + chunk])
        else:
            r.feed(blob)
        r.finish()
    except signed.SignedError as e:
        assert e.code == code, (e.code, code, e.msg)
        return r
    raise AssertionError("accepted, expected " + code)


def test_keyring_ids():
    ring = _ring()
    assert [binascii.hexlify(k).decode() for k in ring.kids()] == [V.KID_A, V.KID_B]
    assert ring.keys[0].nlen == 384 and ring.keys[1].nlen == 256


def test_vector_rsa3072_verifies():
    h, p = signed.verify_blob(_b(V.FARES_V5_A), _ring(), (signed.K_FARES,), 4, 4096)
    assert (h.kind, h.version, h.base, h.created, h.scope) == (signed.K_FARES, 5, 0, 1795000000, 0)
    assert p == b"fare-table-v5:bus301=200"
    assert binascii.hexlify(h.kid).decode() == V.KID_A


def test_vector_rsa2048_verifies_streamed_in_small_chunks():
    blob = _b(V.CATALOG_V2_B)
    r = signed.Reader(_ring(), (signed.K_CATALOG,), 0, 4096)
    for i in range(0, len(blob), 7):
        r.feed(blob[i:i + 7])
    h = r.finish()
    assert h.version == 2 and bytes(r.payload()) == b"catalog-v2"


def test_delta_needs_matching_base():
    kinds = (signed.K_DENYLIST, signed.K_DENYLIST_DELTA)
    h, p = signed.verify_blob(_b(V.DELTA_V8_ON_7_A), _ring(), kinds, 7, 4096)
    assert h.flags & signed.F_DELTA and h.base == 7 and p == b"+0011223344556677"
    _refused(_b(V.DELTA_V8_ON_7_A), "base_mismatch", kinds, have=6)


def test_tampered_payload_refused():
    blob = bytearray(_b(V.FARES_V5_A))
    blob[signed.HDR_SIZE + 20] ^= 1      # "301" -> "300"-ish fare change
    _refused(bytes(blob), "bad_signature")


def test_tampered_header_and_signature_refused():
    blob = bytearray(_b(V.FARES_V5_A))
    blob[24] ^= 0x80                     # created time
    _refused(bytes(blob), "bad_signature")
    blob = bytearray(_b(V.FARES_V5_A))
    blob[-1] ^= 1
    _refused(bytes(blob), "bad_signature")


def test_truncated_refused_at_every_cut():
    blob = _b(V.CATALOG_V2_B)
    for cut in (0, 3, 20, signed.HDR_SIZE, signed.HDR_SIZE + 5, len(blob) - 1):
        _refused(blob[:cut], "truncated",
                 (signed.K_CATALOG,), 0)


def test_trailing_bytes_refused():
    _refused(_b(V.FARES_V5_A) + b"\x00", "trailing")


def test_rollback_and_replay_refused():
    _refused(_b(V.FARES_V5_A), "rollback", have=5)     # same version again
    _refused(_b(V.FARES_V5_A), "rollback", have=9)     # older than held


def test_foreign_key_refused():
    _refused(_b(V.FARES_V6_C), "foreign_key")


def test_wrong_kind_and_scope_refused():
    _refused(_b(V.CATALOG_V2_B), "wrong_kind", (signed.K_FARES,), 0)
    _refused(_b(V.ENT_V3_DEV42_B), "wrong_scope", (signed.K_ENTITLEMENTS,), 0, dev=41)
    h, p = signed.verify_blob(_b(V.ENT_V3_DEV42_B), _ring(), (signed.K_ENTITLEMENTS,), 0, 64, 42)
    assert h.scope == 42 and p == b"ent"


def test_oversized_and_bad_magic_refused():
    _refused(_b(V.FARES_V5_A), "too_large", max_len=10)
    _refused(b"XXXX" + _b(V.FARES_V5_A)[4:], "bad_magic")


def test_usage_restricts_keys():
    ring = _ring()
    assert ring.get(ring.keys[0].kid, sigverify.U_QR) is None
    assert ring.get(ring.keys[0].kid) is ring.keys[0]


def test_malformed_key_lists_refused():
    for bad in (b"", b"\x00", b"\x09", _b(V.KEYS_AB)[:-1], _b(V.KEYS_AB) + b"\x00"):
        try:
            sigverify.parse_keys(bad)
            raise AssertionError("accepted a bad key list")
        except ValueError:
            pass
