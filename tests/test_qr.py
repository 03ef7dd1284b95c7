"""e-SSC QR on the host: hypothesis fuzz of the scanner's line reader and of
the token parser/verifier (the firmware code, under CPython), the `ykt qr`
CLI (mint, render with segno, show/verify), and the back office: QR key in
the devices' keys file, issuing, reuse across devices, settlement with card
taps of the same person. The same firmware runs on MicroPython in
tests/fw/t_qr*.py."""
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import conftest  # noqa: F401

os.environ.setdefault("YKT_RSA_BITS", "2048")

import t_qr_kit as K  # noqa: E402
from ykt import cardread as CR, taprec as T  # noqa: E402
from ykt.qr import qrscan
from ykt.qr import qrtoken as Q
from ykt.sec import sigverify

FUZZ = int(os.environ.get("YKT_FUZZ_EXAMPLES", "300"))
QR_REASONS = {T.R_QR_EXPIRED, T.R_QR_NOT_YET_VALID, T.R_QR_BAD_SIGNATURE, T.R_QR_REPLAY, T.R_QR_MALFORMED,
              T.R_QR_UNKNOWN_KEY, T.R_NO_TRUSTED_TIME}
_GOOD = []


def _good_token():
    if not _GOOD:
        _GOOD.append(K.mint())
    return _GOOD[0]


def _good():
    return K.text(_good_token())


# --- fuzz: the line reader --------------------------------------------------------------------

def _drain(qr, u, cr, limit=10000):
    reads = []
    for _ in range(limit):
        if not u.any() and qr._pos >= qr._len:
            break
        if qr.poll(cr):
            assert cr.kind == CR.KIND_QR
            assert cr.qr_reason == 0 or cr.qr_reason in QR_REASONS
            reads.append(cr.qr_reason)
        assert qr.n <= len(qr.line)
    else:
        raise AssertionError("poll does not make progress")
    return reads


@pytest.mark.fuzz
@settings(max_examples=FUZZ, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=0, max_size=300), max_size=12), st.integers(1, 200),
       st.sampled_from([b"\r\n", b"\r", b"\n", b"\t"]), st.integers(8, 900))
def test_fuzz_line_reader_bounded(chunks, chunk, term, max_line):
    u = K.UART()
    qr = qrscan.QRScanner(u, Q.Verifier(K.ring(), K.Clock()), term=term, max_line=max_line, chunk=chunk)
    cr = CR.CardRead()
    reads = []
    for c in chunks:
        u.feed(c)
        reads += _drain(qr, u, cr)
    s = qr.stats()
    assert len(reads) <= s["lines"]
    assert all(r != 0 for r in reads)            # random bytes never make a valid code
    assert s["lines"] == len(reads) + s["noise"] + s["ignored"]


@pytest.mark.fuzz
@settings(max_examples=FUZZ, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.integers(1, 200), st.booleans())
def test_fuzz_good_code_after_garbage_line(garbage, chunk, crlf):
    """Whatever came before, a code on its own line is read exactly once."""
    u = K.UART()
    v = Q.Verifier(K.ring(), K.Clock())
    qr = qrscan.QRScanner(u, v, chunk=chunk)
    cr = CR.CardRead()
    u.feed(garbage + b"\n" + _good())
    u.feed(b"\r\n" if crlf else b"\r")
    reads = _drain(qr, u, cr)
    assert reads[-1] == 0 and reads.count(0) == 1
    assert bytes(cr.qr_token) == K.HOLDER


# --- fuzz: the token parser --------------------------------------------------------------------

@pytest.mark.fuzz
@settings(max_examples=FUZZ, deadline=None)
@given(st.binary(max_size=900))
def test_fuzz_parser_random_text(text):
    v = Q.Verifier(K.ring(), K.Clock())
    cr = CR.CardRead()
    r = v.verify_text(text, len(text), cr)
    assert r in QR_REASONS and cr.qr_reason == r and cr.kind == CR.KIND_QR


