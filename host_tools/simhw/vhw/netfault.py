# Network faults for `ykt sim --net-faults N`: a plan that spreads N faults
# over the run on the simulated network (vhw/ipnet.py), one per exchange at
# most, kinds taken in turn (the least used kind that applies next), so every
# kind is exercised about equally. A fault is counted when it took effect on
# an exchange, not when it was planned. Portable (CPython and MicroPython);
# loaded only when faults are asked for.
#
#   drop_before_commit    the request is lost: the server never sees it, the device times out
#   drop_after_commit     the server commits, the reply is lost: the device times out
#   delay_beyond_timeout  the request reaches the server after the device gave up (it may
#                         overtake the device's retry): the late reply goes nowhere
#   reset_mid_body        the server commits, the reply breaks off halfway with a reset
#   duplicate_reply       the server commits, an earlier reply of the same kind arrives instead
#   truncated_reply       the server commits, the reply ends halfway (clean close)
#   http_5xx              a gateway answers 503 without forwarding, or 502 after the server committed
#   http_429              a rate limiter answers 429 with Retry-After (the device must wait it out)
#   wrong_mac             the server commits, the reply's MAC is corrupted on the way
#   tls_failure           the TLS handshake is aborted (nothing is sent)
#   dns_failure           the name lookup fails
import vclock

KINDS = ("drop_before_commit", "drop_after_commit", "delay_beyond_timeout", "reset_mid_body",
         "duplicate_reply", "truncated_reply", "http_5xx", "http_429", "wrong_mac", "tls_failure",
         "dns_failure")
_CONNECT_KINDS = KINDS[:-1]
_MAC_PATHS = ("/v1/taps", "/v1/time", "/v1/heartbeat")   # replies carrying a MAC over the body
# replies kept for duplicate_reply (small ones: acks, 304s, offers)
_CAP_PATHS = _MAC_PATHS + ("/v1/sync/keys", "/v1/sync/config", "/v1/sync/denylist", "/v1/sync/fares",
                           "/v1/sync/catalog", "/v1/sync/entitlements", "/v1/ota/offer")
MAX_RUN = 5              # faults in a row at most: then one exchange goes through
HOLD = 12288             # a delayed request (ykt.net.wire.MAX_BODY is 10,068 B)
CAPTURE = 512            # earlier replies kept for duplicate_reply
DELAY_MS = (12000, 40000)   # beyond httpc's 10 s timeout


def _cls(path):
    i = path.find("?")
    return path if i < 0 else path[:i]


