# Firmware-image updates through the ESP32 OTA partitions (esp32.Partition
# fakes): a signed image goes to the partition that is not running, boots once
# as pending, and is marked valid only after otaboot's self-check; an image
# that fails the check or never gets to Python is rolled back by the
# bootloader, and otaboot reports it. Unsigned or download-key images never
# get set to boot. The background updater takes an image like a release:
# offer, resumable download, then the envelope's kind sends it to the image
# writer (a board without OTA partitions refuses it).
import vclock
import otaboot
import esp32
from ykt.ota import updater as ota
from ykt.ota import image as otafw
from ykt.sec import signed
import t_ota_kit as K


def setup():
    vclock.reset()


def _image(n=5000):
    return K.esp_image(n)


def _write(dev, blob, have=ota.ver_int("1.22.0")):
    w = otafw.ImageWriter(esp32.Partition, K.keyring(), have, K.DEV)
    for i in range(0, len(blob), 700):            # arrives in network-sized chunks
        w.feed(memoryview(blob)[i:i + 700])
    return w.finish(dev.root)


def _running():
    return esp32.Partition(esp32.Partition.RUNNING).info()[4]


def test_good_image_confirmed_after_selfcheck():
    dev = K.Device()
    try:
        dev.boot()
        img = _image()
        lab = _write(dev, K.envelope(otafw.K_FIRMWARE, ota.ver_int("1.23.0"), img))
        assert lab == "ota_1" and _running() == "ota_0"
        buf = bytearray(len(img))
        esp32.Partition("ota_1").readblocks(0, buf)
        assert bytes(buf) == img
        dev.reboot("hard")
        chip = dev.w.chip
        assert _running() == "ota_1" and chip.ota_state["ota_1"] == "valid", chip.ota_state
        assert otafw.pending(dev.root) is None and dev.takes_taps()
        s = otaboot.status(dev.root)           # its frozen application is the active one now
        assert (s["active"], s["version"], s["pending"]) == ("f", "1.23.0", ""), s
        dev.reboot("hard")                       # stays on the confirmed image
        assert _running() == "ota_1"
    finally:
        dev.close()


def test_image_failing_selfcheck_rolled_back_by_bootloader():
    dev = K.Device()
    try:
        dev.boot()
        _write(dev, K.envelope(otafw.K_FIRMWARE, ota.ver_int("1.23.0"), _image()))
        dev.reboot_chip("hard")
        from vhw import bus

        bus.detach_uart(dev.w.board["reader"].get("id", 1))   # the new image cannot reach the reader
        dev.boot("hard")
        assert dev.resets == ["hard"], (dev.resets, dev.log)
        assert _running() == "ota_0" and dev.w.chip.ota_state["ota_1"] == "aborted"
        s = otaboot.status(dev.root)
        assert s["rolled_back"] == ["1.23.0", "image not confirmed: bootloader went back"], s
    finally:
        dev.close()


def test_image_that_never_reaches_python_rolled_back():
    dev = K.Device()
    try:
        dev.boot()
        _write(dev, K.envelope(otafw.K_FIRMWARE, ota.ver_int("1.23.0"), _image()))
        dev.reboot_chip("hard")                  # boots ota_1 pending ...
        assert _running() == "ota_1"
        dev.reboot_chip("wdt")                   # ... and crashes before main.py
        app = dev.boot("wdt")
        assert _running() == "ota_0" and otafw.pending(dev.root) is None
        assert otaboot.status(dev.root)["rolled_back"][0] == "1.23.0"
        assert dev.takes_taps()
    finally:
        dev.close()


def test_unsigned_or_download_key_image_never_boots():
    dev = K.Device()
    try:
        dev.boot()
        bad = bytearray(K.envelope(otafw.K_FIRMWARE, ota.ver_int("1.23.0"), _image()))
        bad[100] ^= 1
        for blob, code in ((bad, "bad_signature"),
                           (K.envelope(otafw.K_FIRMWARE, ota.ver_int("1.23.0"), _image(), "dl"), "foreign_key"),
                           (K.envelope(otafw.K_FIRMWARE, ota.ver_int("1.21.0"), _image()), "rollback"),
                           (K.envelope(ota.K_RELEASE, ota.ver_int("1.23.0"), _image()), "wrong_kind")):
            try:
                _write(dev, blob)
                raise AssertionError("accepted")
            except signed.SignedError as e:
                assert e.code == code, (e.code, code)
        assert dev.w.chip.ota_boot == "ota_0" and otafw.pending(dev.root) is None
    finally:
        dev.close()


