# Simulated cards and the RF field in front of the PN532 (shared data model:
# docs/pn532-simulator.md). Portable: CPython and the MicroPython unix port.
#
#   card = rfcards.load("ssc_nanning")          # profile host_tools/simhw/cards/<name>.json
#   card = rfcards.make_ssc(region=450200, birth=19560815, transit=True)
#   sim.field.present(card) ; sim.field.remove(card)
#
# Social security cards speak ISO/IEC 14443-4 and answer the SSC APDUs;
# MIFARE Classic (SAK 08, 4-byte UID) and Ultralight (SAK 00, 7-byte UID) do not
# (vhw.rfuid, imported when such a profile is loaded).
import json
from binascii import unhexlify, hexlify

import vclock
from vhw.iso14443 import IsoDepPicc

SSC_DF = unhexlify("7378312E73682EC9E7BBE1B1A3D5CF")  # "sx1.sh." + 社会保障 (GBK)
TRANSIT_AID = unhexlify("A000000632010105")

SW_OK = b"\x90\x00"


def _hex(v):
    if v is None:
        return None
    if isinstance(v, str):
        return unhexlify(v.replace(" ", ""))
    return bytes(v)


def _bcd(n, nbytes):
    s = "%0*d" % (nbytes * 2, n)
    return unhexlify(s)


def _mix(text):
    """FNV-1a 32-bit: deterministic per-card values without randomness."""
    h = 0x811C9DC5
    for c in text.encode():
        h = ((h ^ c) * 0x01000193) & 0xFFFFFFFF
    return h


