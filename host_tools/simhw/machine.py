# The host's `machine` module: the ESP32 port's classes and functions with
# their real names, signatures and errors, wired to simulated peripherals
# through vhw.bus and to the virtual chip (vhw.chip) and clock (vclock).
# Anything the port does not have is absent, so it raises AttributeError.
# Under MicroPython this file shadows the built-in `machine` (the simulator
# puts host_tools/simhw on sys.path). Portable: CPython and the unix port.
import vclock
from vhw import bus as _bus
from vhw import chip as _chip

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
SLEEP = 2
DEEPSLEEP = 4
PIN_WAKE = 2
EXT0_WAKE = 2
EXT1_WAKE = 3
TIMER_WAKE = 4
TOUCHPAD_WAKE = 5
ULP_WAKE = 6
_CAUSE = {"power": PWRON_RESET, "hard": HARD_RESET, "wdt": WDT_RESET,
          "deepsleep": DEEPSLEEP_RESET, "soft": SOFT_RESET, "bootloader": HARD_RESET}

_pins = {}  # gpio -> Pin (the port hands out one object per GPIO)
_timers = {}
_pwms = {}
_uarts = {}  # uart id -> _UartPort (the driver state, shared by UART objects)
_irq_queue = []


def _gpio(p):
    """GPIO number of a Pin or an int, validated like the port."""
    if isinstance(p, Pin):
        return p._id
    if type(p) is int and p in _chip.get().gpios:
        return p
    raise ValueError("invalid pin")


def _reset_hook(cause):
    for p in _pins.values():  # a reset returns every pad to its default
        p._mode = None
        p._pull = None
        p._out = 0
        p._handler = None
        p._trigger = 0
    for t in list(_timers.values()):
        t.deinit()
    for p in list(_pwms.values()):
        p._stop()
    for u in _uarts.values():
        u.close()
    _uarts.clear()
    _bus._uart_ports.clear()  # (the helper dict machine appended to bus.py)
    del _irq_queue[:]


# --- Pin ---------------------------------------------------------------------


class _PinIRQ:
    def __init__(self, pin):
        self._pin = pin

    def __call__(self):
        h = self._pin._handler
        if h is not None:
            h(self._pin)

    def trigger(self, *args):
        return self._pin._trigger


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_DOWN = 1
    PULL_UP = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2
    WAKE_LOW = 4
    WAKE_HIGH = 5
    DRIVE_0 = 0
    DRIVE_1 = 1
    DRIVE_2 = 2
    DRIVE_3 = 3

    def __new__(cls, id, *args, **kw):
        g = _gpio(id)
        p = _pins.get(g)
        if p is None:
            p = object.__new__(cls)
            p._id = g
            p._mode = None
            p._pull = None
            p._out = 0
            p._handler = None
            p._trigger = 0
            p._irq = _PinIRQ(p)
            _pins[g] = p
        return p

    def __init__(self, id, *args, **kw):
        if args or kw:
            self.init(*args, **kw)

    def __repr__(self):
        return "Pin(%d)" % self._id

    def init(self, mode=None, pull=-1, *, value=None, drive=None, hold=None):
        if value is not None:
            self._set_out(1 if value else 0, False)
        if mode is not None and mode != -1:
            if mode not in (1, 3, 7):
                raise ValueError("invalid pin mode")
            if mode & 2 and self._id >= _chip.get().first_input_only:
                raise ValueError("pin can only be input")
            old = self._mode
            self._mode = mode
            if mode & 2 and not (old and old & 2):
                _bus.pin_driven(self._id, self._out)
                if self._out == 0:  # an undriven chip-select idles high
                    self._cs_edge(0)
        if pull != -1:
            self._pull = pull
        return None

    def _level(self):
        if self._mode == 3 or (self._mode == 7 and self._out == 0):
            return self._out
        return 1 if _bus.level(self._id, 1 if self._pull == 2 else 0) else 0

    def value(self, *args):
        if not args:
            return self._level()
        self._set_out(1 if args[0] else 0, True)
        return None

    def __call__(self, *args):
        return self.value(*args)

    def on(self):
        self._set_out(1, True)

    def off(self):
        self._set_out(0, True)

    def toggle(self):
        self._set_out(1 - self._out, True)

    def _set_out(self, v, emit):
        old = self._out
        self._out = v
        if emit and self._mode and self._mode & 2 and v != old:
            _bus.pin_driven(self._id, v)
            self._cs_edge(v)
            self._external_edge(old, v)

    def _cs_edge(self, v):
        for bus_id, dev in _bus.spi_by_cs(self._id):
            dev.spi_select(v == 0)

    def irq(self, handler=None, trigger=3, wake=None):
        self._handler = handler
        self._trigger = trigger if handler is not None else 0
        if handler is not None:
            _bus.listen_once(self._id, self)
        return self._irq

    def _external_edge(self, old, new):
        if self._handler is None:
            return
        d = 1 if self._pull == 2 else 0
        old = d if old is None else (1 if old else 0)
        new = 1 if new else 0
        if old == new:
            return
        if (new and self._trigger & 1) or (not new and self._trigger & 2):
            if _chip.get().irq_disabled:
                _irq_queue.append(self)
            else:
                self._handler(self)


