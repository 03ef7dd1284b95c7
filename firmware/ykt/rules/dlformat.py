# Deny-list formats, defined once: the image header, the data-block geometry
# and the delta. The device reader (ykt.rules.denylist), the portable image encoder
# (yktsrv.dlbuild) and the host tools (ykt_tools.build.denylist) all use this
# module, and tests pin its bytes. Big-endian throughout, so byte order is
# token sort order. docs/denylist.md has the full byte-by-byte layout.
#
# Image = header block (block 0) + directory blocks + data blocks, 4096 bytes
# each, written raw to a flash partition. Block 0 header (rest of block zero):
#  off size field
#   0   4   magic "YKDL"
#   4   1   format (1)
#   5   1   k: bucket bits (bucket = top k bits of the token); 0 iff empty
#   6   1   g: directory group bits (one directory entry per 2^g buckets)
#   7   1   sample shift: block-local sample every 2^s buckets
#   8   4   list version
#  12   4   entry count
#  16   4   directory blocks
#  20   4   data blocks
#  24   4   created, unix seconds (informational)
#  28  16   entries per status, 4 x u32 (lost, suspended, cancelled, replaced)
#  44  32   SHA-256 over blocks 1 .. end (directory + data)
#  76   4   CRC-32 of bytes 0..75
# Format 2 (an image holding `unpaid` cards, ST_UNPAID) differs in two ways
# only: the counts are 5 x u32 (+ unpaid) at 28, so the hash is at 48 and the
# CRC of bytes 0..79 at 80 (84 bytes), and a record's status takes 3 bits, not
# 2. The builder writes format 1 whenever no entry is unpaid, so a list
# without arrears reads on firmware that predates the status.
#
# Format 3 (FORMAT_SECTIONS) holds two sections, each a directory + data
# blocks as above: section 0 is the Guangxi list, a filter over the card
# registry (records keep only rw bits of the token after the bucket, so a
# card that is not denied can match: the builder checks every registered card
# and gives each colliding entry "extension" bits that tell them apart);
# section 1 is the exact list of other provinces' cards (rw = 64 - k).
# Records carry 2 status bits; a per-block side stream after the records
# holds what is rarer: extensions and statuses that need 3 bits (unpaid).
#  off size field
#   0   4   magic "YKDL"
#   4   1   format (3)
#   5   1   sections (2)
#   6   2   reserved (0)
#   8   4   list version
#  12   4   created, unix seconds
#  16   4   entry count (both sections)
#  20  20   entries per status, 5 x u32
#  40  32   SHA-256 over blocks 1 .. end
#  72  20   section 0: k, g, s, rw, rp (u8 each), 3 reserved, count, dir blocks,
#           data blocks (u32 each); rp = Rice parameter of the side gaps
#  92  20   section 1, the same
# 112   4   CRC-32 of bytes 0..111
# Blocks: header, section 0 directory and data, section 1 directory and data.
# Side stream of a data block, at the byte after its records:
#   u16 m records, u16 x 2 per sample (entry index, bit offset in the stream
#   of record 16i), i = 1..(m-1)>>4, then the records, MSB first:
#   Rice(rp) gap to the previous record's entry index (first: the index),
#   2-bit kind, payload: 0 = 4 extension bits, 1 = 16, 3 = all 64-k-rw
#   remaining bits (the entry matches only if the token's next bits equal
#   them), 2 = 3-bit status 1..5 that replaces the record's 2 bits.
import struct

from ykt.compat import const

