# Interpreter-image updates through the ESP32 OTA partitions (esp32.Partition
# fakes): a signed image goes to the partition that is not running, boots once
# as pending, and is marked valid only after otaboot's self-check; an image
# that fails the check or never gets to Python is rolled back by the
# bootloader, and otaboot reports it. Unsigned or download-key images never
# get set to boot.
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
    b = bytearray(n)
    b[0] = 0xE9
    for i in range(1, n):
        b[i] = (i * 7) & 0xFF
    return bytes(b)


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
        assert s["rolled_back"] == ["image 1023000", "image not confirmed: bootloader went back"], s
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
        assert otaboot.status(dev.root)["rolled_back"][0] == "image 1023000"
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
