# micropython32: the ESP32-faithful host runtime. The 32-bit unix port has
# the ESP32's object model; freezing the firmware puts its code in the image,
# as on a PSRAM-less board, so the heap holds only what the device's heap
# holds. Built by `make micropython32` (docs/runtime.md).
include("$(MPY_DIR)/extmod/asyncio")
require("ssl")
include("../../firmware/manifest.py")
include("../simhw/manifest.py")