BLOCK = const(4096)
MAGIC = b"YKDL"
DELTA_MAGIC = b"YKDD"
FORMAT = const(1)
FORMAT_UNPAID = const(2)
HDR_SIZE = const(80)
HDR_SIZE_2 = const(84)
FORMAT_SECTIONS = const(3)
HDR_SIZE_3 = const(116)
_HDR_FMT3 = ">4sBBHIII5I32s"       # 72 bytes, then two sections, then the CRC
_SEC_FMT = ">BBBBB3xIII"           # 20 bytes
SIDE_SAMPLE = const(4)             # a side-stream sample every 2^4 records
SIDE_EXT4 = const(0)
SIDE_EXT16 = const(1)
SIDE_STATUS = const(2)
SIDE_EXTALL = const(3)
_HDR_FMT = ">4sBBBBIIIII4I32s"  # 76 bytes, then the CRC
_HDR_FMT2 = ">4sBBBBIIIII5I32s"  # format 2: 80 bytes, then the CRC
SAMPLE_SHIFT = const(5)          # what the builder writes; readers take the header's
MAX_K = const(30)                # bucket numbers stay small ints on a 32-bit port
MAX_G = const(15)
BLK_HDR = const(8)               # data block: u32 first bucket, u16 buckets, u16 entries
BLK_CRC = const(4)               # data block ends with CRC-32 (little-endian, see below)
BLK_PAYLOAD = const(4092)
# CRC-32 of a whole block whose last 4 bytes hold the CRC of the rest
# (little-endian) is this constant; it is < 2^30, so checking costs no
# heap allocation on a 32-bit port.
CRC_RESIDUE = const(0x2144DF1C)
DIR_ENTRY = const(4)             # u16 data block index, u16 split (0 = none)
TOKEN_LEN = const(8)
STATUS_BITS = const(2)           # format 1; format 2: 3

# Statuses returned by DenyList.lookup(). 0 = not denied. Order matches
# taprec.R_DENY_LOST .. R_DENY_REPLACED, so reason = R_DENY_LOST - 1 + status;
# ST_UNPAID (a returned collection: the holder is in arrears) is
# taprec.R_DENY_UNPAID. Deltas carry it in their status byte (firmware that
# predates it refuses such a delta with bad_status and keeps its list).
ST_NONE = const(0)
ST_LOST = const(1)
ST_SUSPENDED = const(2)
ST_CANCELLED = const(3)
ST_REPLACED = const(4)
ST_UNPAID = const(5)
STATUS_NAMES = ("none", "lost", "suspended", "cancelled", "replaced", "unpaid")

# Delta: adds/changes/removes on top of one image version, held in RAM.
#  off size field
#   0   4   magic "YKDD"
#   4   1   format (1)
#   5   1   reserved (0)
#   6   2   entry count (<= DELTA_MAX)
#   8   4   base version: the image version it applies to
#  12   4   version after applying (> base)
#  16   4   created, unix seconds
#  20  9*n  entries, strictly ascending by token: token (8) + status (1; 0 = removed)
#   .   4   CRC-32 (big-endian) of everything before it
DELTA_MAX = const(512)
DELTA_HDR = const(20)
DELTA_REC = const(9)


class DenyListError(Exception):
    """Rejected image, delta or update. code is one of:
    bad_magic, bad_format, bad_header_crc, bad_header, truncated, trailing,
    too_large, bad_hash, bad_block, bad_dir, not_newer, base_mismatch,
    bad_crc, bad_order, bad_status, no_update, busy (the shared block buffer
    is lent to the uplink: try again later). The list in force is kept."""

    def __init__(self, code, msg=""):
        super().__init__(code, msg)
        self.code = code
        self.msg = msg


def _crc(data):
    import binascii

    return binascii.crc32(data) & 0xFFFFFFFF


class Header:
    __slots__ = ("k", "g", "ss", "version", "count", "dir_blocks", "data_blocks", "created",
                 "status_counts", "sha256", "fmt", "sb", "size", "secs")

    def total_blocks(self):
        return 1 + self.dir_blocks + self.data_blocks

    def pack(self):
        """Format 1 unless a count of unpaid entries (a fifth count) is set;
        format 3 when secs (section tuples, see sections()) is set."""
        sc = self.status_counts
        if getattr(self, "fmt", 0) == FORMAT_SECTIONS:
            b = struct.pack(_HDR_FMT3, MAGIC, FORMAT_SECTIONS, 2, 0, self.version, self.created, self.count,
                            sc[0], sc[1], sc[2], sc[3], sc[4], self.sha256)
            for t in self.secs:
                b += struct.pack(_SEC_FMT, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7])
            return b + struct.pack(">I", _crc(b))
        if len(sc) > 4 and sc[4]:
            b = struct.pack(_HDR_FMT2, MAGIC, FORMAT_UNPAID, self.k, self.g, self.ss, self.version, self.count,
                            self.dir_blocks, self.data_blocks, self.created, sc[0], sc[1], sc[2], sc[3],
                            sc[4], self.sha256)
        else:
            b = struct.pack(_HDR_FMT, MAGIC, FORMAT, self.k, self.g, self.ss, self.version, self.count,
                            self.dir_blocks, self.data_blocks, self.created, sc[0], sc[1], sc[2], sc[3],
                            self.sha256)
        return b + struct.pack(">I", _crc(b))