class Signal:
    def __init__(self, pin, *args, invert=False):
        if not isinstance(pin, Pin):
            pin = Pin(pin, *args)
        self._pin = pin
        self._inv = 1 if invert else 0

    def value(self, *args):
        if not args:
            return self._pin.value() ^ self._inv
        self._pin.value((1 if args[0] else 0) ^ self._inv)

    def __call__(self, *args):
        return self.value(*args)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


# --- WDT ---------------------------------------------------------


class WDT:
    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError("WDT(%d) doesn't exist" % id)
        if timeout <= 0:
            raise ValueError("WDT timeout too short")
        _chip.get().start_wdt(timeout)

    def feed(self):
        _chip.get().feed_wdt()


# --- module functions --------------------------------------------------------


def reset_cause():
    return _CAUSE[_chip.get().reset_cause]


def unique_id():
    return _chip.get().uid


def freq(*args):
    c = _chip.get()
    if not args:
        return c.cpu_freq
    f = args[0]
    if f // 1000000 not in (20, 40, 80, 160, 240):
        raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")
    c.cpu_freq = f // 1000000 * 1000000


def reset():
    raise vclock.DeviceReset("hard", "machine.reset()")


def soft_reset():
    raise vclock.DeviceReset("soft", "machine.soft_reset()")


def bootloader(*args):
    raise vclock.DeviceReset("bootloader", "machine.bootloader()")


def idle():
    # wait for the next interrupt: the next scheduled event, at most 1 ms
    e = vclock.next_event_us()
    now = vclock.now_us()
    vclock.advance_us(min(1000, max(0, e - now)) if e is not None else 1000)


def lightsleep(*args):
    vclock.advance_us((args[0] if args else 0) * 1000)


def sleep(*args):
    lightsleep(*args)


def deepsleep(*args):
    if args:
        vclock.advance_us(args[0] * 1000)
    raise vclock.DeviceReset("deepsleep", "machine.deepsleep()")


def wake_reason():
    return TIMER_WAKE if _chip.get().reset_cause == "deepsleep" else 0


def disable_irq():
    c = _chip.get()
    c.irq_disabled += 1
    return c.irq_disabled - 1


def enable_irq(state=0):
    c = _chip.get()
    c.irq_disabled = state
    if not state:
        while _irq_queue:
            p = _irq_queue.pop(0)
            if p._handler is not None:
                p._handler(p)


# Peripheral classes live in small modules loaded on first use, so a board
# that has no UART pays no heap for it (the firmware shares the heap with the
# simulator) and no single source file is large to compile. This is not a
# catch-all: any name not listed is an AttributeError, as on the device.
_LAZY = {
    "I2C": "m_i2c", "SoftI2C": "machx", "SPI": "m_spi", "SoftSPI": "machx",
    "UART": "m_uart", "PWM": "m_pwm", "RTC": "machx", "Timer": "machx",
    "time_pulse_us": "machx",
}


def __getattr__(name):
    m = _LAZY.get(name)
    if m is None:
        raise AttributeError("module 'machine' has no attribute '%s'" % name)
    mod = __import__("vhw." + m, None, None, (name,))
    v = getattr(mod, name)
    globals()[name] = v
    return v


_chip.on_reset(_reset_hook)
