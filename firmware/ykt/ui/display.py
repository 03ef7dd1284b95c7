# SSD1306 OLED over I2C (framebuf) and bilingual text: Latin in framebuf's
# built-in 8x8 font, Chinese as 16x16 glyphs from glyphdata.py, a subset of GNU
# Unifont holding exactly the characters of ykt.ui.feedback's messages (built by
# `ykt glyphs build`). The I2C object comes from the board layer.
#
# Glyph file (glyphdata.GLYPHS): 0 4 magic b"YKTG" | 4 1 version (1) | 5 1 glyph height (16)
#   | 6 2 count n | 8 4 CRC32 of the rest | 12 2n code points (u16 LE, sorted)
#   | then n x 32 bytes: 16 rows of 2 bytes, leftmost pixel = MSB (MONO_HLSB,
#   the Unifont hex layout as is).
import struct
import binascii

try:
    import framebuf
    _FB = framebuf.FrameBuffer
except ImportError:  # CPython without a framebuf: glyph files still parse, no panel
    framebuf = None
    _FB = object

from ykt.compat import const

_GHDR = const(12)
_GBYTES = const(32)
_MAX_GLYPHS = const(255)
_DIG = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")


class GlyphError(ValueError):
    pass


class Glyphs:
    def __init__(self, buf):
        if len(buf) < _GHDR or buf[:4] != b"YKTG":
            raise GlyphError("not a glyph file")
        ver, h, n, crc = struct.unpack_from("<BBHI", buf, 4)
        if ver != 1 or h != 16 or n > _MAX_GLYPHS:
            raise GlyphError("glyph file version %d height %d count %d" % (ver, h, n))
        if len(buf) != _GHDR + n * (2 + _GBYTES):
            raise GlyphError("glyph file length %d, expected %d" % (len(buf), _GHDR + n * (2 + _GBYTES)))
        if binascii.crc32(memoryview(buf)[_GHDR:]) & 0xFFFFFFFF != crc:
            raise GlyphError("glyph file CRC32 mismatch")
        self.n = n
        self.buf = buf if isinstance(buf, bytes) else bytes(buf)   # frozen bytes stay in flash
        self.cps = [struct.unpack_from("<H", buf, _GHDR + 2 * i)[0] for i in range(n)]

    def index(self, cp):
        """Glyph index of a code point, or -1."""
        lo = 0
        hi = self.n - 1
        cps = self.cps
        while lo <= hi:
            mid = (lo + hi) >> 1
            if cps[mid] == cp:
                return mid
            if cps[mid] < cp:
                lo = mid + 1
            else:
                hi = mid - 1
        return -1

    def bitmap_offset(self, i):
        return _GHDR + 2 * self.n + _GBYTES * i


def load_glyphs(path=None):
    """The built-in glyphs (glyphdata.py), or a glyph file at path."""
    import os

    if path is None:
        from ykt.ui.glyphdata import GLYPHS

        return Glyphs(GLYPHS)
    size = os.stat(path)[6]
    if size > _GHDR + _MAX_GLYPHS * (2 + _GBYTES):
        raise GlyphError("glyph file too large")
    with open(path, "rb") as f:
        return Glyphs(f.read(size))


# SSD1306 commands (datasheet section 10)
_SET_CONTRAST = const(0x81)
_SET_ENTIRE_ON = const(0xA4)
_SET_NORM_INV = const(0xA6)
_SET_DISP = const(0xAE)
_SET_MEM_ADDR = const(0x20)
_SET_COL_ADDR = const(0x21)
_SET_PAGE_ADDR = const(0x22)
_SET_DISP_START_LINE = const(0x40)
_SET_SEG_REMAP = const(0xA0)
_SET_MUX_RATIO = const(0xA8)
_SET_COM_OUT_DIR = const(0xC0)
_SET_DISP_OFFSET = const(0xD3)
_SET_COM_PIN_CFG = const(0xDA)
_SET_DISP_CLK_DIV = const(0xD5)
_SET_PRECHARGE = const(0xD9)
_SET_VCOM_DESEL = const(0xDB)
_SET_CHARGE_PUMP = const(0x8D)


