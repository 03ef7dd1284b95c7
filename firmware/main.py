# Device entry point (MicroPython runs main.py after boot.py).
import ykt.app

ykt.app.main()
