"""The release public key reaches devices: registered in the back office, it
rides in the signed keys file and in the keyring given at provisioning with
the releases usage only, so a download key still cannot sign a bundle."""
import subprocess
import sys
import os

import pytest

import conftest  # noqa: F401
from conftest import ROOT


def test_release_key_in_keys_file_and_provisioning_keyring(tmp_path):
    from ykt.sec import sigverify
    from ykt_tools.build import signing
    from ykt_tools.backoffice import api, ops, releasekeys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "host_tools"), os.path.join(ROOT, "firmware")]))
    priv = tmp_path / "rel.pem"
    p = subprocess.run([sys.executable, "-m", "ykt_tools", "release", "keygen", "--out", str(priv), "--bits", "2048"],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert p.returncode == 0, p.stderr
    pub = tmp_path / "rel.pub.pem"
    url = "sqlite:///" + str(tmp_path / "bo.db")
    eng = api.engine(url)
    ops.ensure_signing_key(eng)
    with pytest.raises(ops.OpError):
        releasekeys.add_release_key(eng, priv.read_bytes())        # the private key never goes there
    p = subprocess.run([sys.executable, "-m", "ykt_tools", "backoffice", "keys", "add-release", "--pub", str(pub),
                        "--db", url], capture_output=True, text=True, cwd=ROOT, env=env)
    assert p.returncode == 0, p.stderr
    kid = signing.key_id(signing.load_private(str(priv)))
    reg = api.provision_device(url, "gate-1", kind="gate", entry=4001)
    from ykt.sec import signed

    ver, body = ops.latest_file(eng, "keys")
    h = signed.parse_header(body)
    keys_file_payload = body[signed.HDR_SIZE:signed.HDR_SIZE + h.length]
    for payload in (reg["keyring"], keys_file_payload):
        ring = sigverify.parse_keys(payload)
        assert ring.get(kid, sigverify.U_RELEASES) is not None
        assert ring.get(kid, sigverify.U_DOWNLOADS) is None
    with pytest.raises(ops.OpError):
        releasekeys.add_release_key(eng, pub.read_bytes())        # already trusted
