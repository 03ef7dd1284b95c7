# Board files are data: pins, buses, frequencies and feature roles. This module
# validates them (on the device at boot and on the host in `ykt` and tests) so
# that a wiring mistake is one clear line instead of a mysterious fault later.
import json

from ykt.compat import const

# GPIOs a board file may use. Flash/PSRAM pins are left out on purpose: wiring
# a peripheral there bricks the module.
_ESP32_GPIO = (0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23,
               25, 26, 27, 32, 33, 34, 35, 36, 37, 38, 39)
_ESP32_INPUT_ONLY = (34, 35, 36, 37, 38, 39)
_ESP32S3_GPIO = tuple(range(0, 22)) + tuple(range(38, 49))
MCUS = {
    "esp32": (_ESP32_GPIO, _ESP32_INPUT_ONLY),
    "esp32s3": (_ESP32S3_GPIO, ()),
}

TRANSPORTS = {
    "i2c": ("PN532_SCL", "PN532_SDA"),
    "spi": ("PN532_SCK", "PN532_MOSI", "PN532_MISO", "PN532_CS"),
    "hsu": ("PN532_TX", "PN532_RX"),
}
KINDS = ("bus_validator", "ferry_validator", "turnstile", "gate")
# Roles the firmware knows; anything else is a typo in the board file.
INPUT_ROLES = ("PN532_IRQ", "PN532_MISO", "PN532_RX", "QR_RX", "BUTTON", "VOICE_RX", "MODEM_RX")
OUTPUT_ROLES = ("PN532_SCL", "PN532_SDA", "PN532_SCK", "PN532_MOSI", "PN532_CS",
                "PN532_TX", "PN532_RST", "LED_R", "LED_G", "LED_B", "BUZZER",
                "RELAY", "ASSIST", "DISP_SCL", "DISP_SDA", "QR_TX", "STATUS_LED", "VOICE_TX",
                "MODEM_TX")
ROLES = INPUT_ROLES + OUTPUT_ROLES
FEATURE_ROLES = {
    "led": ("LED_R", "LED_G", "LED_B"),
    "buzzer": ("BUZZER",),
    "relay": ("RELAY",),
    "assist": ("ASSIST",),
    "display": ("DISP_SCL", "DISP_SDA"),
    "qr": ("QR_TX", "QR_RX"),
    "voice": ("VOICE_TX",),   # VOICE_RX is optional: the driver only sends
}
# UART MP3 voice modules (ykt.ui.voice): the DFPlayer Mini family (7E .. EF
# frames) and the JQ8900 family (AA .. checksum frames). Both run at 9600 baud
# out of the box.
VOICE_DRIVERS = ("dfplayer", "jq8900")
# UART 4G modems that speak the 3GPP AT dialogue and PPP (ykt.net.modem).
MODEM_DRIVERS = ("sim7600", "ec20")
_MAX_BOARD_BYTES = 8192
# MicroPython's heap on a module without PSRAM: 56 KB at start, grown once to
# about 112 KB; the rest of internal RAM stays with Wi-Fi and one TLS session
# (docs/design.md, heap). With PSRAM the heap lives there (at most 16 MiB).
SRAM_HEAP_MAX = const(114688)
_PSRAM_HEAP_MAX = const(16 * 1024 * 1024)
_HEAP_MIN = const(32768)

# Flash layout ("partitions"): ESP-IDF's partition table as data. Types and
# subtypes by their ESP-IDF names (components/partition_table/gen_esp32part.py);
# a data subtype may also be a number 0x40..0xFE, which ESP-IDF leaves to
# applications. The boot loader and the table itself take the flash below
# 0x9000; app partitions start on 64 KiB, everything else on 4 KiB.
_PTYPES = {"app": 0, "data": 1}
_DATA_SUBTYPES = {"ota": 0, "phy": 1, "nvs": 2, "coredump": 3, "nvs_keys": 4, "fat": 0x81, "spiffs": 0x82}
_FIRST_FREE = 0x9000
_SECTOR = 0x1000
_APP_ALIGN = 0x10000
_OTADATA_SIZE = 0x2000
# Found by label: NVS (Wi-Fi, secrets), MicroPython's file system and the
# deny list's two slots. (label, type, subtype or None for any custom one.)
_REQUIRED = (("nvs", 1, 2), ("vfs", 1, 0x81), ("dlist_a", 1, None), ("dlist_b", 1, None))


class BoardError(ValueError):
    """One line: file, field, problem."""

    def __init__(self, src, field, msg):
        super().__init__("%s: %s: %s" % (src, field, msg))
        self.src = src
        self.field = field


