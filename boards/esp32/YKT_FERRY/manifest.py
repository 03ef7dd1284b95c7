# Frozen into the YKT_FERRY image: the ESP32 port's default modules (_boot.py
# mounts the vfs partition and inisetup formats it on first boot, asyncio, ...)
# and the ship list, firmware/manifest.py (main.py, otaboot.py, the ykt package).
include("$(PORT_DIR)/boards/manifest.py")
include("../../../firmware/manifest.py")
