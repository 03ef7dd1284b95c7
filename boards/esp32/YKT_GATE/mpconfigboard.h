// The turnstile's image (boards/turnstile.json).
#define MICROPY_HW_BOARD_NAME               "ykt turnstile (ESP32-WROOM-32E 8MB)"
#define MICROPY_HW_MCU_NAME                 "ESP32"

// Neither Bluetooth nor an SD card on the board: left out of the image.
#define MICROPY_PY_BLUETOOTH                (0)
#define MICROPY_HW_ENABLE_SDCARD            (0)
