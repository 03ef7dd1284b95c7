# The virtual ESP32 itself: which MCU, its unique id (base MAC), the flash chip
# and partition table (a board's comes from its board file, see world), reset
# cause and counts, RTC slow memory, NVS, the OTA data (which app boots), and
# the watchdog. The fake machine/network/esp32
# modules read and update this state; the simulator (world) creates the chip,
# catches vclock.DeviceReset and calls reboot(cause) before booting again.
# Portable (CPython and MicroPython unix port).
import vclock
from vhw import flash as _flash
from vhw import keep

# GPIOs the port's Pin table has (flash pins included: the port allows them).
_ESP32_GPIO = tuple(range(0, 20)) + (21, 22, 23, 25, 26, 27) + tuple(range(32, 40))
_ESP32S3_GPIO = tuple(range(0, 22)) + tuple(range(26, 49))
MCUS = {
    # mcu: (gpios, first input-only gpio, uart ids, i2c ids, spi ids, pwm channels)
    "esp32": (_ESP32_GPIO, 34, 3, 2, (1, 2), 16),
    "esp32s3": (_ESP32S3_GPIO, 99, 3, 2, (1, 2), 8),
}

TYPE_APP = 0
TYPE_DATA = 1
SUB_OTA0 = 0x10
SUB_DLIST = 0x40  # ESP-IDF leaves data subtypes 0x40..0xFE to applications
SUB_FAT = 0x81  # MicroPython labels its vfs partition data/fat (holds littlefs)
KIB = 1024
MIB = 1024 * 1024

CAUSES = ("power", "hard", "wdt", "deepsleep", "soft", "bootloader")


def partition_table(flash_size, dlist_size=256 * KIB, app_size=0x180000):
    """A bare chip's table, for tests that configure no board: (label, type,
    subtype, offset, size) with nvs, otadata, phy_init, two OTA app slots, two
    raw deny-list slots and the rest as the littlefs vfs. A board's own layout
    is its board file's "partitions" (ykt.boardcfg.partition_table), which
    vhw.world passes as `table`."""
    t = [
        ("nvs", TYPE_DATA, 0x02, 0x9000, 0x4000),
        ("otadata", TYPE_DATA, 0x00, 0xD000, 0x2000),
        ("phy_init", TYPE_DATA, 0x01, 0xF000, 0x1000),
        ("ota_0", TYPE_APP, SUB_OTA0, 0x10000, app_size),
        ("ota_1", TYPE_APP, SUB_OTA0 + 1, 0x10000 + app_size, app_size),
    ]
    off = 0x10000 + 2 * app_size
    t.append(("dlist_a", TYPE_DATA, SUB_DLIST, off, dlist_size))
    t.append(("dlist_b", TYPE_DATA, SUB_DLIST, off + dlist_size, dlist_size))
    off += 2 * dlist_size
    if off + 64 * KIB > flash_size:
        raise ValueError("partition table does not fit %d bytes of flash" % flash_size)
    t.append(("vfs", TYPE_DATA, SUB_FAT, off, flash_size - off))
    return t


