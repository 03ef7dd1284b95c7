# Downloads of signed files (trusted keys, config, deny list image/delta,
# fares, catalog, entitlements), one kind after another every interval_s
# (default 60 s), as a non-blocking state machine stepped from the main loop.
#
#   GET /v1/sync/<kind>?have=<version>   (X-YKT-Auth request signature)
#   304 -> up to date; 200 -> a signed file (ykt.sec.signed) streamed through
#   the verifier into the owner's sink; applied only after the signature,
#   kind, scope, size and version (> held: no rollback) all check out.
#
# A cycle that the network breaks off is retried after RETRY_MS, doubled per
# broken cycle in a row (with no answer at all in between) up to interval_s:
# a deny list must not wait a whole interval for one dropped connection (a
# card reported lost is refused within about a minute only if sync gets
# through), and an outage is not hammered.
#
# The owner module of each kind applies it through a Handler (below):
# commit() must switch atomically (write temp, rename) and may refuse; any
# refusal or failure leaves the last good copy in force and is recorded in
# .errors for the heartbeat.
from ykt.sec import signed
from ykt.net import wire
from ykt.net import httpc
from ykt.compat import const, ticks_ms, ticks_diff, ticks_add

IDLE = const(0)
REQ = const(1)
MAX_ERRORS = const(6)
RETRY_MS = const(3000)
ORDER = ("keys", "config", "denylist", "fares", "catalog", "entitlements")


class Handler:
    """Owner interface for one kind. Subclass or duck-type:
    name, codes (accepted signed.K_* kinds), max_len, version(),
    open() -> sink with write(mv) or None (payload kept in RAM),
    commit(hdr, sink, payload) -> apply atomically, raise to refuse,
    abort(sink) -> discard a partial download."""

    def __init__(self, name, max_len=8192, codes=None):
        self.name = name
        self.max_len = max_len
        if codes is None:
            # a deny-list request may be answered with a full image or a delta
            codes = (signed.K_DENYLIST, signed.K_DENYLIST_DELTA) if name == "denylist" \
                else (signed.kind_code(name),)
        self.codes = codes
        self.ver = 0

    def version(self):
        return self.ver

    def open(self):
        return None

    def abort(self, sink):
        pass

    def commit(self, hdr, sink, payload):
        raise NotImplementedError


class MemHandler(Handler):
    """Small kinds: the payload arrives in RAM and apply(hdr, payload) takes
    it (the owner persists it atomically); raise in apply to refuse."""

    def __init__(self, name, apply, version=0, max_len=8192):
        super().__init__(name, max_len)
        self.apply = apply
        self.ver = version

    def commit(self, hdr, sink, payload):
        if hdr.version <= self.ver:
            raise ValueError("rollback")
        self.apply(hdr, payload)
        self.ver = hdr.version


class KeysHandler(Handler):
    """Trusted-key rotation: a keys file signed by a currently trusted key
    replaces the keyring; persist(payload, version) stores it for boot."""

    def __init__(self, keyring, version=0, persist=None):
        from ykt.sec import sigverify

        super().__init__("keys", sigverify.KEYS_MAX)
        self.keyring = keyring
        self.ver = version
        self.persist = persist

    def commit(self, hdr, sink, payload):
        from ykt.sec import sigverify

        ring = sigverify.parse_keys(payload)
        ok = False
        for k in ring.keys:
            if k.usage & sigverify.U_DOWNLOADS:
                ok = True
        if not ok:
            raise ValueError("no download key left: refusing to lock the device out")
        if self.persist is not None:
            self.persist(payload, hdr.version)
        self.keyring.replace(ring)
        self.ver = hdr.version


