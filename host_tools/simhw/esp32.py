# The host's `esp32` module: Partition (flash partitions and OTA) and NVS as
# the ESP32 port has them, on the virtual chip (vhw.chip) and its flash
# (vhw.flash). ESP-IDF errors surface as OSError(-code, name) like the port's
# check_esp_err. Portable: CPython and the MicroPython unix port.
from vhw import chip as _chip

HEAP_DATA = 4  # MALLOC_CAP_8BIT
HEAP_EXEC = 1  # MALLOC_CAP_EXEC
WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True

_ERR = {
    0x102: "ESP_ERR_INVALID_ARG",
    0x104: "ESP_ERR_INVALID_SIZE",
    0x105: "ESP_ERR_NOT_FOUND",
    0x1102: "ESP_ERR_NVS_NOT_FOUND",
    0x1105: "ESP_ERR_NVS_NOT_ENOUGH_SPACE",
    0x1108: "ESP_ERR_NVS_INVALID_NAME",
    0x1109: "ESP_ERR_NVS_KEY_TOO_LONG",
    0x110C: "ESP_ERR_NVS_INVALID_LENGTH",
    0x1503: "ESP_ERR_OTA_VALIDATE_FAILED",
}


def _err(code):
    raise OSError(-code, _ERR.get(code, "ESP_FAIL"))


def raw_temperature():
    return 120  # Fahrenheit-ish raw reading of an idle ESP32


def mcu_temperature():
    if _chip.get().mcu == "esp32":
        raise AttributeError("mcu_temperature")
    return 42


def idf_heap_info(capabilities):
    return [(240, 0, 0, 0), (7288, 0, 0, 0), (16648, 4, 4, 4), (94240, 41536, 40960, 40128)]


def wake_on_touch(wake):
    pass


def wake_on_ulp(wake):
    pass


def wake_on_ext0(pin, level):
    pass


def wake_on_ext1(pins, level):
    pass


def gpio_deep_sleep_hold(enable):
    pass


# Partition and NVS live in small modules loaded on first use (the firmware
# shares the heap with the simulator). Not a catch-all: any name not listed
# is an AttributeError, as on the device.
_LAZY = {"Partition": "e_part", "NVS": "e_nvs"}


def __getattr__(name):
    m = _LAZY.get(name)
    if m is None:
        raise AttributeError("module 'esp32' has no attribute '%s'" % name)
    mod = __import__("vhw." + m, None, None, (name,))
    v = getattr(mod, name)
    globals()[name] = v
    return v
