# Tap upload: a non-blocking state machine the main loop steps between taps.
# Each step() does one bounded piece of work (look at the journal, encode up
# to ENC_PER_STEP taps, one socket operation via httpc, or check a timer),
# so a tap never waits for the network.
#
#   IDLE --(backlog >= batch_max, or oldest pending older than max_age, or
#           flush())--> BUILD --(batch sealed)--> SEND --(verified ack)--> IDLE
#   SEND --(drop, reset, timeout, 5xx, bad/forged reply)--> BACKOFF --> SEND
#
# Nothing lost, nothing doubled: the device advances the journal cursor only
# from a reply whose HMAC (device key) and nonce verify, and never past the
# last seq it sent; the back office deduplicates on (device, seq) forever, so
# resending a batch whose reply was lost is harmless. Backoff is exponential
# with full jitter (delay uniform in [0, min(cap, base * 2^n))) so a fleet
# that lost its back office does not reconnect in lockstep.
from ykt import taprec
from ykt.net import wire
from ykt.compat import const, ticks_ms, ticks_diff, ticks_add
from ykt.net import httpc

IDLE = const(0)
BUILD = const(1)
SEND = const(2)
BACKOFF = const(3)
STATE_NAMES = ("idle", "build", "send", "backoff")
ENC_PER_STEP = const(8)      # taps encoded per step: ~4 ms ESP32-equivalent
MAX_ERRORS = const(4)        # last errors kept for the heartbeat


def _urand(n):
    """Uniform-ish integer in [0, n): backoff jitter needs spread, not secrecy."""
    if n <= 1:
        return 0
    try:
        import os

        r = os.urandom(4)
        v = r[0] | (r[1] << 8) | (r[2] << 16) | (r[3] << 24)
    except (ImportError, AttributeError, NotImplementedError):
        v = ticks_ms() * 2654435761
    return v % n


