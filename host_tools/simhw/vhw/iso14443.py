# ISO/IEC 14443 type A, card side: the -3 state machine (REQA/WUPA, cascaded
# anticollision, SELECT, HLTA) and the -4 block protocol (RATS/ATS, I-blocks
# with chaining, R(ACK)/R(NAK), S(DESELECT), S(WTX)). Portable.
#
# Only what a PCD can observe is modeled: which frames a card answers, with
# which bytes and after how long. The PN532 side (pn532sim) drives these.

# card states (ISO/IEC 14443-3 figure 8, plus PROTO = -4 protocol active)
OFF = 0
IDLE = 1
READY = 2
ACTIVE = 3
HALT = 4
PROTO = 5

FSC_TABLE = (16, 24, 32, 40, 48, 64, 96, 128, 256)


def crc_a(data):
    """CRC_A (ISO/IEC 14443-3 annex B): init 0x6363, LSB first, 2 bytes little-endian."""
    crc = 0x6363
    for b in data:
        b ^= crc & 0xFF
        b = (b ^ (b << 4)) & 0xFF
        crc = ((crc >> 8) ^ (b << 8) ^ (b << 3) ^ (b >> 4)) & 0xFFFF
    return bytes((crc & 0xFF, crc >> 8))


def fwt_us(fwi):
    """Frame waiting time: (256*16/fc) * 2**FWI, fc = 13.56 MHz (FWI 4 = 4.8 ms, 7 = 38.7 ms)."""
    return (4096 * (1 << fwi) * 100) // 1356


def fsc_of(fsci):
    return FSC_TABLE[fsci] if fsci < 9 else 256  # RFU values mean 256 (ISO/IEC 14443-4:2016)


def parse_ats(ats):
    """(fsc, fwi, cid_supported) from an ATS starting with TL; defaults per -4 5.2."""
    fsci = 2
    fwi = 4
    cid = True
    if len(ats) >= 2:
        t0 = ats[1]
        fsci = t0 & 0x0F
        i = 2
        if t0 & 0x10:
            i += 1  # TA(1)
        if t0 & 0x20 and i < len(ats):
            fwi = ats[i] >> 4
            i += 1
        if t0 & 0x40 and i < len(ats):
            cid = bool(ats[i] & 0x02)
    if fwi > 14:
        fwi = 4
    return fsc_of(fsci), fwi, cid


def cascade(uid):
    """UID -> list of 4-byte UID CLn fields (a cascade tag 0x88 starts every
    level but the last). Hostile UIDs longer than 10 bytes get more levels."""
    out = []
    u = bytes(uid)
    while len(u) > 4:
        out.append(b"\x88" + u[:3])
        u = u[3:]
    out.append(u + bytes(4 - len(u)))
    return out


def bcc(cl):
    return cl[0] ^ cl[1] ^ cl[2] ^ cl[3]


def resolve(cands, level):
    """Bit-oriented anticollision among the cards answering at one cascade
    level. Where answers collide the PCD sends 1 for the collision bit (what
    NXP readers do), so the survivor is deterministic. Returns (card, collided)."""
    cands = list(cands)
    collided = False
    for bit in range(32):
        ones = []
        zeros = []
        for c in cands:
            cl = c.levels[level]
            if (cl[bit >> 3] >> (bit & 7)) & 1:
                ones.append(c)
            else:
                zeros.append(c)
        if ones and zeros:
            collided = True
            cands = ones
        if len(cands) == 1:
            break
    return cands[0], collided


class Picc:
    """ISO/IEC 14443-3 type A card. Subclasses answer commands once selected."""

    iso4 = False

    def __init__(self, uid, atqa, sak, name=""):
        self.uid = bytes(uid)
        self.atqa = bytes(atqa)   # as the PN532 reports SENS_RES: 2 bytes, MSB first
        self.sak = sak            # final SAK (cascade bit 0x04 clear)
        self.name = name
        self.levels = cascade(self.uid)
        self.state = OFF

    def __repr__(self):
        return "<%s %s>" % (self.__class__.__name__, self.name)

    def sak_at(self, level):
        return 0x04 if level < len(self.levels) - 1 else self.sak

    def power(self, on):
        """RF field on/off or card entering/leaving: everything volatile is lost."""
        self.state = IDLE if on else OFF
        self.reset_protocol()

    def reset_protocol(self):
        pass

    def answers_req(self, wupa):
        """REQA reaches IDLE cards; WUPA also wakes HALT cards (ISO 14443-3 6.3)."""
        if self.state == IDLE or (wupa and self.state == HALT):
            self.state = READY
            return True
        return False

    def selected(self):
        self.state = ACTIVE

    def halt(self):
        if self.state != OFF:
            self.state = HALT
        self.reset_protocol()

    def raw(self, data, timing):
        """A frame to a selected card that is not speaking -4.
        Returns (answer bytes or None for silence, card time in us)."""
        return None, 0


