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


def _side_bits(kind, k, rw):
    return 2 + (4, 16, 3, 64 - k - rw)[kind]


def _fits(nb, ne, k, ss, fill, sb, rw=0, side=0):
    return F.block_layout(nb, ne, k, ss, sb, rw)[2] + side <= fill


def _pack_bits(items, width, nbytes):
    acc = 0
    bits = 0
    for v in items:
        acc = (acc << width) | v
        bits += width
    pad = nbytes * 8 - bits
    return (acc << pad).to_bytes(nbytes, "big") if nbytes else b""


def _pack_side(blk, o, recs, rp, k, rw):
    m = len(recs)
    struct.pack_into(">H", blk, o, m)
    so = o + F.side_head_bytes(m)
    acc = 0
    bits = 0
    prev = 0
    for i, (e, kind, pay) in enumerate(recs):
        if i and not i & ((1 << F.SIDE_SAMPLE) - 1):
            struct.pack_into(">HH", blk, o + 2 + 4 * ((i >> F.SIDE_SAMPLE) - 1), e, bits)
        d = e - prev
        q = d >> rp
        acc = (acc << (q + 1)) | (((1 << q) - 1) << 1)
        acc = (acc << rp) | (d & ((1 << rp) - 1))
        w = _side_bits(kind, k, rw)
        acc = (acc << w) | (kind << (w - 2)) | pay
        bits += q + 1 + rp + w
        prev = e
    nby = (bits + 7) // 8
    blk[so:so + nby] = (acc << (nby * 8 - bits)).to_bytes(nby, "big")


def _data_block(fb, counts, toks, stats, i0, ne, k, ss, sb, rw=0, side=None, rp=0):
    nb = len(counts)
    rw = rw or 64 - k
    u, r, end = F.block_layout(nb, ne, k, ss, sb, rw)
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
    rmask = (1 << rw) - 1
    sh = 64 - k - rw
    smask = (1 << sb) - 1
    w = rw + sb
    recs = (((((toks[i] >> sh) & rmask) << sb) | ((stats[i] - 1) & smask)) for i in range(i0, i0 + ne))
    blk[r:end] = _pack_bits(recs, w, end - r)
    if side is not None:
        _pack_side(blk, end, side, rp, k, rw)
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
    g, dirb, blocks = _section(toks, stats, k, ss, sb, 64 - k, 0, None, fill)
    h = _sha(dirb + blocks)
    hd = F.Header()
    hd.k, hd.g, hd.ss, hd.version, hd.count = k, g, (ss if n else F.SAMPLE_SHIFT), version, n
    hd.dir_blocks, hd.data_blocks, hd.created = len(dirb), len(blocks), created
    hd.status_counts = tuple(sc)
    hd.sha256 = h.digest()
    return [_head(hd)] + dirb + blocks


def _sha(blocks):
    h = hashlib.sha256()
    for blk in blocks:
        h.update(blk)
    return h


def _head(hd):
    head = bytearray(F.BLOCK)
    hb = hd.pack()                      # format 2 (84 bytes) only with unpaid entries
    head[0:len(hb)] = hb
    return head


def _section(toks, stats, k, ss, sb, rw, rp, side_of, fill):
    """Directory and data blocks of one section: (g, dir blocks, data blocks).
    side_of(i) -> [(kind, payload)] for entry i (None: no side streams)."""
    n = len(toks)
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
        side = [] if side_of else None
        sbits = 0          # side stream record bits so far, and its last entry
        last = 0
        sl = 0
        while b < nbk:
            j = i + ne
            c = 0
            while j + c < n and (toks[j + c] >> r) == b:
                c += 1
            add = []
            abits = 0
            if side_of:
                pe = last
                for x in range(c):
                    for kind, pay in side_of(j + x) or ():
                        e = ne + x
                        add.append((e, kind, pay))
                        abits += ((e - pe) >> rp) + 1 + rp + _side_bits(kind, k, rw)
                        pe = e
                sl = F.side_head_bytes(len(side) + len(add)) + (sbits + abits + 7) // 8
            if not _fits(len(counts) + 1, ne + c, k, ss, fill, sb, rw, sl):
                break
            counts.append(c)
            ne += c
            b += 1
            if add:
                side += add
                sbits += abits
                last = add[-1][0]
        if not counts:
            raise BuildError("bucket %d holds too many tokens for one block: tokens must be "
                             "keyed hashes (uniform), not sequential numbers" % b)
        fbs.append(fb)
        blocks.append(_data_block(fb, counts, toks, stats, i, ne, k, ss, sb, rw, side, rp))
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
    return g, dirb, blocks


