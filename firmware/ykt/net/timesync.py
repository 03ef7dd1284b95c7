# Device wall time. The device keeps its own model, unix time = base +
# elapsed monotonic ticks, so a jump of the RTC or of a bad source cannot
# scramble tap times; sources only re-anchor the model:
#   TRUST_AUTH  back-office time in an HMAC-authenticated reply (GET /v1/time,
#               every tap ack), corrected by half the round trip
#   TRUST_WEAK  unauthenticated time: HTTP Date header, SNTP. Used only while
#               nothing authenticated is known (a fake server could lie)
#   TRUST_RTC   boot: a battery-backed RTC (ykt.ds3231) that only authenticated
#               time ever sets and that says when its oscillator stopped:
#               trusted for decisions for max_age_s of uptime, or until the
#               back office confirms or corrects it; a weak source never
#               overrides it (docs/time.md)
#   TRUST_NONE  boot: the RTC's value (or 0) and the monotonic clock
# trusted() is what fares need: authenticated time not older than max_age_s
# (the ticks crystal drifts ~50 ppm: 7 days = 30 s). Ticks wrap every 2^30 ms
# (12.4 days), so step() re-anchors at least every hour.
import struct

from ykt.compat import const, ticks_ms, ticks_diff, ticks_add, time as _rtc_time

TRUST_NONE = const(0)
TRUST_WEAK = const(1)
TRUST_AUTH = const(2)
TRUST_RTC = const(3)          # numbered after AUTH so heartbeats keep their values; ranks between WEAK and AUTH
_REANCHOR_MS = const(3600000)
_NTP_DELTA = const(2208988800)   # 1900-01-01 to 1970-01-01