class Uplink:
    def __init__(self, journal, http, device_id, key, clock=None, batch_max=100,
                 max_age_ms=30000, poll_ms=1000, backoff_base_ms=1000, backoff_cap_ms=300000,
                 rand=_urand, enc_per_step=ENC_PER_STEP, scratch=None):
        """journal: ykt.journal.Journal or the same interface:
        pending_into(buf, after) -> n plaintext taprecs after seq `after`
        (None: after the cursor), or pending(n, after) -> [Tap]; ack(seq);
        backlog (property or method). http: an httpc.HttpClient (or the same interface).
        clock: object with now() -> unix seconds and trusted() -> bool
        (ykt.net.timesync.TimeSync), or None."""
        self.j = journal
        self.http = http
        self.device_id = device_id
        self.key = key
        self.clock = clock
        self.batch_max = batch_max
        self.max_age_ms = max_age_ms
        self.poll_ms = poll_ms
        self.base_ms = backoff_base_ms
        self.cap_ms = backoff_cap_ms
        self.rand = rand
        # scratch (ykt.compat.Scratch): the batch is built in its shared
        # buffer, held from the first record until the batch is acknowledged
        # or given up; while a deny-list update holds it, taps wait on flash.
        self.scratch = scratch
        self.w = wire.BatchWriter(batch_max, None if scratch is None else scratch.buf)
        self.state = IDLE
        self._after = None
        self.enc = enc_per_step     # taps read+encoded per step (bounds step time)
        self._rb = bytearray(enc_per_step * taprec.SIZE)   # read buffer, allocated once
        self._next_poll = ticks_ms()
        self._since = None          # ticks when a backlog was first seen
        self._flush = False
        self._wait_until = 0
        self.failures = 0           # consecutive failed attempts
        self.attempt_retry = False
        self.acked_seq = None       # last seq acknowledged by a verified reply
        self.backlog = 0
        self.batches_ok = 0
        self.last_ok_ms = None
        self.errors = []            # bounded: last MAX_ERRORS (code, detail)
        self.error_counts = {}      # code -> count; codes are a fixed small set
        self.server_time = None     # from the last verified ack (for timesync)
        self.server_time_ms = 0

    def flush(self):
        """Send whatever is pending at the next step (shutdown, heartbeat)."""
        self._flush = True

    def state_name(self):
        return STATE_NAMES[self.state]

    def _error(self, code, detail=""):
        self.error_counts[code] = self.error_counts.get(code, 0) + 1
        if len(self.errors) >= MAX_ERRORS:
            self.errors.pop(0)
        self.errors.append((code, detail))

    def _count_backlog(self):
        b = self.j.backlog          # ykt.journal.Journal: a property (next - 1 - cursor)
        return b() if callable(b) else b

    # --- the step -------------------------------------------------------------

    def step(self):
        """One bounded unit of work. Returns the state name's index."""
        st = self.state
        now = ticks_ms()
        if st == IDLE:
            if ticks_diff(now, self._next_poll) >= 0:
                self._next_poll = ticks_add(now, self.poll_ms)
                self._idle_check(now)
        elif st == BUILD:
            self._build()
        elif st == SEND:
            self._send_step(now)
        elif st == BACKOFF:
            if ticks_diff(now, self._wait_until) >= 0:
                self._transmit()
        if self.state == IDLE and self.scratch is not None:
            self.scratch.give(self)   # no batch in the buffer any more
        return self.state

    def _idle_check(self, now):
        n = self._count_backlog()
        self.backlog = n
        if n == 0:
            self._since = None
            self._flush = False
            return
        if self._since is None:
            self._since = now
        if n >= self.batch_max or self._flush or ticks_diff(now, self._since) >= self.max_age_ms:
            if self.scratch is not None and self.scratch.take(self) is None:
                return              # the buffer is lent out: look again at the next poll
            self._flush = False
            self.w.begin(self.device_id)
            self._after = None      # None: after the journal's cursor
            self.state = BUILD

    def _read_some(self):
        """Up to ENC_PER_STEP records after the last one taken, as taprecs
        (taprec.SIZE bytes) in self._rb; -> count. Reading a few records per step bounds
        the flash time of a step as well as its CPU."""
        j = self.j
        if hasattr(j, "pending_into"):
            return j.pending_into(self._rb, self._after)
        n = 0
        for t in j.pending(self.enc, self._after):
            taprec.pack_into(self._rb, n * taprec.SIZE, t)
            n += 1
        return n

    def _build(self):
        w = self.w
        room = w.max_count - w.count
        try:
            n = self._read_some()
        except OSError as e:
            self._error("journal", "read %s" % (e.args[0] if e.args else ""))
            self.state = IDLE
            return
        if n > room:
            n = room
        added = 0
        try:
            while added < n and not w.full():
                w.add(self._rb, added * taprec.SIZE)
                added += 1
        except ValueError as e:
            self._error("journal", str(e))
            self.state = IDLE
            return
        if added:
            self._after = w.last_seq    # records read but not added come again next batch
        if n == self.enc and added == n and not w.full():
            return                  # more to read and encode at the next step
        if w.count == 0:
            self.state = IDLE
            return
        self.attempt_retry = False
        self._transmit()

    def _transmit(self):
        if not self.http.acquire(self):
            self.state = BACKOFF    # another service holds the client: try next step
            return
        clock = self.clock
        flags = wire.BF_RETRY if self.attempt_retry else 0
        t = 0
        if clock is not None:
            t = clock.now()
            if not clock.trusted():
                flags |= wire.BF_TIME_UNTRUSTED
        body = self.w.finish(self.key, t, None, flags)
        self._sent_ms = ticks_ms()
        self.attempt_retry = True
        self.http.start("POST", wire.PATH_TAPS, (("Content-Type", "application/octet-stream"),),
                        body, None, 64)
        self.state = SEND

    def _send_step(self, now):
        h = self.http
        st = h.step()
        if st == httpc.FAILED:
            self._fail("net", h.error)
        elif st == httpc.DONE:
            if h.status != 200:
                self._fail("http", "status %d" % h.status)
                return
            try:
                status, acked, srv_t = wire.decode_ack(h.body, self.key, self.device_id, self.w.nonce)
            except wire.WireError as e:
                self._fail("reply", e.code)
                return
            h.release(self)
            self._on_ack(status, acked, srv_t, now)

    def _on_ack(self, status, acked, srv_t, now):
        w = self.w
        self.server_time = srv_t
        self.server_time_ms = now
        if self.clock is not None and hasattr(self.clock, "from_reply"):
            # authenticated and bound to our nonce: a fresh, trustworthy time
            self.clock.from_reply(srv_t, ticks_diff(now, self._sent_ms))
        if acked < w.first_seq - 1 or (self.acked_seq is not None and acked < self.acked_seq):
            # a reply that would move the cursor back: nothing of this batch committed
            self._fail("ack", "stale ack %d" % acked)
            return
        if acked > w.last_seq:
            acked = w.last_seq      # everything we sent is committed; never ack beyond it
        if acked >= w.first_seq:
            self.j.ack(acked)
            self.acked_seq = acked
        if status != wire.RS_OK or acked < w.last_seq:
            # partial commit or refusal: retry the rest after a backoff
            self._fail("ack", "status %d acked %d of %d" % (status, acked, w.last_seq))
            if acked >= w.first_seq:
                self.failures = 0   # progress was made: no escalation
                self.state = IDLE
                self._next_poll = now
            return
        self.failures = 0
        self.batches_ok += 1
        self.last_ok_ms = now
        self._since = None
        self.state = IDLE
        self._next_poll = now       # look again at once: a backlog drains fast

    def _fail(self, code, detail):
        self._error(code, detail)
        self.http.release(self)
        n = self.failures
        self.failures = n + 1
        ceil = self.base_ms << n if n < 20 else self.cap_ms
        if ceil > self.cap_ms:
            ceil = self.cap_ms
        self.backoff_ms = self.rand(ceil)
        self._wait_until = ticks_add(ticks_ms(), self.backoff_ms)
        self.state = BACKOFF

    def status(self):
        """Compact summary for the heartbeat."""
        return {"state": STATE_NAMES[self.state], "backlog": self.backlog,
                "acked": self.acked_seq, "fail": self.failures, "ok": self.batches_ok}
