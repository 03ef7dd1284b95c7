"""`ykt release` bundles: built from the real firmware with mpy-cross, signed
with a release key, inspected like a device would; the technician's USB
install (release.install_over_usb) lets the device verify and stage it."""
import contextlib
import io
import json
import os
import sys

import pytest

import conftest  # noqa: F401
from conftest import ROOT

from ykt_tools.cli import main as cli  # noqa: E402
from ykt_tools.build import release
from ykt_tools.build import signing
from ykt.ota import updater as ota  # noqa: E402
from ykt.sec import sigverify

sys.path.insert(0, os.path.join(ROOT, "tests", "fw"))
import t_ota_kit as K  # noqa: E402


@pytest.fixture(scope="module")
def keys():
    return signing.generate_key(2048), signing.generate_key(2048)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, keys):
    p = str(tmp_path_factory.mktemp("rel") / "ykt-0.2.0.ykb")
    rep = release.build_bundle("0.2.0", p, keys[0], min_interp="1.22", boards=["bus_validator", "turnstile"])
    return p, rep


def test_bundle_holds_the_compiled_package_only(bundle, keys):
    p, rep = bundle
    ring = release.release_keyring([keys[0]])
    info = release.inspect_bundle(p, ring, board="turnstile")
    names = [dp for dp, _ in info["files"]]
    assert "ykt/app.mpy" in names and "ykt/ota/updater.mpy" in names and "ykt/ui/glyphdata.mpy" in names
    assert all(n.startswith("ykt/") for n in names)           # main.py, otaboot.py stay outside the slots
    assert not any(n.endswith(".py") for n in names)
    assert info["version"] == "0.2.0" and info["min_interp"] == 12200
    assert info["boards"] == ["bus_validator", "turnstile"] and rep["bytes"] == os.path.getsize(p)
    app = dict(info["files"])["ykt/app.mpy"]
    assert app[:1] == b"M"                                     # an .mpy file
    with pytest.raises(release.ReleaseError, match="wrong_board"):
        release.inspect_bundle(p, ring, board="ferry_validator")


def test_tampered_or_foreign_bundle_refused(bundle, keys, tmp_path):
    p, _ = bundle
    blob = bytearray(open(p, "rb").read())
    blob[200] ^= 0x40
    bad = tmp_path / "bad.ykb"
    bad.write_bytes(bytes(blob))
    with pytest.raises(release.ReleaseError, match="bad_signature"):
        release.inspect_bundle(str(bad), release.release_keyring([keys[0]]))
    with pytest.raises(release.ReleaseError, match="foreign_key"):
        release.inspect_bundle(p, release.release_keyring([keys[1]]))
    # a download key (deny lists, fares) cannot sign releases
    ring = signing.device_keyring([keys[0]])                  # usage U_DOWNLOADS only
    with pytest.raises(release.ReleaseError, match="foreign_key"):
        release.inspect_bundle(p, ring)
    with pytest.raises(release.ReleaseError, match="rollback"):
        release.inspect_bundle(p, release.release_keyring([keys[0]]), running="0.2.0")


def test_cli_keygen_build_inspect(tmp_path):
    def run(*argv):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = cli.main(list(argv))
        return rc, out.getvalue()

    pem = str(tmp_path / "release.pem")
    rc, out = run("release", "keygen", "--out", pem, "--bits", "2048")
    assert rc == 0 and "release key" in out and oct(os.stat(pem).st_mode & 0o777) == "0o600"
    b = str(tmp_path / "x.ykb")
    rc, out = run("release", "build", "--version", "1.4.2", "--out", b, "--key", pem, "--json")
    assert rc == 0, out
    rep = json.loads(out)
    assert rep["version"] == "1.4.2" and rep["files"] > 30 and rep["boards"] == []
    rc, out = run("release", "inspect", b, "--key", pem, "--json")
    assert rc == 0 and json.loads(out)["verified"] is True
    rc, out = run("release", "build", "--version", "1.4", "--out", b, "--key", pem, "--boards", "a b")
    assert rc == 0
    rc, _ = run("release", "build", "--version", "v2", "--out", b, "--key", pem)
    assert rc == 2


