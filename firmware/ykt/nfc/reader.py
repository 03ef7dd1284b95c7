# Card reader state: turns PN532 polls into one event per card presentation,
# keeps the chip healthy (recovery ladder) and reports its health.
#
#   reader = Reader(PN532(transport), rst_pin=None, clock=None)
#   reader.start() -> bool        wake, firmware check, SAM, RF config
#   reader.poll(cardread) -> bool True once per new presentation (cardread
#                                 filled: error OK or a specific ERR_*)
#   reader.fault / fault_count / resets / fw_version / health
#
# Presence: the field is off between polls, so every poll re-activates the
# card; a card whose UID is in the current session gives no second event.
# The session ends after DEPART_MISSES empty polls. Random UIDs (4 bytes
# starting 08, ISO 14443-3) cannot be compared: any random-UID card found
# while a random-UID card is present counts as the same one.
#
# Recovery ladder on a failing command: retry once -> resync (host ACK abort,
# drain, wake-up, re-init) -> hardware reset via RSTPD_N (if wired) -> fault
# (reader.fault = True, fault_count += 1), and try again every RETRY_MS.
from ykt.compat import const
from ykt import cardread as C
from ykt.nfc import apdu
from ykt.nfc.pn532 import E_DEADLINE
from ykt.nfc.sscard import SSCard, OPT_VERSION, OPT_ISSUE, OPT_BIRTH, OPT_TRANSIT  # noqa: F401

DEFAULT_OPTS = OPT_VERSION | OPT_BIRTH
DEPART_MISSES = const(2)
RETRY_MS = const(250)
LIST_MS = const(120)
# Every wait inside one poll() or start() is clipped to this deadline
# (pn.deadline); the overrun is one frame write plus a reset pulse.
MAX_POLL_MS = const(1000)

_SLOTS = const(2)