class Plan:
    def __init__(self, count, start_ms, end_ms, seed=1):
        self.count = count
        self.start = start_ms
        self.end = max(end_ms, start_ms + 1)
        self.rng = seed & 0x7FFFFFFF or 1
        self.faults = dict((k, 0) for k in KINDS)
        self.total = 0
        self.run = 0             # consecutive faulted exchanges
        self.exchanges = 0
        self.not_before = {}     # route id -> virtual ms before which Retry-After forbids a request
        self.retry_after_ignored = 0
        self.hold = bytearray(HOLD)
        self.hold_busy = False
        self.kinds = KINDS
        self.caps = {}           # path -> [bytearray(CAPTURE), length]
        for p in _CAP_PATHS:
            self.caps[p] = [bytearray(CAPTURE), 0]

    def only(self, kinds):
        """Restrict the plan to these kinds (tests that aim at one fault)."""
        for k in kinds:
            if k not in KINDS:
                raise ValueError("unknown fault kind %r" % k)
        self.kinds = tuple(kinds)

    # --- persistence across the device's resets (a new interpreter) ------
    def state(self):
        return {"faults": self.faults, "total": self.total, "run": self.run, "rng": self.rng,
                "exchanges": self.exchanges, "retry_after_ignored": self.retry_after_ignored,
                "not_before": self.not_before}

    def restore(self, st):
        for k in st["faults"]:
            self.faults[k] = st["faults"][k]
        self.total = st["total"]
        self.run = st["run"]
        self.rng = st["rng"]
        self.exchanges = st["exchanges"]
        self.retry_after_ignored = st["retry_after_ignored"]
        self.not_before = st["not_before"]

    def report(self):
        return {"faults": dict(self.faults), "total": self.total, "exchanges": self.exchanges,
                "retry_after_ignored": self.retry_after_ignored}

    # --- decisions --------------------------------------------------------
    def _rand(self, n):
        x = self.rng
        x ^= (x << 13) & 0x7FFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0x7FFFFFFF
        self.rng = x or 1
        return x % n

    def _want(self):
        """Behind schedule: the faults are due evenly over the first 90 % of
        the span; the rest of it catches up on what the device's own
        pauses (timeouts, Retry-After, backoff) left undone."""
        now = vclock.now_ms()
        if now >= self.end or self.run >= MAX_RUN or self.total >= self.count:
            return False
        span = (self.end - self.start) * 9 // 10
        due = self.count * (now - self.start) // span + 1
        return self.total < due

    def _pick(self, kinds):
        lo = None
        best = []
        for k in kinds:
            n = self.faults[k]
            if lo is None or n < lo:
                lo, best = n, [k]
            elif n == lo:
                best.append(k)
        return best[self._rand(len(best))]

    def applied(self, sock_or_kind):
        k = sock_or_kind if isinstance(sock_or_kind, str) else sock_or_kind.fault.kind
        self.faults[k] += 1
        self.total += 1

    def on_resolve(self, host):
        # Lookups are rare (httpc keeps an address for an hour): one in the
        # span gets a fault whenever DNS is the least used kind, even ahead
        # of the schedule. The first one ignores the run limit: the hourly
        # lookup may fall right after five connection faults, and then the
        # next chance is an hour away.
        now = vclock.now_ms()
        if "dns_failure" not in self.kinds or not self.start <= now < self.end:
            return False
        dns = self.faults["dns_failure"]
        if (self.total < self.count and (self.run < MAX_RUN or dns == 0)
                and dns <= min([self.faults[k] for k in self.kinds])):
            self.run += 1
            self.applied("dns_failure")
            return True
        return False

    def on_connect(self, sock):
        self.exchanges += 1
        rid = "%s:%d" % (id(sock.route.peer), 0)
        nb = self.not_before.get(rid)
        if nb is not None and vclock.now_ms() < nb:
            self.retry_after_ignored += 1
        if not self._want():
            self.run = 0
            return Fault(self, None, rid)
        kinds = [k for k in _CONNECT_KINDS if k in self.kinds and (k != "tls_failure" or sock.route.tls)
                 and (k != "delay_beyond_timeout" or not self.hold_busy)]
        if not kinds:
            return Fault(self, None, rid)
        self.run += 1
        return Fault(self, self._pick(kinds), rid)


_BEFORE = ("drop_before_commit", "http_429", "tls_failure", "delay_beyond_timeout")
_AFTER = ("drop_after_commit", "reset_mid_body", "duplicate_reply", "truncated_reply", "wrong_mac")


