# The fake machine.I2C/SoftI2C: ENODEV like the port, device errors propagate,
# link time on the virtual clock, and the SSD1306 model behind it.
import vclock
import machine
from vhw import bus, chip, ssd1306sim


class Regs:
    """A register-map device: first written byte selects the register."""

    def __init__(self):
        self.mem = bytearray(range(16))
        self.ptr = 0
        self.log = []
        self.stretch = False

    def i2c_write(self, buf):
        if self.stretch:
            raise OSError(110)
        self.log.append(bytes(buf))
        self.ptr = buf[0]
        for i, b in enumerate(bytes(buf)[1:]):
            self.mem[self.ptr + i] = b

    def i2c_read(self, n):
        if self.stretch:
            raise OSError(110)
        out = bytes(self.mem[self.ptr:self.ptr + n])
        self.ptr += n
        return out


def setup():
    vclock.reset()
    bus.reset()
    chip.configure()


def _err(fn, *a):
    try:
        fn(*a)
    except OSError as e:
        return e.args[0]
    raise AssertionError("no OSError")


def test_missing_device_is_enodev():
    i2c = machine.I2C(0, scl=22, sda=21, freq=100000)
    assert _err(i2c.writeto, 0x24, b"\x01") == 19
    assert _err(i2c.readfrom, 0x24, 1) == 19
    assert _err(i2c.readfrom_into, 0x24, bytearray(2)) == 19


def test_bad_bus_id():
    try:
        machine.I2C(2)
    except ValueError as e:
        assert "I2C(2)" in str(e)
    else:
        raise AssertionError("I2C(2) accepted")


def test_timeout_propagates():
    d = Regs()
    bus.attach_i2c(0, 0x50, d)
    i2c = machine.I2C(0, scl=22, sda=21)
    d.stretch = True
    assert _err(i2c.readfrom, 0x50, 1) == 110


def test_link_time_and_stats():
    d = Regs()
    bus.attach_i2c(0, 0x50, d)
    i2c = machine.I2C(0, scl=22, sda=21, freq=100000)
    assert i2c.writeto(0x50, b"\x02\xaa\xbb") == 3
    assert vclock.now_us() == 4 * 90  # (1 + 3) bytes x 9 bits at 100 kHz
    assert bus.stats["i2c_bytes"] == 4
    i2c.init(scl=22, sda=21, freq=400000)
    t = vclock.now_us()
    b = bytearray(8)
    i2c.readfrom_into(0x50, b)
    assert vclock.now_us() - t == (9 * 9 * 1000000) // 400000
    assert bus.stats["i2c_bytes"] == 13


def test_mem_helpers_and_writevto():
    d = Regs()
    bus.attach_i2c(1, 0x50, d)
    i2c = machine.I2C(1, scl=25, sda=26)
    i2c.writeto_mem(0x50, 4, b"\x11\x22")
    assert d.log[-1] == b"\x04\x11\x22"
    assert i2c.readfrom_mem(0x50, 4, 2) == b"\x11\x22"
    b = bytearray(3)
    i2c.readfrom_mem_into(0x50, 3, b)
    assert bytes(b) == b"\x03\x11\x22"
    i2c.writevto(0x50, (b"\x08", b"\x99"))
    assert d.log[-1] == b"\x08\x99"
    assert i2c.scan() == [0x50]


def test_short_read_pads_with_ff():
    class Short:
        def i2c_write(self, b):
            pass

        def i2c_read(self, n):
            return b"\x01"

    bus.attach_i2c(0, 0x24, Short())
    assert machine.I2C(0).readfrom(0x24, 3) == b"\x01\xff\xff"


def test_hardware_i2c_has_no_primitives():
    i2c = machine.I2C(0)
    assert _err(i2c.start) == 95


def test_soft_i2c_primitives():
    d = Regs()
    bus.attach_i2c("soft5", 0x50, d)
    s = machine.SoftI2C(scl=machine.Pin(5), sda=machine.Pin(4), freq=100000)
    assert s.scan() == [0x50]
    s.start()
    assert s.write(b"\xa0\x01\x55") == 3
    s.stop()
    assert d.mem[1] == 0x55
    s.start()
    assert s.write(b"\xa0\x01") == 2
    s.start()  # repeated start
    assert s.write(b"\xa1") == 1
    b = bytearray(2)
    s.readinto(b)
    s.stop()
    assert bytes(b) == b"\x55\x02"
    s.start()
    assert s.write(b"\x42\x00") == 0  # nobody at 0x21: NACK on the address
    s.stop()


def _ssd_init(i2c):
    # the sequence MicroPython's ssd1306.SSD1306_I2C.init_display() sends
    for c in (0xAE, 0x20, 0x00, 0x40, 0xA1, 0xA8, 63, 0xC8, 0xD3, 0x00, 0xDA, 0x12,
              0xD5, 0x80, 0xD9, 0xF1, 0xDB, 0x30, 0x81, 0xFF, 0xA4, 0xA6, 0x8D, 0x14, 0xAF):
        i2c.writeto(0x3C, bytes((0x80, c)))


def _show(i2c, fb):
    for c in (0x21, 0, 127, 0x22, 0, 7):
        i2c.writeto(0x3C, bytes((0x80, c)))
    i2c.writevto(0x3C, (b"\x40", fb))


def test_ssd1306_driver_sequence_and_render():
    oled = ssd1306sim.SSD1306()
    bus.attach_i2c(0, 0x3C, oled)
    i2c = machine.I2C(0, scl=22, sda=21)
    fb = bytearray(1024)
    fb[0] = 0x01  # pixel (0, 0)
    fb[127 + 128 * 7] = 0x80  # pixel (127, 63)
    fb[10 + 128 * 2] = 0x10  # pixel (10, 20)
    _show(i2c, fb)
    assert oled.lit_count() == 0  # not initialised: the panel is dark
    _ssd_init(i2c)
    _show(i2c, fb)
    assert oled.lit() and oled.contrast == 0xFF and oled.unknown == []
    assert oled.pixel(0, 0) == 1 and oled.pixel(127, 63) == 1 and oled.pixel(10, 20) == 1
    assert oled.lit_count() == 3
    art = oled.render_ascii().split("\n")
    assert len(art) == 64 and art[20][10] == "#" and art[0][1] == "."
    i2c.writeto(0x3C, b"\x80\xa7")  # invert
    assert oled.pixel(1, 0) == 1 and oled.pixel(0, 0) == 0
    i2c.writeto(0x3C, b"\x80\xa6\x80\xa0")  # normal, but no segment remap: mirrored
    assert oled.pixel(127, 0) == 1 and oled.pixel(0, 0) == 0
    i2c.writeto(0x3C, b"\x80\xae")
    assert oled.lit_count() == 0
    try:
        i2c.readfrom(0x3C, 1)
    except OSError as e:
        assert e.args[0] == 19
    else:
        raise AssertionError("SSD1306 answered a read")


def test_ssd1306_page_mode():
    oled = ssd1306sim.SSD1306()
    bus.attach_i2c(0, 0x3C, oled)
    i2c = machine.I2C(0)
    _ssd_init(i2c)
    i2c.writeto(0x3C, b"\x00\x20\x02\xb3\x05\x10")  # page mode, page 3, column 5
    i2c.writeto(0x3C, b"\x40\xff\x01")
    assert oled.ram_pixel(5, 24) == 1 and oled.ram_pixel(5, 31) == 1
    assert oled.ram_pixel(6, 24) == 1 and oled.ram_pixel(6, 25) == 0
