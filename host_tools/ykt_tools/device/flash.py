"""`ykt flash`: erase the chip and write the stock MicroPython image with
esptool's Python API (esptool 5.x: esptool.cmds.detect_chip / run_stub /
erase_flash / write_flash / reset_chip), then deploy and provision.

`ykt flash --image`: the same for a full custom image (boards/esp32/*, the
firmware frozen in; docs/images.md): a merged image (the build's firmware.bin,
or `esptool merge_bin`) or the ESP-IDF build folder (boot loader, partition
table, app). Refused before touching the board: no boot loader or app image
for the board's chip (esptool's own image parser), a boot loader built for
another flash size, an image larger than the flash or an app larger than its
partition, and a partition table (ESP-IDF binary format) that differs from
the board file's "partitions".

What is tested without a chip: the plan (chip, offset, arguments, image
checks), the error mapping (ERRORS: esptool's messages -> what the
technician does), and the real esptool path up to the point where a chip
must answer (a port that does not exist, a serial port with no ESP32 boot
loader behind it). Writing flash needs a real board."""
import hashlib
import os
import re
import struct
import sys

# Where the stock MicroPython image goes (micropython.org/download, "Firmware"
# section: ESP32 images include the 2nd-stage boot loader at 0x1000; S3/C3 at 0).
OFFSETS = {"esp32": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0, "esp32s2": 0x1000}
IMAGE_MAGIC = 0xE9          # esp_image_header_t.magic
# ESP-IDF's partition table (components/partition_table): at 0x8000
# (CONFIG_PARTITION_TABLE_OFFSET, boards/esp32/*/sdkconfig.board), 32-byte
# entries "<2sBBII16sI" (magic AA 50, type, subtype, offset, size, label,
# flags), then an MD5 entry (EB EB, 14 x FF, md5 of the entries), at most 0xC00.
TABLE_OFFSET = 0x8000
TABLE_MAX = 0xC00
_ENTRY = struct.Struct("<2sBBII16sI")
# An ESP-IDF build folder, as idf.py / the port's Makefile leave it.
BUILD_FILES = ("bootloader/bootloader.bin", "partition_table/partition-table.bin", "micropython.bin")


class FlashError(Exception):
    pass


# esptool's message (regex, case-insensitive) -> what to do. First match wins.
ERRORS = (
    (r"permission denied|errno 13|access is denied",
     "permission denied on {port}: add yourself to the dialout group (`sudo usermod -aG dialout $USER`, "
     "then log in again)"),
    (r"no such file|errno 2\b|filenotfound",
     "no serial port {port}: plug the board in (use a data USB cable, not a charge-only one) and check "
     "the name with `ls /dev/ttyUSB* /dev/ttyACM*`"),
    (r"busy|resource temporarily unavailable|could not exclusively lock|could not open",
     "{port} cannot be opened: close any other program using it (serial monitor, mpremote, another ykt) "
     "and check the cable"),
    (r"this chip is (\S+), not (\S+)",
     "wrong chip: the board has an {m1} but {m2} was asked for: check --board/--chip (the board file's mcu)"),
    (r"download mode successfully detected, but getting no sync reply",
     "the chip is in download mode but nothing it sends reaches the laptop: replug the USB cable, try "
     "another cable or port (the USB-serial chip's TX path is down)"),
    (r"failed to connect.*invalid head of packet",
     "the board answered with its normal output, not the boot loader: the chip did not enter download mode: "
     "hold BOOT (IO0), press and release EN/RST, release BOOT, then run ykt flash again"),
    (r"wrong boot mode detected",
     "the chip did not enter download mode: hold BOOT (IO0), press and release EN/RST, release BOOT, "
     "then run ykt flash again"),
    (r"failed to connect|no serial data received|timed out waiting for packet header",
     "no answer from the ESP32 boot loader on {port}: hold BOOT while pressing EN/RST to enter download "
     "mode; if it still fails, try --baud 115200 and another USB cable"),
    (r"invalid head of packet|corrupt|checksum|md5 of file does not match",
     "the serial link corrupted data: use a shorter/better USB cable or a lower --baud (115200)"),
    (r"file .* too big|exceeds|bigger than the flash",
     "the image does not fit this board's flash: download the image for this board"),
)