class Fault:
    """What one connection carries (kind None: nothing, but its reply may be
    kept for a later duplicate_reply)."""

    def __init__(self, plan, kind, rid):
        self.plan = plan
        self.kind = kind
        self.rid = rid
        self.variant = plan._rand(2) if kind == "http_5xx" else 0
        self.forward = kind not in _BEFORE and not (kind == "http_5xx" and self.variant == 0)
        self.hold = None
        self.held = 0
        if kind == "delay_beyond_timeout":
            plan.hold_busy = True
            self.hold = plan.hold
        self.cap = None

    def _fits(self, k, path):
        p = self.plan
        if k == "wrong_mac":
            return path in _MAC_PATHS
        if k == "duplicate_reply":
            return path in p.caps and p.caps[path][1] > 0
        return True

    def hold_bytes(self, buf, n):
        k = min(n, len(self.hold) - self.held)
        self.hold[self.held:self.held + k] = buf[:k]
        self.held += k

    def request_done(self, s, arrive):
        p = self.plan
        k = self.kind
        path = _cls(s.path)
        if k is None:
            self.cap = p.caps.get(path)
            if self.cap is not None:
                self.cap[1] = 0
            return
        if not self._fits(k, path):
            # this exchange cannot carry it: the least used kind that fits
            k = self.kind = p._pick([x for x in _AFTER if self._fits(x, path) and x in p.kinds]
                                    or ["drop_after_commit"])
        self.dup = p.caps.get(path) if k == "duplicate_reply" else None
        if k == "drop_before_commit":
            s.silent = True
        elif k == "http_429":
            ra = 1 + p._rand(30)
            _answer(s, b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: %d\r\nContent-Length: 0\r\n"
                       b"Connection: close\r\n\r\n" % ra, arrive)
            p.not_before[self.rid] = arrive // 1000 + ra * 1000
        elif k == "http_5xx" and not self.forward:
            _answer(s, b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    arrive)
        elif k == "delay_beyond_timeout":
            s.silent = True
            delay = DELAY_MS[0] + p._rand(DELAY_MS[1] - DELAY_MS[0])
            route = s.route
            vclock.schedule(delay * 1000, lambda: self._late(route))
        else:
            return                      # an after-commit kind: see reply_first
        p.applied(k)

    def _late(self, route):
        """The delayed request reaches the server now; its reply has nowhere
        to go (the device closed that connection long ago)."""
        try:
            peer = route.peer()
            peer.send(memoryview(self.hold)[:self.held])
            scratch = memoryview(self.hold)       # the request is sent: reuse its buffer
            while peer.recv_into(scratch, 60):
                pass
            peer.close()
        finally:
            self.plan.hold_busy = False

    def reply_first(self, s):
        k = self.kind
        if k is None or not self.forward:
            return
        ring = s.buf[0]
        head_end, status, cl = _head(ring, s.rlen)
        if k == "drop_after_commit":
            s.silent = True
            s._close_peer()
        elif k in ("reset_mid_body", "truncated_reply"):
            # halfway through the body; through the head when there is no body
            s.limit = head_end + cl // 2 if head_end >= 0 and cl > 1 else max(1, (head_end if head_end > 0 else s.rlen) // 2)
            s.end_rst = k == "reset_mid_body"
        elif k == "wrong_mac":
            if status != 200 or cl < 1 or head_end < 0:
                s.silent = True
                s._close_peer()
                k = self.kind = "drop_after_commit"
            else:
                s.flip = head_end + cl - 1
        elif k == "http_5xx":
            _drain(s)
            _answer(s, b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", s.r_at)
        elif k == "duplicate_reply":
            _drain(s)
            cap = self.dup
            _answer(s, memoryview(cap[0])[:cap[1]], s.r_at)
        self.plan.applied(k)

    def delivered(self, s, buf, n):
        cap = self.cap
        if cap is None:
            return
        k = cap[1]
        if k + n > CAPTURE:
            self.cap = None
            cap[1] = 0
            return
        cap[0][k:k + n] = buf[:n]
        cap[1] = k + n

    def closed(self, s):
        cap = self.cap
        if cap is not None:
            he, st, cl = _head(cap[0], cap[1])
            if he < 0 or cl < 0 or cap[1] != he + cl:
                cap[1] = 0              # an incomplete reply is not kept


def _answer(s, data, at):
    """The connection delivers `data` (then ends) instead of the server's reply."""
    ring = s.buf[0]
    n = len(data)
    ring[:n] = data
    s.rlen, s.rpos, s.r_at = n, 0, at
    s.eof_at = at
    s.silent = False


def _drain(s):
    """Read and drop the rest of the server's reply (it committed), then close."""
    while s.peer is not None:
        n = s.peer.recv_into(memoryview(s.buf[0]), 60)
        if not n:
            s._close_peer()


def _head(ring, n):
    """(end of the head, status, Content-Length) of a reply in ring[:n]; -1s if not there."""
    b = bytes(memoryview(ring)[:min(n, 1024)])
    i = b.find(b"\r\n\r\n")
    if i < 0:
        return -1, -1, -1
    lines = b[:i].split(b"\r\n")
    p = lines[0].split(b" ")
    status = int(p[1]) if len(p) > 1 and p[1].isdigit() else -1
    cl = -1
    for ln in lines[1:]:
        if ln[:15].lower() == b"content-length:":
            cl = int(ln[15:])
    return i + 4, status, cl
