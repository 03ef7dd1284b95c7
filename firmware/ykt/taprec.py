# The tap record: one fixed 40-byte little-endian layout (format 2), defined
# once and used by the journal (encrypted at rest), the uplink batch and the
# back office (which imports this module). Test vectors in tests/fw/t_taprec.py
# pin the bytes. Format 1 was bytes 0..35 alone (no shift): the journal still
# reads segments of it (shift = 0) and the back office still decodes batches
# of wire format 1, so a device updated with taps pending loses none.
#
#  off size field
#   0   4   seq        per-device sequence number, never repeats
#   4   4   time       unix seconds from the device clock (see F_TIME_UNTRUSTED)
#   8   8   token      keyed card token (ykt.sec.token) or QR token id; never the card identity
#  16   1   outcome    OUT_*
#  17   1   reason     R_* (stable codes, recorded with every tap)
#  18   2   fare       provisional fare in fen (0.01 CNY); the back office settles
#  20   1   concession C_*
#  21   1   flags      F_* bits
#  22   2   entry      catalog entry id (bus route, ferry line, venue)
#  24   2   stop       stop / gate / pier id
#  26   1   direction  0 none, 1 inbound/up, 2 outbound/down, 3 entry, 4 exit
#  27   1   stage      ferry origin/destination stage or 0
#  28   4   dl_ver     deny-list version in force
#  32   2   fare_ver   fare table version in force
#  34   2   cat_ver    catalog version in force
#  36   4   shift      driver shift in force on this device: the seq of the shift's
#                      sign-on tap (R_SHIFT_ON), 0 = no shift (format 2)
import struct

from ykt.compat import const

FORMAT = const(2)
SIZE = const(40)
SIZE_V1 = const(36)             # format 1: no shift field
_FMT = "<II8sBBHBBHHBBIHHI"

OUT_ACCEPT = const(0)
OUT_DENY = const(1)
OUT_ERROR = const(2)     # card could not be read / reader fault; recorded too

# Reason codes. Append only: the back office and old journals depend on them.
R_OK = const(0)
R_CONCESSION = const(1)
R_TRANSFER = const(2)          # free/discounted transfer within the window
R_ALREADY_PAID = const(3)      # double tap on a bus within N seconds: no second fare
R_GREEN_CHANNEL = const(4)
R_IDENTITY_ENTRY = const(5)    # free identity-checked entry (museum, library)
R_EXIT = const(6)              # gate exit / ferry tap-out
R_SHIFT_ON = const(7)          # a driver's staff card signed on: the tap's seq names the shift
R_SHIFT_OFF = const(8)         # the same staff card signed off (shift = the shift it ends)
R_DENY_LOST = const(16)
R_DENY_SUSPENDED = const(17)
R_DENY_CANCELLED = const(18)
R_DENY_REPLACED = const(19)
R_EXPIRED = const(20)
R_NOT_YET_VALID = const(21)
R_REGION = const(22)           # card region not accepted by this catalog entry
R_UNSUPPORTED = const(23)      # UID-only card, possible clone
R_PASSBACK = const(24)         # anti-passback at a gate
R_DAILY_LIMIT = const(25)
R_NO_TRUSTED_TIME = const(26)  # no fare without trusted time
R_QR_EXPIRED = const(27)
R_QR_NOT_YET_VALID = const(28)
R_QR_BAD_SIGNATURE = const(29)
R_QR_REPLAY = const(30)
R_QR_MALFORMED = const(31)
R_QR_UNKNOWN_KEY = const(32)
R_NOT_CONFIGURED = const(33)   # no catalog entry / fare table loaded
R_NO_TRANSIT = const(34)       # the entry requires the transport function; the card has none
R_CARD_LOCKED = const(35)      # the SSC application answered SELECT with 62 83 (locked)
R_DENY_UNPAID = const(36)      # on the deny list for a returned collection (arrears)
R_CARD_BLOCKED = const(37)     # the card answered SELECT with 6A 81 (blocked)
R_READ_FAILED = const(48)      # card removed / timeout / malformed (see cardread error)
R_READER_FAULT = const(49)

C_NONE = const(0)
C_ELDERLY_HALF = const(1)
C_ELDERLY_FREE = const(2)
C_DISABLED = const(3)
C_DISABLED_COMPANION = const(4)
C_MILITARY_CARE = const(5)
C_SOLDIER = const(6)
C_FIRE_RESCUE = const(7)
C_CHILD = const(8)

F_TIME_UNTRUSTED = const(0x01)  # device had no trusted time: monotonic fallback
F_QR = const(0x02)              # electronic card (QR token)
F_UID_ONLY = const(0x04)
F_COMPANION = const(0x08)
F_OFFLINE_LIST = const(0x10)    # deny list older than its freshness limit


class Tap:
    __slots__ = ("seq", "time", "token", "outcome", "reason", "fare", "concession", "flags",
                 "entry", "stop", "direction", "stage", "dl_ver", "fare_ver", "cat_ver", "shift")

    def __init__(self):
        self.token = bytearray(8)
        self.clear()

    def clear(self):
        self.seq = 0
        self.time = 0
        for i in range(8):
            self.token[i] = 0
        self.outcome = OUT_ACCEPT
        self.reason = R_OK
        self.fare = 0
        self.concession = C_NONE
        self.flags = 0
        self.entry = 0
        self.stop = 0
        self.direction = 0
        self.stage = 0
        self.dl_ver = 0
        self.fare_ver = 0
        self.cat_ver = 0
        self.shift = 0


def pack_into(buf, off, t):
    # t.token goes in as the bytearray it is: a bytes() copy would allocate per tap
    struct.pack_into(_FMT, buf, off, t.seq, t.time, t.token, t.outcome, t.reason, t.fare,
                     t.concession, t.flags, t.entry, t.stop, t.direction, t.stage, t.dl_ver,
                     t.fare_ver, t.cat_ver, t.shift)


def pack(t):
    b = bytearray(SIZE)
    pack_into(b, 0, t)
    return bytes(b)


def unpack_from(buf, off=0, t=None):
    if len(buf) - off < SIZE:
        raise ValueError("tap record truncated")
    v = struct.unpack_from(_FMT, buf, off)
    if t is None:
        t = Tap()
    (t.seq, t.time, tok, t.outcome, t.reason, t.fare, t.concession, t.flags, t.entry, t.stop,
     t.direction, t.stage, t.dl_ver, t.fare_ver, t.cat_ver, t.shift) = v
    t.token[:] = tok
    return t


def to_dict(t):
    return {"seq": t.seq, "time": t.time, "token": "".join("%02x" % b for b in t.token),
            "outcome": t.outcome, "reason": t.reason, "fare": t.fare, "concession": t.concession,
            "flags": t.flags, "entry": t.entry, "stop": t.stop, "direction": t.direction,
            "stage": t.stage, "dl_ver": t.dl_ver, "fare_ver": t.fare_ver, "cat_ver": t.cat_ver, "shift": t.shift}