def _int(src, field, v, lo, hi):
    if type(v) is not int or v < lo or v > hi:
        raise BoardError(src, field, "must be an integer in %d..%d, got %r" % (lo, hi, v))
    return v


def validate(b, src="<board>"):
    """Check a parsed board dict; return it. Raises BoardError naming the field."""
    if type(b) is not dict:
        raise BoardError(src, "(top)", "a board file is a JSON object")
    for key in ("name", "mcu", "kind", "reader", "pins"):
        if key not in b:
            raise BoardError(src, key, "missing")
    mcu = b["mcu"]
    if mcu not in MCUS:
        raise BoardError(src, "mcu", "unknown MCU %r (known: %s)" % (mcu, ", ".join(sorted(MCUS))))
    if b["kind"] not in KINDS:
        raise BoardError(src, "kind", "unknown device kind %r (known: %s)" % (b["kind"], ", ".join(KINDS)))
    gpios, input_only = MCUS[mcu]
    pins = b["pins"]
    if type(pins) is not dict:
        raise BoardError(src, "pins", "must be an object of ROLE: gpio")
    used = {}
    for role in sorted(pins):
        field = "pins." + role
        if role not in ROLES:
            raise BoardError(src, field, "unknown role (known: %s)" % ", ".join(ROLES))
        pin = pins[role]
        if type(pin) is not int:
            raise BoardError(src, field, "pin must be a GPIO number, got %r" % (pin,))
        if pin not in gpios:
            raise BoardError(src, field, "unknown pin %d on %s" % (pin, mcu))
        if pin in used:
            raise BoardError(src, field, "pin %d used twice (also %s)" % (pin, used[pin]))
        if pin in input_only and role in OUTPUT_ROLES:
            raise BoardError(src, field, "pin %d is input-only on %s, %s drives it" % (pin, mcu, role))
        used[pin] = field
    reader = b["reader"]
    if type(reader) is not dict:
        raise BoardError(src, "reader", "must be an object")
    tr = reader.get("transport")
    if tr not in TRANSPORTS:
        raise BoardError(src, "reader.transport", "unknown transport %r (known: %s)" % (tr, ", ".join(TRANSPORTS)))
    for role in TRANSPORTS[tr]:
        if role not in pins:
            raise BoardError(src, "pins." + role, "missing role, required by reader.transport %s" % tr)
    _int(src, "reader.id", reader.get("id", 0), 0, 2)
    if tr == "i2c":
        _int(src, "reader.freq", reader.get("freq", 100000), 10000, 400000)
        _int(src, "reader.addr", reader.get("addr", 0x24), 0x08, 0x77)
    elif tr == "spi":
        _int(src, "reader.freq", reader.get("freq", 1000000), 100000, 5000000)
    else:
        baud = _int(src, "reader.baud", reader.get("baud", 115200), 9600, 921600)
        # the rates SetSerialBaudRate can select (UM0701 7.2.8)
        if baud not in (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600):
            raise BoardError(src, "reader.baud", "the PN532's HSU runs at 9600, 19200, 38400, 57600, 115200, "
                                                 "230400, 460800 or 921600, got %d" % baud)
    feats = b.get("features", {})
    if type(feats) is not dict:
        raise BoardError(src, "features", "must be an object of name: true/false")
    for f in feats:
        if f == "psram":
            raise BoardError(src, "features.psram", "moved: declare top-level \"psram\": true|false")
        if f not in FEATURE_ROLES and f != "rtc":
            raise BoardError(src, "features." + f, "unknown feature")
        if feats[f] and f in FEATURE_ROLES:
            for role in FEATURE_ROLES[f]:
                if role not in pins:
                    raise BoardError(src, "pins." + role, "missing role, required by features.%s" % f)
    if feats.get("display"):
        d = b.get("display")
        if type(d) is not dict:
            raise BoardError(src, "display", "missing, required by features.display")
        if d.get("driver") != "ssd1306":
            raise BoardError(src, "display.driver", "unknown driver %r (known: ssd1306)" % (d.get("driver"),))
        _int(src, "display.id", d.get("id", 1), 0, 1)
        _int(src, "display.addr", d.get("addr", 0x3C), 0x08, 0x77)
        _int(src, "display.width", d.get("width", 128), 64, 128)
        _int(src, "display.height", d.get("height", 64), 32, 64)
        if tr == "i2c" and d.get("id", 1) == reader.get("id", 0):
            raise BoardError(src, "display.id", "shares the reader's I2C bus; give it its own")
    if feats.get("qr"):
        q = b.get("qr")
        if type(q) is not dict:
            raise BoardError(src, "qr", "missing, required by features.qr")
        _int(src, "qr.uart", q.get("uart", 2), 1, 2)
        _int(src, "qr.baud", q.get("baud", 9600), 1200, 921600)
        if tr == "hsu" and q.get("uart", 2) == reader.get("id", 1):
            raise BoardError(src, "qr.uart", "shares the reader's UART")
    if feats.get("voice"):
        v = b.get("voice")
        if type(v) is not dict:
            raise BoardError(src, "voice", "missing, required by features.voice")
        vu = _uart_part(src, "voice", v, ("driver", "uart", "baud"), VOICE_DRIVERS, 1, 9600, 2400, 115200)
        if tr == "hsu" and vu == reader.get("id", 1):
            raise BoardError(src, "voice.uart", "shares the reader's UART")
        if feats.get("qr") and vu == b["qr"].get("uart", 2):
            raise BoardError(src, "voice.uart", "shares the QR scanner's UART")
    if "modem" in b:
        _modem(b, src, tr, reader)
    flash_mb = _int(src, "flash_mb", b.get("flash_mb", 4), 4, 32)
    _layout(b, src, flash_mb * 1024 * 1024)
    _heap(b, src)
    return b


