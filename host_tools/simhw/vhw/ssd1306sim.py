# An SSD1306 128x64 OLED on I2C (address 0x3C), as the datasheet describes the
# I2C interface: after the address, a control byte (Co bit 7, D/C# bit 6)
# says whether the following bytes are commands or GDDRAM data. MicroPython's
# ssd1306 driver sends each command byte as "80 cmd" and the framebuffer as
# "40 data...". Command arguments may come in later transactions, so the
# parser keeps its state between writes. Portable.
#
# Tests look at what a person would see: pixel(x, y) and render_ascii() apply
# display on/off, the charge pump, entire-on, inversion, segment remap (A0/A1),
# COM scan direction (C0/C8), start line and display offset, for a module
# mounted the usual way (upright when remapped with A1 and C8, as the driver
# does). ram_pixel(x, y) reads GDDRAM directly.

_ARGS = {
    0x81: 1, 0x20: 1, 0x21: 2, 0x22: 2, 0xA8: 1, 0xD3: 1, 0xDA: 1, 0xD5: 1,
    0xD9: 1, 0xDB: 1, 0x8D: 1, 0xAD: 1, 0x26: 6, 0x27: 6, 0x29: 5, 0x2A: 5, 0xA3: 2,
}


class SSD1306:
    def __init__(self, width=128, height=64, external_vcc=False):
        self.width = width
        self.height = height
        self.pages = height // 8
        self.ram = bytearray(128 * 8)
        self.external_vcc = external_vcc
        self.power_on_reset()
        self.writes = 0
        self.unknown = []  # command bytes the model does not know (bounded)

    def power_on_reset(self):
        # datasheet reset values
        self.on = False
        self.contrast = 0x7F
        self.entire_on = False
        self.inverted = False
        self.mode = 2  # page addressing
        self.col_lo, self.col_hi = 0, 127
        self.page_lo, self.page_hi = 0, 7
        self.col = 0
        self.page = 0
        self.start_line = 0
        self.seg_remap = False
        self.com_reverse = False
        self.mux = 64
        self.offset = 0
        self.charge_pump = False
        self.scrolling = False
        self._cmd = None
        self._args = []

    # --- I2C device protocol ------------------------------------------------
    def i2c_write(self, buf):
        self.writes += 1
        i = 0
        n = len(buf)
        while i < n:
            ctrl = buf[i]
            i += 1
            dc = ctrl & 0x40
            if ctrl & 0x80:  # Co=1: one byte, then another control byte
                if i < n:
                    self._byte(buf[i], dc)
                    i += 1
            else:  # Co=0: the rest of the transaction is one stream
                while i < n:
                    self._byte(buf[i], dc)
                    i += 1

    def i2c_read(self, n):
        raise OSError(19)  # the I2C interface is write-only (no ACK on a read address)

    def _byte(self, b, data):
        if data:
            self._data(b)
        else:
            self._command(b)

    def _data(self, b):
        self.ram[self.page * 128 + self.col] = b
        if self.mode == 0:  # horizontal
            self.col += 1
            if self.col > self.col_hi:
                self.col = self.col_lo
                self.page = self.page + 1 if self.page < self.page_hi else self.page_lo
        elif self.mode == 1:  # vertical
            self.page += 1
            if self.page > self.page_hi:
                self.page = self.page_lo
                self.col = self.col + 1 if self.col < self.col_hi else self.col_lo
        else:  # page mode: the column wraps, the page stays
            self.col = (self.col + 1) % 128

    def _command(self, b):
        if self._cmd is not None:
            self._args.append(b)
            if len(self._args) == _ARGS[self._cmd]:
                c, a = self._cmd, self._args
                self._cmd = None
                self._args = []
                self._apply(c, a)
            return
        if b in _ARGS:
            self._cmd = b
            self._args = []
            return
        if b in (0xAE, 0xAF):
            self.on = b == 0xAF
        elif b in (0xA4, 0xA5):
            self.entire_on = b == 0xA5
        elif b in (0xA6, 0xA7):
            self.inverted = b == 0xA7
        elif b in (0xA0, 0xA1):
            self.seg_remap = b == 0xA1
        elif b in (0xC0, 0xC8):
            self.com_reverse = b == 0xC8
        elif 0x40 <= b <= 0x7F:
            self.start_line = b - 0x40
        elif 0xB0 <= b <= 0xB7:
            self.page = b - 0xB0
        elif b <= 0x0F:
            self.col = (self.col & 0xF0) | b
        elif 0x10 <= b <= 0x1F:
            self.col = ((b & 0x0F) << 4) | (self.col & 0x0F)
        elif b == 0x2E:
            self.scrolling = False
        elif b == 0x2F:
            self.scrolling = True
        elif b == 0xE3:
            pass  # NOP
        elif len(self.unknown) < 32:
            self.unknown.append(b)

    def _apply(self, c, a):
        if c == 0x81:
            self.contrast = a[0]
        elif c == 0x20:
            self.mode = a[0] & 3 if a[0] & 3 != 3 else 2
        elif c == 0x21:
            self.col_lo, self.col_hi = a[0] & 0x7F, a[1] & 0x7F
            self.col = self.col_lo
        elif c == 0x22:
            self.page_lo, self.page_hi = a[0] & 7, a[1] & 7
            self.page = self.page_lo
        elif c == 0xA8:
            self.mux = (a[0] & 0x3F) + 1
        elif c == 0xD3:
            self.offset = a[0] & 0x3F
        elif c == 0x8D:
            self.charge_pump = bool(a[0] & 0x04)

    # --- what a viewer sees ---------------------------------------------------
    def lit(self):
        """True when the panel emits light at all."""
        return self.on and (self.charge_pump or self.external_vcc)

    def ram_pixel(self, x, y):
        return (self.ram[(y >> 3) * 128 + x] >> (y & 7)) & 1

    def pixel(self, x, y):
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise IndexError("pixel out of range")
        if not self.lit():
            return 0
        if self.entire_on:
            return 1
        if y >= self.mux:
            return 0
        col = x if self.seg_remap else 127 - x
        com = y if self.com_reverse else self.mux - 1 - y
        row = (com + self.offset + self.start_line) % 64
        v = self.ram_pixel(col, row)
        return v ^ 1 if self.inverted else v

    def render_ascii(self, on="#", off="."):
        """The panel as text: one line per pixel row."""
        lines = []
        for y in range(self.height):
            lines.append("".join(on if self.pixel(x, y) else off for x in range(self.width)))
        return "\n".join(lines)

    def lit_count(self):
        n = 0
        for y in range(self.height):
            for x in range(self.width):
                n += self.pixel(x, y)
        return n