@pytest.mark.fuzz
@settings(max_examples=FUZZ, deadline=None)
@given(st.data())
def test_fuzz_parser_mutated_token(data):
    good = bytearray(_good())
    op = data.draw(st.sampled_from(["flip", "cut", "insert", "b45char"]))
    t = bytearray(good)
    if op == "flip":
        i = data.draw(st.integers(0, len(t) - 1))
        t[i] ^= data.draw(st.integers(1, 255))
    elif op == "cut":
        i = data.draw(st.integers(0, len(t) - 1))
        j = data.draw(st.integers(i + 1, len(t)))
        del t[i:j]
    elif op == "insert":
        i = data.draw(st.integers(0, len(t)))
        t[i:i] = data.draw(st.binary(min_size=1, max_size=40))
    else:
        i = data.draw(st.integers(3, len(t) - 1))
        t[i] = data.draw(st.sampled_from(list(Q._B45)))
    v = Q.Verifier(K.ring(), K.Clock())
    cr = CR.CardRead()
    r = v.verify_text(bytes(t), len(t), cr)
    if bytes(t) == bytes(good):
        assert r == 0
    else:
        assert r in QR_REASONS, r
    # a binary token mutated then re-encoded: only the original verifies
    tok = bytearray(_good_token())
    i = data.draw(st.integers(0, len(tok) - 1))
    tok[i] ^= 1 << data.draw(st.integers(0, 7))
    txt = Q.to_text(bytes(tok))
    assert Q.Verifier(K.ring(), K.Clock()).verify_text(txt, len(txt), cr) in (
        T.R_QR_BAD_SIGNATURE, T.R_QR_MALFORMED, T.R_QR_UNKNOWN_KEY)


# --- the CLI -----------------------------------------------------------------------------------

def _cli(capsys, *argv):
    from ykt_tools.cli import main as cli
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_keygen_issue_png_show(tmp_path, capsys):
    kp, kb, png = str(tmp_path / "qr.pem"), str(tmp_path / "keys.bin"), str(tmp_path / "q.png")
    rc, out, _ = _cli(capsys, "qr", "keygen", "-o", kp, "--keys-out", kb)
    assert rc == 0 and len(json.loads(out)["kid"]) == 16
    assert oct(os.stat(kp).st_mode & 0o777) == "0o600"
    ring = sigverify.parse_keys(open(kb, "rb").read())
    assert ring.keys[0].usage == sigverify.U_QR
    rc, out, _ = _cli(capsys, "qr", "issue", "--key", kp, "--token", "1122334455667788", "--category", "3",
                      "--valid", "30", "--iat", "1795700000", "--png", png, "--json")
    d = json.loads(out)
    assert rc == 0 and d["token_bytes"] == 292 and d["category"] == 3 and d["valid_s"] == 30
    assert d["qr_version"] == 13 and d["qr_mode"] == "alphanumeric" and d["qr_error"] == "M"
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    rc, out, _ = _cli(capsys, "qr", "show", d["text"], "--keys", kb, "--now", "1795700010")
    assert rc == 0 and json.loads(out)["verdict"] == "ok"
    rc, out, _ = _cli(capsys, "qr", "show", d["text"], "--keys", kb, "--now", "1795700100")
    assert rc == 1 and json.loads(out)["verdict"] == "R_QR_EXPIRED"
    rc, out, err = _cli(capsys, "qr", "issue", "--key", kp, "--token", "1122", "--valid", "30")
    assert rc == 2 and "16 hex digits" in err
    rc, out, err = _cli(capsys, "qr", "issue", "--key", kp, "--token", "1122334455667788", "--valid", "61")
    assert rc == 2 and "1..60" in err
    rc, out, err = _cli(capsys, "qr", "show", "HELLO")
    assert rc == 2 and "prefix" in err


# --- the back office --------------------------------------------------------------------------