class Chip:
    def __init__(self, mcu="esp32", flash_mb=4, unique_id=None, flash_path=None,
                 table=None, dlist_size=256 * KIB, rollback=True, psram=False):
        if mcu not in MCUS:
            raise ValueError("unknown mcu %r" % mcu)
        self.mcu = mcu
        m = MCUS[mcu]
        gp = m[0]
        if psram and mcu == "esp32":
            gp = tuple(g for g in gp if g not in (16, 17))  # PSRAM uses them
        self.gpios = gp
        self.first_input_only = m[1]
        self.n_uart, self.n_i2c, self.spi_ids, self.pwm_channels = m[2], m[3], m[4], m[5]
        self.uid = bytes(unique_id) if unique_id is not None else b"\x24\x0a\xc4\x00\x00\x01"
        if len(self.uid) != 6:
            raise ValueError("unique_id is 6 bytes (the base MAC)")
        self.flash = _flash.FlashChip(flash_mb * MIB, flash_path)
        self.partitions = table if table is not None else partition_table(flash_mb * MIB, dlist_size)
        self.rollback = rollback
        self.reset_cause = "power"
        self.reset_counts = {}
        self.boots = 1
        self.cpu_freq = 160000000
        self.rtc_mem = b""
        self.nvs = {}  # committed: namespace -> {key: value (int or bytes)}
        self.nvs_pending = {}  # namespace -> {key: value or None (erased)}
        # otadata: the slot that boots next and each slot's image state
        # ("valid" | "new" | "pending" | "aborted"); esptool-flashed ota_0 is valid
        first_app = [p[0] for p in self.partitions if p[1] == TYPE_APP][0]
        self.ota_boot = first_app
        self.ota_running = first_app
        self.ota_state = {first_app: "valid"}
        self.wdt_timeout_ms = 0
        self.wdt_event = None
        self.wdt_fired = 0
        self.pwm_log = []
        self.irq_disabled = 0

    # --- reset -------------------------------------------------------------
    def reboot(self, cause):
        """Apply a reset of `cause` (one of CAUSES) before the firmware boots
        again: volatile state goes, persistent state stays."""
        if cause not in CAUSES:
            raise ValueError("unknown reset cause %r" % cause)
        self.reset_counts[cause] = self.reset_counts.get(cause, 0) + 1
        self.boots += 1
        self.nvs_pending = {}  # uncommitted NVS changes are lost at any reset
        self.irq_disabled = 0
        if cause != "soft":
            # a soft reset restarts the VM only: the chip (and its WDT) runs on
            self.reset_cause = cause
            self.stop_wdt()
            self._boot_ota()
        else:
            self.reset_cause = "soft"
        if cause == "power":
            self.rtc_mem = b""  # RTC slow memory loses power too
            self.flash.power_on()
        else:
            self.flash.new_epoch()
        for fn in _hooks:
            fn(cause)

    def _boot_ota(self):
        """What the bootloader does with otadata and app rollback."""
        b = self.ota_boot
        st = self.ota_state.get(b, "valid")
        if self.rollback and st == "pending":
            # the new image never confirmed itself: roll back
            self.ota_state[b] = "aborted"
            for lab, ty, sub, off, size in self.partitions:
                if ty == TYPE_APP and lab != b and self.ota_state.get(lab, "valid") == "valid":
                    b = lab
                    break
            self.ota_boot = b
        elif self.rollback and st == "new":
            self.ota_state[b] = "pending"
        self.ota_running = b

    # --- watchdog ----------------------------------------------------------
    def start_wdt(self, timeout_ms):
        self.wdt_timeout_ms = timeout_ms
        self.feed_wdt()

    def feed_wdt(self):
        if not self.wdt_timeout_ms:
            if self.wdt_event is not None:
                vclock.cancel(self.wdt_event)
            return
        if self.wdt_event is not None:
            vclock.reschedule(self.wdt_event, self.wdt_timeout_ms * 1000)
        else:
            self.wdt_event = vclock.schedule(self.wdt_timeout_ms * 1000, self._wdt_fire)

    def stop_wdt(self):
        if self.wdt_event is not None:
            vclock.cancel(self.wdt_event)
        self.wdt_event = None
        self.wdt_timeout_ms = 0

    def _wdt_fire(self):
        self.wdt_event = None
        self.wdt_fired += 1
        raise vclock.DeviceReset("wdt", "watchdog not fed for %d ms" % self.wdt_timeout_ms)

    # --- logs --------------------------------------------------------------
    def log_pwm(self, gpio, freq, duty_u16):
        keep(self.pwm_log, (vclock.now_ms(), gpio, freq, duty_u16))

    def partition(self, label):
        for p in self.partitions:
            if p[0] == label:
                return p
        return None


_cur = None
_hooks = []


def on_reset(fn):
    """fn(cause) runs at every Chip.reboot (the fake modules drop their state)."""
    if fn not in _hooks:
        _hooks.append(fn)


def get():
    """The current virtual chip (created with defaults on first use)."""
    global _cur
    if _cur is None:
        _cur = Chip()
    return _cur


def configure(**kw):
    """Power up a fresh chip: configure(mcu=, flash_mb=, unique_id=,
    flash_path=, table=, dlist_size=, rollback=, psram=). The fake modules
    drop their state as at a power-on."""
    global _cur
    _cur = Chip(**kw)
    for fn in _hooks:
        fn("power")
    return _cur


def use(chip):
    """Switch to another Chip object (several simulated devices in one run)."""
    global _cur
    _cur = chip
    return chip
