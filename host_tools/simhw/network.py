# The host's `network` module: the ESP32 port's WLAN with its status logic
# (including automatic reconnects), on virtual time, with outcomes decided by
# vhw.netsim. Sockets are real loopback sockets: nothing to fake there.
# Portable: CPython and the MicroPython unix port.
import vclock
from vhw import chip as _chip
from vhw import netsim as _net

STA_IF = 0
AP_IF = 1
MODE_11B = 1
MODE_11G = 2
MODE_11N = 4
MODE_LR = 8
AUTH_OPEN = 0
AUTH_WEP = 1
AUTH_WPA_PSK = 2
AUTH_WPA2_PSK = 3
AUTH_WPA_WPA2_PSK = 4
AUTH_WPA2_ENTERPRISE = 5
AUTH_WPA3_PSK = 6
AUTH_WPA2_WPA3_PSK = 7
AUTH_WAPI_PSK = 8
AUTH_OWE = 9
AUTH_MAX = 10
# the port's statuses: its own three, then ESP-IDF disconnect reasons
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204
_ASSOC_LEAVE = 8
_ZERO = ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

_s = {}


def _reset(cause=None):
    ev = _s.get("ev")
    if ev is not None:
        vclock.cancel(ev)
    _s.clear()
    _s.update({"active": [False, False], "requested": False, "connected": False,
               "reason": 0, "conf_rec": 0, "tries": 0, "ev": None, "ssid": "",
               "key": "", "bssid": None, "static": None, "dhcp": True, "pm": 1,
               "txpower": 20.0, "ap_ssid": "", "ap_key": "", "ap_auth": 0, "channel": 1,
               "dns": None, "hostname": "mpy-esp32", "country": "01", "phy": 7})


_reset()
_chip.on_reset(_reset)


def _link(up):
    if not up and _s["connected"]:
        a = _net.ap()
        _s["ev"] = vclock.schedule((a["beacon_timeout_ms"] if a else 0) * 1000, _lost)


def _lost():
    _s["ev"] = None
    if _s["connected"] and not _net.is_up():
        _s["connected"] = False
        _s["reason"] = STAT_BEACON_TIMEOUT
        _retry()


_net.listen(_link)


def _attempt():
    ok, ms, reason = _net.attempt(_s["ssid"], _s["key"], _s["bssid"])
    _s["ev"] = vclock.schedule(ms * 1000, lambda: _done(ok, reason))


def _done(ok, reason):
    _s["ev"] = None
    if ok and _net.is_up():
        _s["connected"] = True
        _s["reason"] = 0
        return
    _s["reason"] = reason or STAT_NO_AP_FOUND
    _retry()


def _retry():
    # the port's event handler reconnects while a connect is requested, up to
    # config(reconnects=n) times (default: forever)
    if not _s["requested"] or not _s["active"][0]:
        return
    _s["tries"] += 1
    c = _s["conf_rec"]
    if c == 0 or _s["tries"] < c:
        _attempt()


def _cancel():
    if _s["ev"] is not None:
        vclock.cancel(_s["ev"])
        _s["ev"] = None