@pytest.fixture
def eng(tmp_path):
    from ykt_tools.backoffice import api, testing
    with testing.temp_db("sqlite", tmp_path) as url:
        e = api.engine(url)
        e.url_str = url
        yield e


def _ingest(eng, rows):
    from ykt_tools.backoffice import ingest
    ing = ingest.Ingestor(eng)
    try:
        by = {}
        for r in rows:
            by.setdefault(r[0], []).append(r)
        for dev, rs in by.items():
            rs.sort(key=lambda r: r[1])
            assert ing.submit_sync(dev, os.urandom(8), rs).status == ingest.OK
    finally:
        ing.close()


def _tap(dev, seq, tok, t, fare=200, flags=0, outcome=0, reason=0, entry=301):
    from ykt_tools.backoffice.db import service_day
    return (dev, seq, service_day(t), t, bytes.fromhex(tok), outcome, reason, fare, 0, flags, entry, 1, 1, 0, 1,
            8, 1, 0, t)


def test_backoffice_qr_key_provisioned_issue_verifies(eng, capsys):
    from ykt.sec import signed as ksigned
    from ykt_tools.build import qr
    from ykt_tools.backoffice import api, ops, qrissue
    d = api.provision_device(eng, "gate-1", kind="gate", entry=5101)
    ring = sigverify.parse_keys(d["keyring"])
    qk = [k for k in ring.keys if k.usage == sigverify.U_QR]
    assert len(qk) == 1 and len(ring.keys) == 2
    h, payload = ksigned.verify_blob(d["keys_file"], ring, (ksigned.K_KEYS,), 0, 8192, d["id"])
    assert payload == d["keyring"]                      # the synced keys file lists the QR key too
    t0 = 1795700000
    tok = "00112233445566aa"
    ops.set_entitlement(eng, tok, T.C_ELDERLY_FREE, 2)
    iss = qrissue.issue(eng, tok, region=450100, valid_s=30, iat=t0)
    assert iss["token_bytes"] == 292 and iss["expires"] == t0 + 30
    r, cr = qr.verify(iss["text"], ring, t0 + 5)
    assert r == 0 and bytes(cr.qr_token).hex() == tok and cr.qr_ent == (T.C_ELDERLY_FREE << 8) | 2
    # the download key does not verify QR codes: a ring without the QR key refuses
    only_dl = sigverify.Keyring()
    only_dl.add([k for k in ring.keys if k.usage == sigverify.U_DOWNLOADS][0])
    assert qr.verify(iss["text"], only_dl, t0 + 5)[0] == T.R_QR_UNKNOWN_KEY
    # second device: same QR key, no new key
    kid = qrissue.ensure_qr_key(eng)
    d2 = api.provision_device(eng, "gate-2", kind="gate", entry=5101)
    assert sigverify.parse_keys(d2["keyring"]).get(bytes.fromhex(kid), sigverify.U_QR) is not None
    # lost card: no code
    api.set_card_status(eng, "lost", token=tok)
    with pytest.raises(ops.OpError) as e:
        qrissue.issue(eng, tok)
    assert e.value.status == 403
    # CLI plays the app against the back office
    rc, out, _ = _cli(capsys, "qr", "issue", "--db", eng.url_str, "--token", "0011223344556677", "--json")
    assert rc == 0 and json.loads(out)["kid"] == kid


def test_backoffice_qr_key_rotation(eng):
    from ykt_tools.backoffice import ops, qrissue
    from ykt_tools.build import qr
    ops.ensure_signing_key(eng)
    k1 = qrissue.ensure_qr_key(eng)
    old = qrissue.issue(eng, "0011223344556677", iat=1795700000)
    r = qrissue.rotate_qr_key(eng)
    assert r["kid"] != k1
    ring = sigverify.parse_keys(_keys_payload(eng))
    assert qr.verify(old["text"], ring, 1795700005)[0] == 0        # old codes still verify
    assert qrissue.issue(eng, "0011223344556677")["kid"] == r["kid"]
    qrissue.retire_qr_keys(eng)
    ring = sigverify.parse_keys(_keys_payload(eng))
    assert qr.verify(old["text"], ring, 1795700005)[0] == T.R_QR_UNKNOWN_KEY
    assert len([k for k in ring.keys if k.usage == sigverify.U_QR]) == 1


