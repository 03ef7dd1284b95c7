# A whole firmware image (the MicroPython interpreter with the application
# frozen in) through the ESP32's own OTA partitions (esp32.Partition:
# get_next_update, set_boot, mark_app_valid_cancel_rollback), with the same
# trial-and-rollback rule as the application slots (otaboot). The updater
# (ykt.ota.updater) hands it downloads whose envelope kind is K_FIRMWARE;
# this is how boards without PSRAM, which run frozen code, get full updates.
#
# 1. ImageWriter streams a signed envelope (ykt.sec.signed, kind K_FIRMWARE,
#    version = ota.ver_int, key usage U_RELEASES) straight into the OTA
#    partition that is not running, one 4096-byte block at a time (bounded RAM;
#    nothing there boots until set_boot). The payload must start with the ESP
#    image magic 0xE9 and fit the partition (else OSError).
# 2. finish() checks the signature over everything that was written, then
#    set_boot() and records app/fw.json {"v": version, "part": label}: the
#    bootloader starts the image once as "pending".
# 3. At the next boot otaboot sees app/fw.json: if the running partition is
#    that label it runs the image's own application under the self-check
#    within TRIAL_MS and only then calls mark_app_valid_cancel_rollback(); a
#    failed check, a hang (watchdog) or a crash before Python runs resets while
#    the image is still pending, and the ESP-IDF bootloader goes back to the
#    previous image, which otaboot records as a rollback of that version.
# The Partition class is passed in (board layer); this module imports no esp32.
import json

from ykt.compat import const
from ykt.fs import join as _join, replace_file
from ykt.sec import signed
from ykt.sec import sigverify
from ykt.sec.signed import K_FIRMWARE

_BLOCK = const(4096)
_ESP_MAGIC = const(0xE9)


def record_path(root):
    return _join(root, "app/fw.json")


class _PartSink:
    """signed.Reader sink: payload bytes into the partition, block by block."""

    def __init__(self, part):
        self.part = part
        self.size = part.info()[3]
        self.buf = bytearray(_BLOCK)
        self.n = 0
        self.blk = 0
        self.total = 0

    def write(self, mv):
        i = 0
        ln = len(mv)
        if self.total == 0 and ln and mv[0] != _ESP_MAGIC:
            raise OSError(22, "not an ESP32 app image")
        if self.total + ln > self.size:
            raise OSError(27, "image larger than the partition")
        while i < ln:
            take = min(_BLOCK - self.n, ln - i)
            self.buf[self.n:self.n + take] = mv[i:i + take]
            self.n += take
            i += take
            if self.n == _BLOCK:
                self._flush()
        self.total += ln

    def _flush(self):
        if self.n:
            if self.n < _BLOCK:
                for k in range(self.n, _BLOCK):
                    self.buf[k] = 0xFF
            self.part.writeblocks(self.blk, self.buf)   # erases the block first
            self.blk += 1
            self.n = 0


class ImageWriter:
    """feed(chunk) as the image arrives (any transport), then finish(root)."""

    def __init__(self, part_cls, keyring, have_version, device_id=0):
        self.part_cls = part_cls
        running = part_cls(part_cls.RUNNING)
        self.target = running.get_next_update()
        self.sink = _PartSink(self.target)
        self.reader = signed.Reader(sigverify.UsageKeys(keyring, sigverify.U_RELEASES), (K_FIRMWARE,), have_version,
                                    self.sink.size, device_id, self.sink)

    def feed(self, mv):
        self.reader.feed(mv)

    def finish(self, root=""):
        """Verify, then make the image boot next (once, on trial). -> label."""
        hdr = self.reader.finish()   # raises signed.SignedError: never set_boot
        self.sink._flush()
        if self.sink.total == 0:
            raise OSError(22, "empty image")
        label = self.target.info()[4]
        import os

        try:
            os.mkdir(_join(root, "app"))
        except OSError:
            pass
        replace_file(record_path(root), json.dumps({"v": hdr.version, "part": label}).encode())
        self.target.set_boot()
        return label


def pending(root):
    """The image record left by finish(), or None."""
    try:
        with open(record_path(root)) as f:
            d = json.loads(f.read(256))
        return d if "part" in d else None
    except (OSError, ValueError):
        return None
