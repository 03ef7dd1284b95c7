"""Release public keys: devices must trust the offline release key (usage
U_RELEASES) to accept OTA bundles. The operator registers its public half
here (`ykt backoffice keys add-release --pub release.pub.pem`); it rides in the
signed keys file every device syncs and in the keyring given at provisioning.
The private key never reaches the back office (it signs bundles offline:
`ykt release build --key ...`)."""
from ykt_tools.backoffice.auth import audit
from ykt_tools.backoffice.errors import OpError
from ykt_tools.backoffice.keys import RELEASE_ROW, active_key, load_public, publish_keys, store, stored

MAX_RELEASE_KEYS = 2   # a rotation overlap; the keyring is bounded on the device


def add_release_key(eng, pem, actor="cli"):
    """Trust a release public key (PEM, or a private PEM whose public half is
    taken); republishes the signed keys file. -> new keys-file version."""
    from cryptography.hazmat.primitives import serialization

    data = pem if isinstance(pem, bytes) else pem.encode()
    if b"PRIVATE KEY" in data:
        raise OpError("give the public key (ykt release keygen writes it beside the private one)", 422)
    pub = load_public(data)
    text = pub.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with eng.begin() as c:
        keys = stored(c, RELEASE_ROW)
        if text in keys:
            raise OpError("release key already trusted", 409)
        keys = (keys + [text])[-MAX_RELEASE_KEYS:]
        store(c, RELEASE_ROW, keys)
        audit(c, actor, "keys.add_release", "keys:release", count=len(keys))
        return publish_keys(c, active_key(c), actor)
