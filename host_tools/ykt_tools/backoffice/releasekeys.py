"""Release public keys: devices must trust the offline release key (usage
U_RELEASES) to accept OTA bundles. The operator registers its public half
here (`ykt backoffice keys add-release --pub release.pub.pem`); it rides in the
signed keys file every device syncs and in the keyring given at provisioning.
The private key never reaches the back office (it signs bundles offline:
`ykt release build --key ...`)."""
import json

from sqlalchemy import delete, select

from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.auth import audit
from ykt_tools.backoffice.ops import OpError, _active_key, _publish_keys

_ROW = "release_keys"
MAX_RELEASE_KEYS = 2   # a rotation overlap; the keyring is bounded on the device


def _read(c):
    r = c.execute(select(S.settings.c.v).where(S.settings.c.k == _ROW)).first()
    return json.loads(bytes(r.v)) if r else []


def _load_public(pem):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        k = serialization.load_pem_public_key(pem if isinstance(pem, bytes) else pem.encode())
    except ValueError as e:
        raise OpError("not a PEM public key: %s" % e, 422)
    if not isinstance(k, rsa.RSAPublicKey) or k.key_size not in (2048, 3072, 4096):
        raise OpError("release keys are RSA 2048/3072/4096", 422)
    return k


def release_public_entries(c):
    """[(public key, U_RELEASES)] for the keys file."""
    from ykt.sec import sigverify

    return [(_load_public(p), sigverify.U_RELEASES) for p in _read(c)]


def add_release_key(eng, pem, actor="cli"):
    """Trust a release public key (PEM, or a private PEM whose public half is
    taken); republishes the signed keys file. -> new keys-file version."""
    from cryptography.hazmat.primitives import serialization

    data = pem if isinstance(pem, bytes) else pem.encode()
    if b"PRIVATE KEY" in data:
        raise OpError("give the public key (ykt release keygen writes it beside the private one)", 422)
    pub = _load_public(data)
    text = pub.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with eng.begin() as c:
        keys = _read(c)
        if text in keys:
            raise OpError("release key already trusted", 409)
        keys = (keys + [text])[-MAX_RELEASE_KEYS:]
        c.execute(delete(S.settings).where(S.settings.c.k == _ROW))
        c.execute(S.settings.insert().values(k=_ROW, v=json.dumps(keys).encode()))
        audit(c, actor, "keys.add_release", "keys:release", count=len(keys))
        return _publish_keys(c, _active_key(c), actor)