def explain(exc, port):
    """Map an esptool exception (or any error while flashing) to a sentence."""
    text = str(exc)
    for pat, msg in ERRORS:
        m = re.search(pat, text, re.IGNORECASE | re.DOTALL)
        if m:
            g = m.groups()
            return msg.format(port=port, m1=g[0] if g else "", m2=g[1] if len(g) > 1 else "")
    return "esptool failed: %s" % text.strip().splitlines()[0] if text.strip() else "esptool failed"


def check_image(path, chip):
    """Refuse what cannot be a MicroPython image for this chip before touching the board."""
    if not os.path.isfile(path):
        raise FlashError("firmware image %s not found: download the %s image from micropython.org/download"
                         % (path, chip.upper()))
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) < 16 or head[0] != IMAGE_MAGIC:
        raise FlashError("%s is not an ESP firmware image (first byte 0x%02x, expected 0xE9): use the .bin from "
                         "micropython.org/download, not a .uf2/.elf/.zip" % (path, head[0] if head else 0))
    if size > 4 * 1024 * 1024:
        raise FlashError("%s is %d bytes: too big for a 4 MB board" % (path, size))
    return size


def _board(board, chip):
    """(board file, board dict, chip) for a board name (validated); FlashError
    if --chip contradicts it."""
    import json

    from ykt_tools.device import deploy

    path = deploy.board_file(board)
    with open(path) as f:
        b = json.load(f)
    want = chip or b["mcu"]
    if want not in OFFSETS:
        raise FlashError("chip %r not supported: %s" % (want, ", ".join(sorted(OFFSETS))))
    if chip and chip != b["mcu"]:
        raise FlashError("--chip %s contradicts board %s (mcu %s)" % (chip, board, b["mcu"]))
    return path, b, want


def plan(port, baud, board, firmware, chip=None):
    """Everything the flash step will do, as data (tested without a chip).
    argv: the equivalent esptool command lines, for the docs and the log."""
    want = _board(board, chip)[2]
    size = check_image(firmware, want)
    off = OFFSETS[want]
    base = ["--chip", want, "--port", port, "--baud", str(baud)]
    return {"chip": want, "port": port, "baud": baud, "offset": off, "firmware": firmware, "size": size,
            "writes": [(off, firmware)],
            "argv": [base + ["erase-flash"], base + ["write-flash", "-z", "0x%x" % off, firmware]]}


def parse_table(data):
    """ESP-IDF binary partition table -> [(label, type, subtype, offset, size)]."""
    out = []
    md5 = hashlib.md5()
    for i in range(0, TABLE_MAX, _ENTRY.size):
        e = data[i:i + _ENTRY.size]
        if len(e) < _ENTRY.size:
            raise FlashError("partition table cut short at entry %d" % len(out))
        if e[:2] == b"\xaa\x50":
            _, ty, sub, off, size, label, _ = _ENTRY.unpack(e)
            out.append((label.split(b"\0")[0].decode("ascii", "replace"), ty, sub, off, size))
            md5.update(e)
        elif e[:2] == b"\xeb\xeb":
            if e[16:] != md5.digest():
                raise FlashError("partition table MD5 does not match its entries: the image is corrupt")
        elif e == b"\xff" * _ENTRY.size and out:
            return out
        else:
            raise FlashError("no partition table at 0x%x (found %s, expected the magic AA 50)"
                             % (TABLE_OFFSET + i, e[:2].hex(" ")))
    return out