class WLAN:
    IF_STA = 0
    IF_AP = 1
    SEC_OPEN = 0
    SEC_WEP = 1
    SEC_WPA = 2
    SEC_WPA2 = 3
    SEC_WPA_WPA2 = 4
    SEC_WPA2_ENT = 5
    SEC_WPA3 = 6
    SEC_WPA2_WPA3 = 7
    SEC_WAPI = 8
    SEC_OWE = 9
    PM_NONE = 0
    PM_PERFORMANCE = 1
    PM_POWERSAVE = 2

    def __init__(self, interface_id=0):
        if interface_id not in (0, 1):
            raise ValueError("invalid WLAN interface identifier")
        self._if = interface_id

    def __repr__(self):
        return "<WLAN %s>" % ("STA" if self._if == 0 else "AP")

    def _need(self, if_no):
        if self._if != if_no:
            raise OSError("STA required" if if_no == 0 else "AP required")

    def active(self, *args):
        if args:
            on = bool(args[0])
            _s["active"][self._if] = on
            if not on and self._if == 0:
                _cancel()
                if _s["connected"]:
                    _s["reason"] = _ASSOC_LEAVE
                _s["connected"] = False
                _s["requested"] = False
        return _s["active"][self._if]

    def connect(self, ssid=None, key=None, *, bssid=None):
        self._need(0)
        if not _s["active"][0]:
            raise OSError("Wifi Not Started")
        if ssid is not None:
            _s["ssid"] = ssid
        if key is not None:
            _s["key"] = key
        if bssid is not None and len(bssid) != 6:
            raise ValueError()
        _s["bssid"] = bssid
        _cancel()
        _s["connected"] = False
        _s["tries"] = 0
        _s["requested"] = True
        _attempt()

    def disconnect(self):
        _s["requested"] = False
        _cancel()
        if _s["connected"] or _s["reason"] != 0:
            _s["reason"] = _ASSOC_LEAVE
        _s["connected"] = False

    def isconnected(self):
        if self._if == 0:
            return _s["connected"]
        return False

    def status(self, *args):
        if args:
            if args[0] == "rssi":
                self._need(0)
                if not _s["connected"]:
                    raise OSError("Wifi Not Connected")
                return _net.ap()["rssi"]
            if args[0] == "stations":
                self._need(1)
                return []
            raise ValueError("unknown status param")
        if self._if != 0:
            return None
        if _s["connected"]:
            return STAT_GOT_IP
        c = _s["conf_rec"]
        if _s["requested"] and (c == 0 or _s["tries"] < c):
            return STAT_CONNECTING
        if _s["reason"] == 0:
            return STAT_IDLE
        return _s["reason"]

    def scan(self):
        if not _s["active"][0]:
            raise OSError("STA must be active")
        a = _net.ap()
        vclock.advance_us((a["scan_ms"] if a else _net.SCAN_MS) * 1000)
        return _net.scan_results()

    def _cfg(self):
        if _s["static"] is not None:
            return _s["static"]
        if self._if == 0 and _s["connected"]:
            return _net.ap()["ifconfig"]
        if self._if == 1 and _s["active"][1]:
            return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "0.0.0.0")
        return _ZERO

    def ifconfig(self, *args):
        if not args:
            return self._cfg()
        cfg = args[0]
        if cfg == "dhcp":
            _s["static"] = None
            _s["dhcp"] = True
            return None
        if len(cfg) != 4:
            raise ValueError("need 4 items")
        _s["static"] = tuple(cfg)
        _s["dhcp"] = False

    def ipconfig(self, *args, **kw):
        if args and kw:
            raise TypeError("either pos or kw args are allowed")
        if kw:
            for k, v in kw.items():
                if k == "dhcp4":
                    _s["dhcp"] = bool(v)
                    if v:
                        _s["static"] = None
                elif k == "addr4":
                    ip, mask = (v.split("/")[0], "255.255.255.0") if isinstance(v, str) else v
                    c = self._cfg()
                    _s["static"] = (ip, mask, c[2], c[3])
                    _s["dhcp"] = False
                elif k == "gw4":
                    c = self._cfg()
                    _s["static"] = (c[0], c[1], v, c[3])
                else:
                    raise ValueError("unexpected key")
            return None
        if len(args) != 1:
            raise TypeError("can query only one param")
        k = args[0]
        c = self._cfg()
        if k == "addr4":
            return (c[0], c[1])
        if k == "gw4":
            return c[2]
        if k in ("dhcp4", "has_dhcp4"):
            return _s["dhcp"]
        raise ValueError("unexpected key")

    def config(self, *args, **kw):
        if args and kw:
            raise TypeError("either pos or kw args are allowed")
        if kw:
            for k, v in kw.items():
                if k == "reconnects":
                    self._need(0)
                    _s["conf_rec"] = 0 if v == -1 else v + 1
                elif k in ("ssid", "essid"):
                    self._need(1)
                    _s["ap_ssid"] = v
                elif k in ("key", "password"):
                    self._need(1)
                    _s["ap_key"] = v
                elif k in ("security", "authmode"):
                    self._need(1)
                    _s["ap_auth"] = v
                elif k == "channel":
                    _s["channel"] = v
                elif k == "pm":
                    _s["pm"] = v
                elif k == "txpower":
                    _s["txpower"] = float(v)
                elif k == "mac":
                    if len(v) != 6:
                        raise ValueError("invalid buffer length")
                elif k in ("hostname", "dhcp_hostname"):
                    _s["hostname"] = v
                else:
                    raise ValueError("unknown config param")
            return None
        if len(args) != 1:
            raise TypeError("can query only one param")
        k = args[0]
        if k == "mac":
            uid = _chip.get().uid
            if self._if == 1:
                return uid[:5] + bytes([(uid[5] + 1) & 0xFF])
            return uid
        if k in ("ssid", "essid"):
            return _s["ssid"] if self._if == 0 else _s["ap_ssid"]
        if k == "channel":
            a = _net.ap()
            return a["channel"] if (self._if == 0 and _s["connected"]) else _s["channel"]
        if k in ("security", "authmode"):
            self._need(1)
            return _s["ap_auth"]
        if k == "reconnects":
            self._need(0)
            return _s["conf_rec"] - 1
        if k in ("hostname", "dhcp_hostname"):
            return _s["hostname"]
        if k == "pm":
            return _s["pm"]
        if k == "txpower":
            return _s["txpower"]
        raise ValueError("unknown config param")