def _uart_part(src, name, p, keys, drivers, uart, baud, baud_lo, baud_hi):
    """The settings every UART module shares: known keys, a known driver,
    UART 1..2 and a baud rate in the module's range; -> the UART id."""
    for k in p:
        if k not in keys:
            raise BoardError(src, name + "." + k, "unknown setting (known: %s)" % ", ".join(keys))
    if p.get("driver") not in drivers:
        raise BoardError(src, name + ".driver", "unknown driver %r (known: %s)"
                         % (p.get("driver"), ", ".join(drivers)))
    u = _int(src, name + ".uart", p.get("uart", uart), 1, 2)
    _int(src, name + ".baud", p.get("baud", baud), baud_lo, baud_hi)
    return u


def _modem(b, src, tr, reader):
    """"modem": {"driver", "uart", "baud", "apn"} on MODEM_TX/MODEM_RX."""
    m = b["modem"]
    if type(m) is not dict:
        raise BoardError(src, "modem", "must be an object {driver, uart, baud, apn}")
    mu = _uart_part(src, "modem", m, ("driver", "uart", "baud", "apn"), MODEM_DRIVERS, 2, 115200, 9600, 921600)
    apn = m.get("apn")
    if type(apn) is not str or not 0 < len(apn) <= 40 or '"' in apn:
        raise BoardError(src, "modem.apn", "the carrier's APN, 1..40 characters without quotes, got %r" % (apn,))
    for role in ("MODEM_TX", "MODEM_RX"):
        if role not in b["pins"]:
            raise BoardError(src, "pins." + role, "missing role, required by modem")
    if tr == "hsu" and mu == reader.get("id", 1):
        raise BoardError(src, "modem.uart", "shares the reader's UART")
    feats = b.get("features", {})
    if feats.get("qr") and mu == b["qr"].get("uart", 2):
        raise BoardError(src, "modem.uart", "shares the QR scanner's UART")
    if feats.get("voice") and mu == b["voice"].get("uart", 1):
        raise BoardError(src, "modem.uart", "shares the voice module's UART")


def _hex(src, field, v):
    if type(v) is not str or v[:2] != "0x" or v.strip() != v:
        raise BoardError(src, field, "must be a hex string like \"0x9000\", got %r" % (v,))
    try:
        return int(v, 16)
    except ValueError:
        raise BoardError(src, field, "must be a hex string like \"0x9000\", got %r" % (v,))


def _subtype(src, field, ty, v):
    if ty == 0:
        if v == "factory":
            return 0
        if v[:4] == "ota_" and v[4:].isdigit() and int(v[4:]) < 16:
            return 0x10 + int(v[4:])
        raise BoardError(src, field, "app subtype is factory or ota_0..ota_15, got %r" % (v,))
    if v in _DATA_SUBTYPES:
        return _DATA_SUBTYPES[v]
    if v[:2] == "0x":
        n = _hex(src, field, v)
        if 0x40 <= n <= 0xFE:
            return n
    raise BoardError(src, field, "data subtype is one of %s or 0x40..0xfe, got %r"
                     % (", ".join(sorted(_DATA_SUBTYPES)), v))


