"""`ykt flash`: erase the chip and write the stock MicroPython image with
esptool's Python API (esptool 5.x: esptool.cmds.detect_chip / run_stub /
erase_flash / write_flash / reset_chip), then deploy and provision.

What is tested without a chip: the plan (chip, offset, arguments, image
checks), the error mapping (ERRORS: esptool's messages -> what the
technician does), and the real esptool path up to the point where a chip
must answer (a port that does not exist, a serial port with no ESP32 boot
loader behind it). Writing flash needs a real board."""
import os
import re
import sys

# Where the stock MicroPython image goes (micropython.org/download, "Firmware"
# section: ESP32 images include the 2nd-stage boot loader at 0x1000; S3/C3 at 0).
OFFSETS = {"esp32": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0, "esp32s2": 0x1000}
IMAGE_MAGIC = 0xE9          # esp_image_header_t.magic


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


def board_chip(board):
    """The board file's mcu ('esp32', 'esp32s3', ...)."""
    import json

    from ykt_tools.device import deploy

    with open(deploy.board_file(board)) as f:
        return json.load(f)["mcu"]


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


def plan(port, baud, board, firmware, chip=None):
    """Everything the flash step will do, as data (tested without a chip).
    argv: the equivalent esptool command lines, for the docs and the log."""
    want = chip or board_chip(board)
    if want not in OFFSETS:
        raise FlashError("chip %r not supported: %s" % (want, ", ".join(sorted(OFFSETS))))
    if chip and chip != board_chip(board):
        raise FlashError("--chip %s contradicts board %s (mcu %s)" % (chip, board, board_chip(board)))
    size = check_image(firmware, want)
    off = OFFSETS[want]
    base = ["--chip", want, "--port", port, "--baud", str(baud)]
    return {"chip": want, "port": port, "baud": baud, "offset": off, "firmware": firmware, "size": size,
            "argv": [base + ["erase-flash"], base + ["write-flash", "-z", "0x%x" % off, firmware]]}


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
        with open(p["firmware"], "rb") as f:
            cmds.write_flash(esp, [(p["offset"], f.read())])
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
