# Wiring of the virtual device: which simulated peripheral sits on which bus,
# UART or pin. The fake `machine` module looks devices up here; the simulator
# (world) attaches them before it boots the firmware. Portable.
#
# Device-side protocols (duck-typed; only these names are called):
#   I2C device:  i2c_write(buf) ; i2c_read(n) -> bytes      (raise OSError to NAK/timeout)
#   SPI device:  spi_select(active: bool) ; spi_transfer(wire_bytes) -> wire_bytes
#                wire bytes are as they travel (first bit on the wire = bit 7);
#                the fake SPI converts for firstbit=LSB, so a PN532 sees the truth
#   UART device: uart_rx(buf)  called with bytes the host transmitted (after line time)
#                the device sends with port.deliver(buf) (arrive at the baud rate)
#   Pin watch:   on_pin(gpio, fn(value))  fn called when the firmware drives the pin
#   Pin drive:   drive(gpio, value)       a peripheral drives an input pin (IRQ, button)

_i2c = {}
_spi = {}
_uart = {}
_pin_watch = {}
_pin_level = {}
_pin_listeners = []  # fake Pin objects that want IRQ callbacks: (gpio, pin_obj)
stats = {}


def reset():
    _i2c.clear()
    _spi.clear()
    _uart.clear()
    _pin_watch.clear()
    _pin_level.clear()
    del _pin_listeners[:]
    stats.clear()


def count(key, n=1):
    stats[key] = stats.get(key, 0) + n


def attach_i2c(bus_id, addr, dev):
    _i2c[(bus_id, addr)] = dev


def i2c_device(bus_id, addr):
    return _i2c.get((bus_id, addr))


def i2c_addresses(bus_id):
    return sorted(a for (b, a) in _i2c if b == bus_id)


def attach_spi(bus_id, cs_gpio, dev):
    _spi[(bus_id, cs_gpio)] = dev


def spi_devices(bus_id):
    return [(cs, d) for (b, cs), d in _spi.items() if b == bus_id]


def attach_uart(uart_id, dev):
    _uart[uart_id] = dev


def uart_device(uart_id):
    return _uart.get(uart_id)


def detach_uart(uart_id):
    _uart.pop(uart_id, None)


def on_pin(gpio, fn):
    _pin_watch.setdefault(gpio, []).append(fn)


def pin_driven(gpio, value):
    """Called by the fake Pin when firmware changes an output."""
    for fn in _pin_watch.get(gpio, ()):
        fn(value)


def drive(gpio, value):
    """A peripheral sets the level of an input pin; fake Pins see it and fire IRQs."""
    old = _pin_level.get(gpio)
    _pin_level[gpio] = value
    if old != value:
        for g, p in list(_pin_listeners):
            if g == gpio:
                p._external_edge(old, value)


def level(gpio, default=None):
    return _pin_level.get(gpio, default)


def listen(gpio, pin_obj):
    _pin_listeners.append((gpio, pin_obj))


# --- helpers for the fake machine module (appended; names above unchanged) ---
_uart_ports = {}


def spi_by_cs(cs_gpio):
    """[(bus_id, dev)] of SPI devices whose chip-select is cs_gpio."""
    return [(b, d) for (b, cs), d in _spi.items() if cs == cs_gpio]


def listen_once(gpio, pin_obj):
    """listen(), unless that pin object already listens on gpio."""
    for g, p in _pin_listeners:
        if g == gpio and p is pin_obj:
            return
    _pin_listeners.append((gpio, pin_obj))


def set_uart_port(uart_id, port):
    """The fake UART registers its driver port: port.deliver(buf) sends bytes
    to the ESP32 at the line's baud rate; port.baudrate is the line speed."""
    _uart_ports[uart_id] = port


def uart_port(uart_id):
    """The port of UART uart_id once the firmware created it, else None."""
    return _uart_ports.get(uart_id)


class UartDevice:
    """What a simulated UART module shares: wiring to a UART id and the
    port the firmware's machine.UART opens (bytes go back through it)."""
    port = None
    uart_id = None

    def attach(self, uart_id):
        self.uart_id = uart_id
        attach_uart(uart_id, self)
        p = uart_port(uart_id)
        if p is not None:
            self.port = p

    def uart_attached(self, port):
        self.port = port
