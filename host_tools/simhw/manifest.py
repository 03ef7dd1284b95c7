# The simulated hardware, frozen into the micropython32 host runtime so its
# code takes no heap there (the firmware's heap figure must not carry the
# simulator). cryptolib.py and framebuf.py are CPython stand-ins for
# MicroPython built-ins and stay out: frozen, they would shadow the real ones.
module("machine.py")
module("network.py")
module("esp32.py")
module("vclock.py")
package("vhw")
