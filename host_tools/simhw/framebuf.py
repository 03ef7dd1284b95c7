# Host stand-in for MicroPython's built-in framebuf, for CPython only (the
# MicroPython interpreter always uses its own built-in module). Same formats
# and method names for what the firmware uses, and the same 8x8 font: the
# table below was rendered by the MicroPython unix port, char by char, so a
# screen drawn under CPython matches the device pixel for pixel.
MONO_VLSB = 0
MVLSB = 0
RGB565 = 1
GS4_HMSB = 2
MONO_HLSB = 3
MONO_HMSB = 4
GS2_HMSB = 5
GS8 = 6

_FONT = bytes.fromhex(
    "00000000000000000000004f4f0000000007070000070700147f7f14147f7f1400242e6b6b3a1200006333180c66630000327f4d4d777250000000040603010000001c3e63410000000041633e1c0000082a3e1c1c3e2a080008083e3e080800000080e0600000000008080808080800000000606000000000406030180c0602003e7f49457f3e000040447f7f40400000627351494f460000226349497f360000181814167f7f1000276745457d3900003e7f49497b3200000303797d07030000367f49497f360000266f49497f3e000000002424000000000080e46400000000081c3663414100001414141414140000414163361c080000020351590f0600003e7f414d4f2e00007c7e0b0b7e7c00007f7f49497f3600003e7f4141632200007f7f41633e1c00007f7f4949414100007f7f0909010100003e7f41497b3a00007f7f08087f7f000000417f7f410000002060417f3f0100007f7f1c36634100007f7f4040404000007f7f060c067f7f007f7f0e1c7f7f00003e7f41417f3e00007f7f09090f0600001e3f21617f5e00007f7f19396f460000266f49497b32000001017f7f010100003f7f40407f3f00001f3f60603f1f00007f7f3018307f7f0063771c1c77630000070f78780f0700006171594d47430000007f7f414100000002060c18306040000041417f7f000000080c06060c0800c0c0c0c0c0c0c0c0000001030604000000207454547c7800007f7f44447c380000387c44446c280000387c44447f7f0000387c54545c580000087e7f090302000098bca4a4fc7c00007f7f04047c78000000007d7d0000000040c08080fd7d00007f7f30386c44000000417f7f400000007c7c1830187c7c007c7c04047c780000387c44447c380000fcfc24243c180000183c2424fcfc00007c7c04040c080000485c545474200004043f7f44642000003c7c40407c3c00001c3c60603c1c00001c7c3018307c1c00446c38386c4400009cbca0a0fc7c00004464745c4c44000008083e77414100000000ffff000000004141773e0808000002030103020301aa55aa55aa55aa55"
)


class FrameBuffer:
    def __init__(self, buffer, width, height, format, stride=None):
        if format not in (MONO_VLSB, MONO_HLSB, MONO_HMSB):
            raise ValueError("invalid format")
        self.buf = buffer
        self.width = width
        self.height = height
        self.format = format
        self.stride = width if stride is None else stride
        need = ((height + 7) // 8) * self.stride if format == MONO_VLSB else ((self.stride + 7) // 8) * height
        if len(memoryview(buffer)) < need:
            raise ValueError("buffer too small")

    def _set(self, x, y, c):
        if self.format == MONO_VLSB:
            i = (y >> 3) * self.stride + x
            m = 1 << (y & 7)
        else:
            i = (x + y * self.stride) >> 3
            m = (0x80 >> (x & 7)) if self.format == MONO_HLSB else (1 << (x & 7))
        if c:
            self.buf[i] |= m
        else:
            self.buf[i] &= ~m & 0xFF

    def _get(self, x, y):
        if self.format == MONO_VLSB:
            return (self.buf[(y >> 3) * self.stride + x] >> (y & 7)) & 1
        i = (x + y * self.stride) >> 3
        if self.format == MONO_HLSB:
            return (self.buf[i] >> (7 - (x & 7))) & 1
        return (self.buf[i] >> (x & 7)) & 1

    def pixel(self, x, y, c=None):
        if not (0 <= x < self.width and 0 <= y < self.height):
            return None if c is None else None
        if c is None:
            return self._get(x, y)
        self._set(x, y, c)

    def fill_rect(self, x, y, w, h, c):
        for yy in range(max(0, y), min(self.height, y + h)):
            for xx in range(max(0, x), min(self.width, x + w)):
                self._set(xx, yy, c)

    def fill(self, c):
        self.fill_rect(0, 0, self.width, self.height, c)

    def hline(self, x, y, w, c):
        self.fill_rect(x, y, w, 1, c)

    def vline(self, x, y, h, c):
        self.fill_rect(x, y, 1, h, c)

    def rect(self, x, y, w, h, c, f=False):
        if f:
            self.fill_rect(x, y, w, h, c)
            return
        self.fill_rect(x, y, w, 1, c)
        self.fill_rect(x, y + h - 1, w, 1, c)
        self.fill_rect(x, y, 1, h, c)
        self.fill_rect(x + w - 1, y, 1, h, c)

    def text(self, s, x0, y0, c=1):
        for ch in s:
            o = ord(ch)
            if o < 32 or o > 127:
                o = 127
            g = _FONT[(o - 32) * 8:(o - 32) * 8 + 8]
            for col in range(8):
                bits = g[col]
                for row in range(8):
                    if bits & (1 << row):
                        xx, yy = x0 + col, y0 + row
                        if 0 <= xx < self.width and 0 <= yy < self.height:
                            self._set(xx, yy, c)
            x0 += 8

    def blit(self, fbuf, x, y, key=-1, palette=None):
        for yy in range(fbuf.height):
            for xx in range(fbuf.width):
                c = fbuf._get(xx, yy)
                if c != key and 0 <= x + xx < self.width and 0 <= y + yy < self.height:
                    self._set(x + xx, y + yy, c)
