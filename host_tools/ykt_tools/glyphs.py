"""Build firmware/ykt/glyphs.bin: the 16x16 GNU Unifont glyphs of exactly the
Chinese characters that firmware/ykt/feedback.py displays (format in
firmware/ykt/display.py). Unifont is GPL-2+ with the font embedding exception."""
import binascii
import os
import struct
import sys

from ykt_tools import FIRMWARE, SIMHW

for _p in (SIMHW, FIRMWARE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

UNIFONT = "/usr/share/unifont/unifont.hex"
OUTPUT = os.path.join(FIRMWARE, "ykt", "glyphs.bin")


def message_chars():
    """Sorted code points of every non-ASCII character the firmware shows."""
    from ykt import feedback

    texts = [zh for zh, _en in feedback.MESSAGES.values()]
    texts += [zh for zh, _en in feedback.CONCESSIONS]
    texts.append(feedback.PROVISIONAL[0])
    return sorted({ord(ch) for t in texts for ch in t if ord(ch) > 0x7F})


def read_unifont(path, wanted):
    """{code point: 32-byte bitmap} for the wanted code points (16 px wide only)."""
    out = {}
    want = set(wanted)
    with open(path, encoding="ascii") as f:
        for no, line in enumerate(f, 1):
            cp_hex, _, bits = line.strip().partition(":")
            if not bits:
                continue
            cp = int(cp_hex, 16)
            if cp not in want:
                continue
            if len(bits) != 64:
                raise ValueError("%s:%d: U+%04X is not a 16x16 glyph" % (path, no, cp))
            out[cp] = bytes.fromhex(bits)
    missing = want - set(out)
    if missing:
        raise ValueError("%s lacks %s" % (path, ", ".join("U+%04X" % c for c in sorted(missing))))
    return out


def build(unifont=UNIFONT):
    cps = message_chars()
    if len(cps) > 255:
        raise ValueError("%d glyphs: the device format holds at most 255" % len(cps))
    bm = read_unifont(unifont, cps)
    rest = b"".join(struct.pack("<H", c) for c in cps) + b"".join(bm[c] for c in cps)
    return b"YKTG" + struct.pack("<BBHI", 1, 16, len(cps), binascii.crc32(rest) & 0xFFFFFFFF) + rest


def committed_chars(path=OUTPUT):
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack_from("<H", buf, 6)[0]
    return [struct.unpack_from("<H", buf, 12 + 2 * i)[0] for i in range(n)]
