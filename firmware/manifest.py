# The ship list: every file that goes onto a validator or gate.
#
# `ykt deploy` (USB), `ykt release build` (OTA bundles) and the frozen images
# (the micropython32 host runtime, boards/esp32/*) all read this file, and
# nothing else decides what ships. It is a MicroPython manifest
# (tools/manifestfile.py in the MicroPython source): module() and package()
# only, paths relative to this folder.
#
# main.py and otaboot.py are the boot part: they stay outside the A/B
# application slots because they choose the slot. The ykt package is the
# application: an OTA bundle carries exactly it.
metadata(description="ykt-gate validator and gate firmware", version="0.1.0")
module("main.py")
module("otaboot.py")
package("ykt")
