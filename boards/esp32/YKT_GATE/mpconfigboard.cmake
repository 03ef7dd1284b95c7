# MicroPython ESP32 port board: the turnstile (boards/turnstile.json),
# ESP32-WROOM-32E-N16, 16 MB flash, no PSRAM. Build steps: docs/images.md.
# No boards/sdkconfig.ble: the gates use no Bluetooth.
set(IDF_TARGET esp32)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${SDKCONFIG_IDF_VERSION_SPECIFIC}
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

include(${MICROPY_BOARD_DIR}/../ykt_common.cmake)
