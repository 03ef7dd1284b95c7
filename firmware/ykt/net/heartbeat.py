# Heartbeat: a compact JSON status the device POSTs to /v1/heartbeat every
# interval_s (default 300 s), signed with X-YKT-Auth. The reply is a 44-byte
# wire reply (kind RK_HEARTBEAT) whose value carries requests from the back
# office: HB_SYNC_NOW, HB_UPLOAD_NOW. Bounded: MAX_BYTES, short keys, at most
# a few recent errors, no card data of any kind.
#
# Keys: fw firmware version, dev device id, up uptime s, t device time,
# tt trusted time (0/1), v {kind: version}, bl journal backlog, old age in s
# of the oldest un-uploaded tap (-1 none), ack last acked seq, rd reader
# health {ok, err, resets}, heap free bytes, st uplink state, ln the link the
# network last ran over (wifi, cellular, none), e last errors.
import json

from ykt.net import wire
from ykt.net import httpc
from ykt.compat import const, ticks_ms, ticks_diff, ticks_add, mem_free

MAX_BYTES = const(768)
HB_SYNC_NOW = const(0x01)
HB_UPLOAD_NOW = const(0x02)


def build(fw, device_id, uptime_s, now, trusted, versions, backlog, oldest_age_s, acked,
          reader, errors, state="", link=""):
    """-> bytes (compact JSON, <= MAX_BYTES; errors are dropped first if long)."""
    d = {"fw": fw, "dev": device_id, "up": uptime_s, "t": now, "tt": 1 if trusted else 0,
         "v": versions, "bl": backlog, "old": oldest_age_s, "ack": acked, "rd": reader,
         "heap": mem_free(), "st": state, "ln": link, "e": [[str(a)[:16], str(b)[:40]] for a, b in errors[-4:]]}
    b = _dumps(d)
    while len(b) > MAX_BYTES and d["e"]:
        d["e"].pop(0)
        b = _dumps(d)
    if len(b) > MAX_BYTES:
        raise ValueError("heartbeat too large")
    return b


def _dumps(d):
    try:
        return json.dumps(d, separators=(",", ":")).encode()
    except TypeError:              # older MicroPython json: no separators
        return json.dumps(d).encode()


class Heartbeat:
    """collect() -> bytes builds the body (the app wires its sources in);
    step() sends it every interval_s over the shared http client."""

    def __init__(self, http, device_id, key, collect, clock=None, interval_s=300):
        self.http = http
        self.device_id = device_id
        self.key = key
        self.collect = collect
        self.clock = clock
        self.interval_ms = interval_s * 1000
        self._due = ticks_ms()
        self.sending = False
        self.requests = 0          # flags from the last verified reply
        self.sent = 0
        self.last_error = None

    def step(self):
        h = self.http
        if not self.sending:
            if ticks_diff(ticks_ms(), self._due) < 0 or not h.acquire(self):
                return False
            body = self.collect()
            t = self.clock.now() if self.clock is not None else 0
            self._nonce = wire.new_nonce()
            auth = wire.sign_request(self.device_id, self.key, "POST", h.base + wire.PATH_HEARTBEAT,
                                     body, t, self._nonce)
            h.start("POST", wire.PATH_HEARTBEAT, (("X-YKT-Auth", auth),
                                                  ("Content-Type", "application/json")), body, None, 64)
            self._t0 = ticks_ms()
            self.sending = True
            return True
        st = h.step()
        if st != httpc.DONE and st != httpc.FAILED:
            return True
        self.sending = False
        self._due = ticks_add(ticks_ms(), self.interval_ms)
        if st == httpc.FAILED or h.status != 200:
            self.last_error = h.error or ("http %d" % h.status)
        else:
            try:
                status, flags, srv_t = wire.decode_reply(h.body, self.key, self.device_id,
                                                         self._nonce, wire.RK_HEARTBEAT)
                self.requests = flags
                self.sent += 1
                self.last_error = None
                if self.clock is not None and hasattr(self.clock, "from_reply"):
                    self.clock.from_reply(srv_t, ticks_diff(ticks_ms(), self._t0))
            except wire.WireError as e:
                self.last_error = e.code
        h.release(self)
        return False

    def take_requests(self):
        r = self.requests
        self.requests = 0
        return r
