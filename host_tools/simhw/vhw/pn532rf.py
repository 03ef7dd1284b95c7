# The RF half of the simulated PN532: listing targets (REQA, anticollision,
# SELECT, RATS; MaxRetries polling on the virtual clock), InDataExchange with
# the chip's own ISO14443-4 block protocol (chaining both ways, WTX, the 262-byte
# buffer and MI), InCommunicateThru, InRelease/InDeselect/InSelect. A mixin of
# vhw.pn532sim.PN532Sim, which owns the host link, timing and faults. Portable.
import vclock
from vhw import pn532frames as F
from vhw import iso14443 as iso

BUF_MAX = 262         # data bytes after the status byte in one InDataExchange answer
_RATS_FSDI = 0x50     # the chip's RATS: FSD 64, CID = Tg-1
_P_AUTO_RATS = 0x10   # SetParameters fAutomaticRATS
_WAKE_RF = 0x08       # PowerDown wake-up source: RF field / card

ST_TIMEOUT = 0x01
ST_PROTOCOL = 0x0B
ST_CONTEXT = 0x27     # command not acceptable in the current context (no such target)
_R_TXCONTROL = 0x6304
_R_TXMODE = 0x6302
_R_RXMODE = 0x6303
_R_FIFODATA = 0x6339
DEFER = object()  # a handler that answers later (polling)


class _Target:
    __slots__ = ("card", "tg", "iso4", "bn", "rbuf", "card_more", "deselected", "sens")

    def __init__(self, card, tg, iso4, sens):
        self.card = card
        self.tg = tg
        self.iso4 = iso4
        self.sens = sens
        self.bn = 0            # PCD block number (ISO 14443-4 rule A)
        self.rbuf = b""        # answer bytes not yet returned to the host (MI)
        self.card_more = False  # the card is still chaining its answer
        self.deselected = False



