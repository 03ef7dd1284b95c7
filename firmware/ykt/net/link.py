# Which uplink carries the device's traffic: the WLAN when it is connected
# (a depot, a station), else the cellular modem's PPP link (a bus on the
# road). lwIP routes by the default interface the same way, so this only
# answers the app's "may the network parts run now?" and says which link
# it was, for the heartbeat. A device with neither declared is always
# "connected": its network parts run and fail on their own (as before).
WIFI = "wifi"
CELLULAR = "cellular"
NONE = "none"


class Link:
    def __init__(self, wlan, modem):
        self.wlan = wlan
        self.modem = modem

    def name(self):
        if self.wlan is not None and self.wlan.isconnected():
            return WIFI
        if self.modem is not None and self.modem.isconnected():
            return CELLULAR
        return NONE

    def isconnected(self):
        if self.wlan is None and self.modem is None:
            return True
        return (self.wlan is not None and self.wlan.isconnected()) or \
            (self.modem is not None and self.modem.isconnected())

    def step(self, now):
        if self.modem is not None:
            self.modem.step(now)