class SSD1306_I2C(_FB):
    """The panel as a FrameBuffer; show() sends the whole buffer in one I2C write
    (control byte 0x40 + 1024 bytes for 128x64), from a buffer allocated once."""

    def __init__(self, width, height, i2c, addr=0x3C):
        self.width = width
        self.height = height
        self.pages = height // 8
        self.i2c = i2c
        self.addr = addr
        self._wbuf = bytearray(1 + self.pages * width)
        self._wbuf[0] = 0x40
        self.buffer = memoryview(self._wbuf)[1:]
        self._cmd = bytearray(2)
        self._cmd[0] = 0x80  # Co = 1, D/C# = 0: one command byte follows
        super().__init__(self.buffer, width, height, framebuf.MONO_VLSB)
        self.init_display()

    def init_display(self):
        for c in (_SET_DISP, _SET_MEM_ADDR, 0x00, _SET_DISP_START_LINE, _SET_SEG_REMAP | 0x01,
                  _SET_MUX_RATIO, self.height - 1, _SET_COM_OUT_DIR | 0x08, _SET_DISP_OFFSET, 0x00,
                  _SET_COM_PIN_CFG, 0x02 if self.width > 2 * self.height else 0x12,
                  _SET_DISP_CLK_DIV, 0x80, _SET_PRECHARGE, 0xF1, _SET_VCOM_DESEL, 0x30,
                  _SET_CONTRAST, 0xFF, _SET_ENTIRE_ON, _SET_NORM_INV, _SET_CHARGE_PUMP, 0x14,
                  _SET_DISP | 0x01):
            self.write_cmd(c)
        self.fill(0)
        self.show()

    def write_cmd(self, c):
        self._cmd[1] = c
        self.i2c.writeto(self.addr, self._cmd)

    def poweroff(self):
        self.write_cmd(_SET_DISP)

    def poweron(self):
        self.write_cmd(_SET_DISP | 0x01)

    def contrast(self, v):
        self.write_cmd(_SET_CONTRAST)
        self.write_cmd(v)

    def show(self):
        w = self.write_cmd  # one command per write: no tuple built per refresh
        w(_SET_COL_ADDR)
        w(0)
        w(self.width - 1)
        w(_SET_PAGE_ADDR)
        w(0)
        w(self.pages - 1)
        self.i2c.writeto(self.addr, self._wbuf)


class Display:
    """Screen layout (128x64): Chinese message (16 px) at the top, English
    below (8 px), then the provisional fare: 暂定 + 'CNY 2.00', and
    '* provisional' on the last line."""

    def __init__(self, dev, glyphs):
        self.dev = dev
        self.gl = glyphs
        self._gbuf = bytearray(_GBYTES)
        self._gfb = framebuf.FrameBuffer(self._gbuf, 16, 16, framebuf.MONO_HLSB)
        self.refreshes = 0

    def prepare(self, zh):
        """Chinese string -> bytes of glyph indices (missing glyphs: 255, a hollow box)."""
        out = bytearray(len(zh))
        n = 0
        for ch in zh:
            i = self.gl.index(ord(ch))
            out[n] = i if i >= 0 else 255
            n += 1
        return bytes(out[:n])

    def _glyph(self, gi, x, y):
        fb = self.dev
        if gi == 255:
            fb.rect(x + 1, y + 1, 14, 14, 1)
            return
        b = self.gl.buf
        o = self.gl.bitmap_offset(gi)
        g = self._gbuf
        for k in range(_GBYTES):
            g[k] = b[o + k]
        fb.blit(self._gfb, x, y)

    def screen(self, zh, en, fare, prov):
        fb = self.dev
        fb.fill(0)
        x = 0
        for gi in zh:
            if x > fb.width - 16:
                break
            self._glyph(gi, x, 0)
            x += 16
        fb.text(en, 0, 18, 1)
        if fare >= 0:
            x = 0
            for gi in prov:
                self._glyph(gi, x, 30)
                x += 16
            fb.text("CNY", x + 4, 34, 1)
            x += 36
            self._money(fare, x, 34)
            fb.text("* provisional", 0, 54, 1)
        fb.show()
        self.refreshes += 1

    def _money(self, fen, x, y):
        """Draw fen as yuan with two decimals, digit by digit (no string built)."""
        fb = self.dev
        div = 1
        while div * 10 <= fen // 100:
            div *= 10
        yuan = fen // 100
        while div:
            fb.text(_DIG[(yuan // div) % 10], x, y, 1)
            x += 8
            div //= 10
        fb.text(".", x, y, 1)
        fb.text(_DIG[(fen // 10) % 10], x + 8, y, 1)
        fb.text(_DIG[fen % 10], x + 16, y, 1)