def _part(p):
    return "%s (%s/0x%02x at 0x%x, 0x%x bytes)" % (p[0], {0: "app", 1: "data"}.get(p[1], p[1]), p[2], p[3], p[4])


def compare_table(image_table, board_table, src):
    """FlashError naming the first partition where the image and the board file differ."""
    for a, b in zip(image_table, board_table):
        if a != b:
            raise FlashError("the image's partition table differs from %s: %s in the image, %s in the board "
                             "file: build the image from this board file (docs/images.md)" % (src, _part(a), _part(b)))
    if len(image_table) != len(board_table):
        longer, shorter, where = ((image_table, board_table, "image") if len(image_table) > len(board_table)
                                  else (board_table, image_table, "board file"))
        raise FlashError("the image's partition table differs from %s: %s is only in the %s"
                         % (src, _part(longer[len(shorter)]), where))


def _esp_image(what, data, chip):
    """esptool's parser over an app or boot loader image -> the image; refuses another chip's."""
    from esptool.bin_image import LoadFirmwareImage
    from esptool.targets import CHIP_DEFS

    if not data or data[0] != IMAGE_MAGIC:
        raise FlashError("%s: no ESP image there (first byte 0x%02x, expected 0xE9)" % (what, data[0] if data else 0))
    try:
        img = LoadFirmwareImage(chip, data)
    except Exception as e:  # esptool's FatalError, struct errors on a cut file
        raise FlashError("%s: not a valid ESP image (%s)" % (what, str(e).strip().splitlines()[0] if str(e) else e))
    want = CHIP_DEFS[chip].IMAGE_CHIP_ID
    if img.chip_id != want:
        other = [d.CHIP_NAME for d in CHIP_DEFS.values() if getattr(d, "IMAGE_CHIP_ID", None) == img.chip_id]
        raise FlashError("%s is built for %s (chip id %d), the board has an %s" % (
            what, other[0] if other else "another chip", img.chip_id, CHIP_DEFS[chip].CHIP_NAME))
    return img


def _image_parts(path, chip, flash):
    """-> (files, their bytes, base): a build folder's three files (base None),
    or one merged image and the flash address its first byte goes to."""
    boot = OFFSETS[chip]
    if os.path.isdir(path):
        files = [os.path.join(path, f) for f in BUILD_FILES]
        for f in files:
            if not os.path.isfile(f):
                raise FlashError("%s is not an ESP-IDF build folder: %s missing" % (path, os.path.relpath(f, path)))
        blobs = []
        for f in files:
            with open(f, "rb") as fh:
                blobs.append(fh.read())
        return files, blobs, None
    if not os.path.isfile(path):
        raise FlashError("image %s not found: build it (docs/images.md) and give its firmware.bin or build folder"
                         % path)
    with open(path, "rb") as f:
        data = f.read()
    # A merged image starts at flash 0 (esptool merge_bin's default) or at the
    # boot loader (the port's firmware.bin); on an S3 both are 0.
    for base in (0, boot):
        at = boot - base
        tab = TABLE_OFFSET - base
        if data[at:at + 1] == bytes([IMAGE_MAGIC]) and data[tab:tab + 2] == b"\xaa\x50":
            break
    else:
        raise FlashError("%s is not a full image: no boot loader (0xE9) at 0x%x with a partition table (AA 50) at "
                         "0x8000: give the build's merged firmware.bin (or `esptool merge_bin`) or its build folder; "
                         "a bare app image goes with --firmware" % (path, boot))
    if base + len(data) > flash:
        raise FlashError("%s is %d bytes from 0x%x: larger than the board's %d MB flash"
                         % (path, len(data), base, flash >> 20))
    return [path], [data], base


