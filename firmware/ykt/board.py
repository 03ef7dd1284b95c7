# The board layer: the only firmware module that creates machine objects. It
# turns a validated board file (ykt.boardcfg) into hardware handles and passes
# them to the logic modules, which never import machine themselves.
import machine

from ykt import boardcfg

_WDT_MS = 8000


class Board:
    def __init__(self, cfg):
        self.cfg = cfg
        self.name = cfg["name"]
        self.kind = cfg["kind"]
        self.found = {}     # peripheral -> short description, for the boot report
        self.missing = {}   # peripheral -> why it is absent
        self._pins = {}

    def has(self, feature):
        return boardcfg.has(self.cfg, feature)

    def pin(self, role, mode=None, pull=None, value=None):
        """A machine.Pin for a role, created once; None if the board lacks the role."""
        p = self._pins.get(role)
        if p is not None:
            return p
        gpio = self.cfg["pins"].get(role)
        if gpio is None:
            return None
        if mode is None:
            mode = machine.Pin.IN if role in boardcfg.INPUT_ROLES else machine.Pin.OUT
        if value is not None:
            p = machine.Pin(gpio, mode, value=value)
        elif pull is not None:
            p = machine.Pin(gpio, mode, pull)
        else:
            p = machine.Pin(gpio, mode)
        self._pins[role] = p
        return p

    def _i2c(self, bus_id, scl_role, sda_role, freq, addr):
        """(machine.I2C, whether addr answers a scan): an absent part is
        reported at boot instead of failing later."""
        pins = self.cfg["pins"]
        i2c = machine.I2C(bus_id, scl=machine.Pin(pins[scl_role]), sda=machine.Pin(pins[sda_role]), freq=freq)
        try:
            return i2c, addr in i2c.scan()
        except OSError:
            return i2c, False

    # --- reader -----------------------------------------------------------
    def reader_transport(self):
        """The PN532 transport for this board's wiring, or None when absent."""
        r = self.cfg["reader"]
        tr = r["transport"]
        irq = self.pin("PN532_IRQ", machine.Pin.IN, machine.Pin.PULL_UP) if "PN532_IRQ" in self.cfg["pins"] else None
        if tr == "i2c":
            from ykt.nfc.pn532_i2c import PN532_I2C

            addr = r.get("addr", 0x24)
            i2c, present = self._i2c(r.get("id", 0), "PN532_SCL", "PN532_SDA", r.get("freq", 100000), addr)
            if not present:
                self.missing["reader"] = "no PN532 answers at I2C 0x%02x on bus %d" % (addr, r.get("id", 0))
            return PN532_I2C(i2c, addr, irq=irq)
        if tr == "spi":
            from ykt.nfc.pn532_spi import PN532_SPI

            spi = machine.SPI(r.get("id", 2), baudrate=r.get("freq", 1000000), polarity=0, phase=0,
                              firstbit=machine.SPI.MSB, sck=machine.Pin(self.cfg["pins"]["PN532_SCK"]),
                              mosi=machine.Pin(self.cfg["pins"]["PN532_MOSI"]),
                              miso=machine.Pin(self.cfg["pins"]["PN532_MISO"]))
            cs = self.pin("PN532_CS", machine.Pin.OUT, value=1)
            return PN532_SPI(spi, cs, irq=irq)
        from ykt.nfc.pn532_hsu import PN532_HSU

        # Opened at the chip's power-up rate; the reader moves both sides to
        # reader.baud at start (SetSerialBaudRate, ykt.nfc.pn532_hsu).
        uart = machine.UART(r.get("id", 1), baudrate=115200, tx=self.cfg["pins"]["PN532_TX"],
                            rx=self.cfg["pins"]["PN532_RX"], timeout=0, rxbuf=512)
        return PN532_HSU(uart, irq=irq, baud=r.get("baud", 115200))

    def reader_reset_pin(self):
        return self.pin("PN532_RST", machine.Pin.OUT, value=1) if "PN532_RST" in self.cfg["pins"] else None

    # --- feedback ---------------------------------------------------------
    def outputs(self):
        """role -> Pin for every feedback output the board has (driven low at boot)."""
        out = {}
        for role in ("LED_R", "LED_G", "LED_B", "RELAY", "ASSIST", "STATUS_LED"):
            if role in self.cfg["pins"]:
                out[role] = self.pin(role, machine.Pin.OUT, value=0)
        return out

    def buzzer(self):
        if "BUZZER" not in self.cfg["pins"]:
            return None
        return machine.PWM(self.pin("BUZZER", machine.Pin.OUT, value=0), freq=2000, duty_u16=0)

    def display_i2c(self):
        """(i2c, addr, width, height) for the SSD1306, or None when absent/not answering."""
        if not self.has("display"):
            return None
        d = self.cfg["display"]
        addr = d.get("addr", 0x3C)
        i2c, ok = self._i2c(d.get("id", 0), "DISP_SCL", "DISP_SDA", d.get("freq", 400000), addr)
        if not ok:
            self.missing["display"] = "no SSD1306 at I2C 0x%02x" % addr
            return None
        self.found["display"] = "ssd1306 %dx%d @0x%02x" % (d.get("width", 128), d.get("height", 64), addr)
        return i2c, addr, d.get("width", 128), d.get("height", 64)

    def qr_uart(self):
        if not self.has("qr"):
            return None
        q = self.cfg["qr"]
        self.found["qr"] = "uart%d %d baud" % (q.get("uart", 2), q.get("baud", 9600))
        return machine.UART(q.get("uart", 2), baudrate=q.get("baud", 9600), tx=self.cfg["pins"]["QR_TX"],
                            rx=self.cfg["pins"]["QR_RX"], timeout=0, rxbuf=512)

    def voice_uart(self):
        """(machine.UART, driver name) for the voice module, or None."""
        if not self.has("voice"):
            return None
        v = self.cfg["voice"]
        pins = self.cfg["pins"]
        self.found["voice"] = "%s on uart%d %d baud" % (v["driver"], v.get("uart", 1), v.get("baud", 9600))
        if "VOICE_RX" in pins:
            u = machine.UART(v.get("uart", 1), baudrate=v.get("baud", 9600), tx=pins["VOICE_TX"],
                             rx=pins["VOICE_RX"], timeout=0, rxbuf=256)
        else:   # the usual wiring: the driver only sends, the module's replies go unheard
            u = machine.UART(v.get("uart", 1), baudrate=v.get("baud", 9600), tx=pins["VOICE_TX"],
                             timeout=0, rxbuf=256)
        return u, v["driver"]

    def modem(self):
        """The cellular modem (ykt.net.modem.Modem) on its UART, or None."""
        m = self.cfg.get("modem")
        if m is None:
            return None
        import network
        from ykt.net.modem import Modem

        pins = self.cfg["pins"]
        u = machine.UART(m.get("uart", 2), baudrate=m.get("baud", 115200), tx=pins["MODEM_TX"],
                         rx=pins["MODEM_RX"], timeout=0, rxbuf=512)
        self.found["modem"] = "%s on uart%d %d baud" % (m["driver"], m.get("uart", 2), m.get("baud", 115200))
        return Modem(u, m["apn"], network.PPP)

    # --- system -----------------------------------------------------------
    def watchdog(self, timeout_ms=_WDT_MS):
        return machine.WDT(timeout=timeout_ms)

    def reset_cause(self):
        c = machine.reset_cause()
        for name in ("PWRON_RESET", "HARD_RESET", "WDT_RESET", "DEEPSLEEP_RESET", "SOFT_RESET"):
            if getattr(machine, name, None) == c:
                return name.lower()
        return "unknown"

    def unique_id(self):
        return machine.unique_id()

    def rtc(self):
        return machine.RTC() if self.has("rtc") else None

    def ext_rtc(self):
        """The battery-backed DS3231 of features.rtc (on the display's I2C
        bus, 0x68), or None when the board has none or it does not answer."""
        if not self.has("rtc"):
            return None
        from ykt.ds3231 import ADDR, DS3231

        d = self.cfg.get("display") or {}
        i2c, ok = self._i2c(d.get("id", 0), "DISP_SCL", "DISP_SDA", d.get("freq", 400000), ADDR)
        if not ok:
            self.missing["rtc"] = "no DS3231 at I2C 0x%02x" % ADDR
            return None
        self.found["rtc"] = "ds3231 @0x%02x" % ADDR
        return DS3231(i2c)

    def partition(self, label):
        import esp32

        found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=label)
        return found[0] if found else None

    def ota_partitions(self):
        """The esp32.Partition class when the flash has OTA app partitions a
        new firmware image can go to (ykt.ota.image), else None (a 4 MB
        module with one factory app)."""
        import esp32

        try:
            esp32.Partition(esp32.Partition.RUNNING).get_next_update()
        except OSError:
            return None
        return esp32.Partition

    def nvs(self, namespace="ykt"):
        import esp32

        return esp32.NVS(namespace)

    def wlan(self, ssid, key):
        """The station interface, connecting (the port retries on its own)."""
        import network

        w = network.WLAN(network.STA_IF)
        w.active(True)
        w.connect(ssid, key)
        return w

    def reset(self):
        machine.reset()
