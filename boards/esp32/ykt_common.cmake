# Shared by the ykt boards (boards/esp32/YKT_*/mpconfigboard.cmake), included
# after a board has set IDF_TARGET and SDKCONFIG_DEFAULTS. docs/images.md.

# The partition table is the board's partitions.csv, generated from its board
# file (`ykt board partitions BOARD --csv --write`). ESP-IDF resolves a relative
# CONFIG_PARTITION_TABLE_CUSTOM_FILENAME against the port directory and an
# sdkconfig file cannot name the board directory, so the setting is written
# here with the absolute path and goes last (a later sdkconfig file wins).
file(WRITE ${CMAKE_BINARY_DIR}/sdkconfig.ykt_partitions
    "CONFIG_PARTITION_TABLE_CUSTOM=y\nCONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"${MICROPY_BOARD_DIR}/partitions.csv\"\n")
list(APPEND SDKCONFIG_DEFAULTS ${CMAKE_BINARY_DIR}/sdkconfig.ykt_partitions)

# Frozen into the image: the board's manifest.py (the port's default modules
# and the ship list). `make FROZEN_MANIFEST=...` still overrides it.
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