class RfCommands:
    """Methods PN532Sim inherits; they use its timing, field, _finish and _later."""

    def _rf_on(self):
        if self._sam:  # LowVbat: the field cannot come on before SAMConfiguration
            self.field.set_rf(True)
            self._regs[_R_TXCONTROL] = 0x83
        return self.field.rf_on

    def _rf_off(self):
        self.field.set_rf(False)
        self._regs[_R_TXCONTROL] = 0x80

    def _field_event(self, card, present):
        if present and self._poll is not None:
            self._poll_card_arrived()
        if present and self._asleep and self._sam and self._wake_mask & _WAKE_RF:
            self._wake()

    def _target(self, tg):
        for t in self._targets:
            if t.tg == tg & 0x0F:
                return t
        return None

    def _rf_fault(self, card):
        """card_removed / rf_error faults, counted per RF exchange. -> status or 0."""
        f = self._f
        if f.get("remove_after") is not None:
            if f["remove_after"] <= 0:
                f["remove_after"] = None
                self.field.remove(card)
            else:
                f["remove_after"] -= 1
        if f.get("rf_err_n"):
            f["rf_err_n"] -= 1
            return f["rf_err"]
        return 0

    def _activate(self, maxtg, want_uid):
        """Anticollision and selection of up to maxtg type A cards -> (targets, us)."""
        T = self.timing
        us = 0
        found = []
        for c in self.field.cards:
            if c.state in (iso.ACTIVE, iso.PROTO):
                # still selected from an earlier listing: our REQA sends it back to IDLE
                # (ISO 14443-3) and the retry finds it again: a card left on re-triggers
                c.power(True)
                us += T["poll_us"]
        while len(found) < maxtg:
            cands = [c for c in self.field.cards
                     if c.state == iso.IDLE and (want_uid is None or c.uid == want_uid)]
            for c in cands:
                c.answers_req(False)
            if not cands:
                break
            card, coll = iso.resolve(cands, 0)
            sens = card.atqa
            if len(cands) > 1:
                # answers collide: the reader saw the OR of every SENS_RES
                s0 = s1 = 0
                for c in cands:
                    s0 |= c.atqa[0]
                    s1 |= c.atqa[1]
                sens = bytes((s0, s1))
                us += T["block_us"]
            for c in cands:
                if c is not card:
                    c.state = iso.IDLE
            card.selected()
            us += T["activate_uid_us"]
            tg = len(found) + 1
            ats = None
            if card.iso4 and self._params & _P_AUTO_RATS:
                ats = card.rats(_RATS_FSDI | (tg - 1))
                us += T["activate_iso4_us"] - T["activate_uid_us"]
            t = _Target(card, tg, ats is not None, sens)
            t.deselected = False
            found.append((t, ats))
            self._count("activations")
        if found and len(found) < maxtg:
            us += T["poll_us"]  # the attempt that looked for one more target
        return found, us

    # ---------------------------------------------------------------- commands
    def _c_inlist(self, d):
        if len(d) < 2 or d[0] < 1 or d[0] > 2 or d[1] > 8:
            return None
        maxtg, brty = d[0], d[1]
        want = None
        if len(d) > 2:
            u = bytes(d[2:])
            if len(u) > 4 and u[0] == 0x88:
                u = u[1:4] + (u[5:] if len(u) > 8 and u[4] == 0x88 else u[4:])
            want = u
        self._targets = []
        self._count("polls")
        self._rf_on()
        if brty == 0 and self.field.rf_on:
            found, us = self._activate(maxtg, want)
            if found:
                return self._inlist_reply(found), us, found[0][0].card, b"\x00"
        # nobody answered: keep polling until MxRtyPassiveActivation runs out
        self._poll = (maxtg, brty, want, vclock.now_us())
        self._poll_ev = None
        if self._mx_passive != 0xFF:
            tries = self._mx_passive + 1
            self._poll_ev = self._later(self.timing["cmd_us"] + tries * self.timing["poll_us"],
                                        self._poll_give_up)
        return DEFER

    def _inlist_reply(self, found):
        out = bytearray((len(found),))
        for t, ats in found:
            c = t.card
            out += bytes((t.tg,)) + t.sens + bytes((c.sak, len(c.uid))) + c.uid
            if ats:
                out += ats
            self._targets.append(t)
        self._regs[_R_FIFODATA] = out[-1]
        return bytes(out)

    def _poll_give_up(self):
        self._poll = None
        self._poll_ev = None
        self._regs[_R_FIFODATA] = 0x26  # our REQA is still in the CIU FIFO: nobody answered
        self._busy = False
        self._count("rf_us", (self._mx_passive + 1) * self.timing["poll_us"])
        self._emit(F.reply(0x4A, b"\x00"), True)

    def _poll_card_arrived(self):
        maxtg, brty, want, t0 = self._poll
        if brty != 0 or not self.field.rf_on:
            return
        P = self.timing["poll_us"]
        now = vclock.now_us()
        k = (now - t0 + P - 1) // P
        if self._mx_passive != 0xFF and k > self._mx_passive:
            return
        self._poll = None
        if self._poll_ev is not None:
            vclock.cancel(self._poll_ev)
            if self._poll_ev in self._evs:
                self._evs.remove(self._poll_ev)
            self._poll_ev = None

        def attempt():
            found, us = self._activate(maxtg, want)
            if not found:
                self._poll = (maxtg, brty, want, t0)
                if self._mx_passive != 0xFF:
                    left = t0 + (self._mx_passive + 1) * P - vclock.now_us()
                    self._poll_ev = self._later(max(0, left), self._poll_give_up)
                return
            self._count("rf_us", k * P)  # the attempts that found nobody
            self._finish(0x4A, self._inlist_reply(found), us, found[0][0].card, b"\x00")

        self._later(max(0, t0 + k * P - now), attempt)

    def _c_exchange(self, d):
        if not d:
            return None
        t = self._target(d[0])
        if t is None:
            return bytes((ST_CONTEXT,)), 0
        card = t.card
        err = self._rf_fault(card)
        self._count("apdus")
        if err:
            return bytes((err,)), self.timing["block_us"]
        data = bytes(d[1:])
        if card not in self.field.cards:
            return bytes((ST_TIMEOUT,)), iso.fwt_us(getattr(card, "fwi", 4))
        if t.iso4:
            st, out, mi, us = self._dep(t, data, d[0] & 0x40)
        elif hasattr(card, "mifare") and card.state == iso.ACTIVE:
            st, out = card.mifare(data)
            mi = False
            us = self.timing["block_us"] + self.timing["per_byte_us"] * (len(data) + len(out))
        else:
            st, out, mi, us = ST_TIMEOUT, b"", False, self.timing["block_us"]
        if st:
            self._last_err = st
        return bytes((st | (0x40 if mi else 0),)) + out, us, card, b"\x01"

    def _blk(self, t, blk, inf_in):
        """PN532 -> card -4 block; returns (answer without CID, us, card us)."""
        card = t.card
        if card.cid:
            blk = bytes((blk[0] | 0x08, card.cid)) + blk[1:]
        ans, cus, done = card.block(blk, self.timing)
        T = self.timing
        frame_us = T["apdu_rf_us"] if done else T["block_us"]
        if ans is not None and ans[0] & 0x08:
            ans = bytes((ans[0] & 0xF7,)) + ans[2:]
        inf_out = 0
        if ans is not None and ans[0] & 0xE2 == 0x02:
            inf_out = len(ans) - 1
        return ans, frame_us + cus + T["per_byte_us"] * (inf_in + inf_out), cus

    def _dep(self, t, data, host_more):
        """InDataExchange on an ISO14443-4 target: the PN532 runs the block
        protocol itself (chaining both ways, WTX) -> (status, data, MI, us)."""
        card = t.card
        fwt = iso.fwt_us(card.fwi)
        us = 0
        if not data and not host_more and (t.rbuf or t.card_more):
            ans = None
            if t.card_more:  # ask the card for its next chained block
                ans, u, c = self._blk(t, bytes((0xA2 | t.bn,)), 0)
                us += u
                if c > fwt:
                    ans = None
        else:
            t.rbuf = b""
            t.card_more = False
            room = card.fsc - 3 - (1 if card.cid else 0)
            ans = None
            off = 0
            while True:
                chunk = data[off:off + room]
                off += len(chunk)
                last = off >= len(data) and not host_more
                ans, u, c = self._blk(t, bytes(((0x02 if last else 0x12) | t.bn,)) + chunk, len(chunk))
                us += u
                if c > fwt:
                    ans = None  # later than the frame waiting time: the PN532 gave up
                if ans is None:
                    return ST_TIMEOUT, b"", False, us + fwt
                if last:
                    break
                if ans[0] & 0xE6 != 0xA2 or ans[0] & 0x10 or (ans[0] & 1) != t.bn:
                    return ST_PROTOCOL, b"", False, us
                t.bn ^= 1
                if off >= len(data):
                    return 0, b"", False, us  # host chaining: wait for the rest
        rbuf = t.rbuf
        while ans is not None or t.card_more:
            if ans is None:
                return ST_TIMEOUT, b"", False, us + fwt
            pcb = ans[0]
            if pcb & 0xF7 == 0xF2 and len(ans) > 1:  # S(WTX): grant what the card asks
                wtxm = ans[1] & 0x3F
                ans, u, c = self._blk(t, bytes((0xF2, wtxm)), 0)
                us += u
                if c > fwt * max(1, wtxm):
                    ans = None
                continue
            if pcb & 0xE2 != 0x02:
                return ST_PROTOCOL, b"", False, us
            t.bn ^= 1
            rbuf += ans[1:]
            if not pcb & 0x10:
                t.card_more = False
                ans = None
                break
            t.card_more = True
            if len(rbuf) >= BUF_MAX:
                break
            ans, u, c = self._blk(t, bytes((0xA2 | t.bn,)), 0)
            us += u
            if c > fwt:
                ans = None
        out = rbuf[:BUF_MAX]
        t.rbuf = rbuf[BUF_MAX:]
        return 0, out, bool(t.rbuf) or t.card_more, us

    def _c_thru(self, d):
        t = self._targets[0] if self._targets else None
        if t is None:
            return bytes((ST_CONTEXT,)), 0
        card = t.card
        err = self._rf_fault(card)
        self._count("apdus")
        T = self.timing
        n = self._thru_tmo
        tmo = (100 << (n - 1)) if n else 10 ** 9
        if err:
            return bytes((err,)), T["block_us"]
        data = bytes(d)
        if not self._regs.get(_R_TXMODE, 0x80) & 0x80:
            # TxCRC off: the host supplies CRC_A itself; a card ignores a bad one
            if len(data) < 3 or iso.crc_a(data[:-2]) != data[-2:]:
                return bytes((ST_TIMEOUT,)), tmo, card, b"\x01"
            data = data[:-2]
        if card not in self.field.cards or not data:
            return bytes((ST_TIMEOUT,)), tmo, card, b"\x01"
        frame_us = T["block_us"]
        if card.state == iso.PROTO:
            ans, cus, done = card.block(data, T)
            if done:
                frame_us = T["apdu_rf_us"]
        elif card.iso4 and card.state == iso.ACTIVE and data[0] == 0xE0 and len(data) == 2:
            ans, cus = card.rats(data[1]), 0
            frame_us = T["activate_iso4_us"] - T["activate_uid_us"]
            t.iso4 = True
            t.bn = 0
        else:
            ans, cus = card.raw(data, T)
        if ans is None or cus > tmo:
            return bytes((ST_TIMEOUT,)), tmo, card, b"\x01"
        if not self._regs.get(_R_RXMODE, 0x80) & 0x80:
            ans = ans + iso.crc_a(ans)  # RxCRC off: the host gets (and checks) the CRC
        return b"\x00" + ans, frame_us + cus + T["per_byte_us"] * (len(data) + len(ans)), card, b"\x01"

    def _release(self, d, keep):
        if not d:
            return None
        tg = d[0]
        hit = [t for t in self._targets if tg == 0 or t.tg == tg]
        if not hit:
            return bytes((ST_CONTEXT,)), 0
        us = 0
        for t in hit:
            c = t.card
            if c in self.field.cards:
                if c.state == iso.PROTO:
                    self._blk(t, b"\xc2", 0)  # S(DESELECT)
                else:
                    c.halt()                   # HLTA
                us += self.timing["block_us"]
            t.deselected = True
            if not keep:
                self._targets.remove(t)
        return b"\x00", us

    def _c_release(self, d):
        return self._release(d, False)

    def _c_deselect(self, d):
        return self._release(d, True)

    def _c_select(self, d):
        if not d:
            return None
        t = self._target(d[0])
        if t is None or not t.deselected:
            return bytes((ST_CONTEXT,)), 0
        c = t.card
        T = self.timing
        if c not in self.field.cards or not c.answers_req(True):
            return bytes((ST_TIMEOUT,)), T["poll_us"]
        c.selected()
        us = T["activate_uid_us"]
        if t.iso4:
            c.rats(_RATS_FSDI | (t.tg - 1))
            t.bn = 0
            us = T["activate_iso4_us"]
        t.deselected = False
        return b"\x00", us
