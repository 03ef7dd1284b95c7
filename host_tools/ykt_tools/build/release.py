"""Releases for over-the-air updates (docs/operations.md): build, inspect, and
the technician's USB install. Two kinds, both a ykt.sec.signed envelope signed
with a release key (RSA, ykt_tools.build.signing) whose public record carries
sigverify.U_RELEASES; devices hold only public keys:
- an application bundle (kind ota.K_RELEASE, `.ykb`): the compiled ykt
  package for an A/B slot. The format's constants are the firmware's
  (ykt.ota.updater, whose Installer is the device's parser); its host half,
  building and reading a payload, is yktsrv.bundle;
- a firmware image (kind ota.K_FIRMWARE): a whole ESP32 app image
  (MicroPython with the application frozen in), written by the device into
  its next OTA partition (ykt.ota.image) - how boards without PSRAM, which
  run frozen code, get full updates.
The device's updater dispatches on the envelope's kind; so does inspect_release."""
import hashlib
import json
import os
import tempfile

from ykt_tools.build import signing  # puts firmware/ and the simulator on sys.path
from ykt_tools.build import shiplist as firmware_files

from ykt.ota import updater as ota  # noqa: E402
from ykt.sec import signed
from ykt.sec import sigverify
from yktsrv import bundle

DEFAULT_MIN_INTERP = "1.22"
ESP_IMAGE_MAGIC = 0xE9
# esp_image_header_t.chip_id (offset 12, u16) of the chips the boards use
CHIPS = {0: "esp32", 2: "esp32s2", 5: "esp32c3", 9: "esp32s3"}


class ReleaseError(Exception):
    pass


def interp_version(s):
    """'1.22' / '1.22.2' -> ota.interp_int."""
    p = [int(x) for x in s.split(".")]
    if not 2 <= len(p) <= 3 or any(not 0 <= x < 100 for x in p):
        raise ReleaseError("interpreter version must look like 1.22 or 1.22.2")
    return ota.interp_int(tuple(p) + (0,) * (3 - len(p)))


def slot_files(built):
    """The ship list's application package goes into a slot: main.py and
    otaboot.py stay outside the A/B slots (they choose the slot)."""
    app = set(firmware_files.app_paths(dp for dp, _ in built))
    return sorted((dp, path) for dp, path in built if dp in app)


def payload(version, files, min_interp=DEFAULT_MIN_INTERP, boards=()):
    """files: [(slot path, bytes)] -> the bundle payload bytes."""
    try:
        return bundle.payload(version, files, interp_version(min_interp), boards)
    except bundle.BundleError as e:
        raise ReleaseError("%s %s" % (e.code, e.args[1])) from e


def build_bundle(version, out, key, min_interp=DEFAULT_MIN_INTERP, boards=(), march="xtensawin",
                 files=None, created=None):
    """Compile the firmware (mpy-cross) and write the signed bundle to `out`.
    key: a release private key (signing.load_private). -> summary dict."""
    v = _version(version)
    for b in boards:
        if not b or len(b) > 64:
            raise ReleaseError("bad board name %r" % b)
    if files is None:
        with tempfile.TemporaryDirectory(prefix="ykt-release-") as d:
            built = slot_files(firmware_files.compile_all(d, march=march))
            files = []
            for dp, path in built:
                with open(path, "rb") as f:
                    files.append((dp, f.read()))
    body = payload(version, files, min_interp, boards)
    import time

    blob = signing.sign_file(key, ota.K_RELEASE, v, body, created=int(time.time()) if created is None else created)
    _write(out, blob)
    return {"kind": "bundle", "version": version, "files": len(files), "bytes": len(blob), "payload": len(body),
            "min_interp": min_interp, "boards": list(boards), "key": signing.keyid_hex(key)}


def _version(version):
    try:
        return ota.ver_int(version)
    except ValueError as e:
        raise ReleaseError("version %r: use MAJOR.MINOR.PATCH, each 0..999" % version) from e


def _write(out, blob):
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, out)


def image_info(data):
    """What an ESP32 app image's header says (refuses anything else)."""
    if len(data) < 24 or data[0] != ESP_IMAGE_MAGIC:
        raise ReleaseError("not an ESP32 app image (first byte 0x%02x, want 0xe9)" % (data[0] if data else 0))
    chip = int.from_bytes(data[12:14], "little")
    return {"segments": data[1], "chip_id": chip, "chip": CHIPS.get(chip, "unknown")}


def build_image(version, image, out, key, created=None):
    """Sign a firmware image file (e.g. MicroPython's firmware.bin with the
    application frozen in) as a K_FIRMWARE envelope at `version` (the version
    of the application frozen into it: devices compare it with what they run).
    -> summary dict."""
    v = _version(version)
    with open(image, "rb") as f:
        data = f.read()
    info = image_info(data)
    if len(data) > ota.MAX_IMAGE:
        raise ReleaseError("image of %d bytes: an OTA app partition holds at most %d" % (len(data), ota.MAX_IMAGE))
    import time

    blob = signing.sign_file(key, ota.K_FIRMWARE, v, data, created=int(time.time()) if created is None else created)
    _write(out, blob)
    return {"kind": "image", "version": version, "bytes": len(blob), "payload": len(data),
            "chip": info["chip"], "sha256": hashlib.sha256(data).hexdigest(), "key": signing.keyid_hex(key)}


