"""The keyring: the back office's signing keys, the public keys devices also
trust (QR keys: qrissue; offline release keys: releasekeys) and the signed
keys file (K_KEYS) that lists them all. Whoever changes the keyring (ops:
signing-key rotation; qrissue; releasekeys) republishes with publish_keys(),
which reads every kind of key from here, so this module imports none of them.

QR and release keys live in settings rows as JSON lists (no schema change):
QR_ROW holds the e-SSC issuer keys devices trust for ride codes: the back
office's own TEST issuer [{"pem": private PEM, "state": "active"|"retiring"}]
(tests and demos: qrissue.issue signs with it) and the keys of issuers it is
given [{"public": PEM, "issuer": name, "state": "active"}] (production: the
national platform's, which signs the codes; qrissue.add_issuer).
RELEASE_ROW holds [public PEM]."""
import json

from sqlalchemy import delete, func, select

from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.auth import audit
from ykt_tools.backoffice.db import now
from ykt_tools.backoffice.errors import OpError

QR_ROW = "qr_keys"
RELEASE_ROW = "release_keys"

_key_cache = {}   # PEM -> key: parsing a 3072-bit PEM on every signed download is slow


def load_key(pem):
    """Private key from PEM bytes (cached)."""
    k = _key_cache.get(pem)
    if k is None:
        from cryptography.hazmat.primitives import serialization
        k = serialization.load_pem_private_key(pem, password=None)
        _key_cache[pem] = k
    return k


def load_public(pem):
    """A release public key from PEM (str or bytes); OpError 422 unless RSA 2048/3072/4096."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        k = serialization.load_pem_public_key(pem if isinstance(pem, bytes) else pem.encode())
    except ValueError as e:
        raise OpError("not a PEM public key: %s" % e, 422)
    if not isinstance(k, rsa.RSAPublicKey) or k.key_size not in (2048, 3072, 4096):
        raise OpError("release keys are RSA 2048/3072/4096", 422)
    return k


def active_key(c):
    """The signing key that signs every download now; OpError 503 if none yet."""
    r = c.execute(select(S.signing_keys.c.private).where(S.signing_keys.c.state == "active")
                  .order_by(S.signing_keys.c.id.desc()).limit(1)).first()
    if r is None:
        raise OpError("no signing key: run `ykt backoffice keys init`", 503)
    return load_key(bytes(r.private))


def signing_keys(c):
    """The signing keys devices trust (active and retiring), oldest first."""
    return [load_key(bytes(r.private)) for r in
            c.execute(select(S.signing_keys.c.private).where(S.signing_keys.c.state != "retired")
                      .order_by(S.signing_keys.c.id))]


def stored(c, row):
    """The JSON list kept in settings row `row` (QR_ROW, RELEASE_ROW); [] if none."""
    r = c.execute(select(S.settings.c.v).where(S.settings.c.k == row)).first()
    return json.loads(bytes(r.v)) if r else []


def store(c, row, keys):
    c.execute(delete(S.settings).where(S.settings.c.k == row))
    c.execute(S.settings.insert().values(k=row, v=json.dumps(keys).encode()))


def qr_public(k):
    """The public key of a QR_ROW entry (own test issuer or a given issuer)."""
    if "public" in k:
        from cryptography.hazmat.primitives import serialization
        return serialization.load_pem_public_key(k["public"].encode())
    return load_key(k["pem"].encode()).public_key()


def qr_public_entries(c):
    """[(public key, U_QR)] of the trusted QR keys."""
    from ykt.sec import sigverify
    return [(qr_public(k), sigverify.U_QR) for k in stored(c, QR_ROW)]


def release_public_entries(c):
    """[(public key, U_RELEASES)] of the trusted release keys."""
    from ykt.sec import sigverify
    return [(load_public(p), sigverify.U_RELEASES) for p in stored(c, RELEASE_ROW)]


def trusted_entries(c):
    """Everything a device trusts, as signing.keys_payload() takes it: the
    signing keys (usage U_DOWNLOADS) then the QR and release keys with their
    usages, so a QR key never verifies downloads and the reverse. The keys
    file lists exactly these."""
    return signing_keys(c) + qr_public_entries(c) + release_public_entries(c)


def publish_keys(c, signer, actor):
    """Publish the next keys file listing trusted_entries(), signed by
    `signer` (a key devices already trust). -> its version."""
    from ykt_tools.build import signing as sg
    last = c.execute(select(func.coalesce(func.max(S.files.c.version), 0))
                     .where(S.files.c.kind == "keys")).scalar_one()
    sk = signing_keys(c)
    payload = sg.keys_payload(sk + qr_public_entries(c) + release_public_entries(c))
    body = sg.sign_file(signer, "keys", last + 1, payload, created=now())
    c.execute(S.files.insert().values(kind="keys", ident=0, version=last + 1, created=now(), actor=actor,
                                      doc=payload.hex(), body=body))
    audit(c, actor, "publish.keys", "keys:0", version=last + 1, kids=[sg.keyid_hex(k) for k in sk])
    return last + 1