def _factory_only():
    # the bus board as it was on a 4 MB module: one factory app, no otadata
    import json

    with open("boards/bus_validator.json") as f:
        b = json.loads(f.read())
    b["flash_mb"] = 4
    b["partitions"] = [
        {"name": "nvs", "type": "data", "subtype": "nvs", "offset": "0x9000", "size": "0x6000"},
        {"name": "phy_init", "type": "data", "subtype": "phy", "offset": "0xf000", "size": "0x1000"},
        {"name": "factory", "type": "app", "subtype": "factory", "offset": "0x10000", "size": "0x1f0000"},
        {"name": "dlist_a", "type": "data", "subtype": "0x40", "offset": "0x200000", "size": "0x20000"},
        {"name": "dlist_b", "type": "data", "subtype": "0x40", "offset": "0x220000", "size": "0x20000"},
        {"name": "vfs", "type": "data", "subtype": "fat", "offset": "0x240000", "size": "0x1c0000"}]
    path = K.scratch("factory_only.json")
    with open(path, "w") as f:
        f.write(json.dumps(b))
    return path


def test_board_layer_offers_the_partitions_only_with_ota_slots():
    from vhw.world import World
    from ykt import boardcfg
    from ykt.board import Board

    for board, has in (("turnstile", True), ("bus_validator", True), (_factory_only(), False)):
        w = World(board)
        b = Board(boardcfg.load(w.path("board.json")))
        assert (b.ota_partitions() is esp32.Partition) == has, board


def _image_update(dev, blob, part=esp32.Partition, version="0.2.0"):
    path = K.scratch("img.ykb")
    with open(path, "wb") as f:
        f.write(blob)
    http = K.FileHttp(path, version)
    http.cut_at = len(blob) // 2                 # the link drops once: the download resumes
    up = dev.updater(http, running_package=True, interval_s=60, part=part)
    up.request_now()
    st = K.drive(up, dev.app)
    if st == ota.IDLE and up.errors and up.errors[-1].startswith("download"):
        up.request_now()
        st = K.drive(up, dev.app)
    return up, st


def test_updater_installs_an_image_and_the_trial_confirms_it():
    # the PSRAM-less board (turnstile: frozen firmware, 8 MB flash): a full
    # firmware update through the same offer/download path as a release
    dev = K.Device("turnstile")
    try:
        dev.boot()
        img = _image(9000)
        up, st = _image_update(dev, K.envelope(ota.K_FIRMWARE, ota.ver_int("0.2.0"), img))
        assert st == ota.READY and up.reboot_wanted and up.image == "ota_1", up.errors
        assert len(up.errors) == 1 and up.errors[0].startswith("download cut at "), up.errors   # resumed
        buf = bytearray(len(img))
        esp32.Partition("ota_1").readblocks(0, buf)
        assert bytes(buf) == img and dev.w.chip.ota_boot == "ota_1"
        assert otafw.pending(dev.root) == {"v": ota.ver_int("0.2.0"), "part": "ota_1"}
        assert _running() == "ota_0"                 # nothing runs before the reset
        up = None
        dev.reboot("hard")                           # the app's idle reset
        assert _running() == "ota_1" and dev.w.chip.ota_state["ota_1"] == "valid", dev.log
        s = otaboot.status(dev.root)
        assert s["version"] == "0.2.0" and s["rolled_back"] is None, s
        assert dev.takes_taps()
        up = dev.updater(K.FileHttp(None))
        assert up.running == "0.2.0"                 # the next offer is asked from 0.2.0
    finally:
        dev.close()


def test_updater_refuses_a_bad_image_and_nothing_boots():
    dev = K.Device("turnstile")
    try:
        dev.boot()
        bad = bytearray(K.envelope(ota.K_FIRMWARE, ota.ver_int("0.2.0"), _image(6000)))
        bad[3000] ^= 1
        up, st = _image_update(dev, bytes(bad))
        assert st == ota.IDLE and not up.reboot_wanted and up.errors[-1] == "refused bad_signature", up.errors
        assert dev.w.chip.ota_boot == "ota_0" and otafw.pending(dev.root) is None
        # not an ESP app image (signed all the same): refused before set_boot
        blob = K.envelope(ota.K_FIRMWARE, ota.ver_int("0.2.1"), b"\x00" * 5000)
        up, st = _image_update(dev, blob, version="0.2.1")
        assert up.errors[-1] == "refused image not an ESP32 app image", up.errors
        # a device without OTA partitions (part=None) takes no image at all
        blob = K.envelope(ota.K_FIRMWARE, ota.ver_int("0.2.2"), _image(5000))
        up, st = _image_update(dev, blob, part=None, version="0.2.2")
        assert up.errors[-1] == "refused wrong_kind", up.errors
        assert dev.w.chip.ota_boot == "ota_0"
        up = None
        dev.reboot("hard")
        assert _running() == "ota_0" and otaboot.status(dev.root)["version"] == "" and dev.takes_taps()
    finally:
        dev.close()