def _layout(b, src, flash):
    """Check the board's "partitions" against ESP-IDF's rules and what the
    firmware needs; -> [(label, type, subtype, offset, size)] in flash order."""
    parts = b.get("partitions")
    if type(parts) is not list or not parts:
        raise BoardError(src, "partitions", "missing: the flash layout, a list of "
                         "{name, type, subtype, offset, size}")
    out = []
    end = _FIRST_FREE
    prev = "the boot loader and partition table"
    for i in range(len(parts)):
        p = parts[i]
        name = p.get("name") if type(p) is dict else None
        if type(name) is not str or not 0 < len(name) < 16:
            raise BoardError(src, "partitions[%d].name" % i, "a label of 1..15 characters, got %r" % (name,))
        f = "partitions." + name
        for key in ("type", "subtype", "offset", "size"):
            if type(p.get(key)) is not str:
                raise BoardError(src, f + "." + key, "missing or not a string")
        ty = _PTYPES.get(p["type"])
        if ty is None:
            raise BoardError(src, f + ".type", "app or data, got %r" % (p["type"],))
        sub = _subtype(src, f + ".subtype", ty, p["subtype"])
        off = _hex(src, f + ".offset", p["offset"])
        size = _hex(src, f + ".size", p["size"])
        align = _APP_ALIGN if ty == 0 else _SECTOR
        if off % align:
            raise BoardError(src, f + ".offset", "0x%x is not a multiple of %d KiB (%s partition)"
                             % (off, align // 1024, p["type"]))
        if size <= 0 or size % _SECTOR:
            raise BoardError(src, f + ".size", "0x%x is not a positive multiple of 4 KiB" % size)
        if off < end:
            raise BoardError(src, f + ".offset", "0x%x overlaps %s (ends at 0x%x); list partitions in "
                             "flash order" % (off, prev, end))
        if off + size > flash:
            raise BoardError(src, f + ".size", "ends at 0x%x, beyond the %d MB flash (flash_mb)"
                             % (off + size, flash >> 20))
        for q in out:
            if q[0] == name:
                raise BoardError(src, f, "label used twice")
        out.append((name, ty, sub, off, size))
        end = off + size
        prev = name
    _required(src, out)
    return out


def _required(src, table):
    labels = {}
    for p in table:
        labels[p[0]] = p
    for lab, ty, sub in _REQUIRED:
        p = labels.get(lab)
        if p is None:
            raise BoardError(src, "partitions", "no %r partition (MicroPython and the firmware find it by label)" % lab)
        if p[1] != ty or (sub is not None and p[2] != sub) or (sub is None and p[2] < 0x40):
            raise BoardError(src, "partitions.%s.subtype" % lab, "wrong type/subtype for %s" % lab)
    apps = [p for p in table if p[1] == 0]
    if not apps:
        raise BoardError(src, "partitions", "no app partition: the interpreter image needs one")
    ota = [p for p in apps if p[2] >= 0x10]
    otadata = [p for p in table if p[1] == 1 and p[2] == 0]
    if ota and len(otadata) != 1:
        raise BoardError(src, "partitions", "OTA app slots need exactly one otadata (data/ota) partition")
    if otadata and otadata[0][4] != _OTADATA_SIZE:
        raise BoardError(src, "partitions.%s.size" % otadata[0][0], "otadata must be 0x2000 (ESP-IDF)")


def partition_table(b):
    """The layout of a validated board: [(label, type, subtype, offset, size)]."""
    return _layout(b, "<board>", b.get("flash_mb", 4) * 1024 * 1024)


def _heap(b, src):
    """The heap the module gives MicroPython: what `ykt sim` and the tests
    hold the firmware to."""
    psram = b.get("psram")
    if type(psram) is not bool:
        raise BoardError(src, "psram", "missing or not true/false: does the module have PSRAM?")
    hb = b.get("heap_bytes")
    if hb is None:
        raise BoardError(src, "heap_bytes", "missing: the MicroPython heap the module gives, in bytes")
    if psram:
        _int(src, "heap_bytes", hb, _HEAP_MIN, _PSRAM_HEAP_MAX)
    elif type(hb) is not int or not _HEAP_MIN <= hb <= SRAM_HEAP_MAX:
        raise BoardError(src, "heap_bytes", "%r is impossible without PSRAM: %d..%d (112 KiB)"
                         % (hb, _HEAP_MIN, SRAM_HEAP_MAX))


def loads(text, src="<board>"):
    if len(text) > _MAX_BOARD_BYTES:
        raise BoardError(src, "(file)", "larger than %d bytes" % _MAX_BOARD_BYTES)
    try:
        b = json.loads(text)
    except ValueError as e:
        raise BoardError(src, "(json)", "not valid JSON: %s" % e)
    return validate(b, src)


def load(path):
    from ykt.compat import read_file

    try:
        text = read_file(path, _MAX_BOARD_BYTES, False)
    except OSError as e:
        raise BoardError(path, "(file)", "cannot read: %s" % e)
    except ValueError:
        raise BoardError(path, "(file)", "larger than %d bytes" % _MAX_BOARD_BYTES)
    return loads(text, path)


def has(b, feature):
    return bool(b.get("features", {}).get(feature))
