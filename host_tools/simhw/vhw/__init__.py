# Virtual hardware for the host simulator: the peripherals behind the fake
# machine/network/esp32 modules. Portable (CPython and MicroPython unix port).
