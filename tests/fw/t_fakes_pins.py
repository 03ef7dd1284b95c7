# The fake machine.Pin/Signal behave like the ESP32 port and are wired to the
# simulated world through vhw.bus.
import vclock
import machine
from vhw import bus, chip


def setup():
    vclock.reset()
    bus.reset()
    chip.configure(mcu="esp32")


def _raises(exc, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


def test_invalid_gpio_per_mcu():
    assert "invalid pin" in str(_raises(ValueError, machine.Pin, 20))
    _raises(ValueError, machine.Pin, 24)
    _raises(ValueError, machine.Pin, 40)
    assert "only be input" in str(_raises(ValueError, machine.Pin, 35, machine.Pin.OUT))
    machine.Pin(35, machine.Pin.IN)  # input-only pins are fine as inputs
    chip.configure(mcu="esp32s3")
    machine.Pin(40, machine.Pin.OUT)  # exists on the S3
    machine.Pin(35, machine.Pin.OUT)
    _raises(ValueError, machine.Pin, 22)


def test_constants_match_port():
    P = machine.Pin
    assert (P.IN, P.OUT, P.OPEN_DRAIN) == (1, 3, 7)
    assert (P.PULL_DOWN, P.PULL_UP, P.IRQ_RISING, P.IRQ_FALLING) == (1, 2, 1, 2)
    assert (machine.PWRON_RESET, machine.HARD_RESET, machine.WDT_RESET,
            machine.DEEPSLEEP_RESET, machine.SOFT_RESET) == (1, 2, 3, 4, 5)


def test_one_object_per_gpio():
    a = machine.Pin(4)
    b = machine.Pin(4, machine.Pin.OUT)
    assert a is b
    assert repr(a) == "Pin(4)"


def test_output_reaches_watchers():
    seen = []
    bus.on_pin(25, lambda v: seen.append(v))
    p = machine.Pin(25, machine.Pin.OUT, value=1)
    assert seen == [1] and p.value() == 1
    p.off()
    p.off()  # no edge, no call
    p(1)
    p.toggle()
    assert seen == [1, 0, 1, 0]


def test_value_before_output_mode_is_latched():
    seen = []
    bus.on_pin(26, lambda v: seen.append(v))
    p = machine.Pin(26, machine.Pin.IN)
    p.value(1)
    assert seen == []  # an input does not drive
    p.init(machine.Pin.OUT)
    assert seen == [1]


def test_input_levels_and_pulls():
    p = machine.Pin(34, machine.Pin.IN)
    assert p.value() == 0
    bus.drive(34, 1)
    assert p.value() == 1
    q = machine.Pin(32, machine.Pin.IN, machine.Pin.PULL_UP)
    assert q.value() == 1  # nobody drives it: the pull-up wins
    bus.drive(32, 0)
    assert q.value() == 0


def test_open_drain():
    p = machine.Pin(21, machine.Pin.OPEN_DRAIN, machine.Pin.PULL_UP, value=0)
    assert p.value() == 0
    p.value(1)  # released: the line floats up
    assert p.value() == 1
    bus.drive(21, 0)  # somebody else pulls low
    assert p.value() == 0


def test_irq_edges():
    p = machine.Pin(35, machine.Pin.IN)
    got = []
    p.irq(handler=lambda pin: got.append(("f", pin.value())), trigger=machine.Pin.IRQ_FALLING)
    bus.drive(35, 1)
    bus.drive(35, 0)
    assert got == [("f", 0)]
    p.irq(handler=lambda pin: got.append("r"), trigger=machine.Pin.IRQ_RISING)
    bus.drive(35, 1)
    bus.drive(35, 0)
    assert got == [("f", 0), "r"]
    p.irq(None)
    bus.drive(35, 1)
    assert len(got) == 2


def test_irq_from_scheduled_peripheral_and_disable_irq():
    p = machine.Pin(15, machine.Pin.IN)
    got = []
    p.irq(lambda pin: got.append(vclock.now_us()), machine.Pin.IRQ_FALLING)
    bus.drive(15, 1)
    vclock.schedule(500, lambda: bus.drive(15, 0))
    st = machine.disable_irq()
    vclock.advance_us(1000)
    assert got == []  # held while interrupts are off
    machine.enable_irq(st)
    assert got == [1000]  # runs once interrupts are back on


def test_signal_invert():
    seen = []
    bus.on_pin(13, lambda v: seen.append(v))
    s = machine.Signal(machine.Pin(13, machine.Pin.OUT), invert=True)
    s.on()
    assert seen == [0] and s.value() == 1
    s.off()
    assert seen == [0, 1] and s.value() == 0
    s2 = machine.Signal(14, machine.Pin.OUT)
    s2.on()
    assert machine.Pin(14).value() == 1


def test_nonexistent_names_raise_attribute_error():
    _raises(AttributeError, getattr, machine, "nonexistent")
    _raises(AttributeError, getattr, machine.Pin(2), "high")  # a pyb name, not esp32
    _raises(AttributeError, getattr, machine.Pin, "PULL_HOLD")
    _raises(AttributeError, getattr, machine.I2C(0), "read_byte")
    _raises(TypeError, machine.Pin(2).init, machine.Pin.OUT, bogus=1)


def test_time_pulse_us():
    p = machine.Pin(36, machine.Pin.IN)
    bus.drive(36, 0)
    vclock.schedule(100, lambda: bus.drive(36, 1))
    vclock.schedule(350, lambda: bus.drive(36, 0))
    assert machine.time_pulse_us(p, 1, 10000) == 250
    assert machine.time_pulse_us(p, 1, 1000) == -2
