# MicroPython ESP32 port board: the ferry validator (boards/ferry_validator.json),
# ESP32-S3-WROOM-1 N16R2: 16 MB quad flash, 2 MB quad PSRAM. Build steps:
# docs/images.md. The port's sdkconfig.usb (native USB) and sdkconfig.spiram_sx
# (quad PSRAM) as for its generic S3 board; no sdkconfig.ble (no Bluetooth).
set(IDF_TARGET esp32s3)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${SDKCONFIG_IDF_VERSION_SPECIFIC}
    boards/sdkconfig.usb
    boards/sdkconfig.spiram_sx
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

include(${MICROPY_BOARD_DIR}/../ykt_common.cmake)