def _keys_payload(eng):
    from sqlalchemy import select
    from ykt_tools.backoffice import schema as S
    with eng.connect() as c:
        r = c.execute(select(S.files.c.doc).where(S.files.c.kind == "keys")
                      .order_by(S.files.c.version.desc()).limit(1)).first()
    return bytes.fromhex(r.doc)


def test_backoffice_flags_code_used_on_two_devices(eng):
    from ykt_tools.backoffice import ops, qrcheck
    from ykt_tools.backoffice.db import service_day
    d1, d2, d3 = (ops.register_device(eng, "gate-%d" % i, "gate", 5101)["id"] for i in range(3))
    t0 = 1795660000
    X, Y, Z = "aa" * 8, "bb" * 8, "cc" * 8
    rows = [_tap(d1, 1, X, t0, flags=T.F_QR), _tap(d2, 1, X, t0 + 20, flags=T.F_QR),      # screenshot
            _tap(d2, 2, X, t0 + 25, outcome=T.OUT_DENY, reason=T.R_QR_REPLAY, flags=T.F_QR, fare=0),
            _tap(d3, 1, X, t0 + 10),                                                  # card tap: not QR
            _tap(d1, 2, Y, t0, flags=T.F_QR), _tap(d2, 3, Y, t0 + 500, flags=T.F_QR),   # later: fine
            _tap(d1, 3, Z, t0, flags=T.F_QR), _tap(d1, 4, Z, t0 + 30, flags=T.F_QR)]    # same device
    _ingest(eng, rows)
    f = qrcheck.flag_reuse(eng, service_day(t0))
    assert [(x["token"], x["device_a"], x["device_b"], x["dt"], x["replays"]) for x in f] == [(X, d1, d2, 20, 1)]
    assert qrcheck.flag_reuse(eng, service_day(t0), spread_s=600)[-1]["token"] == Y


def test_backoffice_settles_qr_with_card_taps(eng):
    from ykt_tools import ROOT
    from ykt_tools.build import fares as fares_compile
    from ykt_tools.backoffice import ops, settle
    from ykt_tools.backoffice.db import service_day
    ops.ensure_signing_key(eng)
    with open(os.path.join(ROOT, "data", "fares", "bus_nanning_301.txt")) as f:
        # transfers between route 301's own buses allowed here (excluded by default)
        ops.publish_file(eng, "fares", fares_compile.compile_fares(
            f.read().replace("transfer 60m free", "transfer 60m free same_route", 1)))
    d1 = ops.register_device(eng, "bus-a", "validator", 301)["id"]
    d2 = ops.register_device(eng, "bus-b", "validator", 301)["id"]
    t0 = 1795660000
    A = "ab" * 8
    _ingest(eng, [_tap(d1, 1, A, t0, 200),                                  # physical card
                  _tap(d2, 1, A, t0 + 1800, 200, flags=T.F_QR)])           # e-SSC QR, same person
    day = service_day(t0)
    r = settle.settle_day(eng, day)
    assert r["cards"] == 1 and r["taps"] == 2
    assert settle.settlements(eng, day) == [{"token": A, "taps": 2, "provisional": 400, "amount": 200}]
    assert [(c["device"], c["rule"]) for c in settle.charges(eng, day, A)] == [
        (d1, "provisional"), (d2, "transfer")]