class Sync:
    def __init__(self, http, device_id, key, keyring, handlers, clock=None, interval_s=60):
        self.http = http
        self.device_id = device_id
        self.key = key
        self.keyring = keyring
        self.clock = clock
        self.interval_ms = interval_s * 1000
        hs = []
        for name in ORDER:                 # keys first: a rotation applies before the rest
            for h in handlers:
                if h.name == name:
                    hs.append(h)
        for h in handlers:
            if h not in hs:
                hs.append(h)
        self.handlers = hs
        self.state = IDLE
        self._due = ticks_ms()
        self._i = 0
        self._reader = None
        self._sink = None
        self._err = None
        self.errors = []                   # (kind, code), last MAX_ERRORS
        self.checked_ms = {}               # kind -> ticks of the last good check
        self.applied = 0
        self.failed = 0                    # cycles in a row the network broke off

    def request_now(self):
        self._due = ticks_ms()

    def versions(self):
        return {h.name: h.version() for h in self.handlers}

    def age_s(self, name):
        """Seconds since the kind was last confirmed current, or -1 (never)."""
        t = self.checked_ms.get(name)
        return -1 if t is None else ticks_diff(ticks_ms(), t) // 1000

    def _error(self, kind, code):
        if len(self.errors) >= MAX_ERRORS:
            self.errors.pop(0)
        self.errors.append((kind, code))

    def step(self):
        if self.state == IDLE:
            if ticks_diff(ticks_ms(), self._due) >= 0 and self.handlers:
                self._i = 0
                self._start()
        else:
            self._poll()
        return self.state

    def _start(self):
        h = self.handlers[self._i]
        if not self.http.acquire(self):
            self.state = IDLE              # client busy (uplink): try at the next step
            return
        path = "%s%s?have=%d" % (wire.PATH_SYNC, h.name, h.version())
        t = self.clock.now() if self.clock is not None else 0
        auth = wire.sign_request(self.device_id, self.key, "GET", self.http.base + path, b"", t)
        self._sink = h.open()
        self._reader = signed.Reader(self.keyring, h.codes, h.version(), h.max_len,
                                     self.device_id, self._sink)
        self._err = None
        self.http.start("GET", path, (("X-YKT-Auth", auth),), b"", self._chunk, 0)
        self.state = REQ

    def _chunk(self, mv):
        if self.http.status != 200:
            self._err = "http %d" % self.http.status
            return False                   # error bodies are not read at all
        try:
            self._reader.feed(mv)
        except signed.SignedError as e:
            self._err = e.code
            return False                   # stop the download now
        except OSError as e:               # owner's sink (flash full, ...)
            self._err = "sink %s" % (e.args[0] if e.args else "")
            return False
        return None

    def _poll(self):
        hp = self.http
        st = hp.step()
        if st != httpc.DONE and st != httpc.FAILED:
            return
        h = self.handlers[self._i]
        if st == httpc.DONE:
            self.failed = 0                # the back office answered: the network works
        if self._err is not None or st == httpc.FAILED:
            self._refuse(h, self._err or "net")
            if self._err is None:          # network down: end the cycle, retry soon
                self._end_cycle(True)
                return
        elif hp.status == 304:
            self.checked_ms[h.name] = ticks_ms()
            h.abort(self._sink)
        elif hp.status != 200:
            self._refuse(h, "http %d" % hp.status)
        else:
            try:
                hdr = self._reader.finish()
                h.commit(hdr, self._sink, self._reader.payload() if self._sink is None else None)
                self.applied += 1
                self.checked_ms[h.name] = ticks_ms()
            except signed.SignedError as e:
                self._refuse(h, e.code)
            except Exception as e:         # owner refused: keep the last good copy
                self._refuse(h, "apply %s" % (e.args[0] if e.args else type(e).__name__))
        self._reader = None
        self._sink = None
        self._i += 1
        if self._i >= len(self.handlers):
            self._end_cycle()
        else:
            hp.release(self)
            self._start()

    def _refuse(self, h, code):
        self._error(h.name, code)
        try:
            h.abort(self._sink)
        except OSError:
            pass

    def _end_cycle(self, broken=False):
        self.http.release(self)
        self._reader = None
        self._sink = None
        wait = self.interval_ms
        if broken:
            n = self.failed
            self.failed = n + 1
            if n < 8 and RETRY_MS << n < wait:
                wait = RETRY_MS << n
        else:
            self.failed = 0
        self._due = ticks_add(ticks_ms(), wait)
        self.state = IDLE

    def status(self):
        return {"v": self.versions(), "err": self.errors[-2:], "n": self.applied}