def dir_blocks_for(k, g):
    if k == 0:
        return 0
    return (((1 << (k - g)) * DIR_ENTRY) + BLOCK - 1) // BLOCK


def _sec_ok(k, g, ss, rw, rp, count, dirb, datab):
    ok = k <= MAX_K and g <= MAX_G and g <= k and 1 <= ss <= 15 and rp <= 15
    ok = ok and 1 <= rw <= 64 - k and dirb == dir_blocks_for(k, g) and datab <= 0xFFFF
    if count == 0:
        return ok and k == 0 and datab == 0
    return ok and k >= 1 and datab >= 1


def _parse3(buf, part_blocks):
    if len(buf) < HDR_SIZE_3:
        raise DenyListError("truncated", "header")
    (crc,) = struct.unpack_from(">I", buf, HDR_SIZE_3 - 4)
    if _crc(memoryview(buf)[0:HDR_SIZE_3 - 4]) != crc:
        raise DenyListError("bad_header_crc")
    f = struct.unpack_from(_HDR_FMT3, buf, 0)
    h = Header()
    h.fmt = FORMAT_SECTIONS
    h.size = HDR_SIZE_3
    h.sb = STATUS_BITS
    h.version, h.created, h.count = f[4], f[5], f[6]
    h.status_counts = tuple(f[7:12])
    h.sha256 = f[12]
    secs = []
    first = 1
    ok = f[2] == 2 and f[3] == 0 and sum(h.status_counts) == h.count and h.version > 0
    for i in range(2):
        t = struct.unpack_from(_SEC_FMT, buf, 72 + 20 * i)
        ok = ok and _sec_ok(*t)
        secs.append(t + (first,))
        first += t[6] + t[7]
    # the foreign section is exact: its records keep every bit after the bucket
    ok = ok and secs[1][3] == 64 - secs[1][0] and secs[0][5] + secs[1][5] == h.count
    if not ok:
        raise DenyListError("bad_header", "inconsistent fields")
    h.secs = secs
    s0 = secs[0]
    h.k, h.g, h.ss = s0[0], s0[1], s0[2]
    h.dir_blocks = s0[6] + secs[1][6]
    h.data_blocks = s0[7] + secs[1][7]
    if part_blocks and h.total_blocks() > part_blocks:
        raise DenyListError("too_large", "image %d blocks > partition %d" % (h.total_blocks(), part_blocks))
    return h


def sections(h):
    """(k, g, ss, rw, rp, count, dir_blocks, data_blocks, first block) per
    section: one for formats 1 and 2, two for format 3."""
    if h.fmt == FORMAT_SECTIONS:
        return h.secs
    return [(h.k, h.g, h.ss, 64 - h.k, 0, h.count, h.dir_blocks, h.data_blocks, 1)]


