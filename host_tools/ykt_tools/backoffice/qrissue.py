"""QR signing keys and token issuing (e-SSC, docs/qr.md).

Who issues ride codes: in production the electronic social security card is
issued by the national platform (the e-SSC service of the Ministry of Human
Resources and Social Security; the draft regulation's Art. 8 rules out
parallel codes), which signs the codes; this back office is GIVEN the
platform's public issuer key (add_issuer) and publishes it to the fleet in
the keys file, so devices accept the platform's codes offline. issue() signs
with the back office's own key and is a TEST issuer: tests, demos and the
simulated day (`ykt qr issue` says so).

Devices trust QR public keys through the keys file: keys.publish_keys lists
keys.qr_public_entries() after the download keys, so a QR key never verifies
downloads and a download key never verifies QR codes (sigverify usages).

Keys live in the settings table (row keys.QR_ROW: JSON list of
{"pem", "state": active|retiring}), like the token key: no schema change.
Rotation: rotate_qr_key() makes a new active key and keeps the old one
trusted until retire_qr_keys() (after every device has the new keys file
and the last old token has expired, i.e. > 60 s)."""
import os

from sqlalchemy import select

from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.auth import audit
from ykt_tools.backoffice.db import is_sqlite, now, service_day
from ykt_tools.backoffice.errors import OpError
from ykt_tools.backoffice.keys import QR_ROW, active_key, load_key, publish_keys, store, stored
from ykt_tools.backoffice.ops import parse_token

MAX_QR_KEYS = 2
MAX_ISSUER_KEYS = 2          # given issuer keys trusted at once: a rotation overlap (devices hold 8 keys in all)
TEST_ISSUER = "back office (TEST issuer)"


def _new_pem(bits):
    from cryptography.hazmat.primitives import serialization
    from ykt_tools.build import qr
    k = qr.new_key(bits)
    return k, k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()


def _lock(eng, c):
    if not is_sqlite(eng):
        c.exec_driver_sql("SELECT pg_advisory_xact_lock(7956086)")


def ensure_qr_key(eng, bits=2048, actor="system"):
    """Create the QR key (and publish a keys file listing it) if there is none.
    -> kid hex of the active QR key."""
    from ykt_tools.build import signing
    with eng.begin() as c:
        _lock(eng, c)
        keys = stored(c, QR_ROW)
        act = [k for k in keys if k["state"] == "active" and "pem" in k]
        if act:
            return signing.keyid_hex(load_key(act[-1]["pem"].encode()))
        k, pem = _new_pem(bits)
        keys.append({"pem": pem, "state": "active"})
        store(c, QR_ROW, keys)
        audit(c, actor, "qr.keys.init", "qr_keys", kid=signing.keyid_hex(k))
        publish_keys(c, active_key(c), actor)
    return signing.keyid_hex(k)


def rotate_qr_key(eng, bits=2048, actor="cli"):
    from ykt_tools.build import signing
    with eng.begin() as c:
        _lock(eng, c)
        allk = stored(c, QR_ROW)
        given = [k for k in allk if "public" in k]
        keys = [k for k in allk if "pem" in k and k["state"] == "active"]
        for k in keys:
            k["state"] = "retiring"
        nk, pem = _new_pem(bits)
        keys.append({"pem": pem, "state": "active"})
        if len(keys) > MAX_QR_KEYS:
            raise OpError("retire the previous QR key first")
        store(c, QR_ROW, given + keys)
        v = publish_keys(c, active_key(c), actor)
        audit(c, actor, "qr.keys.rotate", "qr_keys", kid=signing.keyid_hex(nk), keys_version=v)
    return {"kid": signing.keyid_hex(nk), "keys_version": v}


def retire_qr_keys(eng, actor="cli"):
    with eng.begin() as c:
        _lock(eng, c)
        keys = stored(c, QR_ROW)
        left = [k for k in keys if k["state"] == "active" or "public" in k]
        store(c, QR_ROW, left)
        v = publish_keys(c, active_key(c), actor)
        audit(c, actor, "qr.keys.retire", "qr_keys", retired=len(keys) - len(left), keys_version=v)
    return {"retired": len(keys) - len(left), "keys_version": v}


