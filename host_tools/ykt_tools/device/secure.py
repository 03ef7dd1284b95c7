"""`ykt provision --secure`: ESP32 flash encryption and NVS encryption, so the
device secrets (HMAC key, token key, journal key, Wi-Fi key in NVS) and the
files are ciphertext on the flash chip (docs/operations.md, "Device secrets").

The steps, in order, each a command of Espressif's tools (esptool,
espsecure, espefuse; pinned in requirements.txt). eFuse steps are
IRREVERSIBLE: a burned bit cannot be cleared, a read-protected key block
cannot be read back by anyone, and after the release-mode step the UART
download mode can neither decrypt nor encrypt flash.

  1 read the chip's eFuses (refuse a chip already encrypted or with a key)
  2 make this device's flash encryption key (host side, 0600 in --key-dir)
  3 make this device's NVS encryption keys and their nvs_keys partition image
  4 encrypt the boot loader, partition table, app and nvs_keys with the key
  5 burn the key into BLOCK1 (read- and write-protected)         IRREVERSIBLE
  6 burn FLASH_CRYPT_CONFIG = 0xF (every address bit tweaks)    IRREVERSIBLE
  7 write the encrypted images
  8 burn FLASH_CRYPT_CNT = 1: the ROM decrypts from now on        IRREVERSIBLE
  9 release mode: DISABLE_DL_ENCRYPT/DECRYPT/CACHE, JTAG_DISABLE IRREVERSIBLE
 10 read the eFuses back and check every one of the above

run() stops at the first step that fails and says which; nothing after it
runs. virt_efuse runs the eFuse steps on espefuse's virtual chip (a file):
the real tool, the real burning rules (a key block burned twice is refused),
no chip; the flash writes are then skipped. Keys never appear in a command's
output, a log or an exception: they are files the commands name.

The firmware must be a MicroPython built with CONFIG_SECURE_FLASH_ENC_ENABLED
(release) and CONFIG_NVS_ENCRYPTION, and the board must declare an nvs_keys
partition (4 KiB, flagged encrypted); plan() refuses a board without one."""
import binascii
import json
import os
import shlex
import subprocess
import sys

KEY_NAME = "flash_enc_key.bin"
NVS_KEYS_NAME = "nvs_keys.bin"
RELEASE_FUSES = ("DISABLE_DL_ENCRYPT", "DISABLE_DL_DECRYPT", "DISABLE_DL_CACHE", "JTAG_DISABLE")
OFFSET_BOOT, OFFSET_TABLE = 0x1000, 0x8000     # ESP32 boot loader and partition table


class SecureError(Exception):
    pass


class Step:
    def __init__(self, n, what, argv, irreversible=False, needs_chip=False, check=None):
        self.n, self.what, self.argv = n, what, argv
        self.irreversible = irreversible
        self.needs_chip = needs_chip      # a flash write: skipped on a virtual eFuse chip
        self.check = check                # fn(stdout) -> error text or None

    def line(self):
        return "%2d %s%s\n   %s" % (self.n, self.what, "   [IRREVERSIBLE]" if self.irreversible else "",
                                    " ".join(shlex.quote(a) for a in self.argv))


def nvs_keys_image(keys):
    """The nvs_keys partition: XTS data key (32 B), XTS tweak key (32 B),
    CRC-32 of the 64 bytes (little-endian), the rest of the 4 KiB erased
    (0xFF), as ESP-IDF's nvs_flash_read_security_cfg reads it."""
    if len(keys) != 64:
        raise SecureError("NVS keys are 64 bytes (two XTS-AES-256 halves)")
    crc = binascii.crc32(keys) & 0xFFFFFFFF
    return bytes(keys) + crc.to_bytes(4, "little") + b"\xff" * (4096 - 68)


def _part(board, name):
    for p in board.get("partitions", ()):
        if p["name"] == name or p.get("subtype") == name:
            return int(p["offset"], 16), int(p["size"], 16)
    return None


