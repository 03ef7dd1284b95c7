"""ykt-gate host tools (CPython): the `ykt` CLI, simulator driver, back office."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(ROOT, "firmware")
SIMHW = os.path.join(ROOT, "host_tools", "simhw")
HOST = os.path.join(ROOT, "host_tools")   # yktsrv: portable host-side formats
BOARDS = os.path.join(ROOT, "boards")
