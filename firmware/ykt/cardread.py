# The normalized result of one card presentation, shared by the reader (which
# fills it) and the decision engine (which reads it). One instance is allocated
# at boot and refilled per tap, so the hot path allocates nothing.
from ykt.compat import const

# What was presented
KIND_NONE = const(0)
KIND_SSC = const(1)        # social security card, EF05 read
KIND_UID_ONLY = const(2)   # MIFARE Classic / Ultralight / clone: UID only, never an SSC
KIND_QR = const(3)         # electronic SSC token (QR), filled by the QR path

# Why a read failed (stable codes; recorded with the tap)
OK = const(0)
ERR_UNSUPPORTED = const(1)   # not ISO14443-4 / no usable application
ERR_REMOVED = const(2)       # card left the field mid-exchange
ERR_TIMEOUT = const(3)       # reader or card did not answer in time
ERR_MALFORMED = const(4)     # response broke the format (lengths, BCD, status word)
ERR_UNKNOWN_APP = const(5)   # ISO14443-4 card without the SSC application
ERR_READER = const(6)        # reader fault (PN532 silent, recovering)
ERR_LOCKED = const(7)        # SELECT answered 62 83: the SSC application is locked (invalidated)
ERR_BLOCKED = const(8)       # SELECT answered 6A 81: the card / function is blocked

ERR_NAMES = ("ok", "unsupported_card", "card_removed", "timeout", "malformed_response",
             "unknown_application", "reader_fault", "application_locked", "card_blocked")


class CardRead:
    __slots__ = ("kind", "error", "uid", "uid_len", "ats", "ats_len", "region", "card_id",
                 "card_no", "generation", "issue_date", "expiry_date", "birth_date",
                 "has_transit", "sens_res", "sel_res",
                 "qr_token", "qr_reason", "qr_ent", "qr_expires")  # QR (ykt.qr.qrtoken) fills these

    def __init__(self):
        self.uid = bytearray(10)
        self.ats = bytearray(32)
        self.card_id = bytearray(16)  # card identification code (卡识别码), 16 raw bytes; region BCD first
        self.card_no = bytearray(9)   # card number (社会保障卡号), ASCII
        self.qr_token = bytearray(8)  # QR: the holder's card token, signed by the back office
        self.clear()

    def clear(self):
        self.kind = KIND_NONE
        self.error = OK
        self.uid_len = 0
        self.ats_len = 0
        self.region = 0          # GB/T 2260 code, e.g. 450100
        self.generation = 0      # 1, 2 or 3
        self.issue_date = 0      # YYYYMMDD
        self.expiry_date = 0     # YYYYMMDD
        self.birth_date = 0      # YYYYMMDD, 0 when EF06 was not readable
        self.has_transit = False
        self.sens_res = 0
        self.sel_res = 0
        self.qr_reason = 0       # QR: taprec reason of the verification, 0 = valid
        self.qr_ent = -1         # QR: (category << 8) | E_* flags, -1 = none
        self.qr_expires = 0      # QR: iat + validity, unix seconds

    def uid_bytes(self):
        return bytes(self.uid[:self.uid_len])

    def __repr__(self):
        # Never prints the card identity: logs must not carry it.
        return "<CardRead kind=%d err=%s region=%d gen=%d uid_len=%d>" % (
            self.kind, ERR_NAMES[self.error], self.region, self.generation, self.uid_len)
