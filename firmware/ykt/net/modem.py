# The cellular uplink of a bus: a UART 4G modem of the SIM7600/EC20 class,
# brought from power-up to a PPP data link by its AT dialogue, then handed to
# MicroPython's network.PPP. Why stepped: the validator's loop must keep
# reading cards while the modem registers (which takes seconds to minutes on
# the road), so step() sends at most one command and reads what has arrived,
# and never sleeps.
#
# The dialogue (3GPP TS 27.007 / V.250, as both modem families answer it):
#   AT             -> OK                       (the modem is there, autobaud)
#   ATE0           -> OK                       (no echo: replies are lines only)
#   AT+CPIN?       -> +CPIN: READY, OK         (else no_sim)
#   AT+CSQ         -> +CSQ: <rssi>,<ber>, OK   (rssi 0..31, 99 unknown; < MIN_CSQ: weak_signal)
#   AT+CREG?       -> +CREG: <n>,<stat>, OK    (stat 1 home, 5 roaming)
#   AT+CEREG?      -> +CEREG: <n>,<stat>, OK   (LTE; either registered will do)
#   AT+CGDCONT=1,"IP","<apn>" -> OK
#   ATD*99#        -> CONNECT [speed]          (the UART now carries PPP)
# Hardware is passed in: uart (a machine.UART with timeout=0) and ppp, a
# factory network.PPP(uart) from ykt.board.
from ykt.compat import const, ticks_add, ticks_diff, ticks_ms

MIN_CSQ = const(8)            # below about -97 dBm a Cat-1 link drops its TCP sessions
_REPLY_MS = const(3000)       # per command; ATD may take longer (see _DIAL_MS)
_DIAL_MS = const(30000)
REG_TRIES = const(30)        # registration polls, one per _REG_GAP_MS, before not_registered
_REG_GAP_MS = const(2000)
_PPP_MS = const(10000)        # LCP/IPCP must finish within this after CONNECT
_RETRY_MS = const(20000)      # after a failure, the next dialogue starts this much later
_LINE = const(64)             # longest reply line kept; longer lines are bad_reply

# states
IDLE = const(0)
CMD = const(1)                # a command is out, reading its reply
WAIT = const(2)               # between registration polls or before a retry
PPP = const(3)                # data mode, PPP negotiating or up
ST_NAMES = ("idle", "cmd", "wait", "ppp")

# reasons (also the heartbeat's words)
OK = "ok"
NO_SIM = "no_sim"
NOT_REGISTERED = "not_registered"
WEAK_SIGNAL = "weak_signal"
TIMEOUT = "timeout"
BAD_REPLY = "bad_reply"
LINK_LOST = "link_lost"

# the dialogue, in order; the index is the step
_AT = const(0)
_ATE0 = const(1)
_CPIN = const(2)
_CSQ = const(3)
_CREG = const(4)
_CEREG = const(5)
_CGDCONT = const(6)
_DIAL = const(7)
_CMDS = (b"AT\r", b"ATE0\r", b"AT+CPIN?\r", b"AT+CSQ\r", b"AT+CREG?\r", b"AT+CEREG?\r",
         None, b"ATD*99#\r")