def citizen_id(region, birth, seq=1):
    """An 18-character citizen ID with a correct ISO 7064 MOD 11-2 check digit."""
    body = "%06d%08d%03d" % (region // 100 * 100 + 3, birth, seq % 1000)
    w = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    s = 0
    for i in range(17):
        s += int(body[i]) * w[i]
    return body + "10X98765432"[s % 11]


def _tlv(tag, value):
    return bytes((tag, len(value))) + bytes(value)


def _kind(cmd):
    if len(cmd) >= 3 and cmd[1] == 0xA4 and cmd[2] == 0x04:
        return "select"
    if len(cmd) >= 2 and cmd[1] == 0xB2:
        return "read_record"
    return "apdu_other"


class SscCard(IsoDepPicc):
    """A social security card: DF 'sx1.sh.社会保障' with EF05 (SFI 5) and EF06
    (SFI 6) read by READ RECORD, optionally the transit application."""

    def __init__(self, name, uid, ats, atqa, records, transit=False, pin_ef06=False, pin=None,
                 responses=None, read_sw=None, generation=3):
        IsoDepPicc.__init__(self, uid, atqa, 0x20, ats, name)
        self.records = records            # {(sfi, rec): value bytes returned before SW}
        self.transit = transit
        self.pin_ef06 = pin_ef06
        self.pin = pin
        self.responses = responses or {}  # exact APDU -> answer overrides (hostile cards)
        self.read_sw = read_sw            # SW replacing 90 00 on READ RECORD (hostile)
        self.generation = generation
        self.app = None
        self.verified = False

    def reset_protocol(self):
        IsoDepPicc.reset_protocol(self)
        self.app = None
        self.verified = False

    def apdu(self, cmd):
        cmd = bytes(cmd)
        kind = _kind(cmd)
        if cmd in self.responses:
            rsp = self.responses[cmd]
            if kind == "select" and len(cmd) > 5 and cmd[5:5 + cmd[4]] == SSC_DF:
                self.app = "ssc"
            return rsp, kind
        if len(cmd) < 4:
            return b"\x67\x00", kind
        cla, ins, p1, p2 = cmd[0], cmd[1], cmd[2], cmd[3]
        if cla != 0x00:
            return b"\x6e\x00", kind
        if ins == 0xA4:
            return self._select(cmd, p1), kind
        if ins == 0xB2:
            return self._read_record(cmd, p1, p2), kind
        if ins == 0x20:
            return self._verify(cmd), kind
        return b"\x6d\x00", kind

    def _select(self, cmd, p1):
        if p1 == 0x00 and cmd[4:7] == b"\x02\x3f\x00":
            self.app = None
            return SW_OK
        if p1 != 0x04:
            return b"\x6a\x86"
        if len(cmd) < 5 or len(cmd) < 5 + cmd[4]:
            return b"\x67\x00"
        name = cmd[5:5 + cmd[4]]
        if name == SSC_DF:
            self.app = "ssc"
            prop = b"\x9f\x08\x01" + bytes((self.generation,))
        elif name == TRANSIT_AID and self.transit:
            self.app = "transit"
            prop = b"\x88\x01\x15"
        else:
            return b"\x6a\x82"
        body = _tlv(0x84, name) + _tlv(0xA5, prop)
        return _tlv(0x6F, body) + SW_OK

    def _read_record(self, cmd, rec, p2):
        if p2 & 7 != 4:
            return b"\x6a\x86"
        sfi = p2 >> 3
        if self.app != "ssc" or sfi not in (5, 6):
            return b"\x6a\x82"
        if sfi == 6 and self.pin_ef06 and not self.verified:
            return b"\x69\x82"
        val = self.records.get((sfi, rec))
        if val is None:
            return b"\x6a\x83"
        le = cmd[4] if len(cmd) == 5 else 0
        if le and le < len(val):
            return bytes((0x6C, len(val) & 0xFF))  # wrong Le: ISO 7816-4 says resend with this one
        return val + (self.read_sw or SW_OK)

    def _verify(self, cmd):
        if len(cmd) < 5 or len(cmd) < 5 + cmd[4]:
            return b"\x67\x00"
        if self.pin is not None and cmd[5:5 + cmd[4]] == self.pin:
            self.verified = True
            return SW_OK
        return b"\x63\xc2"


def make_ssc(region=450100, card_id=None, card_no=None, birth=19850612, issue=20210315,
             expiry=20310315, transit=False, pin_ef06=False, uid=None, name=None, spec=None,
             citizen=None, seq=1, fwi=7, ats=None, atqa=None, pin=None, records=None,
             responses=None, read_sw=None, slow_fraction=0, wtx=0, endless=False):
    """Build a social security card. Unset values derive deterministically from
    (region, birth, seq), so generated riders are reproducible."""
    key = "%d/%d/%d" % (region, birth, seq)
    h = _mix(key)
    if card_no is None:
        card_no = "A%08d" % (h % 100000000)
    card_no = card_no.encode() if isinstance(card_no, str) else bytes(card_no)
    if card_id is None:
        card_id = _bcd(region, 3) + b"\xd1\x56\x00\x00\x05" + _bcd(_mix(key + "id") % 10 ** 8, 4) + \
            _bcd(_mix(key + "id2") % 10 ** 8, 4)
    card_id = _hex(card_id)
    if uid is None:
        uid = bytes(((h >> 24) & 0xFF, (h >> 16) & 0xFF, (h >> 8) & 0xFF, h & 0xFF))
    uid = _hex(uid)
    if spec is None:
        spec = "3.00"
    if citizen is None:
        citizen = citizen_id(region, birth, seq)
    if fwi is None:
        fwi = 7
    if ats is None:
        # TL T0(TA,TB,TC present, FSCI 8 = 256) TA(same D both ways) TB(FWI, SFGI 0) TC(CID ok)
        ats = bytes((0x0C, 0x78, 0x80, (fwi << 4) & 0xF0, 0x02)) + b"SSC-SIM"
    if atqa is None:
        atqa = b"\x00\x08" if len(uid) == 4 else (b"\x00\x48" if len(uid) == 7 else b"\x00\x88")
    recs = {
        (5, 1): _tlv(0x01, card_id),
        (5, 3): _tlv(0x03, spec.encode()),
        (5, 4): _tlv(0x04, b"GXRSTSIM\x00\x00\x00\x00"),
        (5, 5): _tlv(0x05, _bcd(issue, 4)),
        (5, 6): _tlv(0x06, _bcd(expiry, 4)),
        (5, 7): _tlv(0x07, card_no),
        (6, 8): _tlv(0x08, citizen.encode()),
        (6, 9): _tlv(0x09, b"\xd5\xc5\xc8\xfd" + b"\x20" * 26),  # a GBK name, space padded
    }
    if records:
        for k, v in records.items():
            recs[k] = _hex(v)
    resp = {}
    if responses:
        for k, v in responses.items():
            resp[_hex(k)] = _hex(v)
    gen = spec.encode()[0] - 0x30 if spec else 3
    c = SscCard(name or ("ssc_" + key), uid, _hex(ats), _hex(atqa), recs, transit, pin_ef06,
                _hex(pin), resp, _hex(read_sw), gen)
    c.slow_fraction = slow_fraction
    c.wtx_count = wtx
    c.endless = endless
    # the fields a test compares a firmware CardRead against
    c.region = region
    c.card_id = card_id
    c.card_no = card_no
    c.birth = birth
    c.issue = issue
    c.expiry = expiry
    c.citizen = citizen
    return c


def _cards_dir():
    try:
        f = __file__
        i = f.rfind("/vhw/")
        if i >= 0:
            return f[:i] + "/cards/"
    except NameError:
        pass
    return "host_tools/simhw/cards/"


_SSC_KEYS = ("region", "card_id", "card_no", "birth", "issue", "expiry", "transit", "pin_ef06",
             "uid", "spec", "citizen", "seq", "fwi", "ats", "atqa", "pin", "read_sw",
             "slow_fraction", "wtx", "endless")


def profile(name):
    with open(_cards_dir() + name + ".json") as f:
        return json.load(f)


def load(name):
    """A fresh card object from host_tools/simhw/cards/<name>.json."""
    p = profile(name)
    t = p.get("type", "ssc")
    if t == "mifare_classic":
        from vhw.rfuid import MifareClassic
        c = MifareClassic(name, _hex(p["uid"]), _hex(p.get("key_a", "FFFFFFFFFFFF")))
    elif t == "ultralight":
        from vhw.rfuid import Ultralight
        c = Ultralight(name, _hex(p["uid"]))
    elif t == "ssc":
        kw = {}
        for k in _SSC_KEYS:
            if k in p:
                kw[k] = p[k]
        if "records" in p:
            kw["records"] = dict((tuple(int(x) for x in k.split(".")), v) for k, v in p["records"].items())
        if "responses" in p:
            kw["responses"] = p["responses"]
        c = make_ssc(name=name, **kw)
    else:
        raise ValueError("card %s: unknown type %s" % (name, t))
    if "atqa" in p and t != "ssc":
        c.atqa = _hex(p["atqa"])
    return c


def names():
    import os

    return sorted(n[:-5] for n in os.listdir(_cards_dir().rstrip("/")) if n.endswith(".json"))


class Field:
    """The RF field of one reader: which cards are in range. Cards are powered
    only while the PN532's field is on; leaving the field loses their state."""

    def __init__(self):
        self.cards = []
        self.rf_on = False
        self.listener = None  # fn(card, present) set by the PN532

    def present(self, card, after_us=0, for_us=None):
        """Put a card (object or profile name) in the field now or after_us;
        with for_us it leaves again that long after arriving."""
        if isinstance(card, str):
            card = load(card)
        if after_us:
            vclock.schedule(after_us, lambda: self.present(card, 0, for_us))
            return card
        if card not in self.cards:
            self.cards.append(card)
            card.power(self.rf_on)
            if self.listener:
                self.listener(card, True)
        if for_us:
            vclock.schedule(for_us, lambda: self.remove(card))
        return card

    def remove(self, card=None, after_us=0):
        """Take a card (or every card) out of the field now or after_us."""
        if after_us:
            vclock.schedule(after_us, lambda: self.remove(card))
            return
        for c in list(self.cards) if card is None else [card]:
            if c in self.cards:
                self.cards.remove(c)
                c.power(False)
                if self.listener:
                    self.listener(c, False)

    def clear(self):
        self.remove(None)

    def set_rf(self, on):
        if on != self.rf_on:
            self.rf_on = on
            for c in self.cards:
                c.power(on)

    def __contains__(self, card):
        return card in self.cards

    def __len__(self):
        return len(self.cards)


def hexs(b):
    return hexlify(bytes(b)).decode()