def add_issuer(eng, name, public_pem, actor="cli"):
    """Trust an e-SSC issuer's public key (production: the national
    platform's; during its rotation both keys are trusted). Devices accept
    its codes after their next sync of the keys file. -> {"kid", "keys_version"}"""
    from ykt_tools.build import signing
    from ykt_tools.backoffice.keys import load_public
    if not name or len(name) > 64:
        raise OpError("issuer name 1..64 characters")
    pem = public_pem.decode() if isinstance(public_pem, bytes) else public_pem
    k = load_public(pem)
    if k.key_size != 2048:
        raise OpError("e-SSC issuer keys are RSA-2048 (the code must fit a QR symbol, docs/qr.md)", 422)
    kid = signing.keyid_hex(k)
    with eng.begin() as c:
        _lock(eng, c)
        keys = stored(c, QR_ROW)
        if any(_kid(x) == kid for x in keys):
            raise OpError("issuer key %s is trusted already" % kid, 409)
        if len([x for x in keys if "public" in x]) >= MAX_ISSUER_KEYS:
            raise OpError("retire an issuer key first (at most %d)" % MAX_ISSUER_KEYS, 409)
        keys.append({"public": pem, "issuer": name, "state": "active"})
        store(c, QR_ROW, keys)
        v = publish_keys(c, active_key(c), actor)
        audit(c, actor, "qr.issuer.add", "qr_keys", kid=kid, issuer=name, keys_version=v)
    return {"kid": kid, "issuer": name, "keys_version": v}


def retire_issuer(eng, kid, actor="cli"):
    """Stop trusting a given issuer key (after the platform's rotation, once
    its last code has expired). -> {"kid", "keys_version"}"""
    with eng.begin() as c:
        _lock(eng, c)
        keys = stored(c, QR_ROW)
        left = [x for x in keys if not ("public" in x and _kid(x) == kid)]
        if len(left) == len(keys):
            raise OpError("no given issuer key %s" % kid, 404)
        store(c, QR_ROW, left)
        v = publish_keys(c, active_key(c), actor)
        audit(c, actor, "qr.issuer.retire", "qr_keys", kid=kid, keys_version=v)
    return {"kid": kid, "keys_version": v}


def issuers(eng):
    """The trusted e-SSC issuer keys: [{"kid", "issuer", "state", "test"}]."""
    with eng.connect() as c:
        return [{"kid": _kid(k), "issuer": k.get("issuer", TEST_ISSUER), "state": k["state"],
                 "test": "public" not in k} for k in stored(c, QR_ROW)]


def _kid(k):
    from ykt_tools.build import signing
    from ykt_tools.backoffice.keys import qr_public
    return signing.keyid_hex(qr_public(k))


def _signer(c):
    act = [k for k in stored(c, QR_ROW) if k["state"] == "active" and "pem" in k]
    if not act:
        raise OpError("no QR key: call qrissue.ensure_qr_key", 503)
    return load_key(act[-1]["pem"].encode())


def issue(eng, token, category=None, ent_flags=None, region=0, valid_s=30, iat=None):
    """Sign a token for the holder of card `token` (hex or 8 bytes).
    A card on the deny list (lost, suspended, cancelled, replaced) gets none.
    category/ent_flags default to the holder's entitlement in force today.
    -> {"text", "token_bytes", "kid", "iat", "expires", "nonce"}."""
    from ykt_tools.build import qr
    from ykt_tools.build import signing
    tok = parse_token(token) if isinstance(token, str) else bytes(token)
    if len(tok) != 8:
        raise OpError("token must be 8 bytes")
    if not 1 <= int(valid_s) <= 60:
        raise OpError("validity 1..60 s")
    t = now() if iat is None else int(iat)
    with eng.connect() as c:
        st = c.execute(select(S.card_status.c.status).where(S.card_status.c.token == tok)).first()
        if st is not None and st.status != "restored":
            raise OpError("card %s is %s: no QR code" % (tok.hex(), st.status), 403)
        if category is None or ent_flags is None:
            e = c.execute(select(S.entitlements).where(S.entitlements.c.token == tok)).first()
            day = service_day(t)
            if e is not None and e.valid_from <= day <= e.valid_to:
                category = e.concession if category is None else category
                ent_flags = e.flags if ent_flags is None else ent_flags
        key = _signer(c)
    nonce = os.urandom(8)
    body = qr.mint(key, tok, category or 0, ent_flags or 0, region, int(valid_s), t, nonce)
    return {"text": qr.to_text(body), "token_bytes": len(body), "kid": signing.keyid_hex(key),
            "iat": t, "expires": t + int(valid_s), "nonce": nonce.hex()}
