# ykt-gate firmware package. Modules here run unchanged on ESP32 MicroPython,
# the MicroPython unix port and CPython 3.11; only board.py touches machine.
VERSION = "0.1.0"
