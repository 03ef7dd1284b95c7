# The SSD1306 driver and bilingual rendering: exact I2C bytes at the panel
# boundary, Chinese glyph pixels equal the Unifont subset, and the glyph file
# covers every message. Needs framebuf (MicroPython; CPython skips with reason).
from ykt.ui import display as DS
from ykt.ui import feedback as FB
from ykt import outcome as O
from ykt import taprec as T


class I2C:
    """Stand-in for machine.I2C: keeps every write (address, bytes)."""

    def __init__(self):
        self.writes = []

    def writeto(self, addr, buf):
        self.writes.append((addr, bytes(buf)))
        return len(buf)


def _need_fb():
    if DS.framebuf is None:
        import fwtest
        raise fwtest.Skip("no framebuf module on this runtime (MicroPython built-in)")


def _glyphs():
    return DS.load_glyphs()


def test_glyph_file_covers_messages():
    g = _glyphs()
    for s in O.texts():
        for ch in s:
            assert g.index(ord(ch)) >= 0, "glyph missing for %r (run `ykt glyphs build`)" % ch
    assert g.index(0x41) == -1


def test_glyph_file_corruption_refused():
    from ykt.ui.glyphdata import GLYPHS

    buf = bytearray(GLYPHS)
    for bad in (bytes(buf[:-1]), b"XKTG" + bytes(buf[4:])):
        try:
            DS.Glyphs(bad)
            raise AssertionError("accepted")
        except DS.GlyphError:
            pass
    buf[40] ^= 1
    try:
        DS.Glyphs(bytes(buf))
        raise AssertionError("accepted")
    except DS.GlyphError as e:
        assert "CRC" in str(e)


def test_init_and_show_bytes():
    _need_fb()
    i2c = I2C()
    DS.SSD1306_I2C(128, 64, i2c, 0x3C)
    cmds = [w[1][1] for w in i2c.writes if len(w[1]) == 2]
    assert all(w[0] == 0x3C for w in i2c.writes)
    assert cmds[0] == 0xAE and 0xAF in cmds and cmds[cmds.index(0xA8) + 1] == 63
    assert cmds[cmds.index(0x8D) + 1] == 0x14          # charge pump on
    data = [w[1] for w in i2c.writes if len(w[1]) > 2]
    assert len(data) == 1 and len(data[0]) == 1025 and data[0][0] == 0x40
    assert cmds[-6:] == [0x21, 0, 127, 0x22, 0, 7]     # window set before the data


def test_chinese_pixels_match_unifont():
    _need_fb()
    i2c = I2C()
    dev = DS.SSD1306_I2C(128, 64, i2c)
    g = _glyphs()
    d = DS.Display(dev, g)
    zh = "卡已挂失"
    d.screen(d.prepare(zh), "Card lost", -1, None)
    for n, ch in enumerate(zh):
        o = g.bitmap_offset(g.index(ord(ch)))
        for y in range(16):
            row = (g.buf[o + 2 * y] << 8) | g.buf[o + 2 * y + 1]
            for x in range(16):
                assert dev.pixel(16 * n + x, y) == (row >> (15 - x)) & 1, (ch, x, y)
    # the English line is drawn with the 8x8 font below it
    assert sum(dev.pixel(x, y) for x in range(72) for y in range(18, 26)) > 40
    # and the frame went out over I2C as page-ordered bytes
    frame = i2c.writes[-1][1][1:]
    assert frame == bytes(dev.buffer)


def test_fare_line_and_feedback_integration():
    _need_fb()
    dev = DS.SSD1306_I2C(128, 64, I2C())
    d = DS.Display(dev, _glyphs())
    f = FB.Feedback({}, None, d, {})
    t = T.Tap()
    t.fare = 12345
    f.show(O.FB_ACCEPT, t, O.M_OK, now_ms=0)
    lit = sum(dev.pixel(x, y) for x in range(128) for y in range(30, 46))
    assert lit > 60                                     # 暂定 + CNY 123.45
    ref = DS.SSD1306_I2C(128, 64, I2C())
    ref.text("123.45", 0, 0, 1)
    x0 = 68                                             # 2 glyphs (32) + 4 + "CNY" (24) + 8
    for x in range(48):
        for y in range(8):
            assert dev.pixel(x0 + x, 34 + y) == ref.pixel(x, y), (x, y)
    t.fare = 0
    f.show(O.FB_CONCESSION, t, O.M_OK, now_ms=10)
    ref.fill(0)
    ref.text("0.00", 0, 0, 1)
    for x in range(32):
        for y in range(8):
            assert dev.pixel(x0 + x, 34 + y) == ref.pixel(x, y), (x, y)
    f.show(O.FB_DENY, t, O.M_REGION, now_ms=20)
    assert sum(dev.pixel(x, y) for x in range(128) for y in range(30, 64)) == 0   # no fare on refusal


def test_on_simulated_panel():
    # The same driver through the simulated machine.I2C to the SSD1306 model:
    # what a person would see equals the framebuffer, glyphs included.
    _need_fb()
    import machine
    import vclock
    from vhw import bus, chip, ssd1306sim
    vclock.reset()
    bus.reset()
    chip.configure()
    panel = ssd1306sim.SSD1306()
    bus.attach_i2c(0, 0x3C, panel)
    i2c = machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21), freq=400000)
    dev = DS.SSD1306_I2C(128, 64, i2c, 0x3C)
    d = DS.Display(dev, _glyphs())
    f = FB.Feedback({}, None, d, {})
    t = T.Tap()
    t.fare = 250
    f.show(O.FB_ACCEPT, t, O.M_OK, now_ms=0)
    assert panel.on
    for y in range(64):
        for x in range(128):
            assert panel.pixel(x, y) == dev.pixel(x, y), (x, y)
    assert panel.lit_count() > 200