def test_cli_build_and_inspect_a_firmware_image(tmp_path, keys):
    def run(*argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main(list(argv))
        return rc, out.getvalue() + err.getvalue()

    pem = str(tmp_path / "release.pem")
    signing.save_private(keys[0], pem)
    img = tmp_path / "firmware.bin"
    img.write_bytes(K.esp_image(20000, chip=9))
    out = str(tmp_path / "fw-0.3.0.ykb")
    rc, text = run("release", "build", "--image", str(img), "--version", "0.3.0", "--out", out, "--key", pem,
                   "--json")
    assert rc == 0, text
    rep = json.loads(text)
    assert rep["kind"] == "image" and rep["version"] == "0.3.0" and rep["chip"] == "esp32s3"
    assert rep["payload"] == 20000 and rep["bytes"] == os.path.getsize(out)
    rc, text = run("release", "inspect", out, "--key", pem, "--json")
    info = json.loads(text)
    assert rc == 0 and info["kind"] == "image" and info["verified"] is True and info["version"] == "0.3.0"
    import hashlib
    assert info["sha256"] == hashlib.sha256(img.read_bytes()).hexdigest() and info["chip_id"] == 9
    # the envelope is the device's: kind K_FIRMWARE, version ver_int, payload = the image
    from ykt.sec import signed
    blob = open(out, "rb").read()
    h = signed.parse_header(blob)
    assert h.kind == ota.K_FIRMWARE and h.version == ota.ver_int("0.3.0")
    assert blob[signed.HDR_SIZE:signed.HDR_SIZE + h.length] == img.read_bytes()
    rc, text = run("release", "inspect", out)
    assert rc == 0 and "firmware image version 0.3.0 for esp32s3" in text and "NOT checked" in text
    bad = bytearray(blob)
    bad[500] ^= 1
    (tmp_path / "bad.ykb").write_bytes(bytes(bad))
    rc, text = run("release", "inspect", str(tmp_path / "bad.ykb"), "--key", pem)
    assert rc == 1 and "bad_signature" in text
    rc, text = run("release", "build", "--image", str(img), "--version", "0.3.0", "--out", out, "--key", pem,
                   "--boards", "turnstile")
    assert rc == 2 and "--boards does not apply" in text
    (tmp_path / "notimg.bin").write_bytes(b"\x00" * 100)
    rc, text = run("release", "build", "--image", str(tmp_path / "notimg.bin"), "--version", "0.3.0",
                   "--out", out, "--key", pem)
    assert rc == 2 and "not an ESP32 app image" in text


class LocalDevice:
    """devconn.Device's interface (exec, write, mkdirs, soft_reset) on a folder
    standing for the device's flash; exec runs the code like the raw REPL
    does (cwd = flash, firmware on the path)."""

    def __init__(self, root):
        self.root = root
        self.resets = 0

    def mkdirs(self, path):
        os.makedirs(os.path.join(self.root, path), exist_ok=True)

    def write(self, path, data):
        with open(os.path.join(self.root, path), "wb") as f:
            f.write(data)

    def exec(self, code):
        out = io.StringIO()
        cwd = os.getcwd()
        os.chdir(self.root)
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, "<device>", "exec"), {})
        finally:
            os.chdir(cwd)
        return out.getvalue()

    def soft_reset(self):
        self.resets += 1


def _device(tmp_path, keys, usage):
    root = str(tmp_path / "flash")
    os.makedirs(root + "/data")
    with open(root + "/board.json", "w") as f:
        json.dump({"name": "turnstile"}, f)
    with open(root + "/data/keys.bin", "wb") as f:
        f.write(signing.keys_payload([(keys[0], usage)]))
    return LocalDevice(root)


def test_install_over_usb_is_verified_by_the_device(bundle, keys, tmp_path):
    import otaboot

    p, _ = bundle
    dev = _device(tmp_path, keys, sigverify.U_DOWNLOADS | sigverify.U_RELEASES)
    res = release.install_over_usb(dev, p)
    assert res["ok"] and res["version"] == "0.2.0" and dev.resets == 1
    st = otaboot.status(dev.root)
    assert st["pending"] == "0.2.0"
    assert os.path.exists(dev.root + "/app/a/ykt/app.mpy")
    assert not os.path.exists(dev.root + "/ota/usb.ykb")


def test_install_over_usb_refused_without_a_release_key(bundle, keys, tmp_path):
    p, _ = bundle
    dev = _device(tmp_path, keys, sigverify.U_DOWNLOADS)
    with pytest.raises(release.ReleaseError, match="foreign_key"):
        release.install_over_usb(dev, p)
    assert dev.resets == 0 and not os.path.exists(dev.root + "/app/a")


def test_a_full_size_image_fits_and_one_byte_more_is_refused(tmp_path, keys):
    # A frozen-firmware image is ~1.8 MiB, more than a bundle may be: the bound
    # for images is the boards' OTA app partition (0x1F0000, boards/*.json).
    pem = str(tmp_path / "release.pem")
    signing.save_private(keys[0], pem)
    img = tmp_path / "firmware.bin"
    out = str(tmp_path / "fw.ykb")
    for size, ok in ((1900 * 1024, True), (ota.MAX_IMAGE + 1, False)):
        img.write_bytes(K.esp_image(size, chip=0))
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = cli.main(["release", "build", "--image", str(img), "--version", "0.3.0", "--out", out,
                           "--key", pem])
        assert (rc == 0) == ok, err.getvalue()
        if ok:
            with contextlib.redirect_stdout(io.StringIO()) as o:
                assert cli.main(["release", "inspect", out, "--key", pem, "--json"]) == 0
            assert json.loads(o.getvalue())["verified"] is True
        else:
            assert "OTA app partition holds at most" in err.getvalue()
    with open(os.path.join(ROOT, "boards", "turnstile.json")) as f:
        parts = {p["name"]: p for p in json.load(f)["partitions"]}
    assert int(parts["ota_0"]["size"], 16) == ota.MAX_IMAGE, "MAX_IMAGE follows the board layouts"
