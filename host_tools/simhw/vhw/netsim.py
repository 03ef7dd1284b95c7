# The simulated Wi-Fi around the virtual device: which access point exists,
# its key, how long association + DHCP take, and when the link is cut. The
# fake `network` module asks this module whether a connect succeeds and when;
# the simulator (world) and tests configure it. Actual traffic runs on real
# loopback sockets; is_up() tells a world whether to let it through.
# Portable (CPython and MicroPython unix port).
import vclock

# defaults (virtual ms): association + 4-way handshake + DHCP on a good AP,
# the time an attempt takes to fail, a blocking scan, and how long the ESP32
# takes to notice a vanished AP (0 = at once; a real beacon timeout is ~6 s)
CONNECT_MS = 2000
FAIL_MS = 3000
SCAN_MS = 2200
BEACON_TIMEOUT_MS = 0

_ap = None
_up = True
_listeners = []
_outages = []
stats = {}


def reset():
    global _ap, _up
    _ap = None
    _up = True  # listeners (the fake WLAN) stay registered
    for h in _outages:
        vclock.cancel(h)
    del _outages[:]
    stats.clear()


def configure(ssid, key, connect_ms=CONNECT_MS, fail_ms=FAIL_MS, scan_ms=SCAN_MS,
              beacon_timeout_ms=BEACON_TIMEOUT_MS, bssid=b"\x02\x00\x5e\x10\x00\x01",
              channel=6, rssi=-58, authmode=3, ip="192.168.4.23", netmask="255.255.255.0",
              gateway="192.168.4.1", dns="192.168.4.1"):
    """Define the one access point in range (authmode 3 = WPA2-PSK)."""
    global _ap
    _ap = {"ssid": ssid, "key": key, "connect_ms": connect_ms, "fail_ms": fail_ms,
           "scan_ms": scan_ms, "beacon_timeout_ms": beacon_timeout_ms, "bssid": bytes(bssid),
           "channel": channel, "rssi": rssi, "authmode": authmode,
           "ifconfig": (ip, netmask, gateway, dns)}
    return _ap


def ap():
    return _ap


def is_up():
    """True when the AP is reachable (and traffic may flow)."""
    return _up and _ap is not None


def set_up(up):
    """Cut (False) or restore (True) the link now; connected stations notice."""
    global _up
    up = bool(up)
    if up == _up:
        return
    _up = up
    _count("link_up" if up else "link_down")
    for fn in list(_listeners):
        fn(up)


def outage(start_ms, duration_ms):
    """Schedule a link cut start_ms from now, lasting duration_ms."""
    h1 = vclock.schedule(start_ms * 1000, lambda: set_up(False))
    h2 = vclock.schedule((start_ms + duration_ms) * 1000, lambda: set_up(True))
    _outages.append(h1)
    _outages.append(h2)


def listen(fn):
    """fn(up) is called when the link changes (the fake WLAN uses this)."""
    if fn not in _listeners:
        _listeners.append(fn)


def attempt(ssid, key, bssid=None):
    """Outcome of one association attempt started now:
    (ok, duration_ms, reason) with reason an ESP-IDF WIFI_REASON code."""
    _count("attempts")
    a = _ap
    if a is None or not _up or ssid != a["ssid"] or (bssid is not None and bytes(bssid) != a["bssid"]):
        return (False, a["fail_ms"] if a else FAIL_MS, 201)  # NO_AP_FOUND
    if (key or "") != (a["key"] or ""):
        return (False, a["fail_ms"], 202)  # AUTH_FAIL
    return (True, a["connect_ms"], 0)


def scan_results():
    a = _ap
    if a is None or not _up:
        return []
    return [(a["ssid"].encode(), a["bssid"], a["channel"], a["rssi"], a["authmode"], False)]


def _count(k):
    stats[k] = stats.get(k, 0) + 1
