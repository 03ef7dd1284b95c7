# The fake network.WLAN: the ESP32 port's status logic on virtual time, with
# outcomes from vhw.netsim (AP, key, connect time, link cuts).
import vclock
import network
from vhw import chip, netsim


def setup():
    vclock.reset()
    netsim.reset()
    chip.configure(unique_id=b"\x24\x0a\xc4\x00\x12\x34")


def test_connect_takes_modeled_time():
    netsim.configure("gx-bus", "s3cret", connect_ms=1800)
    w = network.WLAN(network.STA_IF)
    assert not w.active() and w.status() == network.STAT_IDLE
    try:
        w.connect("gx-bus", "s3cret")
    except OSError:
        pass
    else:
        raise AssertionError("connect before active() accepted")
    w.active(True)
    w.connect("gx-bus", "s3cret")
    assert w.status() == network.STAT_CONNECTING and not w.isconnected()
    assert w.ifconfig() == ("0.0.0.0",) * 4
    vclock.sleep_ms(1799)
    assert not w.isconnected()
    vclock.sleep_ms(1)
    assert w.isconnected() and w.status() == network.STAT_GOT_IP
    assert w.ifconfig()[0] == "192.168.4.23"
    assert w.ipconfig("addr4") == ("192.168.4.23", "255.255.255.0")
    assert w.config("ssid") == "gx-bus"
    assert w.config("mac") == b"\x24\x0a\xc4\x00\x12\x34"
    assert network.WLAN(network.AP_IF).config("mac") == b"\x24\x0a\xc4\x00\x12\x35"
    w.disconnect()
    assert not w.isconnected() and w.status() == 8  # ASSOC_LEAVE, as the port reports


def test_wrong_password_retries_then_reports():
    netsim.configure("gx-bus", "right", fail_ms=1000)
    w = network.WLAN(network.STA_IF)
    w.active(True)
    w.connect("gx-bus", "wrong")
    vclock.sleep_ms(10000)
    assert w.status() == network.STAT_CONNECTING  # the port retries forever by default
    w.config(reconnects=2)
    assert w.config("reconnects") == 2
    w.connect("gx-bus", "wrong")
    vclock.sleep_ms(2500)
    assert w.status() == network.STAT_CONNECTING
    vclock.sleep_ms(1000)
    assert w.status() == network.STAT_WRONG_PASSWORD
    assert netsim.stats["attempts"] >= 13


def test_no_ap_found():
    netsim.configure("gx-bus", "k")
    w = network.WLAN(network.STA_IF)
    w.active(True)
    w.config(reconnects=0)
    w.connect("other", "k")
    vclock.sleep_ms(5000)
    assert w.status() == network.STAT_NO_AP_FOUND


def test_link_cut_and_automatic_reconnect():
    netsim.configure("gx-bus", "k", connect_ms=500, fail_ms=1000)
    w = network.WLAN(network.STA_IF)
    w.active(True)
    w.connect("gx-bus", "k")
    vclock.sleep_ms(600)
    assert w.isconnected()
    netsim.outage(1000, 3500)  # from t=1.6 s to t=5.1 s
    vclock.sleep_ms(1000)
    assert not w.isconnected() and not netsim.is_up()
    assert w.status() == network.STAT_CONNECTING
    vclock.sleep_ms(3000)
    assert not w.isconnected()
    vclock.sleep_ms(2500)  # the link is back; the next attempt succeeds
    assert w.isconnected() and netsim.is_up()


def test_beacon_timeout_delay():
    netsim.configure("gx-bus", "k", connect_ms=100, beacon_timeout_ms=6000)
    w = network.WLAN(network.STA_IF)
    w.active(True)
    w.connect("gx-bus", "k")
    vclock.sleep_ms(100)
    netsim.set_up(False)
    vclock.sleep_ms(5999)
    assert w.isconnected()  # the ESP32 has not noticed yet
    vclock.sleep_ms(1)
    assert not w.isconnected()


def test_scan_blocks_and_lists_the_ap():
    netsim.configure("gx-bus", "k", scan_ms=2200, rssi=-61)
    w = network.WLAN(network.STA_IF)
    w.active(True)
    res = w.scan()
    assert vclock.now_us() == 2200000
    assert res == [(b"gx-bus", b"\x02\x00\x5e\x10\x00\x01", 6, -61, 3, False)]
    netsim.set_up(False)
    assert w.scan() == []


def test_reset_turns_wifi_off_and_bad_args():
    w = network.WLAN()
    w.active(True)
    chip.get().reboot("hard")
    assert not network.WLAN(network.STA_IF).active()
    try:
        network.WLAN(2)
    except ValueError:
        pass
    else:
        raise AssertionError("WLAN(2) accepted")
    try:
        w.config("bogus")
    except ValueError:
        pass
    else:
        raise AssertionError("unknown param accepted")
    try:
        network.STAT_CONNECT_FAIL  # the ESP32 port does not define it
    except AttributeError:
        pass
    else:
        raise AssertionError("STAT_CONNECT_FAIL exists")
    assert network.hostname() == "mpy-esp32"
