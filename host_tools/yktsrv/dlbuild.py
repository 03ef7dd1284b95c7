# Deny-list image encoder and decoder (portable: the host builder imports it
# under CPython, firmware tests run it under MicroPython to make small images).
# The device never imports this module: it only reads images (ykt.rules.denylist).
#
# Layout (constants in ykt.rules.dlformat): tokens are sorted as 64-bit big-endian
# integers and bucketed by their top k bits, k = ceil(log2 n), so a bucket
# holds ~1 entry. Data blocks hold whole buckets (never split) and contain:
#   u32 first bucket, u16 buckets nb, u16 entries ne,
#   u16 samples: entries before bucket i*2^s of this block, i = 1..(nb-1)>>s,
#   unary bucket sizes: per bucket, one 1-bit per entry then a 0-bit,
#   records: (64-k)-bit token remainder + 2-bit (status-1), MSB first (3-bit
#   in a format-2 image, which holds unpaid entries),
#   zero pad, CRC-32 of bytes 0..4091 stored little-endian in 4092..4095.
# The directory has one entry per group of 2^g buckets: the data block where
# the group starts and, if the next block starts inside the group, the offset
# of that bucket in the group (g is chosen so at most one block starts inside
# a group). Lookup = 1 directory read + 1 data block read.
import binascii
import hashlib
import struct

from ykt.rules import dlformat as F


try:
    import micropython  # noqa: F401
    from gc import collect as _collect
except ImportError:
    _collect = None


class BuildError(ValueError):
    pass


def choose_k(n):
    if n == 0:
        return 0
    k = 1
    while (1 << k) < n:  # ceil(log2 n); MicroPython ints have no bit_length()
        k += 1
    return k if k < F.MAX_K else F.MAX_K


def _fits(nb, ne, k, ss, fill, sb):
    return F.block_layout(nb, ne, k, ss, sb)[2] <= fill


def _pack_bits(items, width, nbytes):
    acc = 0
    bits = 0
    for v in items:
        acc = (acc << width) | v
        bits += width
    pad = nbytes * 8 - bits
    return (acc << pad).to_bytes(nbytes, "big") if nbytes else b""


def _data_block(fb, counts, toks, stats, i0, ne, k, ss, sb):
    nb = len(counts)
    u, r, end = F.block_layout(nb, ne, k, ss, sb)
    blk = bytearray(F.BLOCK)
    struct.pack_into(">IHH", blk, 0, fb, nb, ne)
    # samples and unary
    acc = 0
    bits = 0
    cum = 0
    o = F.BLK_HDR
    for j in range(nb):
        if j and not (j & ((1 << ss) - 1)):
            struct.pack_into(">H", blk, o, cum)
            o += 2
        c = counts[j]
        acc = (acc << (c + 1)) | (((1 << c) - 1) << 1)
        bits += c + 1
        cum += c
    nu = r - u
    blk[u:r] = (acc << (nu * 8 - bits)).to_bytes(nu, "big")
    rmask = (1 << (64 - k)) - 1
    w = 64 - k + sb
    recs = ((((toks[i] & rmask) << sb) | (stats[i] - 1)) for i in range(i0, i0 + ne))
    blk[r:end] = _pack_bits(recs, w, end - r)
    crc = binascii.crc32(memoryview(blk)[0:F.BLK_PAYLOAD]) & 0xFFFFFFFF
    struct.pack_into("<I", blk, F.BLK_PAYLOAD, crc)
    return blk


def _choose_g(k, fbs):
    g = k if k < F.MAX_G else F.MAX_G
    while g > 0:
        m = (1 << g) - 1
        ok = True
        for i in range(1, len(fbs) - 1):
            a = fbs[i]
            if (a & m) and (a >> g) == (fbs[i + 1] >> g):
                ok = False
                break
        if ok:
            return g
        g -= 1
    return 0


def encode_image(toks, stats, version, created=0, sample_shift=F.SAMPLE_SHIFT, fill=F.BLK_PAYLOAD):
    """toks: 64-bit ints strictly ascending; stats: 1..5 each (any 5, unpaid:
    a format-2 image). Returns bytes.
    fill < 4092 leaves blocks part empty (tests: many blocks from few entries)."""
    return b"".join(encode_blocks(toks, stats, version, created, sample_shift, fill))