def parse_header(buf, part_blocks=0):
    """Header from the first HDR_SIZE bytes of buf; checks every field for
    consistency (and, if part_blocks > 0, that the image fits the partition)."""
    if len(buf) < HDR_SIZE:
        raise DenyListError("truncated", "header")
    if bytes(buf[0:4]) != MAGIC:
        raise DenyListError("bad_magic", "not a deny-list image")
    fmt = buf[4]
    if fmt == FORMAT_SECTIONS:
        return _parse3(buf, part_blocks)
    if fmt != FORMAT and fmt != FORMAT_UNPAID:
        raise DenyListError("bad_format", "format %d" % fmt)
    size = HDR_SIZE if fmt == FORMAT else HDR_SIZE_2
    if len(buf) < size:
        raise DenyListError("truncated", "header")
    (crc,) = struct.unpack_from(">I", buf, size - 4)
    if _crc(memoryview(buf)[0:size - 4]) != crc:
        raise DenyListError("bad_header_crc")
    f = struct.unpack_from(_HDR_FMT if fmt == FORMAT else _HDR_FMT2, buf, 0)
    h = Header()
    h.fmt = fmt
    h.size = size
    h.sb = STATUS_BITS if fmt == FORMAT else STATUS_BITS + 1
    h.k, h.g, h.ss, h.version, h.count = f[2], f[3], f[4], f[5], f[6]
    h.dir_blocks, h.data_blocks, h.created = f[7], f[8], f[9]
    h.status_counts = tuple(f[10:-1])
    h.sha256 = f[-1]
    ok = h.k <= MAX_K and h.g <= MAX_G and h.g <= h.k and 1 <= h.ss <= 15
    ok = ok and h.dir_blocks == dir_blocks_for(h.k, h.g) and h.data_blocks <= 0xFFFF
    ok = ok and sum(h.status_counts) == h.count
    if h.count == 0:
        ok = ok and h.k == 0 and h.data_blocks == 0
    else:
        ok = ok and h.k >= 1 and h.data_blocks >= 1 and h.version > 0
    if not ok:
        raise DenyListError("bad_header", "inconsistent fields")
    if part_blocks and h.total_blocks() > part_blocks:
        raise DenyListError("too_large", "image %d blocks > partition %d" % (h.total_blocks(), part_blocks))
    return h


def block_layout(nb, ne, k, ss, sb=STATUS_BITS, rw=0):
    """(unary byte offset, record byte offset, end byte) of a data block
    holding nb buckets and ne entries (sb: the header's status bits; rw: the
    record's token bits, 64 - k unless the section is a filter)."""
    u = BLK_HDR + 2 * ((nb - 1) >> ss)
    r = u + (nb + ne + 7) // 8
    return u, r, r + (ne * ((rw or 64 - k) + sb) + 7) // 8


def side_head_bytes(m):
    """Bytes before a side stream's records: the count and the samples."""
    return 2 + 4 * ((m - 1) >> SIDE_SAMPLE if m else 0)


def pack_delta(base, version, entries, created=0):
    """entries: iterable of (8-byte token, status 0..5) strictly ascending."""
    out = bytearray(struct.pack(">4sBBHIII", DELTA_MAGIC, FORMAT, 0, 0, base, version, created))
    n = 0
    for tok, st in entries:
        out += bytes(tok)
        out.append(st)
        n += 1
    struct.pack_into(">H", out, 6, n)
    out += struct.pack(">I", _crc(out))
    return bytes(out)


def parse_delta(data):
    """Validate a delta; returns (base, version, count, created). Entries are
    at DELTA_HDR + 9*i in data. Nothing is applied here."""
    n = len(data)
    if n < DELTA_HDR + 4:
        raise DenyListError("truncated", "delta header")
    if bytes(data[0:4]) != DELTA_MAGIC:
        raise DenyListError("bad_magic", "not a deny-list delta")
    if data[4] != FORMAT:
        raise DenyListError("bad_format", "delta format %d" % data[4])
    _m, _f, _r, cnt, base, ver, created = struct.unpack_from(">4sBBHIII", data, 0)
    if cnt > DELTA_MAX:
        raise DenyListError("too_large", "delta %d entries > %d" % (cnt, DELTA_MAX))
    want = DELTA_HDR + DELTA_REC * cnt + 4
    if n < want:
        raise DenyListError("truncated", "delta %d < %d bytes" % (n, want))
    if n > want:
        raise DenyListError("trailing", "delta %d > %d bytes" % (n, want))
    (crc,) = struct.unpack_from(">I", data, want - 4)
    if _crc(memoryview(data)[0:want - 4]) != crc:
        raise DenyListError("bad_crc", "delta")
    if ver <= base:
        raise DenyListError("bad_header", "delta version %d <= base %d" % (ver, base))
    o = DELTA_HDR
    for i in range(cnt):
        if data[o + 8] > ST_UNPAID:
            raise DenyListError("bad_status", "entry %d" % i)
        if i:
            c = 0
            for j in range(8):
                c = data[o + j] - data[o - DELTA_REC + j]
                if c:
                    break
            if c <= 0:
                raise DenyListError("bad_order", "entry %d" % i)
        o += DELTA_REC
    return base, ver, cnt, created