class Modem:
    def __init__(self, uart, apn, ppp_factory, min_csq=MIN_CSQ):
        if not apn or len(apn) > 40 or '"' in apn:
            raise ValueError("modem apn: 1..40 characters, no quotes")
        self.uart = uart
        self._cgdcont = b'AT+CGDCONT=1,"IP","' + apn.encode() + b'"\r'
        self._ppp_factory = ppp_factory
        self.min_csq = min_csq
        self.ppp = None
        self.state = IDLE
        self.reason = ""          # why the last dialogue failed ("" before any)
        self.csq = 99
        self.reg = 0              # last +CREG/+CEREG stat seen
        self.dials = 0
        self.drops = 0
        self._cmd = 0
        self._sent = 0
        self._until = 0
        self._polls = 0
        self._up = False          # PPP came up since the last CONNECT
        self._line = bytearray(_LINE)
        self._n = 0
        self._over = False
        self._rx = bytearray(32)
        self._mv = memoryview(self._rx)
        self._got = 0             # bit per reply line the current command needs

    # --- the app's view ---------------------------------------------------
    def isconnected(self):
        return self.state == PPP and self.ppp is not None and self.ppp.isconnected()

    def status(self):
        return {"state": ST_NAMES[self.state], "reason": self.reason, "csq": self.csq,
                "reg": self.reg, "dials": self.dials, "drops": self.drops}

    def step(self, now=None):
        """Advance the dialogue by what has arrived; at most one UART write."""
        if now is None:
            now = ticks_ms()
        st = self.state
        if st == IDLE:
            self._send(_AT, now)
        elif st == CMD:
            self._read(now)
        elif st == WAIT:
            if ticks_diff(now, self._until) >= 0:
                self._send(self._cmd, now)
        elif self.ppp is not None:
            if self.ppp.isconnected():
                self._up = True
            elif self._up or ticks_diff(now, self._until) >= 0:
                # the link was up and is gone (the carrier dropped), or PPP
                # never came up in time: back to the dialogue from the start
                self.drops += 1
                self._fail(LINK_LOST, now)
        return self.state

    # --- dialogue ----------------------------------------------------------
    def _send(self, i, now):
        self._drain()
        self._cmd = i
        self._n = 0
        self._over = False
        self._got = 0
        self.uart.write(self._cgdcont if i == _CGDCONT else _CMDS[i])
        self._sent = now
        self.state = CMD

    def _drain(self):
        u = self.uart
        while u.any():
            if not u.readinto(self._rx):
                break

    def _read(self, now):
        u = self.uart
        while u.any():
            n = u.readinto(self._rx)
            if not n:
                break
            for k in range(n):
                c = self._rx[k]
                if c == 10:                       # LF ends a line
                    if self._over:
                        return self._fail(BAD_REPLY, now)
                    if self._line_done(now):
                        return
                    self._n = 0
                elif c != 13:
                    if self._n < _LINE:
                        self._line[self._n] = c
                        self._n += 1
                    else:
                        self._over = True
        limit = _DIAL_MS if self._cmd == _DIAL else _REPLY_MS
        if ticks_diff(now, self._sent) >= limit:
            self._fail(TIMEOUT, now)

    def _is(self, word):
        n = len(word)
        if self._n < n:
            return False
        ln = self._line
        for i in range(n):
            if ln[i] != word[i]:
                return False
        return True

    def _num_after(self, start):
        """The decimal number in the line at start; -1 when there is none."""
        v = -1
        i = start
        while i < self._n and self._line[i] == 32:
            i += 1
        while i < self._n and 48 <= self._line[i] <= 57 and v < 1000:
            v = (0 if v < 0 else v * 10) + self._line[i] - 48
            i += 1
        return v

    def _field2(self, start):
        """The second comma-separated number after start (CREG's stat)."""
        i = start
        while i < self._n and self._line[i] != 44:
            i += 1
        return self._num_after(i + 1) if i < self._n else -1

    def _line_done(self, now):
        """One reply line is in _line[:_n]; True when the command is settled."""
        if self._n == 0:
            return False
        i = self._cmd
        if self._is(b"ERROR") or self._is(b"+CME ERROR"):
            # +CME ERROR: 10 (SIM not inserted) and the like before READY
            return self._fail(NO_SIM if i == _CPIN else BAD_REPLY, now)
        if i == _DIAL:
            if self._is(b"CONNECT"):
                return self._data_mode(now)
            if self._is(b"NO CARRIER") or self._is(b"BUSY") or self._is(b"NO DIALTONE"):
                return self._fail(NOT_REGISTERED, now)
            return False                          # echo or URC before CONNECT
        if i == _CPIN and self._is(b"+CPIN:"):
            self._got = 1 if self._is(b"+CPIN: READY") else 2
            return False
        if i == _CSQ and self._is(b"+CSQ:"):
            v = self._num_after(5)
            if v < 0:
                return self._fail(BAD_REPLY, now)
            self.csq = v
            self._got = 1
            return False
        if (i == _CREG and self._is(b"+CREG:")) or (i == _CEREG and self._is(b"+CEREG:")):
            v = self._field2(6)
            if v < 0:
                return self._fail(BAD_REPLY, now)
            self.reg = v
            self._got = 1
            return False
        if self._is(b"OK") and self._n == 2:
            return self._ok(now)
        return False                              # echo, URCs (RDY, +CPIN: ..., SMS DONE): ignored

    def _ok(self, now):
        i = self._cmd
        if i == _CPIN:
            if self._got != 1:
                return self._fail(NO_SIM, now)
        elif i == _CSQ:
            if self._got != 1:
                return self._fail(BAD_REPLY, now)
            if self.csq == 99 or self.csq < self.min_csq:
                return self._fail(WEAK_SIGNAL, now)
        elif i == _CREG or i == _CEREG:
            if self._got != 1:
                return self._fail(BAD_REPLY, now)
            if self.reg == 1 or self.reg == 5:
                self._polls = 0
                self._send(_CGDCONT, now)
                return True
            if i == _CREG:                        # not on 2G/3G: ask LTE
                self._send(_CEREG, now)
                return True
            self._polls += 1
            if self._polls >= REG_TRIES:
                self._polls = 0
                return self._fail(NOT_REGISTERED, now)
            self._cmd = _CREG                     # poll again a little later
            self._until = ticks_add(now, _REG_GAP_MS)
            self.state = WAIT
            return True
        self._send(i + 1, now)
        return True

    def _data_mode(self, now):
        self.dials += 1
        self.state = PPP
        self._until = ticks_add(now, _PPP_MS)
        self._up = False
        if self.ppp is None:
            self.ppp = self._ppp_factory(self.uart)
        self.ppp.active(True)
        self.ppp.connect()
        self.reason = OK
        return True

    def _fail(self, why, now):
        self.reason = why
        if self.ppp is not None and self.state == PPP:
            try:
                self.ppp.disconnect()
            except OSError:
                pass
        self._cmd = _AT
        self._polls = 0
        self._until = ticks_add(now, _RETRY_MS)
        self.state = WAIT
        return True
