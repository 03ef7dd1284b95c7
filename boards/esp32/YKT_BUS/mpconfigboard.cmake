# MicroPython ESP32 port board: the bus validator (boards/bus_validator.json),
# ESP32-WROOM-32E-N16 (DevKitC-32E carrier), 16 MB flash, no PSRAM. Build steps: docs/images.md.
# No boards/sdkconfig.ble: the validators use no Bluetooth.
set(IDF_TARGET esp32)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${SDKCONFIG_IDF_VERSION_SPECIFIC}
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

include(${MICROPY_BOARD_DIR}/../ykt_common.cmake)
