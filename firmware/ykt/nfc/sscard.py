# Read a social security card (already activated by the PN532 as target 1)
# into the one CardRead. Minimal APDU sequence to identity: SELECT by DF name,
# then EF05 records 01 (card identification code), 07 (card number), 06
# (expiry). Optional, by option bits: 03 (version -> generation), 05 (issue
# date), EF06 08 (citizen ID -> birth date only), transit AID. Every card
# answer is parsed with bounds; any failure ends in one specific error code.
from ykt.compat import const
from ykt.nfc import apdu
from ykt import cardread as C
from ykt.nfc.pn532 import CMD_MS, copy8

OPT_VERSION = const(1)
OPT_ISSUE = const(2)
OPT_BIRTH = const(4)
OPT_TRANSIT = const(8)

# exchange() failures
X_LINK = const(-1)    # the PN532 link failed (reader problem)
X_RF = const(-2)      # the PN532 reported an RF / card error (status byte)
X_BAD = const(-3)     # response broke the format or the chaining bound
X_TIME = const(-4)    # the tap budget ran out

_MAX_CHAIN = const(4)     # MI (0x40) continuations accepted per APDU
_MAX_SW_TURNS = const(3)  # 61xx GET RESPONSE / 6Cxx re-issue rounds per APDU
_RESP = const(260)        # 256 data + SW + slack
TAP_BUDGET_MS = const(800)