def release_keyring(keys):
    """Public keys (or private keys) -> a device-like keyring trusting them for releases."""
    ring = sigverify.Keyring()
    for k in keys:
        ring.add(sigverify.PublicKey(signing.modulus_bytes(k), 65537, sigverify.U_RELEASES))
    return ring


def _verify(blob, kind, keyring, running):
    if keyring is not None:
        try:
            signed.verify_blob(blob, sigverify.UsageKeys(keyring, sigverify.U_RELEASES), (kind,),
                               ota.ver_int(running) if running else 0,
                               ota.MAX_IMAGE if kind == ota.K_FIRMWARE else ota.MAX_BUNDLE)
        except signed.SignedError as e:
            raise ReleaseError("refused: %s %s" % (e.code, e.msg)) from e


def _header(blob):
    try:
        return signed.parse_header(blob)
    except signed.SignedError as e:
        raise ReleaseError("not a signed release: %s" % e.code) from e


def inspect_release(path, keyring=None, board=None, running=None, interp=None):
    """A bundle or a firmware image, checked as a device would check it
    (signature when a keyring is given) -> dict with "kind" ("bundle" or
    "image"), version, bytes, kid, created and the kind's own fields."""
    with open(path, "rb") as f:
        blob = f.read()
    h = _header(blob)
    if h.kind == ota.K_FIRMWARE:
        return inspect_image(path, keyring, running)
    return inspect_bundle(path, keyring, board, running, interp)


def inspect_image(path, keyring=None, running=None):
    with open(path, "rb") as f:
        blob = f.read()
    h = _header(blob)
    if h.kind != ota.K_FIRMWARE:
        raise ReleaseError("not a firmware image (kind %d)" % h.kind)
    _verify(blob, ota.K_FIRMWARE, keyring, running)
    p = blob[signed.HDR_SIZE:signed.HDR_SIZE + h.length]
    if len(p) != h.length:
        raise ReleaseError("refused: truncated")
    info = image_info(p)
    v = h.version
    return {"kind": "image", "version": "%d.%d.%d" % (v // 1000000, v // 1000 % 1000, v % 1000),
            "bytes": len(blob), "payload": len(p), "chip": info["chip"], "chip_id": info["chip_id"],
            "sha256": hashlib.sha256(p).hexdigest(), "kid": h.kid.hex(), "created": h.created,
            "boards": [], "min_interp": 0}


def inspect_bundle(path, keyring=None, board=None, running=None, interp=None):
    """Check a bundle as a device would (signature when a keyring is given,
    manifest always). -> dict with version, files, boards, min_interp, kid."""
    with open(path, "rb") as f:
        blob = f.read()
    h = _header(blob)
    if h.kind != ota.K_RELEASE:
        raise ReleaseError("not a release bundle (kind %d)" % h.kind)
    _verify(blob, ota.K_RELEASE, keyring, running)
    p = blob[signed.HDR_SIZE:signed.HDR_SIZE + h.length]
    if len(p) != h.length:
        raise ReleaseError("refused: truncated")
    try:
        b = bundle.parse(p)
        if ota.ver_int(b["version"]) != h.version:
            raise bundle.BundleError("version_mismatch", b["version"])
    except (bundle.BundleError, ValueError) as e:
        raise ReleaseError("refused: %s" % (e.code if isinstance(e, bundle.BundleError) else "bad_manifest")) from e
    vs, boards, files, mi = b["version"], b["boards"], b["files"], b["min_interp"]
    if board is not None and boards and board not in boards:
        raise ReleaseError("refused: wrong_board (bundle is for %s)" % ", ".join(boards))
    if interp is not None and interp < mi:
        raise ReleaseError("refused: interpreter_too_old")
    return {"kind": "bundle", "version": vs, "files": files, "boards": boards, "min_interp": mi,
            "kid": h.kid.hex(), "bytes": len(blob), "created": h.created}


# --- technician install over USB -------------------------------------------------

_DEVICE_INSTALL = """
import json, sys
from ykt.ota import updater as ota
from ykt.sec import sigverify
with open('data/keys.bin', 'rb') as f:
    ring = sigverify.parse_keys(f.read())
with open('board.json') as f:
    board = json.loads(f.read())['name']
iv = ota.interp_int(sys.implementation.version) if sys.implementation.name == 'micropython' else None
print(json.dumps(ota.install_file(%r, ring, '', board, iv)))
"""


def install_over_usb(transport, bundle_path, reset=True, device_path="ota/usb.ykb"):
    """`ykt deploy --bundle FILE`: copy the bundle to the device and let the
    device verify and install it with ITS OWN trusted keys and checks (the
    same code path as an OTA download: ykt.ota.updater.install_file), then soft-reset
    so otaboot runs it on trial. transport: an open devconn.Device (exec,
    write, mkdirs, soft_reset). -> {"ok", "version", "err"}. Raises
    ReleaseError when the device refuses."""
    info = inspect_bundle(bundle_path)              # cheap local sanity check first
    with open(bundle_path, "rb") as f:
        blob = f.read()
    transport.mkdirs(device_path.rsplit("/", 1)[0])
    transport.write(device_path, blob)
    out = transport.exec(_DEVICE_INSTALL % device_path).strip().splitlines()
    try:
        res = json.loads(out[-1])
    except (IndexError, ValueError) as e:
        raise ReleaseError("device did not answer the install: %r" % out[-3:]) from e
    if not res.get("ok"):
        raise ReleaseError("device refused bundle %s: %s" % (info["version"], ", ".join(res.get("err") or ["?"])))
    if reset:
        transport.soft_reset()
    return res
