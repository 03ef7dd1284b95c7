// The ferry validator's image (boards/ferry_validator.json).
#define MICROPY_HW_BOARD_NAME               "ykt ferry validator (ESP32-S3-WROOM-1 N8R2)"
#define MICROPY_HW_MCU_NAME                 "ESP32-S3"

// The REPL stays on UART0 (the DevKit's USB-UART port): the technician tools
// (ykt deploy, provision, diagnose) talk to it there.
#define MICROPY_HW_ENABLE_UART_REPL         (1)

// Neither Bluetooth nor an SD card on the board: left out of the image.
#define MICROPY_PY_BLUETOOTH                (0)
#define MICROPY_HW_ENABLE_SDCARD            (0)
