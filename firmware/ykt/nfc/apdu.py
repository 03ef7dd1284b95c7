# ISO/IEC 7816-4 helpers for the social security card: command builders into
# a caller's buffer, and bounded parsers for status words, records (tag, len,
# value) and BCD / ASCII fields. Parsers never raise and never index outside
# [start, end): every length read from the card is checked first. They return
# a value >= 0 or a negative code (BAD = malformed).
from ykt.compat import const

BAD = const(-1)

SW_OK = const(0x9000)
SW_NOT_FOUND = const(0x6A82)       # file / application not found
SW_REC_NOT_FOUND = const(0x6A83)
SW_SECURITY = const(0x6982)        # security status not satisfied (PIN)
SW_LOCKED = const(0x6283)          # selected file invalidated (application locked)
SW_BLOCKED = const(0x6A81)         # function not supported: the card is blocked
SW1_MORE = const(0x61)             # 61 xx: xx bytes wait for GET RESPONSE
SW1_WRONG_LE = const(0x6C)         # 6C xx: resend the command with Le = xx

# SELECT by DF name: "sx1.sh." + 社会保障 in GBK
SELECT_SSC = b"\x00\xa4\x04\x00\x0f\x73\x78\x31\x2e\x73\x68\x2e\xc9\xe7\xbb\xe1\xb1\xa3\xd5\xcf"
# SELECT the transit application (JT/T 978 AID)
SELECT_TRANSIT = b"\x00\xa4\x04\x00\x08\xa0\x00\x00\x06\x32\x01\x01\x05"

SFI_EF05 = const(5)
SFI_EF06 = const(6)
REC_CARD_ID = const(1)
REC_VERSION = const(3)
REC_ISSUE = const(5)
REC_EXPIRY = const(6)
REC_CARD_NO = const(7)
REC_CITIZEN = const(8)


def read_record(buf, rec, sfi):
    """READ RECORD rec of the EF with short id sfi (P2 = SFI<<3 | 4), Le = 0."""
    buf[0] = 0x00
    buf[1] = 0xB2
    buf[2] = rec
    buf[3] = (sfi << 3) | 4
    buf[4] = 0x00
    return 5


def sw(buf, start, end):
    """Status word of a response occupying buf[start:end], or BAD."""
    if end - start < 2 or end > len(buf) or start < 0:
        return BAD
    return (buf[end - 2] << 8) | buf[end - 1]


def record(buf, start, end, tag, res):
    """A record answer `tag len value SW1 SW2` in buf[start:end]. Accepts a
    one-byte length or BER 81 xx. On success res[0] = value offset and the
    value length is returned; BAD if the tag differs or the length is not
    exactly what the card sent (a lying length is malformed, not truncated)."""
    if end > len(buf) or start < 0 or end - start < 4:
        return BAD
    last = end - 2            # value must end before the status word
    if buf[start] != tag:
        return BAD
    ln = buf[start + 1]
    o = start + 2
    if ln == 0x81:
        if o >= last:
            return BAD
        ln = buf[o]
        o += 1
    elif ln > 0x7F:
        return BAD
    if o + ln != last:
        return BAD
    res[0] = o
    return ln


def bcd(buf, o, n):
    """n BCD bytes at buf[o:] as an int, or BAD if a nibble is not a digit."""
    if o < 0 or n < 0 or o + n > len(buf):
        return BAD
    v = 0
    for k in range(o, o + n):
        b = buf[k]
        hi = b >> 4
        lo = b & 0x0F
        if hi > 9 or lo > 9:
            return BAD
        v = v * 100 + hi * 10 + lo
    return v


def valid_date(d):
    """YYYYMMDD plausibility (calendar days per month, years 1900..2199)."""
    if d < 0:
        return False
    y = d // 10000
    m = (d // 100) % 100
    day = d % 100
    if y < 1900 or y > 2199 or m < 1 or m > 12 or day < 1:
        return False
    if m == 2:
        leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
        return day <= (29 if leap else 28)
    if m in (4, 6, 9, 11):
        return day <= 30
    return day <= 31


def bcd_date(buf, o):
    """4-byte BCD YYYYMMDD; BAD unless a real calendar date."""
    d = bcd(buf, o, 4)
    if not valid_date(d):
        return BAD
    return d


def digits(buf, o, n):
    """n ASCII digits at buf[o:] as an int, or BAD. n <= 9 keeps the value a
    small int on a 32-bit port (no allocation); longer runs are refused."""
    if o < 0 or n < 0 or n > 9 or o + n > len(buf):
        return BAD
    v = 0
    for k in range(o, o + n):
        c = buf[k] - 0x30
        if c < 0 or c > 9:
            return BAD
        v = v * 10 + c
    return v


def citizen_birth(buf, o, n):
    """Birth date from an 18-character citizen ID (17 digits + digit or X):
    characters 7..14 (1-based) are YYYYMMDD. The ID itself is not kept."""
    if n != 18 or o < 0 or o + 18 > len(buf):
        return BAD
    if digits(buf, o, 9) < 0 or digits(buf, o + 9, 8) < 0:
        return BAD
    c = buf[o + 17]
    if not (0x30 <= c <= 0x39 or c == 0x58 or c == 0x78):
        return BAD
    d = digits(buf, o + 6, 8)
    if not valid_date(d):
        return BAD
    return d


def printable(buf, o, n):
    """True if buf[o:o+n] is printable ASCII (card number, version)."""
    if o < 0 or n < 0 or o + n > len(buf):
        return False
    for k in range(o, o + n):
        c = buf[k]
        if c < 0x20 or c > 0x7E:
            return False
    return True


def ats_fwi(ats, n):
    """Frame waiting integer from an ATS (TL T0 [TA] [TB] [TC] ...): TB high
    nibble; 4 (ISO 14443-4 default) when absent; BAD when the ATS lies."""
    if n < 1 or n > len(ats) or ats[0] != n:
        return BAD
    if n == 1:
        return 4
    t0 = ats[1]
    o = 2
    if t0 & 0x10:
        o += 1
    if t0 & 0x20:
        if o >= n:
            return BAD
        f = ats[o] >> 4
        return 4 if f == 15 else f
    return 4