def hostname(*args):
    if args:
        if len(args[0]) > 32:
            raise ValueError("hostname too long")
        _s["hostname"] = args[0]
        return None
    return _s["hostname"]


def country(*args):
    if args:
        _s["country"] = args[0]
        return None
    return _s["country"]


def phy_mode(*args):
    if args:
        _s["phy"] = args[0]
        return None
    return _s["phy"]


def ipconfig(*args, **kw):
    if kw:
        for k, v in kw.items():
            if k == "dns":
                _s["dns"] = v
            elif k != "prefer":
                raise ValueError("unexpected key")
        return None
    if args and args[0] == "dns":
        if _s["dns"] is not None:
            return _s["dns"]
        return WLAN(0)._cfg()[3]
    raise ValueError("unexpected key")


# --- PPP (extmod/network_ppp_lwip.c) ------------------------------------------
# network.PPP(stream) over the modem's UART. The link comes up one LCP/IPCP
# negotiation after connect(), and only when the simulated modem on that UART
# (vhw/modemsim.py) is in data mode on the network's APN; it goes down when the
# modem drops the carrier. vhw/ipnet.py carries sockets over it (link "ppp")
# when no WLAN is connected, as lwIP routes by the default interface.
PPP_NEGOTIATE_MS = 1500
_ppps = []


def _ppp_up():
    for p in _ppps:
        if p.isconnected():
            return True
    return False


def _ppp_reset(cause=None):
    for p in _ppps:
        if p._ev is not None:
            vclock.cancel(p._ev)
    del _ppps[:]


_chip.on_reset(_ppp_reset)


class PPP:
    SEC_NONE = 0
    SEC_PAP = 1
    SEC_CHAP = 2
    # status(): the state, or minus the lwIP PPP error code
    _INACTIVE = 0
    _ACTIVE = 1
    _ERROR = 2
    _CONNECTING = 3
    _CONNECTED = 4
    _ERR_CONNECT = 5      # PPPERR_CONNECT: the peer does not answer LCP

    def __init__(self, stream):
        self._stream = stream
        self._state = PPP._INACTIVE
        self._err = 0
        self._ev = None
        self._cfg = _ZERO
        self._dev = None
        _ppps.append(self)

    def _modem(self):
        # looked up once: the C module's isconnected() allocates nothing, nor may this
        if self._dev is None:
            from vhw import bus

            self._dev = bus.uart_device(getattr(self._stream, "_id", -1))
        return self._dev

    def active(self, *args):
        if args:
            if args[0]:
                if self._state == PPP._INACTIVE:
                    self._state = PPP._ACTIVE
            else:
                self.disconnect()
                self._state = PPP._INACTIVE
        return self._state != PPP._INACTIVE

    def connect(self, security=0, user=None, key=None):
        if self._state == PPP._INACTIVE:
            raise OSError("must be active")
        if self._state in (PPP._CONNECTING, PPP._CONNECTED):
            raise OSError("already connected")
        self._state = PPP._CONNECTING
        self._err = 0
        self._ev = vclock.schedule(PPP_NEGOTIATE_MS * 1000, self._negotiated)

    def _negotiated(self):
        self._ev = None
        m = self._modem()
        if self._state == PPP._CONNECTING and m is not None and m.carrier():
            self._state = PPP._CONNECTED
            self._cfg = ("10.64.%d.%d" % (_chip.get().uid[4], _chip.get().uid[5]), "255.255.255.255",
                         "10.64.0.1", "211.136.17.107")
        else:
            self._state = PPP._ERROR
            self._err = PPP._ERR_CONNECT

    def disconnect(self):
        if self._ev is not None:
            vclock.cancel(self._ev)
            self._ev = None
        if self._state in (PPP._CONNECTING, PPP._CONNECTED, PPP._ERROR):
            self._state = PPP._ACTIVE
        self._cfg = _ZERO

    def isconnected(self):
        if self._state != PPP._CONNECTED:
            return False
        m = self._modem()
        if m is None or not m.carrier():
            # the modem hung up: lwIP sees the serial link end (PPPERR_CONNECT)
            self._state = PPP._ERROR
            self._err = PPP._ERR_CONNECT
            self._cfg = _ZERO
            return False
        return True

    def status(self):
        self.isconnected()
        if self._state == PPP._ERROR:
            return -self._err
        return self._state

    def ifconfig(self, *args):
        if args:
            raise OSError("PPP gets its address from the peer")
        self.isconnected()
        return self._cfg

    def config(self, *args, **kw):
        if kw:
            return None
        if args and args[0] == "stream":
            return self._stream
        raise ValueError("unknown config param")

    def poll(self):
        return 0