def plan_image(port, baud, board, image, chip=None):
    """Everything `ykt flash --image` will do, as data, after every check."""
    from ykt_tools import FIRMWARE, ROOT

    path, b, want = _board(board, chip)
    src = os.path.relpath(path, ROOT)
    sys.path.insert(0, FIRMWARE)
    try:
        from ykt import boardcfg

        table = boardcfg.partition_table(b)
    finally:
        sys.path.remove(FIRMWARE)
    flash = b["flash_mb"] * 1024 * 1024
    boot = OFFSETS[want]
    app = [p for p in table if p[1] == 0][0]
    files, blobs, base = _image_parts(image, want, flash)
    if base is None:           # build folder: boot loader, table, app
        bl, tb, ap = blobs
        writes = [(boot, files[0]), (TABLE_OFFSET, files[1]), (app[3], files[2])]
        if boot + len(bl) > TABLE_OFFSET or len(tb) > 0x1000:
            raise FlashError("%s: the boot loader or the table is too large for its place (0x%x..0x8000, "
                             "0x8000..0x9000)" % (image, boot))
    else:
        data = blobs[0]
        bl = data[boot - base:TABLE_OFFSET - base]
        tb = data[TABLE_OFFSET - base:TABLE_OFFSET - base + TABLE_MAX]
        ap = data[app[3] - base:]
        writes = [(base, files[0])]
    loader = _esp_image("the boot loader", bl, want)
    compare_table(parse_table(tb), table, src)
    from esptool.targets import CHIP_DEFS

    sizes = {v: k for k, v in CHIP_DEFS[want].FLASH_SIZES.items()}
    built = sizes.get(loader.flash_size_freq & 0xF0, "?")
    if built != "%dMB" % b["flash_mb"]:
        raise FlashError("the boot loader is built for %s of flash, the board has %d MB "
                         "(CONFIG_ESPTOOLPY_FLASHSIZE in boards/esp32/*/sdkconfig.board)" % (built, b["flash_mb"]))
    img = _esp_image("the app at 0x%x (%s)" % (app[3], app[0]), ap, want)
    app_size = img.data_length + (32 if img.append_digest else 0)   # + its SHA-256
    if app_size > app[4]:
        raise FlashError("the app image is %d bytes, partition %s holds %d" % (app_size, app[0], app[4]))
    base_args = ["--chip", want, "--port", port, "--baud", str(baud)]
    write = base_args + ["write-flash", "-z"]
    for off, f in writes:
        write += ["0x%x" % off, f]
    return {"chip": want, "port": port, "baud": baud, "image": image, "writes": writes,
            "size": sum(len(x) for x in blobs), "app": app[0], "app_size": app_size, "app_room": app[4],
            "argv": [base_args + ["erase-flash"], write]}


def run(p, progress=None):
    """Erase and write with esptool's API. progress: show esptool's output
    (only on a terminal). Raises FlashError with an actionable sentence."""
    from esptool import cmds
    from esptool.logger import log

    try:
        log.set_verbosity("auto" if progress else "silent")
    except (ValueError, AttributeError):  # older esp_pylib: keep its default
        pass
    esp = None
    try:
        esp = cmds.detect_chip(p["port"], p["baud"], connect_attempts=p.get("attempts", 3))
        name = esp.CHIP_NAME.lower().replace("-", "")
        if name != p["chip"]:
            raise FlashError(explain("This chip is %s, not %s." % (esp.CHIP_NAME, p["chip"].upper()), p["port"]))
        esp = cmds.run_stub(esp)
        cmds.erase_flash(esp)
        parts = []
        for off, path in p["writes"]:
            with open(path, "rb") as f:
                parts.append((off, f.read()))
        cmds.write_flash(esp, parts)
        cmds.reset_chip(esp, "hard-reset")
    except FlashError:
        raise
    except Exception as e:  # esptool raises FatalError, SerialException, OSError: all get a sentence
        raise FlashError(explain(e, p["port"])) from None
    finally:
        if esp is not None:
            try:
                esp._port.close()
            except Exception:  # the port may already be gone after the reset
                pass
    return p


def progress_enabled():
    return sys.stderr.isatty()
