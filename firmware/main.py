# Device entry point (MicroPython runs main.py after boot.py). otaboot picks
# the application version (A/B, trial after an update, rollback) and runs it.
import otaboot

otaboot.run()