class Reader:
    def __init__(self, pn532, rst_pin=None, clock=None, opts=DEFAULT_OPTS):
        self.pn = pn532
        self.rst = rst_pin
        if clock is not None:
            pn532.clock = clock
            pn532.t.clock = clock
        self.clock = pn532.clock
        self.opts = opts
        self.ssc = SSCard(pn532)
        self.fault = False
        self.fault_count = 0
        self.resets = 0
        self.fw_version = None
        self.started = False
        self.polls = 0
        self.events = 0
        self.link_errors = 0
        self._next_try = 0
        # presence session: up to _SLOTS UIDs seen since the field was last empty
        self._uids = [bytearray(10) for _ in range(_SLOTS)]
        self._ulen = [0] * _SLOTS
        self._uset = [False] * _SLOTS
        self._rr = 0
        self._miss = DEPART_MISSES
        if rst_pin is not None:
            rst_pin.value(1)

    @property
    def health(self):
        return self

    @property
    def present(self):
        return self._miss < DEPART_MISSES

    # -- bring-up and recovery ----------------------------------------------
    def _init_chip(self):
        pn = self.pn
        t = pn.t
        t.wakeup()
        fw = pn.firmware_version()
        if fw is None and not self.fault:
            # one retry; in the fault state a dead chip costs one ACK wait per try
            pn.abort()
            fw = pn.firmware_version()
        if fw is None and t.stream and t.rate != t.base:
            # HSU at a negotiated rate: a chip that reset itself (brown-out)
            # talks at its power-up rate again
            t.chip_reset()
            t.wakeup()
            fw = pn.firmware_version()
        if fw is None or fw[0] != 0x32:
            return False
        if t.stream and t.fast and t.rate != t.want and not self._speed_up():
            return False
        if not (pn.sam_config() and pn.rf_retries() and pn.rf_field(False)):
            return False
        self.fw_version = fw
        return True

    def _speed_up(self):
        """HSU: move the line to the board's rate (SetSerialBaudRate). False
        when the chip stopped answering at the new rate: it will be reset
        (the ladder) and the reader stays at the power-up rate."""
        pn = self.pn
        t = pn.t
        if not pn.serial_baud(t.want):
            t.fast = False     # refused or unanswered at the old rate: the chip did not switch
            return True
        t.set_rate(t.want)
        if pn.firmware_version() is not None:
            return True
        t.fast = False         # the wiring does not carry it: back to the power-up rate
        t.chip_reset()
        return False

    def _reset_pulse(self):
        c = self.clock
        self.rst.value(0)
        c.sleep_ms(2)        # RSTPD_N low >= 100 ns; 2 ms is generous
        self.rst.value(1)
        if self.pn.t.stream:
            self.pn.t.chip_reset()   # HSU: the chip is back at its power-up rate
        c.sleep_ms(10)       # oscillator start-up before the first command
        self.resets += 1

    def _ladder(self, resync=True):
        """Resync, then hardware reset, then fault. Returns True if healthy."""
        pn = self.pn
        if resync:
            pn.abort()
            pn.t.drain()        # whatever the chip still holds: a stale reply, half a frame
            if self._init_chip():
                return self._healthy()
        if self.rst is not None:
            self._reset_pulse()
            if self._init_chip():
                return self._healthy()
        if not self.fault:
            self.fault = True
            self.fault_count += 1
        self.started = False
        self._next_try = self.clock.ticks_add(self.clock.ticks_ms(), RETRY_MS)
        return False

    def _healthy(self):
        self.fault = False
        self.started = True
        return True

    def _begin(self):
        c = self.clock
        pn = self.pn
        pn.deadline = self.clock.ticks_add(c.ticks_ms(), MAX_POLL_MS)
        pn.use_deadline = True

    def _lost(self):
        # A command failed twice: recover at the start of the next poll, so
        # one poll() never holds both a failure and a whole recovery.
        self.link_errors += 1
        self.started = False
        self._next_try = self.clock.ticks_ms()

    def start(self):
        """Bring the chip up (wake, firmware check, SAM, RF config); on failure
        run the ladder. False = reader fault, poll() keeps trying."""
        self._begin()
        try:
            if self._init_chip():
                return self._healthy()
            return self._ladder(True)
        finally:
            self.pn.use_deadline = False

    # -- presence session ---------------------------------------------------
    def _known(self, uid, off, n):
        rnd = n == 4 and uid[off] == 0x08
        for s in range(_SLOTS):
            if not self._uset[s]:
                continue
            u = self._uids[s]
            ln = self._ulen[s]
            if rnd and ln == 4 and u[0] == 0x08:
                return True
            if ln == n:
                same = True
                for k in range(n):
                    if u[k] != uid[off + k]:
                        same = False
                        break
                if same:
                    return True
        return False

    def _remember(self, uid, off, n):
        s = self._rr
        self._rr = (s + 1) % _SLOTS
        u = self._uids[s]
        for k in range(n):
            u[k] = uid[off + k]
        self._ulen[s] = n
        self._uset[s] = True

    def _empty(self):
        if self._miss < DEPART_MISSES:
            self._miss += 1
            if self._miss >= DEPART_MISSES:
                for s in range(_SLOTS):
                    self._uset[s] = False

    # -- polling ------------------------------------------------------------
    def poll(self, cr):
        """One poll, at most MAX_POLL_MS (+ one frame write). True when a new
        presentation was read into cr."""
        self.polls += 1
        c = self.clock
        if not self.started:
            if c.ticks_diff(c.ticks_ms(), self._next_try) < 0:
                return False
            self._begin()
            try:
                # never started, or lost: resync first; a fault goes to reset
                if self._init_chip():
                    self._healthy()
                else:
                    self._ladder(not self.fault)
            finally:
                self.pn.use_deadline = False
            return False
        self._begin()
        try:
            return self._poll(cr)
        finally:
            self.pn.use_deadline = False

    def _poll(self, cr):
        pn = self.pn
        t0 = self.clock.ticks_ms()
        r = pn.list_a(LIST_MS)
        if r < 0 and r != E_DEADLINE:
            r = pn.list_a(LIST_MS)
        if r < 0:
            if r != E_DEADLINE:
                self._lost()
            return False
        b = pn.buf
        o = pn.off
        if r < 1 or b[o] == 0:
            self._empty()
            pn.rf_field(False)
            return False
        # Target data: Tg SENS_RES(2) SEL_RES UIDLen UID [ATS]
        end = o + r
        ulen = b[o + 5] if r >= 6 else 0
        bad = b[o] != 1 or r < 6 or not (ulen == 4 or ulen == 7 or ulen == 10) \
            or o + 6 + ulen > end
        uo = o + 6
        if bad:
            ulen = 0
        if self._known(b, uo, ulen):
            self._miss = 0
            pn.rf_field(False)
            return False
        self._miss = 0
        self._remember(b, uo, ulen)
        cr.clear()
        self.events += 1
        if bad:
            cr.error = C.ERR_MALFORMED
            pn.rf_field(False)
            return True
        cr.sens_res = (b[o + 2] << 8) | b[o + 3]
        sak = b[o + 4]
        cr.sel_res = sak
        for k in range(ulen):
            cr.uid[k] = b[uo + k]
        cr.uid_len = ulen
        if not sak & 0x20:
            # MIFARE Classic / Ultralight / clones: identified by UID only.
            cr.kind = C.KIND_UID_ONLY
            pn.rf_field(False)
            return True
        ao = uo + ulen
        an = end - ao
        if an < 1 or b[ao] != an or an > len(cr.ats):
            cr.error = C.ERR_MALFORMED
            pn.rf_field(False)
            return True
        for k in range(an):
            cr.ats[k] = b[ao + k]
        cr.ats_len = an
        ssc = self.ssc
        ssc.set_fwi(apdu.ats_fwi(cr.ats, an))
        e = ssc.read(cr, self.opts, t0)
        if e == C.ERR_REMOVED:
            e = self._still_there(cr)
        if e == C.ERR_READER and pn.last == E_DEADLINE:
            e = C.ERR_TIMEOUT
        cr.error = e
        if ssc.link_fail and pn.last != E_DEADLINE:
            self._lost()
            return True
        if e == C.OK or e == C.ERR_UNKNOWN_APP or e == C.ERR_MALFORMED or e == C.ERR_LOCKED \
                or e == C.ERR_BLOCKED:
            pn.release()       # the card answered: end its session cleanly
        pn.rf_field(False)
        return True

    def _still_there(self, cr):
        # An RF error mid-read: the card left (ERR_REMOVED) or is still in the
        # field but not answering in time (ERR_TIMEOUT). Re-list to tell.
        pn = self.pn
        pn.rf_field(False)
        r = pn.list_a(LIST_MS)
        o = pn.off
        if r >= 6 and pn.buf[o] == 1:
            n = pn.buf[o + 5]
            if n == cr.uid_len and 6 + n <= r and self._known(pn.buf, o + 6, n):
                return C.ERR_TIMEOUT
        self._miss = DEPART_MISSES - 1
        return C.ERR_REMOVED