def test_backoffice_accepts_codes_of_an_issuer_key_it_is_given(eng, tmp_path, capsys):
    """Production: the national e-SSC platform signs ride codes; the back
    office is given its public key and the fleet trusts it through the keys
    file. The back office's own key is a test issuer. A rotation trusts both
    platform keys, then retires the old one."""
    from cryptography.hazmat.primitives import serialization
    from ykt_tools.build import qr
    from ykt_tools.backoffice import api, keys, ops, qrissue
    from ykt_tools.backoffice.errors import OpError
    from ykt_tools.cli.main import main

    def pem(k):
        return k.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)

    def ring():
        """What a device trusts after its next sync: the keys file's payload."""
        from ykt_tools.build import signing
        with eng.connect() as c:
            return sigverify.parse_keys(signing.keys_payload(keys.trusted_entries(c)))

    api.provision_device(eng, "gate-1", kind="gate", entry=5101)      # the test issuer's key exists
    platform, platform2 = qr.new_key(2048), qr.new_key(2048)          # play the national platform
    t0 = 1795700000
    code = qr.to_text(qr.mint(platform, "00112233445566aa", 0, 0, 450100, 30, t0))
    assert qr.verify(code, ring(), t0 + 5)[0] == T.R_QR_UNKNOWN_KEY
    r = qrissue.add_issuer(eng, "national e-SSC platform", pem(platform), actor="t")
    assert qr.verify(code, ring(), t0 + 5)[0] == 0                    # accepted once the key is given
    iss = qrissue.issuers(eng)
    assert [(x["issuer"], x["test"]) for x in iss] == [(qrissue.TEST_ISSUER, True),
                                                       ("national e-SSC platform", False)]
    assert r["kid"] == iss[1]["kid"]
    with pytest.raises(OpError) as e:
        qrissue.add_issuer(eng, "again", pem(platform))
    assert e.value.status == 409
    with pytest.raises(OpError) as e:
        qrissue.add_issuer(eng, "too big", pem(qr.new_key(3072)))
    assert e.value.status == 422
    # the platform rotates: both trusted, then the old one retired
    qrissue.add_issuer(eng, "national e-SSC platform (2027)", pem(platform2))
    code2 = qr.to_text(qr.mint(platform2, "00112233445566aa", 0, 0, 450100, 30, t0))
    assert qr.verify(code, ring(), t0 + 5)[0] == 0 and qr.verify(code2, ring(), t0 + 5)[0] == 0
    with pytest.raises(OpError):
        qrissue.add_issuer(eng, "a third", pem(qr.new_key(2048)))      # a rotation overlap at most
    qrissue.retire_issuer(eng, r["kid"])
    assert qr.verify(code, ring(), t0 + 5)[0] == T.R_QR_UNKNOWN_KEY and qr.verify(code2, ring(), t0 + 5)[0] == 0
    # the back office's own codes still verify (tests, demos) and rotating its
    # own key keeps the given issuer
    own = qrissue.issue(eng, "00112233445566aa", iat=t0)
    assert qr.verify(own["text"], ring(), t0 + 5)[0] == 0
    qrissue.rotate_qr_key(eng)
    assert qr.verify(code2, ring(), t0 + 5)[0] == 0
    # the CLI: `ykt qr issue` says it is a test issuer
    kp = tmp_path / "qr.pem"
    assert main(["qr", "keygen", "-o", str(kp)]) == 0
    capsys.readouterr()
    assert main(["qr", "issue", "--key", str(kp), "--token", "00112233445566aa", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "TEST ISSUER" in err and '"issuer": "test"' in out
    pp = tmp_path / "platform.pem"
    pp.write_bytes(pem(qr.new_key(2048)))
    assert main(["backoffice", "qr-issuer", "list", "--db", eng.url_str]) == 0
    assert main(["backoffice", "qr-issuer", "add", "--db", eng.url_str, "--name", "p", "--pub", str(pp)]) == 0
    pp.write_bytes(pem(qr.new_key(2048)))
    assert main(["backoffice", "qr-issuer", "add", "--db", eng.url_str, "--name", "q", "--pub", str(pp)]) == 2  # two at most
    assert ops.trusted_keys_payload(eng) is not None
