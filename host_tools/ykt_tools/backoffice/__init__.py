"""ykt-gate back office: device API (batch ingest, signed downloads, time,
heartbeats), admin API + dashboard, settlement and exports over SQLite (default,
one WAL file) or PostgreSQL. See docs/backoffice.md."""
import os
import sys

from ykt_tools import FIRMWARE, SIMHW

# The wire format and tap record are defined once, in the firmware package;
# the back office imports them (never a second copy). ykt.compat needs the
# host clock module (simhw/vclock.py) on CPython; the back office itself
# reads wall-clock time only through db.now().
for _p in (SIMHW, FIRMWARE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

PKG_DIR = os.path.dirname(os.path.abspath(__file__))
