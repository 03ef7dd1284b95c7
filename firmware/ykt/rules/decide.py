# The rule engine: one card read plus local state (catalog, fares,
# entitlements, deny list, recent taps) -> outcome, reason, provisional fare,
# concession, and what the rider is shown. Offline: nothing here waits for
# anything. Every decision fills the caller's taprec.Tap and returns one small
# int, kind | message id << 3 (ykt.outcome: FB_* kind, M_* message; split it
# with outcome.kind_of / outcome.msg_of). Hot path: no allocation except the
# keyed token's hashlib objects (two SHA-256 contexts and digests, measured by
# bench_decide).
#
# Order of the rules (first match wins):
#   reader fault / read error -> locked or blocked card -> UID-only or
#   foreign card -> refused QR code -> not configured
#   -> deny list -> expiry dates (trusted time only; the entry's expiry
#   policy) -> region -> transport function (where the entry requires it)
#   -> a staff card on a bus: driver shift sign-on / sign-off
#   -> per-kind guard (double tap | anti-passback | ferry tap-out)
#   -> no trusted time (accept, fare 0) -> price -> concessions -> daily limit
#   -> transfer window -> green channel.
import hashlib

from ykt import taprec as T
from ykt import cardread as CR
from ykt.rules import catalog as C
from ykt.rules import fares as F
from ykt.compat import const
from ykt.outcome import (FB_ACCEPT, FB_CONCESSION, FB_GREEN, FB_ALREADY, FB_DENY, FB_ERROR, FB_FAULT,
                         M_OK, M_CONCESSION, M_TRANSFER, M_ALREADY_PAID, M_GREEN, M_IDENTITY, M_EXIT,
                         M_DENY_LOST, M_EXPIRED, M_NOT_YET_VALID, M_REGION, M_UNSUPPORTED,
                         M_PASSBACK, M_DAILY_LIMIT, M_NO_TIME, M_NOT_CONFIGURED, M_READ_FAILED,
                         M_READER_FAULT, M_DENY_UNPAID, M_SHIFT_ON, M_SHIFT_OFF, M_NO_TRANSIT,
                         M_CARD_LOCKED, M_CARD_BLOCKED, KIND_BITS)

_T0 = const(1700000000)  # times are kept relative to 2023-11-14: small ints on the ESP32
_DOMAIN_CARD = b"ykt-card-v1\x00"  # must equal ykt.sec.token's domain (tested)
# messages of refused QR codes (a used code says "tap again": the holder's
# app shows a fresh one)
_QR_MSGS = {T.R_QR_EXPIRED: M_EXPIRED, T.R_QR_NOT_YET_VALID: M_NOT_YET_VALID,
            T.R_QR_REPLAY: M_READ_FAILED, T.R_NO_TRUSTED_TIME: M_NO_TIME}


def _pad(key, v):
    out = bytearray(64)
    for i in range(64):
        out[i] = (key[i] if i < len(key) else 0) ^ v
    return bytes(out)