class IsoDepPicc(Picc):
    """ISO/IEC 14443-4 card: RATS, then half-duplex blocks carrying APDUs.
    Subclasses implement apdu(cmd) -> (response incl. SW, kind) where kind is
    'select', 'read_record' or 'apdu_other' (the card processing time class,
    timing[kind + '_us'])."""

    iso4 = True

    def __init__(self, uid, atqa, sak, ats, name=""):
        Picc.__init__(self, uid, atqa, sak | 0x20, name)
        self.ats = bytes(ats)
        self.fsc, self.fwi, self.cid_ok = parse_ats(self.ats)
        # behaviour knobs (profiles and faults set them)
        self.slow_fraction = 0      # >0: answer at this fraction of FWT
        self.slow_exceed = False    # True: answer only after FWT (the PCD times out)
        self.wtx_count = 0          # S(WTX) requests before each answer
        self.endless = False        # chain every answer forever
        self.reset_protocol()

    def reset_protocol(self):
        self.bn = 1          # Rule C: PICC block number starts at 1
        self.fsd = 256
        self.cid = None
        self.rx = bytearray()  # chained command being received
        self.tx = b""          # rest of a chained answer
        self.last = None       # last block sent (for retransmission rules)
        self.held = None       # answer waiting behind S(WTX)
        self.held_us = 0
        self.wtx_left = 0

    def rats(self, param):
        """RATS param byte = FSDI<<4 | CID. Returns the ATS (TL first), or
        None when the card is not in the ACTIVE state (RATS only follows SELECT)."""
        if self.state != ACTIVE:
            return None
        self.reset_protocol()
        self.fsd = fsc_of(param >> 4)
        self.cid = (param & 0x0F) if self.cid_ok else 0  # no CID support: the CID is ignored
        self.state = PROTO
        return self.ats

    def proc_us(self, kind, timing):
        if self.slow_exceed:
            return fwt_us(self.fwi) * 3 // 2
        if self.slow_fraction:
            return int(fwt_us(self.fwi) * self.slow_fraction)
        return timing[kind + "_us"]

    def block(self, data, timing):
        """One -4 block in, one block out. Returns (answer or None, card us, apdu_done)."""
        if self.state != PROTO or not data:
            return None, 0, False
        pcb = data[0]
        i = 1
        cid = None
        if pcb & 0x08:                 # CID byte follows (I, R and S blocks alike)
            if len(data) < 2:
                return None, 0, False
            cid = data[1] & 0x0F
            i = 2
            if (not self.cid_ok and cid) or cid != (self.cid or 0):
                return None, 0, False  # not addressed to us: a card stays mute
        elif self.cid:
            return None, 0, False      # we were given a CID: blocks without one are not for us
        if pcb & 0xE2 == 0x02:         # I-block
            if pcb & 0x04:
                i += 1                 # NAD: accepted and ignored
            self.bn ^= 1               # Rule D
            self.rx.extend(data[i:])
            if pcb & 0x10:             # chaining from the PCD: acknowledge
                return self._send(bytes((0xA2 | self.bn,)), cid), 0, False
            cmd = bytes(self.rx)
            self.rx = bytearray()
            rsp, kind = self.apdu(cmd)
            t = self.proc_us(kind, timing)
            if self.endless:
                rsp = bytes(rsp) + bytes(0xEE for _ in range(64))
            self.tx = bytes(rsp)
            ans = self._next_chunk(cid)
            if self.wtx_count:
                # a slow card asks for more time (S(WTX), WTXM=2) before answering
                self.held = ans
                self.wtx_left = self.wtx_count - 1
                self.held_us = t // (self.wtx_count + 1)
                return self._send(bytes((0xF2, 2)), cid), self.held_us, True
            return ans, t, True
        if pcb & 0xE6 == 0xA2:         # R-block
            nak = pcb & 0x10
            if (pcb & 1) == self.bn:   # Rule 11: same number -> repeat the last block
                return self.last, 0, False
            if nak:                    # Rule 12: R(NAK) with other number -> R(ACK)
                return self._send(bytes((0xA2 | self.bn,)), cid), 0, False
            self.bn ^= 1               # Rule E: ACK for our chained block
            if self.tx or self.endless:
                if self.endless and not self.tx:
                    self.tx = bytes(0xEE for _ in range(64))
                return self._next_chunk(cid), 0, False
            return None, 0, False
        if pcb & 0xF7 == 0xC2:         # S(DESELECT)
            ans = self._send(bytes((0xC2,)), cid)
            self.halt()
            return ans, 0, False
        if pcb & 0xF7 == 0xF2 and self.held is not None:  # S(WTX) response
            if self.wtx_left:
                self.wtx_left -= 1
                return self._send(bytes((0xF2, 2)), cid), self.held_us, False
            ans = self.held
            self.held = None
            self.last = ans
            return ans, self.held_us, False
        return None, 0, False          # protocol error: the card stays mute

    def _next_chunk(self, cid):
        room = self.fsd - 3 - (1 if cid is not None else 0)
        chunk = self.tx[:room]
        self.tx = self.tx[room:]
        more = bool(self.tx) or self.endless
        pcb = (0x12 if more else 0x02) | self.bn
        return self._send(bytes((pcb,)) + chunk, cid)

    def _send(self, blk, cid):
        if cid is not None:
            blk = bytes((blk[0] | 0x08, cid)) + blk[1:]
        self.last = blk
        return blk

    def apdu(self, cmd):
        return b"\x6d\x00", "apdu_other"