class TimeSync:
    def __init__(self, max_age_s=7 * 86400, jump_s=2, set_rtc=None):
        """set_rtc(unix): optional, lets the board update machine.RTC."""
        self.max_age_s = max_age_s
        self.jump_s = jump_s
        self.set_rtc = set_rtc
        self.level = TRUST_NONE
        self._base = _rtc_time()       # unix seconds at _base_ms
        self._base_ms = ticks_ms()
        self._frac = 0                 # ms carried when re-anchoring
        self._synced_up = None         # uptime-seconds of the last AUTH sync
        self.uptime_s = 0
        self._up_ms = ticks_ms()
        self.jumps = 0                 # corrections larger than jump_s
        self.last_offset = 0           # last correction applied, seconds
        self.source = "boot"
        self._rtc_up = 0               # uptime-seconds when the RTC's time was taken
        self._rtc_set = False          # the RTC written from authenticated time this boot

    def _elapsed_ms(self):
        return ticks_diff(ticks_ms(), self._base_ms) + self._frac

    def now(self):
        return self._base + self._elapsed_ms() // 1000

    def step(self):
        """Re-anchor before ticks wrap; track uptime. Cheap; call from the loop."""
        now = ticks_ms()
        d = ticks_diff(now, self._up_ms)
        if d >= 1000:
            self.uptime_s += d // 1000
            self._up_ms = ticks_add(now, -(d % 1000))
        e = self._elapsed_ms()
        if e >= _REANCHOR_MS:
            self._base += e // 1000
            self._frac = e % 1000
            self._base_ms = now

    def trusted(self):
        """Time good enough to decide on (expiry, fare bands, holidays)."""
        if self.level == TRUST_RTC:
            self.step()
            return self.uptime_s - self._rtc_up <= self.max_age_s
        return self.confirmed()

    def confirmed(self):
        """Authenticated back-office time, not older than max_age_s."""
        if self.level != TRUST_AUTH or self._synced_up is None:
            return False
        self.step()
        return self.uptime_s - self._synced_up <= self.max_age_s

    def from_rtc(self, unix):
        """Boot time read from the battery-backed RTC (None: it lost power)."""
        if unix is None or self.level == TRUST_AUTH:
            return False
        if not self.update(unix, TRUST_RTC, 0, "rtc"):
            return False
        self.step()
        self._rtc_up = self.uptime_s
        return True

    def age_s(self):
        """Seconds since the last authenticated sync, or -1."""
        if self._synced_up is None:
            return -1
        self.step()
        return self.uptime_s - self._synced_up

    def update(self, unix, level, rtt_ms=0, source=""):
        """Offer a time from a source. Returns True if the model moved."""
        if level < self.level and self.level == TRUST_AUTH and self.trusted():
            return False                   # never let a weak source override auth
        if level == TRUST_WEAK and self.level == TRUST_RTC and self.trusted():
            return False                   # nor the RTC that authenticated time set
        if unix < 1600000000:
            return False                   # before 2020: a broken source
        unix += (rtt_ms // 2 + 500) // 1000
        off = unix - self.now()
        self.last_offset = off
        if -1 <= off <= 1 and level == TRUST_AUTH and self.level == TRUST_AUTH:
            # within the source's 1 s resolution: keep the anchor (tap times
            # stay monotonic across frequent acks), just renew the trust
            self.step()
            self._synced_up = self.uptime_s
            return True
        if off > self.jump_s or off < -self.jump_s:
            self.jumps += 1
        self._base = unix
        self._base_ms = ticks_ms()
        self._frac = 0
        self.level = level
        if level == TRUST_AUTH:
            self.step()
            self._synced_up = self.uptime_s
        self.source = source
        if self.set_rtc is not None and level == TRUST_AUTH and (off != 0 or not self._rtc_set):
            self.set_rtc(unix)             # only authenticated time reaches the RTC; at least once per boot
            self._rtc_set = True
        return True

    def from_reply(self, server_time, rtt_ms=0):
        """server_time from a verified wire reply (ack, time, heartbeat)."""
        return self.update(server_time, TRUST_AUTH, rtt_ms, "auth")

    def from_http_date(self, date_header, rtt_ms=0):
        from ykt.net.httpc import http_date_to_unix

        t = http_date_to_unix(date_header) if date_header else None
        if t is None:
            return False
        return self.update(t, TRUST_WEAK, rtt_ms, "date")

    def status(self):
        return {"lvl": self.level, "age": self.age_s(), "jumps": self.jumps, "src": self.source}


# --- SNTP (RFC 4330) without blocking: one UDP packet, polled ---------------


class Sntp:
    """Query an NTP server in steps: start(), then step() until done. The
    answer is TRUST_WEAK (unauthenticated)."""

    def __init__(self, ts, host="pool.ntp.org", port=123, timeout_ms=2000):
        self.ts = ts
        self.host = host
        self.port = port
        self.timeout_ms = timeout_ms
        self.sock = None
        self.done = False
        self.ok = False
        self._buf = bytearray(48)

    def start(self):
        import socket

        self.close()
        self.done = False
        self.ok = False
        addr = socket.getaddrinfo(self.host, self.port)[0][-1]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        q = bytearray(48)
        q[0] = 0x1B                        # LI 0, version 3, mode 3 (client)
        s.sendto(q, addr)
        self.sock = s
        self._t0 = ticks_ms()

    def step(self):
        if self.sock is None or self.done:
            return self.done
        try:
            n = self.sock.readinto(self._buf) if hasattr(self.sock, "readinto") \
                else self.sock.recv_into(self._buf)
        except OSError:
            n = None
        rtt = ticks_diff(ticks_ms(), self._t0)
        if n:
            if n >= 48 and (self._buf[0] & 0x07) == 4:
                secs = struct.unpack_from(">I", self._buf, 40)[0]
                self.ok = self.ts.update(secs - _NTP_DELTA, TRUST_WEAK, rtt, "ntp")
            self.done = True
        elif rtt > self.timeout_ms:
            self.done = True
        if self.done:
            self.close()
        return self.done

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


# --- GET /v1/time: authenticated back-office time ---------------------------


class TimeQuery:
    """Ask the back office for time over the shared http client, in steps.
    The reply is HMAC-authenticated and bound to our nonce -> TRUST_AUTH; if
    it does not verify, only the HTTP Date header is used, as TRUST_WEAK."""

    def __init__(self, ts, http, device_id, key):
        self.ts = ts
        self.http = http
        self.device_id = device_id
        self.key = key
        self.active = False
        self.ok = False
        self.error = None

    def step(self):
        """Returns True while a query is in progress."""
        from ykt.net import wire
        from ykt.net import httpc

        h = self.http
        if not self.active:
            if not h.acquire(self):
                return False
            self._nonce = wire.new_nonce()
            auth = wire.sign_request(self.device_id, self.key, "GET", h.base + wire.PATH_TIME, b"",
                                     self.ts.now(), self._nonce)
            h.start("GET", wire.PATH_TIME, (("X-YKT-Auth", auth),), b"", None, 64)
            self._t0 = ticks_ms()
            self.active = True
            self.ok = False
            return True
        st = h.step()
        if st != httpc.DONE and st != httpc.FAILED:
            return True
        self.active = False
        rtt = ticks_diff(ticks_ms(), self._t0)
        if st == httpc.DONE and h.status == 200:
            try:
                s, v, t = wire.decode_reply(h.body, self.key, self.device_id, self._nonce,
                                            wire.RK_TIME)
                self.ok = self.ts.from_reply(t, rtt)
                self.error = None
            except wire.WireError as e:
                self.error = e.code
                self.ts.from_http_date(h.date, rtt)
        else:
            self.error = h.error or ("http %d" % h.status)
        h.release(self)
        return False