def iter_entries(image):
    """Decode every (token int, status) of a format 1 or 2 image, checking
    structure and hashes like the device does at install time. Raises
    DenyListError. (Format 3: iter_section.)"""
    if F.parse_header(image).fmt == F.FORMAT_SECTIONS:
        raise F.DenyListError("bad_format", "format 3 holds a filter: use iter_section")
    for v, _bits, st, _side in iter_section(image, 0):
        yield v, st


def iter_section(image, si):
    """Every entry of section si as (value, bits, status, side): value is
    the token's top `bits` bits (64 in an exact section), status 1..5 (a side
    status applied) and side the entry's [(kind, payload)] extension records."""
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
    k, _g, ss, r, rp, count, dirb, datab, first = F.sections(hd)[si]
    sb = hd.sb
    w = r + sb
    d0 = first + dirb
    nxt = 0
    seen = 0
    for bi in range(datab):
        blk = mv[(d0 + bi) * F.BLOCK:(d0 + bi + 1) * F.BLOCK]
        if binascii.crc32(blk) & 0xFFFFFFFF != F.CRC_RESIDUE:
            raise F.DenyListError("bad_block", "data block %d CRC" % bi)
        fb, nb, ne = struct.unpack_from(">IHH", blk, 0)
        if fb != nxt or nb == 0:
            raise F.DenyListError("bad_block", "data block %d bucket range" % bi)
        u, ro, end = F.block_layout(nb, ne, k, ss, sb, r)
        if end > F.BLK_PAYLOAD:
            raise F.DenyListError("bad_block", "data block %d overflows" % bi)
        side = _side_records(blk, end, rp, 64 - k - r) if hd.fmt == F.FORMAT_SECTIONS else {}
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
                st = (v & ((1 << sb) - 1)) + 1
                exts = []
                for kind, pay in side.get(e, ()):
                    if kind == F.SIDE_STATUS:
                        st = pay
                    else:
                        exts.append((kind, pay))
                yield ((fb + bk) << r) | (v >> sb), k + r, st, exts
                e += 1
        if e != ne:
            raise F.DenyListError("bad_block", "data block %d count" % bi)
        nxt = fb + nb
        seen += ne
    if nxt != ((1 << k) if count else 0) or seen != count:
        raise F.DenyListError("bad_block", "bucket or entry totals")


def _side_records(blk, o, rp, rest):
    m = struct.unpack_from(">H", blk, o)[0]
    base = o + F.side_head_bytes(m)
    bits = int.from_bytes(blk[base:F.BLK_PAYLOAD], "big")
    left = (F.BLK_PAYLOAD - base) * 8

    def take(n):
        nonlocal left
        left -= n
        if left < 0:
            raise F.DenyListError("bad_block", "side stream overruns its block")
        return (bits >> left) & ((1 << n) - 1)
    out = {}
    e = 0
    for _ in range(m):
        q = 0
        while take(1):
            q += 1
        e += (q << rp) | take(rp)
        kind = take(2)
        pay = take((4, 16, 3, rest)[kind])
        out.setdefault(e, []).append((kind, pay))
    return out


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


def _check(toks, stats, sc, what):
    if len(toks) != len(stats):
        raise BuildError("%s: tokens and statuses differ in length" % what)
    prev = -1
    for i in range(len(toks)):
        t = toks[i]
        if t <= prev or t >> 64:
            raise BuildError("%s: tokens must be distinct 64-bit values in ascending order (index %d)" % (what, i))
        prev = t
        s = stats[i]
        if not F.ST_LOST <= s <= F.ST_UNPAID:
            raise BuildError("%s: status %r at index %d (1..5 allowed)" % (what, s, i))
        sc[s - 1] += 1