def plan(board, port, key_dir, firmware_dir, chip="esp32", virt_efuse=None, py=None):
    """-> [Step]. board: the board dict (boards/*.json); firmware_dir holds
    the secure build's bootloader.bin, partition-table.bin, micropython.bin."""
    if board.get("mcu", chip) != "esp32":
        raise SecureError("flash encryption steps are written for the ESP32 (board mcu %s)" % board.get("mcu"))
    keys_part = _part(board, "nvs_keys")
    if keys_part is None:
        raise SecureError("board %s declares no nvs_keys partition: NVS encryption keeps its keys in one "
                          "(4 KiB, flagged encrypted; docs/operations.md)" % board.get("kind", "?"))
    app = _part(board, "factory") or _part(board, "ota_0")
    if app is None:
        raise SecureError("board %s declares no app partition (factory or ota_0)" % board.get("kind", "?"))
    py = py or sys.executable
    conn = ["--virt", "--path-efuse-file", virt_efuse] if virt_efuse else ["--port", port]
    efuse = [py, "-m", "espefuse", "--chip", chip] + conn + ["--do-not-confirm"]
    key = os.path.join(key_dir, KEY_NAME)
    nvs_keys = os.path.join(key_dir, NVS_KEYS_NAME)
    images = [(OFFSET_BOOT, "bootloader.bin"), (OFFSET_TABLE, "partition-table.bin"),
              (app[0], "micropython.bin")]
    enc = []
    steps = [Step(1, "read the eFuses; refuse a chip already encrypted or keyed", efuse + ["summary", "--format",
                  "json"], check=check_blank)]
    steps.append(Step(2, "make this device's flash encryption key (256 bits, %s, mode 0600)" % key,
                      [py, "-m", "espsecure", "generate-flash-encryption-key", key]))
    steps.append(Step(3, "make this device's NVS keys and the nvs_keys partition image",
                      [py, "-m", "ykt_tools.device.secure", "nvs-keys", nvs_keys]))
    images.append((keys_part[0], NVS_KEYS_NAME))
    for off, name in images:
        src = nvs_keys if name == NVS_KEYS_NAME else os.path.join(firmware_dir, name)
        out = os.path.join(key_dir, "enc-" + name)
        enc += ["0x%x" % off, out]
        steps.append(Step(4, "encrypt %s for 0x%x" % (name, off),
                          [py, "-m", "espsecure", "encrypt-flash-data", "--keyfile", key, "--address", "0x%x" % off,
                           "--output", out, src]))
    steps.append(Step(5, "burn the key into BLOCK1 (read- and write-protected)",
                      efuse + ["burn-key", "flash_encryption", key], irreversible=True))
    steps.append(Step(6, "burn FLASH_CRYPT_CONFIG 0xF", efuse + ["burn-efuse", "FLASH_CRYPT_CONFIG", "0xF"],
                      irreversible=True))
    wr = [py, "-m", "esptool", "--chip", chip, "--port", port or "PORT", "write-flash", "--force"] + enc
    steps.append(Step(7, "write the encrypted images", wr, needs_chip=True))
    steps.append(Step(8, "burn FLASH_CRYPT_CNT 1: the chip decrypts flash from now on",
                      efuse + ["burn-efuse", "FLASH_CRYPT_CNT", "1"], irreversible=True))
    rel = []
    for f in RELEASE_FUSES:
        rel += [f, "1"]
    steps.append(Step(9, "release mode: no flash decryption, encryption or cache in download mode; no JTAG",
                      efuse + ["burn-efuse"] + rel, irreversible=True))
    steps.append(Step(10, "read the eFuses back and check", efuse + ["summary", "--format", "json"],
                      check=check_secured))
    for i, s in enumerate(steps):
        s.n = i + 1
    return steps


def _fuses(out):
    try:
        d = json.loads(out[out.index("{"):])
        return {k: v.get("value") for k, v in d.items()}, {k: v for k, v in d.items()}
    except (ValueError, AttributeError):
        raise SecureError("espefuse summary is not JSON")


def check_blank(out):
    v, raw = _fuses(out)
    if bin(int(v.get("FLASH_CRYPT_CNT") or 0)).count("1") % 2:
        return "flash encryption is already on (FLASH_CRYPT_CNT %s): this chip was done before" % v["FLASH_CRYPT_CNT"]
    b1 = raw.get("BLOCK1", {})
    if not b1.get("readable", True) or int(b1.get("raw_value", "0x0") or "0x0", 16):
        return "BLOCK1 (flash encryption key) is already written or read-protected"
    return None


def check_secured(out):
    v, raw = _fuses(out)
    bad = []
    if bin(int(v.get("FLASH_CRYPT_CNT") or 0)).count("1") % 2 != 1:
        bad.append("FLASH_CRYPT_CNT %s (not odd)" % v.get("FLASH_CRYPT_CNT"))
    if int(v.get("FLASH_CRYPT_CONFIG") or 0) != 0xF:
        bad.append("FLASH_CRYPT_CONFIG %s" % v.get("FLASH_CRYPT_CONFIG"))
    if raw.get("BLOCK1", {}).get("readable", True):
        bad.append("BLOCK1 readable")
    bad += [f for f in RELEASE_FUSES if not v.get(f)]
    return ("not secured: " + ", ".join(bad)) if bad else None


def run(steps, virt=False, log=print):
    """Run the steps in order; the first failure stops everything after it.
    -> [{"step", "what", "status": ok|skipped}]; raises SecureError naming the step."""
    done = []
    for s in steps:
        if s.needs_chip and virt:
            done.append({"step": s.n, "what": s.what, "status": "skipped (virtual eFuses, no flash)"})
            continue
        log("step %d: %s" % (s.n, s.what))
        old = os.umask(0o077)            # key files: owner only
        try:
            p = subprocess.run(s.argv, capture_output=True, text=True, timeout=600)
        finally:
            os.umask(old)
        err = None
        if p.returncode:
            tail = [l for l in (p.stdout + p.stderr).splitlines() if l.strip()][-3:]
            err = "exit %d: %s" % (p.returncode, " | ".join(x.strip() for x in tail))
        elif s.check:
            err = s.check(p.stdout)
        if err:
            raise SecureError("step %d (%s) failed, nothing after it was run: %s" % (s.n, s.what, err))
        done.append({"step": s.n, "what": s.what, "status": "ok"})
    return done


def storage_state(st):
    """From provision.device_state: 'encrypted' (flash encryption on and an
    nvs_keys partition), else 'plain' (or the probe could not tell)."""
    cnt = st.get("flash_crypt_cnt")
    if cnt is not None and bin(cnt).count("1") % 2 == 1 and st.get("nvs_keys"):
        return "encrypted"
    return "plain"


def _nvs_keys_main(path):
    old = os.umask(0o077)
    try:
        with open(path, "wb") as f:
            f.write(nvs_keys_image(os.urandom(64)))
    finally:
        os.umask(old)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "nvs-keys":
        _nvs_keys_main(sys.argv[2])
    else:
        sys.exit("usage: python -m ykt_tools.device.secure nvs-keys FILE")