class SSCard:
    def __init__(self, pn):
        self.pn = pn
        self.cmd = bytearray(24)
        self.resp = bytearray(_RESP)
        self.res = [0]
        self.rf_status = 0
        self.link_fail = False
        self.ms = CMD_MS
        self.t0 = 0

    def set_fwi(self, fwi):
        # Host wait = twice the card's frame waiting time (302 us * 2^FWI)
        # plus the PN532's own overhead, capped so a poll stays bounded.
        if fwi < 0 or fwi > 14:
            fwi = 4
        ms = 40 + (604 << fwi) // 1000
        self.ms = ms if ms < 400 else 400

    def exchange(self, src, n, hint):
        """One APDU; the answer (data + SW) lands in self.resp. Returns its
        length or X_*. Link errors are retried once (SELECT and READ RECORD
        are idempotent), after an abort that also flushes a stale reply."""
        pn = self.pn
        c = pn.clock
        if c.ticks_diff(c.ticks_ms(), self.t0) > TAP_BUDGET_MS:
            return X_TIME
        r = pn.exchange(src, n, hint, self.ms)
        if r < 0:
            r = pn.exchange(src, n, hint, self.ms)
            if r < 0:
                self.link_fail = True
                return X_LINK
        resp = self.resp
        b = pn.buf
        total = 0
        chunks = 0
        while True:
            if r < 1:
                return X_BAD
            o = pn.off
            st = b[o]
            if st & 0x3F:
                self.rf_status = st & 0x3F
                return X_RF
            m = r - 1
            if total + m > _RESP:
                return X_BAD
            copy8(resp, total, b, o + 1, m)
            total += m
            if not st & 0x40:
                return total
            chunks += 1
            if chunks > _MAX_CHAIN:
                return X_BAD   # the reader releases the target
            r = pn.exchange(src, 0, hint, self.ms)  # Tg only: next part
            if r < 0:
                self.link_fail = True
                return X_LINK

    def apdu(self, src, n, hint):
        """exchange() plus the status words ISO 7816-4 asks the terminal to
        act on: 61 xx -> GET RESPONSE with Le = xx (the answer replaces the
        61 xx); 6C xx -> the same command again with Le = xx. Bounded rounds;
        src is copied into self.cmd when it must be changed."""
        r = self.exchange(src, n, hint)
        turns = 0
        while r >= 2 and turns < _MAX_SW_TURNS:
            s1 = self.resp[r - 2]
            le = self.resp[r - 1]
            cmd = self.cmd
            if s1 == apdu.SW1_MORE:
                cmd[0] = 0x00
                cmd[1] = 0xC0
                cmd[2] = 0
                cmd[3] = 0
                cmd[4] = le
                src = cmd
                n = 5
            elif s1 == apdu.SW1_WRONG_LE:
                if src is not cmd:
                    if n + 1 > len(cmd):
                        return X_BAD
                    for k in range(n):
                        cmd[k] = src[k]
                    if n > 5:          # case 3 -> case 4: append Le
                        cmd[n] = le
                        n += 1
                    else:
                        cmd[4] = le
                    src = cmd
                else:
                    cmd[n - 1] = le    # our case 2 / 4 commands end in Le
            else:
                return r
            turns += 1
            r = self.exchange(src, n, hint)
        return r

    def _fail(self, x):
        if x == X_LINK:
            return C.ERR_READER
        if x == X_RF:
            return C.ERR_REMOVED   # the reader refines this with a presence check
        if x == X_TIME:
            return C.ERR_TIMEOUT
        return C.ERR_MALFORMED

    def _rec(self, rec, sfi, tag_len):
        """READ RECORD; returns the value offset in resp, or -(CardRead error)."""
        n = apdu.read_record(self.cmd, rec, sfi)
        r = self.apdu(self.cmd, n, tag_len + 6)
        if r < 0:
            return -self._fail(r)
        s = apdu.sw(self.resp, 0, r)
        if s != apdu.SW_OK:
            if s == apdu.SW_SECURITY:
                return -C.ERR_UNSUPPORTED
            return -C.ERR_MALFORMED
        ln = apdu.record(self.resp, 0, r, rec, self.res)
        if ln != tag_len:
            return -C.ERR_MALFORMED
        return self.res[0]

    def read(self, cr, opts, t0):
        """Fill cr (uid/ats already set by the reader). Returns a CardRead
        error code; cr.kind becomes KIND_SSC once the application selected."""
        self.t0 = t0
        self.link_fail = False
        self.rf_status = 0
        r = self.apdu(apdu.SELECT_SSC, len(apdu.SELECT_SSC), 36)
        if r < 0:
            return self._fail(r)
        s = apdu.sw(self.resp, 0, r)
        if s != apdu.SW_OK:
            if s == apdu.SW_LOCKED:
                return C.ERR_LOCKED
            if s == apdu.SW_BLOCKED:
                return C.ERR_BLOCKED
            hi = s >> 8
            if hi == 0x6A or hi == 0x6D or hi == 0x6E or hi == 0x69:
                return C.ERR_UNKNOWN_APP
            return C.ERR_MALFORMED
        cr.kind = C.KIND_SSC
        resp = self.resp
        # 01: card identification code; region = first 3 bytes BCD
        o = self._rec(apdu.REC_CARD_ID, apdu.SFI_EF05, 16)
        if o < 0:
            return -o
        reg = apdu.bcd(resp, o, 3)
        if reg < 110000:
            return C.ERR_MALFORMED
        for k in range(16):
            cr.card_id[k] = resp[o + k]
        cr.region = reg
        # 07: card number, 9 printable ASCII
        o = self._rec(apdu.REC_CARD_NO, apdu.SFI_EF05, 9)
        if o < 0:
            return -o
        if not apdu.printable(resp, o, 9):
            return C.ERR_MALFORMED
        for k in range(9):
            cr.card_no[k] = resp[o + k]
        # 06: expiry date -- identity complete after this one
        o = self._rec(apdu.REC_EXPIRY, apdu.SFI_EF05, 4)
        if o < 0:
            return -o
        d = apdu.bcd_date(resp, o)
        if d < 0:
            return C.ERR_MALFORMED
        cr.expiry_date = d
        if opts & OPT_VERSION:
            o = self._rec(apdu.REC_VERSION, apdu.SFI_EF05, 4)
            if o < 0:
                return -o
            g = resp[o] - 0x30
            if g < 1 or g > 9 or not apdu.printable(resp, o, 4):
                return C.ERR_MALFORMED
            cr.generation = g
        if opts & OPT_ISSUE:
            o = self._rec(apdu.REC_ISSUE, apdu.SFI_EF05, 4)
            if o < 0:
                return -o
            d = apdu.bcd_date(resp, o)
            if d < 0:
                return C.ERR_MALFORMED
            cr.issue_date = d
        if opts & OPT_BIRTH:
            e = self._birth(cr)
            if e:
                return e
        if opts & OPT_TRANSIT:
            r = self.apdu(apdu.SELECT_TRANSIT, len(apdu.SELECT_TRANSIT), 32)
            if r < 0:
                return self._fail(r)
            cr.has_transit = apdu.sw(self.resp, 0, r) == apdu.SW_OK
        return C.OK

    def _birth(self, cr):
        # EF06 record 08 holds the citizen ID: keep only the birth date and
        # wipe every buffer the ID passed through before returning.
        n = apdu.read_record(self.cmd, apdu.REC_CITIZEN, apdu.SFI_EF06)
        r = self.apdu(self.cmd, n, 24)
        try:
            if r < 0:
                return self._fail(r)
            s = apdu.sw(self.resp, 0, r)
            if s != apdu.SW_OK:
                # 69 82 = PIN needed, 6A 82/83 = absent: no birth date, not an error
                if s == apdu.SW_SECURITY or (s >> 8) == 0x6A:
                    return 0
                return C.ERR_MALFORMED
            ln = apdu.record(self.resp, 0, r, apdu.REC_CITIZEN, self.res)
            d = apdu.citizen_birth(self.resp, self.res[0], ln) if ln == 18 else -1
            if d < 0:
                return C.ERR_MALFORMED
            cr.birth_date = d
            return 0
        finally:
            self.wipe()

    def wipe(self):
        b = self.resp
        for k in range(_RESP):
            b[k] = 0
        self.pn.wipe()