def encode_blocks(toks, stats, version, created=0, sample_shift=F.SAMPLE_SHIFT, fill=F.BLK_PAYLOAD):
    """The image as a list of 4096-byte blocks (no large contiguous buffer:
    what a small heap can hold)."""
    n = len(toks)
    if n != len(stats):
        raise BuildError("tokens and statuses differ in length")
    if not 0 < version <= 0xFFFFFFFF:
        raise BuildError("version must be 1 .. 2^32-1")
    sc = [0, 0, 0, 0, 0]
    prev = -1
    for i in range(n):
        t = toks[i]
        if t <= prev or t >> 64:
            raise BuildError("tokens must be distinct 64-bit values in ascending order (index %d)" % i)
        prev = t
        s = stats[i]
        if not F.ST_LOST <= s <= F.ST_UNPAID:
            raise BuildError("status %r at index %d (1..5 allowed)" % (s, i))
        sc[s - 1] += 1
    sb = F.STATUS_BITS + 1 if sc[4] else F.STATUS_BITS
    k = choose_k(n)
    ss = sample_shift
    r = 64 - k
    blocks = []
    fbs = []
    i = 0
    b = 0
    nbk = (1 << k) if n else 0
    while b < nbk:
        fb = b
        counts = []
        ne = 0
        while b < nbk:
            j = i + ne
            c = 0
            while j + c < n and (toks[j + c] >> r) == b:
                c += 1
            if not _fits(len(counts) + 1, ne + c, k, ss, fill, sb):
                break
            counts.append(c)
            ne += c
            b += 1
        if not counts:
            raise BuildError("bucket %d holds too many tokens for one block: tokens must be "
                             "keyed hashes (uniform), not sequential numbers" % b)
        fbs.append(fb)
        blocks.append(_data_block(fb, counts, toks, stats, i, ne, k, ss, sb))
        i += ne
        if _collect:
            _collect()  # MicroPython: keep the small heap unfragmented
    if len(blocks) > 0xFFFF:
        raise BuildError("too many data blocks")
    g = _choose_g(k, fbs) if n else 0
    dirb = [bytearray(F.BLOCK) for _ in range(F.dir_blocks_for(k, g))]
    if n:
        bi = 0
        nbl = len(fbs)
        for jg in range(1 << (k - g)):
            lo = jg << g
            while bi + 1 < nbl and fbs[bi + 1] <= lo:
                bi += 1
            split = 0
            if bi + 1 < nbl and fbs[bi + 1] < lo + (1 << g):
                split = fbs[bi + 1] - lo
            o = jg * F.DIR_ENTRY
            struct.pack_into(">HH", dirb[o >> 12], o & 4095, bi, split)
    h = hashlib.sha256()
    for blk in dirb:
        h.update(blk)
    for blk in blocks:
        h.update(blk)
    hd = F.Header()
    hd.k, hd.g, hd.ss, hd.version, hd.count = k, g, (ss if n else F.SAMPLE_SHIFT), version, n
    hd.dir_blocks, hd.data_blocks, hd.created = len(dirb), len(blocks), created
    hd.status_counts = tuple(sc)
    hd.sha256 = h.digest()
    head = bytearray(F.BLOCK)
    hb = hd.pack()                      # format 2 (84 bytes) only with unpaid entries
    head[0:len(hb)] = hb
    return [head] + dirb + blocks


def iter_entries(image):
    """Decode every (token int, status) of an image, checking structure and
    hashes like the device does at install time. Raises DenyListError."""
    hd = F.parse_header(image)
    total = hd.total_blocks()
    if len(image) < total * F.BLOCK:
        raise F.DenyListError("truncated", "image %d < %d bytes" % (len(image), total * F.BLOCK))
    if len(image) > total * F.BLOCK:
        raise F.DenyListError("trailing")
    mv = memoryview(image)
    if any(mv[hd.size:F.BLOCK]):
        raise F.DenyListError("bad_header", "header block padding not zero")
    if hashlib.sha256(mv[F.BLOCK:total * F.BLOCK]).digest() != hd.sha256:
        raise F.DenyListError("bad_hash")
    k = hd.k
    r = 64 - k
    w = r + hd.sb
    d0 = 1 + hd.dir_blocks
    nxt = 0
    seen = 0
    for bi in range(hd.data_blocks):
        blk = mv[(d0 + bi) * F.BLOCK:(d0 + bi + 1) * F.BLOCK]
        if binascii.crc32(blk) & 0xFFFFFFFF != F.CRC_RESIDUE:
            raise F.DenyListError("bad_block", "data block %d CRC" % bi)
        fb, nb, ne = struct.unpack_from(">IHH", blk, 0)
        if fb != nxt or nb == 0:
            raise F.DenyListError("bad_block", "data block %d bucket range" % bi)
        u, ro, end = F.block_layout(nb, ne, k, hd.ss, hd.sb)
        if end > F.BLK_PAYLOAD:
            raise F.DenyListError("bad_block", "data block %d overflows" % bi)
        ubits = int.from_bytes(blk[u:ro], "big")
        pos = (ro - u) * 8
        rec = int.from_bytes(blk[ro:end], "big") >> ((end - ro) * 8 - ne * w)
        e = 0
        for bk in range(nb):
            while True:
                pos -= 1
                if pos < 0:
                    raise F.DenyListError("bad_block", "data block %d unary" % bi)
                if not (ubits >> pos) & 1:
                    break
                v = (rec >> ((ne - 1 - e) * w)) & ((1 << w) - 1)
                yield ((fb + bk) << r) | (v >> hd.sb), (v & ((1 << hd.sb) - 1)) + 1
                e += 1
        if e != ne:
            raise F.DenyListError("bad_block", "data block %d count" % bi)
        nxt = fb + nb
        seen += ne
    if nxt != ((1 << k) if hd.count else 0) or seen != hd.count:
        raise F.DenyListError("bad_block", "bucket or entry totals")


class FileDev:
    """Read-only block device over an image file, in the esp32.Partition
    protocol the device's DenyList reads: a host looks a token up in a file
    exactly as a device does in its slot (`ykt denylist lookup`, tests)."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.f.seek(0, 2)
        self.n = self.f.tell() // F.BLOCK

    def readblocks(self, b, buf, off=0):
        self.f.seek(b * F.BLOCK + off)
        self.f.readinto(buf)

    def ioctl(self, op, arg):
        return self.n if op == 4 else (F.BLOCK if op == 5 else 0)

    def close(self):
        self.f.close()


class BlankDev:
    """An erased one-block slot (DenyList takes two; this one holds nothing)."""

    def readblocks(self, b, buf, off=0):
        for i in range(len(buf)):
            buf[i] = 0xFF

    def ioctl(self, op, arg):
        return 1 if op == 4 else (F.BLOCK if op == 5 else 0)