def civil(days):
    """Days since 1970-01-01 -> YYYYMMDD (proleptic Gregorian), integer only."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    return y * 10000 + m * 100 + d


class Decider:
    def __init__(self, profile, catalog, fares, entitlements, denylist, recent, token_key):
        if not token_key or len(token_key) < 16:
            raise ValueError("a per-device token key of >= 16 bytes is required")
        if len(token_key) > 64:
            token_key = hashlib.sha256(token_key).digest()
        self.profile = profile
        self.catalog = catalog
        self.fares = fares
        self.entitlements = entitlements
        self.denylist = denylist
        self.recent = recent
        self._ipad = _pad(token_key, 0x36)
        self._opad = _pad(token_key, 0x5C)
        self.stop = profile.stop      # a bus may update it (stop announcements)
        self.stage = 0                # ferry stage chosen on the device (stage mode)
        self._day = -1
        self._ymd = 0
        self._wday = 0
        self._comp_tok = bytearray(8)
        self._comp_until = 0          # companion window end (relative seconds); 0 = closed
        # Driver shift on this (bus) validator: the seq of the sign-on tap (0 =
        # none) and the driver's card token. Changed only by shift_done(),
        # after the shift tap is on flash (the app calls it).
        self.shift = 0
        self.shift_tok = bytearray(8)

    # -- helpers -------------------------------------------------------
    def _token(self, data, tok):
        h = hashlib.sha256(self._ipad)
        h.update(_DOMAIN_CARD)
        h.update(data)
        h2 = hashlib.sha256(self._opad)
        h2.update(h.digest())
        d = h2.digest()
        for k in range(8):
            tok[k] = d[k]

    def _today(self, now_s):
        loc = now_s + self.profile.tz_min * 60
        days = loc // 86400
        if days != self._day:
            self._day = days
            self._ymd = civil(days)
            self._wday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        return (loc % 86400) // 60

    def _end(self, tap, outcome, reason, fb, msg):
        tap.outcome = outcome
        tap.reason = reason
        return fb | msg << KIND_BITS

    # -- the decision --------------------------------------------------
    def _begin(self, tap, now_s, time_trusted):
        """Every field a decision sets before its rules: the tap's context."""
        p = self.profile
        fares = self.fares
        dl = self.denylist
        tap.time = now_s
        tap.outcome = T.OUT_ACCEPT
        tap.reason = T.R_OK
        tap.fare = 0
        tap.concession = T.C_NONE
        tap.flags = 0 if time_trusted else T.F_TIME_UNTRUSTED
        tap.entry = p.entry
        tap.stop = self.stop
        tap.direction = p.direction
        tap.stage = 0
        tap.dl_ver = dl.version if dl is not None else 0
        if dl is not None and getattr(dl, "stale", False):
            tap.flags |= T.F_OFFLINE_LIST  # list older than its freshness limit: still used
        tap.fare_ver = fares.version if fares is not None else 0
        tap.cat_ver = self.catalog.version if self.catalog is not None else 0
        tap.shift = self.shift
        tok = tap.token
        for k in range(8):
            tok[k] = 0

    def decide(self, cr, now_s, time_trusted, tap):
        p = self.profile
        fares = self.fares
        dl = self.denylist
        self._begin(tap, now_s, time_trusted)
        tok = tap.token

        # 1. the read itself
        err = cr.error
        if err == CR.ERR_READER:
            return self._end(tap, T.OUT_ERROR, T.R_READER_FAULT, FB_FAULT, M_READER_FAULT)
        if err == CR.ERR_LOCKED or err == CR.ERR_BLOCKED:
            # a card refused by its own status word, not a misread: no "tap again"
            if cr.uid_len:
                self._token(memoryview(cr.uid)[:cr.uid_len], tok)
            tap.flags |= T.F_UID_ONLY
            if err == CR.ERR_LOCKED:
                return self._end(tap, T.OUT_DENY, T.R_CARD_LOCKED, FB_DENY, M_CARD_LOCKED)
            return self._end(tap, T.OUT_DENY, T.R_CARD_BLOCKED, FB_DENY, M_CARD_BLOCKED)
        if cr.kind == CR.KIND_UID_ONLY or err == CR.ERR_UNSUPPORTED or err == CR.ERR_UNKNOWN_APP:
            if cr.uid_len:
                # Token of the UID (never the UID itself) lets the back office spot clones.
                self._token(memoryview(cr.uid)[:cr.uid_len], tok)
            tap.flags |= T.F_UID_ONLY
            return self._end(tap, T.OUT_DENY, T.R_UNSUPPORTED, FB_DENY, M_UNSUPPORTED)
        if err != CR.OK or cr.kind == CR.KIND_NONE:
            return self._end(tap, T.OUT_ERROR, T.R_READ_FAILED, FB_ERROR, M_READ_FAILED)
        qr = cr.kind == CR.KIND_QR
        if qr:
            # e-SSC QR (ykt.qr.qrtoken verified it): its signed holder token is the
            # identity; a refused code is recorded with its R_QR_* reason.
            tap.flags |= T.F_QR
            src = cr.qr_token
            for k in range(8):
                tok[k] = src[k]
            if cr.qr_reason:
                r = cr.qr_reason
                return self._end(tap, T.OUT_DENY, r, FB_DENY, _QR_MSGS.get(r, M_UNSUPPORTED))

        # 2. configuration in force
        entry = self.catalog.get(p.entry) if self.catalog is not None else None
        if entry is None or (fares is None and entry.kind != C.K_MUSEUM and entry.kind != C.K_LIBRARY) \
                or (fares is not None and fares.entry != p.entry):
            return self._end(tap, T.OUT_DENY, T.R_NOT_CONFIGURED, FB_FAULT, M_NOT_CONFIGURED)

        # 3. identity: the keyed token, never the card number
        if not qr:
            self._token(cr.card_id, tok)

        # 4. deny list (works without trusted time)
        if dl is not None:
            # a format-3 list keeps other provinces' cards apart (region 45xxxx
            # is Guangxi; e-SSC codes carry no region: 0 counts as Guangxi)
            st = dl.lookup(tok, 0, cr.region and cr.region // 10000 != 45)
            if 1 <= st <= 4:
                return self._end(tap, T.OUT_DENY, T.R_DENY_LOST + st - 1, FB_DENY, M_DENY_LOST + st - 1)
            if st == 5:   # dlformat.ST_UNPAID: a returned collection not yet paid
                return self._end(tap, T.OUT_DENY, T.R_DENY_UNPAID, FB_DENY, M_DENY_UNPAID)

        # 5. validity dates, only against a trusted date
        minute = 0
        ymd = 0
        if time_trusted:
            minute = self._today(now_s)
            ymd = self._ymd
            pol = entry.flags & C.F_EXP_MASK
            if cr.expiry_date and ymd > cr.expiry_date and pol != C.EXP_ACCEPT and \
                    (pol != C.EXP_GRACE or days(ymd) - days(cr.expiry_date) > entry.grace):
                return self._end(tap, T.OUT_DENY, T.R_EXPIRED, FB_DENY, M_EXPIRED)
            if cr.issue_date and ymd < cr.issue_date:
                return self._end(tap, T.OUT_DENY, T.R_NOT_YET_VALID, FB_DENY, M_NOT_YET_VALID)

        # 6. the catalog entry must accept the issuing region
        if not entry.accepts(cr.region):
            return self._end(tap, T.OUT_DENY, T.R_REGION, FB_DENY, M_REGION)
        # 6a. Art. 14: where the entry requires it, the transport function
        # must be loaded (the reader selects it: app sets OPT_TRANSIT)
        if entry.flags & C.F_REQ_TRANSIT and not qr and not cr.has_transit:
            return self._end(tap, T.OUT_DENY, T.R_NO_TRANSIT, FB_DENY, M_NO_TRANSIT)

        # 6b. a driver's staff card on a bus signs a shift on or off (no fare)
        if qr:
            ent = cr.qr_ent   # signed by the back office seconds ago: fresher than ents.bin
        else:
            ent = self.entitlements.lookup(tok) if self.entitlements is not None else -1
        if ent >= 0 and ent & F.E_STAFF and entry.kind == C.K_BUS:
            if self.shift and _same(self.shift_tok, tok):
                return self._end(tap, T.OUT_ACCEPT, T.R_SHIFT_OFF, FB_ACCEPT, M_SHIFT_OFF)
            return self._end(tap, T.OUT_ACCEPT, T.R_SHIFT_ON, FB_ACCEPT, M_SHIFT_ON)

        # 7. per-kind guards, on the recent-tap memory. Before them: the
        # entitled holder's own second tap inside the companion window admits
        # the companion (a double tap or passback otherwise); another card
        # never does.
        rel = now_s - _T0 if now_s > _T0 else now_s
        if self._comp_until and rel <= self._comp_until and _same(self._comp_tok, tok):
            return self.companion(tap, rel)
        rc = self.recent
        i = rc.slot(tok)
        kind = entry.kind
        gate = kind == C.K_MUSEUM or kind == C.K_LIBRARY or kind == C.K_SCENIC
        dt = fares.double_tap_s if fares is not None else 0
        exiting = False
        base = 0
        if gate:
            if p.direction == C.DIR_EXIT:
                rc.inside[i] = 0
                return self._end(tap, T.OUT_ACCEPT, T.R_EXIT, FB_ACCEPT, M_EXIT)
            pb = fares.passback_s if fares is not None else 0
            if rc.inside[i] and rel - rc.inside[i] < pb:
                return self._end(tap, T.OUT_DENY, T.R_PASSBACK, FB_DENY, M_PASSBACK)
        elif kind == C.K_FERRY and fares.mode == F.MODE_OD and p.ferry_mode == "tapout":
            ins = rc.inside[i]
            if ins and rel - ins < fares.trip_max_s:
                if rel - ins < dt and rc.in_stop[i] == self.stop:
                    return self._end(tap, T.OUT_ACCEPT, T.R_ALREADY_PAID, FB_ALREADY, M_ALREADY_PAID)
                exiting = True
                tap.direction = C.DIR_EXIT
                tap.stage = rc.in_stop[i] & 0xFF
                base = fares.od_fare(rc.in_stop[i], self.stop)
                if base < 0:
                    base = fares.od_max(rc.in_stop[i])
            else:
                tap.direction = C.DIR_ENTRY
                base = fares.od_max(self.stop)
        else:
            if rc.last[i] and rel - rc.last[i] < dt:
                return self._end(tap, T.OUT_ACCEPT, T.R_ALREADY_PAID, FB_ALREADY, M_ALREADY_PAID)
        if base < 0:
            base = 0

        # 8. no trusted time: open, record, invent no fare (the back office prices it)
        if not time_trusted:
            self._commit(i, rel, gate, exiting, 0, False)
            return self._end(tap, T.OUT_ACCEPT, T.R_NO_TRUSTED_TIME, FB_ACCEPT, M_NO_TIME)
        return self._price(cr, tap, entry, i, rel, minute, ymd, base, gate, exiting, ent)

    def companion(self, tap, rel):
        """Admit the companion of the holder whose window is open: free, with
        the holder's token and F_COMPANION (the holder's second tap, or the
        staff's companion button on a gate: app.companion_button). One
        companion per window."""
        self._comp_until = 0
        tap.fare = 0
        tap.concession = T.C_DISABLED_COMPANION
        tap.flags |= T.F_COMPANION
        return self._end(tap, T.OUT_ACCEPT, T.R_CONCESSION, FB_CONCESSION, M_CONCESSION)

    def staff_companion(self, now_s, time_trusted, tap):
        """The staff's companion button on a gate: admits the companion of the
        holder whose window is open (the record carries the holder's token);
        None when no window is open (nothing to record)."""
        if not self.companion_open(now_s):
            return None
        self._begin(tap, now_s, time_trusted)
        src = self._comp_tok
        for k in range(8):
            tap.token[k] = src[k]
        return self.companion(tap, 0)

    def companion_open(self, now_s):
        """A companion window is open (the staff button may admit one)."""
        rel = now_s - _T0 if now_s > _T0 else now_s
        return bool(self._comp_until) and rel <= self._comp_until

    def shift_done(self, tap):
        """The shift tap `tap` is on flash (tap.seq assigned): open or close
        the shift. Any other tap changes nothing."""
        if tap.reason == T.R_SHIFT_ON:
            self.shift = tap.seq
            src = tap.token
            for k in range(8):
                self.shift_tok[k] = src[k]
            return True
        if tap.reason == T.R_SHIFT_OFF:
            self.shift = 0
            return True
        return False

    def _price(self, cr, tap, entry, i, rel, minute, ymd, base, gate, exiting, ent):
        fares = self.fares
        rc = self.recent
        tok = tap.token
        identity = fares is None or fares.mode == F.MODE_IDENTITY
        dtype = fares.day_type(ymd, self._wday) if fares is not None else F.D_WEEKDAY
        if identity:
            base = 0
        elif fares.mode != F.MODE_OD:
            base = fares.base_fare(minute, dtype)
        elif entry.kind != C.K_FERRY or self.profile.ferry_mode == "stage":
            tap.stage = self.stage & 0xFF
            f = fares.od_fare(self.stop, self.stage) if self.stage else -1
            base = f if f >= 0 else max(fares.od_max(self.stop), 0)
        fare = base
        conc = T.C_NONE
        green = False
        age = -1
        if cr.birth_date:
            age = (ymd - cr.birth_date) // 10000
        if True:
            if ent >= 0:
                green = bool(ent & F.E_GREEN)
                r = fares.cat_rule(ent >> 8, dtype) if fares is not None else None
                if r is not None:
                    fare = F.apply(r[1], r[4], base)
                    conc = r[0]
                elif identity:
                    conc = ent >> 8
                if ent & F.E_COMPANION and fares is not None and fares.companion_s:
                    for k in range(8):
                        self._comp_tok[k] = tok[k]
                    self._comp_until = rel + fares.companion_s
            if age >= 0 and fares is not None:
                r = fares.age_rule(age, dtype)
                if r is not None and (conc == T.C_NONE or F.apply(r[2], r[6], base) < fare):
                    fare = F.apply(r[2], r[6], base)
                    conc = r[3]
                if fares.green_age and age >= fares.green_age:
                    green = True
        reason = T.R_CONCESSION if conc != T.C_NONE else T.R_OK
        counted = False
        # daily free/concession ride limit, kept on the device
        if conc != T.C_NONE and conc != T.C_DISABLED_COMPANION and fares is not None \
                and fares.daily_free and not identity and not exiting:
            if rc.day[i] != self._day & 0xFFFF:
                rc.day[i] = self._day & 0xFFFF
                rc.free_n[i] = 0
            if rc.free_n[i] >= fares.daily_free:
                if fares.daily_act == F.DL_DENY:
                    return self._end(tap, T.OUT_DENY, T.R_DAILY_LIMIT, FB_DENY, M_DAILY_LIMIT)
                fare = base
                conc = T.C_NONE
                reason = T.R_DAILY_LIMIT
            else:
                counted = True
        # transfer window from the last full-fare ride on this device
        paid = False
        if reason == T.R_OK and fare > 0 and not exiting:
            if fares.transfer_s and fares.flags & F.FL_XFER_SAME_VEHICLE and rc.paid[i] \
                    and rel - rc.paid[i] < fares.transfer_s:
                tf = F.apply(fares.transfer_act, fares.transfer_val, fare)
                if tf < fare:
                    fare = tf
                    reason = T.R_TRANSFER
            else:
                paid = True
        tap.fare = fare
        tap.concession = conc
        if counted:
            rc.free_n[i] += 1
        self._commit(i, rel, gate, exiting, fare, paid)
        if gate and green:
            return self._end(tap, T.OUT_ACCEPT, T.R_GREEN_CHANNEL, FB_GREEN, M_GREEN)
        if identity:
            return self._end(tap, T.OUT_ACCEPT, T.R_IDENTITY_ENTRY, FB_ACCEPT, M_IDENTITY)
        if exiting:
            return self._end(tap, T.OUT_ACCEPT, T.R_EXIT, FB_ACCEPT if conc == T.C_NONE else FB_CONCESSION, M_EXIT)
        if reason == T.R_CONCESSION:
            return self._end(tap, T.OUT_ACCEPT, reason, FB_CONCESSION, M_CONCESSION)
        if reason == T.R_TRANSFER:
            return self._end(tap, T.OUT_ACCEPT, reason, FB_CONCESSION, M_TRANSFER)
        if reason == T.R_DAILY_LIMIT:
            return self._end(tap, T.OUT_ACCEPT, reason, FB_ACCEPT, M_DAILY_LIMIT)
        return self._end(tap, T.OUT_ACCEPT, T.R_OK, FB_ACCEPT, M_OK)

    def _commit(self, i, rel, gate, exiting, fare, paid):
        """State changes of an accepted tap (a refused tap changes nothing)."""
        rc = self.recent
        rc.last[i] = rel if rel else 1
        if paid:
            rc.paid[i] = rel if rel else 1
        if gate:
            rc.inside[i] = rel if rel else 1
        elif self.fares is not None and self.fares.mode == F.MODE_OD and self.profile.ferry_mode == "tapout":
            if exiting:
                rc.inside[i] = 0
            else:
                rc.inside[i] = rel if rel else 1
                rc.in_stop[i] = self.stop


def days(ymd):
    """YYYYMMDD -> days since 1970-01-01 (inverse of civil), integer only."""
    y = ymd // 10000
    m = ymd // 100 % 100
    d = ymd % 100
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _same(a, b):
    for k in range(8):
        if a[k] != b[k]:
            return False
    return True
