# One virtual device: the chip, its flash and filesystem, and the simulated
# peripherals wired as the board file says. The simulator, the scenario runner,
# the virtual device on a pty and the firmware tests all build devices here,
# so "what is attached where" is decided in one place. Portable.
import json
import os
import sys

import vclock
from vhw import bus, chip as _chip, netsim

_FS_MOUNT = "/flash"


def _is_mp():
    return sys.implementation.name == "micropython"


def _read(path):
    with open(path) as f:
        return f.read()


def board_path(name_or_path):
    if name_or_path.endswith(".json"):
        return name_or_path
    for base in ("boards", os.getenv("YKT_BOARDS") or ""):
        if base:
            p = base + "/" + name_or_path + ".json"
            try:
                os.stat(p)
                return p
            except OSError:
                pass
    return "boards/" + name_or_path + ".json"


def _mkdirs(path):
    cur = ""
    for part in path.split("/"):
        if not part:
            cur = "/"
            continue
        cur = part if cur in ("", None) else (cur.rstrip("/") + "/" + part)
        try:
            os.mkdir(cur)
        except OSError:
            pass


class World:
    """A virtual device for a board. root: where its filesystem is seen by the
    firmware ('/flash' = real littlefs on the simulated flash under
    MicroPython; a host folder under CPython, which has no littlefs)."""

    def __init__(self, board="bus_validator", uid=None, timing=None, root=None, fresh=True,
                 epoch=1795000000, flash_path=None, net=True, start_us=0, mtime=True):
        from vhw import heapbudget

        boardcfg = heapbudget.firmware_import("ykt.boardcfg")
        if fresh:
            vclock.reset(start_us=start_us, epoch=epoch)
            bus.reset()
            netsim.reset()
        self.board_src = board_path(board)
        self.board_text = _read(self.board_src)
        self.board = boardcfg.loads(self.board_text, self.board_src)
        b = self.board
        feats = b.get("features", {})
        self.chip = _chip.configure(mcu=b["mcu"], flash_mb=b.get("flash_mb", 4), unique_id=uid,
                                    table=boardcfg.partition_table(b),
                                    psram=b["psram"], flash_path=flash_path)
        if net:
            netsim.configure("ykt-depot", "depot-wifi-key")
        self._attach_reader(timing)
        self._attach_display()
        self._attach_rtc()
        self.qr = None
        if feats.get("qr"):
            try:
                from vhw.qrscanner import QRScannerSim

                self.qr = QRScannerSim()
                self.qr.attach(b["qr"].get("uart", 2), b["qr"].get("baud", 9600))
            except ImportError:
                self.qr = None
        self.voice = None
        if feats.get("voice"):
            from vhw.voicesim import VoiceModuleSim

            self.voice = VoiceModuleSim(b["voice"]["driver"])
            self.voice.attach(b["voice"].get("uart", 1))
        self.modem = None
        if "modem" in b:
            from vhw.modemsim import ModemSim

            self.modem = ModemSim(b["modem"]["apn"])
            self.modem.attach(b["modem"].get("uart", 2))
        self.root = root
        self.mtime = mtime      # littlefs file times from the host clock (False: runs replay exactly)
        self._mount()
        self._preload_chip()
        heapbudget.apply(b["heap_bytes"], b["psram"])

    def _preload_chip(self):
        # The fake machine/esp32/network modules are the chip, not firmware:
        # load them (and their lazily imported parts) before the firmware's
        # heap budget is set, so they are not charged to it.
        import machine
        import esp32
        import network

        for name in ("Pin", "I2C", "SPI", "UART", "PWM", "WDT", "RTC", "Timer"):
            getattr(machine, name, None)
        for name in ("Partition", "NVS"):
            getattr(esp32, name, None)
        getattr(network, "WLAN", None)
        getattr(network, "PPP", None)

    # --- wiring -----------------------------------------------------------
    def _attach_reader(self, timing):
        from vhw.pn532sim import PN532Sim

        b = self.board
        r = b["reader"]
        pins = b["pins"]
        self.pn532 = sim = PN532Sim(timing)
        tr = r["transport"]
        # The fake buses model line time themselves, so the chip adds none.
        if tr == "i2c":
            sim.attach_i2c(r.get("id", 0), r.get("addr", 0x24), freq=0)
        elif tr == "spi":
            sim.attach_spi(r.get("id", 2), pins["PN532_CS"], baud=0)
        else:
            # a PN532 powers up at 115200; reader.baud is negotiated by the firmware
            sim.attach_hsu(r.get("id", 1), baud=115200)
        sim.attach_pins(rst=pins.get("PN532_RST"), irq=pins.get("PN532_IRQ"))
        self.field = sim.field

    def _attach_rtc(self):
        # features.rtc: a DS3231 on the display's I2C bus (ykt.board.ext_rtc)
        self.rtc = None
        b = self.board
        if b.get("features", {}).get("rtc"):
            from vhw.ds3231sim import DS3231

            self.rtc = DS3231()
            bus.attach_i2c(b.get("display", {}).get("id", 0), 0x68, self.rtc)

    def _attach_display(self):
        self.display = None
        b = self.board
        if b.get("features", {}).get("display"):
            from vhw.ssd1306sim import SSD1306

            d = b["display"]
            self.display = SSD1306(d.get("width", 128), d.get("height", 64))
            bus.attach_i2c(d.get("id", 0), d.get("addr", 0x3C), self.display)

    # --- filesystem -------------------------------------------------------
    def _vfs_dev(self):
        from vhw.flash import FlashBlockDev

        lab, ty, sub, off, size = self.chip.partition("vfs")
        return FlashBlockDev(self.chip.flash, off // 4096, size // 4096)

    def _mount(self):
        if self.root is None:
            if _is_mp():
                self.root = _FS_MOUNT
            else:
                import tempfile

                self.root = tempfile.mkdtemp(prefix="ykt-flash-")
        if self.root == _FS_MOUNT:
            import vfs

            try:
                vfs.umount(_FS_MOUNT)
            except OSError:
                pass
            dev = self._vfs_dev()
            try:
                fs = vfs.VfsLfs2(dev, mtime=self.mtime)
            except OSError:
                vfs.VfsLfs2.mkfs(dev)
                fs = vfs.VfsLfs2(dev, mtime=self.mtime)
            vfs.mount(fs, _FS_MOUNT)
        else:
            _mkdirs(self.root)
        self.write("board.json", self.board_text)

    def path(self, name):
        return self.root + "/" + name

    def write(self, name, data):
        p = self.path(name)
        d = p.rsplit("/", 1)[0]
        _mkdirs(d)
        with open(p, "wb" if isinstance(data, (bytes, bytearray)) else "w") as f:
            f.write(data)

    def write_json(self, name, obj):
        self.write(name, json.dumps(obj))

    def nvs_set(self, key, value, namespace="ykt"):
        import esp32

        n = esp32.NVS(namespace)
        n.set_blob(key, value)
        n.commit()

    # --- life cycle -------------------------------------------------------
    def boot(self, log=None):
        """Power on the firmware: a fresh App on this device's state."""
        from ykt import app

        self.app = app.App(self.root, log or (lambda m: None))
        self.report = self.app.boot()
        return self.app

    def chip_state(self):
        """What survives a reset outside RAM (NVS, RTC memory, otadata), so a
        simulator can restart the interpreter itself, as a reset clears RAM."""
        c = self.chip
        nvs = {}
        for ns in c.nvs:
            nvs[ns] = dict((k, ("b", v.hex()) if isinstance(v, (bytes, bytearray)) else ("i", v))
                           for k, v in c.nvs[ns].items())
        return {"nvs": nvs, "rtc_mem": bytes(c.rtc_mem).hex(), "ota_boot": c.ota_boot,
                "ota_running": c.ota_running, "ota_state": c.ota_state, "boots": c.boots,
                "reset_counts": c.reset_counts, "now_us": vclock.now_us()}

    def restore_chip(self, st, cause):
        import binascii

        c = self.chip
        c.nvs = {}
        for ns in st["nvs"]:
            c.nvs[ns] = dict((k, binascii.unhexlify(v[1]) if v[0] == "b" else v[1])
                             for k, v in st["nvs"][ns].items())
        c.rtc_mem = binascii.unhexlify(st["rtc_mem"])
        c.ota_boot, c.ota_running, c.ota_state = st["ota_boot"], st["ota_running"], st["ota_state"]
        c.boots = st["boots"]
        c.reset_counts = st["reset_counts"]
        c.reboot(cause)
        if self.root == _FS_MOUNT:
            self._mount()

    def reboot(self, cause="power"):
        self.chip.reboot(cause)
        if cause == "power" and self.rtc is not None:
            self.rtc.power_cut()
        self.pn532.reset()
        if self.root == _FS_MOUNT:
            self._mount()
        log = self.app.log if getattr(self, "app", None) else None
        self.app = None
        import gc

        gc.collect()
        from vhw import heapbudget

        heapbudget.reset_ram()
        return self.boot(log)

    def run(self, ms, app=None):
        """Run the firmware loop for ms of virtual time, its heap measured
        (vhw.heapbudget). A watchdog or power event surfaces as
        vclock.DeviceReset; the caller decides what to do."""
        from vhw import heapbudget
        from ykt.compat import ticks_ms, ticks_diff

        app = app or self.app
        start = ticks_ms()
        while ticks_diff(ticks_ms(), start) < ms:
            if not heapbudget.step(app):
                vclock.sleep_ms(20)     # the loop's idle period (ykt.app._IDLE_MS)


def boot_virtual_device(devdir, board):
    """The world behind `ykt sim device --pty`: flash persists in devdir, the
    firmware's files are the interpreter's cwd, a test card sits on the reader."""
    global current
    vclock.realtime(True)
    w = World(board, root=os.getcwd(), flash_path=(devdir + "/flash.img") if devdir else None, fresh=True)
    w.field.present("ssc_nanning")
    current = w
    return w


current = None