def ext_payload(tok, kind, k, rw):
    """The extension bits an entry keeps (side kind 0, 1 or 3)."""
    n = (4, 16, 0, 64 - k - rw)[kind]
    return (tok >> (64 - k - rw - n)) & ((1 << n) - 1)


_EXT_ORDER = (F.SIDE_EXT4, F.SIDE_EXT16, F.SIDE_EXTALL)  # each kind's bits extend the previous


def ext_kind(cur, mine, other, k, rw):
    """The smallest extension kind, at least cur (None: none yet), whose
    bits tell the entry `mine` apart from the card `other` sharing its k+rw
    bits. Raises BuildError for equal tokens."""
    start = 0
    if cur is not None:
        start = _EXT_ORDER.index(cur)
    for kind in _EXT_ORDER[start:]:
        if ext_payload(mine, kind, k, rw) != ext_payload(other, kind, k, rw):
            return kind
    raise BuildError("two tokens are equal: %x" % mine)


def plan_small(denied, registry, rw):
    """ext for encode_sections, by brute force over a small registry (the
    host builder, ykt_tools.build.denyfilter, does the same with numpy)."""
    n = len(denied)
    k = choose_k(n)
    sh = 64 - k - rw
    ext = [None] * n
    first = {}
    for i in range(n):
        p = denied[i] >> sh
        if p not in first:
            first[p] = i
    for t in list(registry) + list(denied):
        i = first.get(t >> sh)
        while i is not None and i < n and denied[i] >> sh == t >> sh:
            if denied[i] != t:
                ext[i] = ext_kind(ext[i], denied[i], t, k, rw)
            i += 1
    return ext


def encode_sections(gx, fx, version, created=0, rw=0, rp=2, sample_shift=F.SAMPLE_SHIFT,
                    fill=F.BLK_PAYLOAD):
    """A format-3 image as a list of 4096-byte blocks.
    gx = (toks, stats, ext): the Guangxi section, records of rw token bits
    after the bucket (0: exact); ext[i] is None or the side kind (0, 1, 3)
    entry i needs to tell it apart from the registered cards sharing its
    bits (the host builder, yktsrv.dlfilter, works that out).
    fx = (toks, stats): the exact list of other provinces' cards."""
    if not 0 < version <= 0xFFFFFFFF:
        raise BuildError("version must be 1 .. 2^32-1")
    if not 0 <= rp <= 15:
        raise BuildError("rice parameter 0..15")
    sc = [0, 0, 0, 0, 0]
    gt, gs, gext = gx
    ft, fs = fx
    _check(gt, gs, sc, "guangxi")
    _check(ft, fs, sc, "foreign")
    ss = sample_shift
    out = []
    secs = []
    first = 1
    for toks, stats, ext, r in ((gt, gs, gext, rw), (ft, fs, None, 0)):
        n = len(toks)
        k = choose_k(n)
        r = r or 64 - k
        if not 1 <= r <= 64 - k:
            raise BuildError("record bits %d outside 1..%d" % (r, 64 - k))

        def side_of(i, toks=toks, stats=stats, ext=ext, k=k, r=r):
            x = ext[i] if ext else None
            recs = None
            if x is not None:
                recs = [(x, ext_payload(toks[i], x, k, r))]
            if stats[i] == F.ST_UNPAID:
                recs = (recs or []) + [(F.SIDE_STATUS, F.ST_UNPAID)]
            return recs
        g, dirb, blocks = _section(toks, stats, k, ss, F.STATUS_BITS, r, rp, side_of, fill)
        secs.append((k, g, ss if n else F.SAMPLE_SHIFT, r, rp, n, len(dirb), len(blocks)))
        out += dirb + blocks
        first += len(dirb) + len(blocks)
    hd = F.Header()
    hd.fmt = F.FORMAT_SECTIONS
    hd.secs = secs
    hd.version, hd.created, hd.count = version, created, len(gt) + len(ft)
    hd.status_counts = tuple(sc)
    hd.sha256 = _sha(out).digest()
    return [_head(hd)] + out
