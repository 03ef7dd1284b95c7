# The deny list on the device: exact lookups of 8-byte card tokens in a
# compact image on a raw flash partition (format: ykt.rules.dlformat, encoder:
# yktsrv.dlbuild, doc: docs/denylist.md), plus a bounded delta held in RAM.
#
# - Two slots (partitions dlist_a, dlist_b). An update streams into the slot
#   not in force, is read back and verified in full (SHA-256, per-block CRC,
#   bucket/entry totals, unary counts, directory), and only then its header
#   block, the commit record, is written. At boot the slot with a valid header
#   and the highest version wins; a half-written slot has no valid header
#   (begin_update erases it first), so it is never used.
# - A lookup costs 2 reads (a 4-byte directory entry, then one 4096-byte data
#   block), allocates nothing and holds ~4.1 KB of buffers, all made once.
#   Flash rot after install is caught by scrub() (or check_crc=True).
# - Every rejection raises DenyListError(code) and leaves the list in force.
# Partitions need the esp32.Partition block protocol: readblocks(block, buf,
# offset=0), writeblocks(block, buf) (erases first), ioctl(4|5|6, arg).
from binascii import crc32

from ykt.compat import const
from ykt.rules import dlformat as F
from ykt.rules.dlformat import DenyListError

_BLOCK = const(4096)
_RESIDUE = const(0x2144DF1C)
_DELTA_MAX = const(512)
_DREC = const(9)
_IOCTL_BLOCKS = const(4)
_IOCTL_ERASE = const(6)

# zero bits per byte value: skips 8 unary bits per step
_ZC = bytes(8 - bin(i).count("1") for i in range(256))


def _bits(buf, pos, n):
    # n <= 16 bits of buf from bit pos, MSB first (a 24-bit window)
    i = pos >> 3
    return (((buf[i] << 16) | (buf[i + 1] << 8) | buf[i + 2]) >> (24 - (pos & 7) - n)) & ((1 << n) - 1)


def _eq(tb, tp, buf, q, r):
    # r bits of the token from bit tp equal r bits of buf from bit q
    p = 0
    while p < r:
        n = r - p
        if n > 16:
            n = 16
        if _bits(tb, tp + p, n) != _bits(buf, q + p, n):
            return False
        p += n
    return True


class DenyList:
    def __init__(self, part_a, part_b, check_crc=False, scratch=None):
        self._parts = (part_a, part_b)
        # An update's block buffer: borrowed from ykt.compat.Scratch when
        # given (shared with the uplink's batch), else made per update.
        self._scratch = scratch
        # CRC-32 of each 4 KB block read costs ~50 us on the unix port (~2 ms
        # on an ESP32): off by default; install verifies every block and
        # scrub() re-checks the image in force a block at a time when idle.
        self.check_crc = check_crc
        self._scrub = 0
        self._buf = bytearray(_BLOCK)  # the one data-block buffer
        self._d4 = bytearray(4)        # one directory entry
        self._tb = bytearray(11)       # token + 3 zero bytes: 24-bit windows never overrun
        # The delta in force: its records are read where they are, in the
        # delta's own bytes (which sync keeps anyway to merge the next one),
        # so no RAM is set aside for the largest delta a device might get.
        self._db = None
        self._do = 0                   # offset of the first record in _db
        self._dn = 0
        self._up = None                # update in progress: [slot, header, next block, fill, buf]
        self.boot_reasons = [None, None]
        self._select()

    # ---- state in force -------------------------------------------------
    def _use(self, slot, h):
        self.slot = slot
        self._part = self._parts[slot] if slot >= 0 else None
        self.image_version = h.version if h else 0
        self.count = h.count if h else 0
        self.created = h.created if h else 0  # unix s: freshness of what is in force
        self._sb = h.sb if h else 2    # status bits: 2 (formats 1, 3) or 3 (format 2)
        self._side = h is not None and h.fmt == F.FORMAT_SECTIONS  # side streams after records
        # per section: k, g, s, rw, rp, count, first directory block, first
        # data block, data blocks. Format 3: [Guangxi filter, other provinces].
        secs = []
        for t in (F.sections(h) if h else ()):
            secs.append((t[0], t[1], t[2], t[3], t[4], t[5], t[8], t[8] + t[6], t[7]))
        self._secs = secs
        self.counts = tuple(t[5] for t in secs)
        self._dn = 0
        self._scrub = 0
        self.delta_version = 0
        self.version = self.image_version  # recorded in every tap (taprec dl_ver)

    def _read_header(self, slot):
        p = self._parts[slot]
        p.readblocks(0, self._buf)
        return F.parse_header(self._buf, p.ioctl(_IOCTL_BLOCKS, 0))

    def _select(self):
        best = None
        bslot = -1
        for s in (0, 1):
            try:
                h = self._read_header(s)
            except DenyListError as e:
                self.boot_reasons[s] = e.code
                continue
            self.boot_reasons[s] = None
            if best is None or h.version > best.version:
                best, bslot = h, s
        self._use(bslot, best)

    # ---- lookup ---------------------------------------------------------
    def lookup(self, token, off=0, foreign=False):
        """Status of the 8-byte token at token[off:off+8]: 0 = not denied,
        else dlformat.ST_LOST / ST_SUSPENDED / ST_CANCELLED / ST_REPLACED / ST_UNPAID.
        foreign: the card's region is not Guangxi (a format-3 image keeps
        those cards in their own exact section)."""
        if self._dn:
            s = self._dlookup(token, off)
            if s >= 0:
                return s
        if not self.count:
            return 0
        secs = self._secs
        k, g, ss, r, rp, n, dir0, dat0, ndata = secs[1 if foreign and len(secs) > 1 else 0]
        if not n:
            return 0
        tb = self._tb
        for i in range(8):
            tb[i] = token[off + i]
        if k <= 16:
            b = ((tb[0] << 16) | (tb[1] << 8) | tb[2]) >> (24 - k)
        else:
            b = (((tb[0] << 8) | tb[1]) << (k - 16)) | (((tb[2] << 16) | (tb[3] << 8) | tb[4]) >> (40 - k))
        j = b >> g
        o = j << 2
        part = self._part
        d = self._d4
        part.readblocks(dir0 + (o >> 12), d, o & 4095)    # read 1: directory entry
        blk = (d[0] << 8) | d[1]
        sp = (d[2] << 8) | d[3]
        if sp and b - (j << g) >= sp:
            blk += 1
        if blk >= ndata:
            raise DenyListError("bad_dir", "entry %d" % j)
        buf = self._buf
        part.readblocks(dat0 + blk, buf)                  # read 2: data block
        if self.check_crc and crc32(buf) != _RESIDUE:
            raise DenyListError("bad_block", "data block %d CRC" % blk)
        rb = b - ((((buf[0] << 8) | buf[1]) << 16) | (buf[2] << 8) | buf[3])
        nb = (buf[4] << 8) | buf[5]
        if rb < 0 or rb >= nb:
            raise DenyListError("bad_dir", "bucket not in block %d" % blk)
        s = rb >> ss
        cnt = 0
        if s:
            o = 6 + 2 * s
            cnt = (buf[o] << 8) | buf[o + 1]
        ub = 8 + 2 * ((nb - 1) >> ss)
        pos = (ub << 3) + (s << ss) + cnt
        z = rb - (s << ss)
        ones = 0
        zc = _ZC
        while z:  # skip z buckets: z zero bits, counting the ones between
            if not pos & 7:
                x = zc[buf[pos >> 3]]
                if x < z:
                    z -= x
                    ones += 8 - x
                    pos += 8
                    continue
            if (buf[pos >> 3] >> (7 - (pos & 7))) & 1:
                ones += 1
            else:
                z -= 1
            pos += 1
        c = 0
        while (buf[pos >> 3] >> (7 - (pos & 7))) & 1:
            c += 1
            pos += 1
        if not c:
            return 0
        sb = self._sb
        w = r + sb
        ne = (buf[6] << 8) | buf[7]
        q0 = (ub + ((nb + ne + 7) >> 3)) << 3
        e = cnt + ones
        q = q0 + e * w
        while c:  # bucket holds ~1 record: compare all, order not relied on
            if _eq(tb, k, buf, q, r):
                tp = q + r
                i = tp >> 3
                st = ((((buf[i] << 8) | buf[i + 1]) >> (16 - sb - (tp & 7))) & ((1 << sb) - 1)) + 1
                if not self._side:
                    return st
                x = self._side_of(buf, (q0 + ne * w + 7) >> 3, e, tb, k + r, rp, 64 - k - r)
                if x >= 0:  # -1: its extension bits say this is another card
                    return x or st
            q += w
            e += 1
            c -= 1
        return 0

    def _side_of(self, buf, o, e, tb, tp, rp, rest):
        # The side records of entry e in the block's side stream at byte o:
        # -1 if an extension differs from the token, a 3-bit status if one is
        # there, else 0. Starts at the last sample before e: <= 16 records.
        m = (buf[o] << 8) | buf[o + 1]
        if not m:
            return 0
        ns = (m - 1) >> 4
        pos = (o + 2 + 4 * ns) << 3
        base = pos
        i = 0
        prev = 0
        at = -1
        for j in range(ns):
            so = o + 2 + 4 * j
            se = (buf[so] << 8) | buf[so + 1]
            if se >= e:
                break
            i = (j + 1) << 4
            at = prev = se
            pos = base + ((buf[so + 2] << 8) | buf[so + 3])
        st = 0
        while i < m:
            q = 0
            while (buf[pos >> 3] >> (7 - (pos & 7))) & 1:
                q += 1
                pos += 1
            pos += 1
            d = (q << rp) | _bits(buf, pos, rp)
            pos += rp
            if at >= 0:
                at = -1   # a sampled record: its index is the sample's
            else:
                prev += d
            kind = _bits(buf, pos, 2)
            pos += 2
            if prev > e:
                break
            if kind == 2:
                if prev == e:
                    st = _bits(buf, pos, 3)
                pos += 3
            else:
                n = 4 if kind == 0 else (16 if kind == 1 else rest)
                if prev == e and not _eq(tb, tp, buf, pos, n):
                    return -1
                pos += n
            i += 1
        return st

    def _dlookup(self, tok, off):
        db = self._db
        d0 = self._do
        lo = 0
        hi = self._dn - 1
        while lo <= hi:
            mid = (lo + hi) >> 1
            o = d0 + mid * _DREC
            c = 0
            for i in range(8):
                c = db[o + i] - tok[off + i]
                if c:
                    break
            if not c:
                return db[o + 8]
            if c < 0:
                lo = mid + 1
            else:
                hi = mid - 1
        return -1

    # ---- delta ----------------------------------------------------------
    def apply_delta(self, data):
        """Replace the delta in force with data (cumulative since the image
        version). Returns the version now in force."""
        base, ver, n, created = F.parse_delta(data)
        if base != self.image_version or not self.image_version:
            raise DenyListError("base_mismatch", "delta base %d, image %d" % (base, self.image_version))
        if ver < self.version:
            raise DenyListError("not_newer", "delta %d < %d in force" % (ver, self.version))
        if n > _DELTA_MAX:
            raise DenyListError("too_large", "delta of %d records" % n)
        if type(data) is not bytes:
            data = bytes(data)         # a caller's buffer may change under us
        self._dn = 0
        self._db = data
        self._do = F.DELTA_HDR
        self._dn = n
        self.delta_version = ver
        self.version = ver
        if created > self.created:
            self.created = created
        return ver

    def clear_delta(self):
        self._dn = 0
        self._db = None
        self.delta_version = 0
        self.version = self.image_version

    delta_count = property(lambda self: self._dn)
    delta_bytes = property(lambda self: self._db)   # the delta in force, as applied (or None)

    # ---- update: stream into the other slot, verify, commit -------------
    def begin_update(self, size=0):
        """Start writing a new image (size in bytes, if known) into the slot
        not in force. That slot's header is erased first."""
        self._end_update()
        slot = 1 if self.slot == 0 else 0
        p = self._parts[slot]
        if size and (size % _BLOCK or size > p.ioctl(_IOCTL_BLOCKS, 0) * _BLOCK):
            raise DenyListError("too_large", "image %d bytes" % size)
        sc = self._scratch
        ub = bytearray(_BLOCK) if sc is None else sc.take(self)
        if ub is None or len(ub) < _BLOCK:
            raise DenyListError("busy", "block buffer lent out")
        p.ioctl(_IOCTL_ERASE, 0)
        self.boot_reasons[slot] = "erased"
        self._up = [slot, None, 0, 0, ub, None]
        return slot

    def _end_update(self):
        self._up = None
        if self._scratch is not None:
            self._scratch.give(self)

    def write(self, data):
        """Append image bytes (any chunking); full blocks go to flash."""
        u = self._up
        if u is None:
            raise DenyListError("no_update")
        try:
            mv = memoryview(data)
            n = len(mv)
            p = 0
            while p < n:
                take = _BLOCK - u[3]
                if take > n - p:
                    take = n - p
                u[4][u[3]:u[3] + take] = mv[p:p + take]
                u[3] += take
                p += take
                if u[3] == _BLOCK:
                    self._put_block(u)
        except BaseException:
            self._end_update()
            raise
        return len(data)

    def _put_block(self, u):
        slot, h, idx, ub = u[0], u[1], u[2], u[4]
        p = self._parts[slot]
        if idx == 0:
            h = F.parse_header(ub, p.ioctl(_IOCTL_BLOCKS, 0))
            if h.version <= self.image_version or h.version < self.version:
                raise DenyListError("not_newer", "image %d, in force %d" % (h.version, self.version))
            if any(memoryview(ub)[h.size:]):
                raise DenyListError("bad_header", "header block padding not zero")
            u[1] = h
            u[5] = bytes(ub[0:h.size])
        else:
            if idx >= h.total_blocks():
                raise DenyListError("trailing", "more than %d blocks" % h.total_blocks())
            p.writeblocks(idx, ub)
        u[2] = idx + 1
        u[3] = 0

    def abort(self):
        self._end_update()

    def commit(self):
        """Verify the written slot in full, then write its header (the commit
        record) and switch to it. Returns the version now in force."""
        for _ in self.commit_steps():
            pass
        return self.version

    def commit_steps(self):
        """commit() as a generator that yields after each verified block, so
        an asyncio task can `await asyncio.sleep_ms(0)` between steps and taps
        keep being served from the list in force (1M entries: ~8 s of ESP32
        CPU in ~1,500 steps of ~5 ms)."""
        u = self._up
        self._up = None
        if u is None:
            raise DenyListError("no_update")
        try:
            slot, h, idx, fill, ub = u[0], u[1], u[2], u[3], u[4]
            if h is None or fill or idx != h.total_blocks():
                raise DenyListError("truncated", "%d blocks + %d bytes written" % (idx, fill))
            p = self._parts[slot]
            for _ in _verify(p, h, ub):
                yield
            for i in range(_BLOCK):  # in place: no 4 KB temporary on a small heap
                ub[i] = 0
            ub[0:h.size] = u[5]
            p.writeblocks(0, ub)                                # the commit
            ub = None
        finally:
            self._end_update()
        h2 = self._read_header(slot)
        if h2.version != h.version or h2.sha256 != h.sha256:
            raise DenyListError("bad_header", "header read back differs")
        self.boot_reasons[slot] = None
        self._use(slot, h2)

    def install(self, image):  # begin_update + write + commit, image in memory
        self.begin_update(len(image))
        mv = memoryview(image)
        for o in range(0, len(image), _BLOCK):
            self.write(mv[o:o + _BLOCK])
        return self.commit()

    def scrub(self, blocks=1):
        """Check the CRC of the next `blocks` data blocks of the image in
        force (round robin; call when idle). Raises DenyListError(bad_block)
        on flash corruption; the caller reports it and may re-fetch."""
        secs = self._secs
        n = 0
        for t in secs:
            n += t[8]
        if not n:
            return 0
        buf = self._buf
        for _ in range(blocks if blocks < n else n):
            i = self._scrub
            self._scrub = i + 1 if i + 1 < n else 0
            b = i
            for t in secs:
                if b < t[8]:
                    self._part.readblocks(t[7] + b, buf)
                    break
                b -= t[8]
            if crc32(buf) != _RESIDUE:
                raise DenyListError("bad_block", "data block %d CRC" % i)
        return self._scrub

    def verify(self):
        """Re-verify the image in force in full (diagnostics, idle scrub)."""
        if self.slot < 0:
            return
        p = self._parts[self.slot]
        for _ in _verify(p, self._read_header(self.slot), bytearray(_BLOCK)):
            pass


def _fb(p, sec, i, buf):
    if i >= sec[7]:
        return 1 << sec[0]
    p.readblocks(sec[8] + sec[6] + i, buf, 0)
    return (((buf[0] << 8) | buf[1]) << 16) | (buf[2] << 8) | buf[3]


def _verify(p, h, ub):
    """Read back blocks 1..end of slot p and check everything the lookup
    relies on; a generator, one step per block. Raises DenyListError; the
    caller keeps the list in force."""
    import hashlib

    sha = hashlib.sha256()
    secs = F.sections(h)
    side = h.fmt == F.FORMAT_SECTIONS
    si = 0
    sec = secs[0]
    nxt = 0
    seen = 0
    for bi in range(1, h.total_blocks()):
        p.readblocks(bi, ub)
        sha.update(ub)
        while si + 1 < len(secs) and bi >= secs[si + 1][8]:
            _totals(sec, nxt, seen)
            si += 1
            sec = secs[si]
            nxt = seen = 0
        k, ss, rw, rp, d0 = sec[0], sec[2], sec[3], sec[4], sec[8] + sec[6]
        if bi < d0:
            continue
        if crc32(ub) != _RESIDUE:
            raise DenyListError("bad_block", "data block %d CRC" % (bi - d0))
        fb = (((ub[0] << 8) | ub[1]) << 16) | (ub[2] << 8) | ub[3]
        nb = (ub[4] << 8) | ub[5]
        ne = (ub[6] << 8) | ub[7]
        u, r, end = F.block_layout(nb, ne, k, ss, h.sb, rw)
        if fb != nxt or not nb or end > F.BLK_PAYLOAD:
            raise DenyListError("bad_block", "data block %d geometry" % (bi - d0))
        if not _unary_ok(ub, u, r, nb, ne, ss):
            raise DenyListError("bad_block", "data block %d unary or samples" % (bi - d0))
        if side and not _side_ok(ub, end, ne, rp, 64 - k - rw):
            raise DenyListError("bad_block", "data block %d side stream" % (bi - d0))
        nxt = fb + nb
        seen += ne
        yield
    if sha.digest() != h.sha256:
        raise DenyListError("bad_hash")
    _totals(sec, nxt, seen)
    for sec in secs:
        if sec[5]:
            for _ in _verify_dir(p, sec, ub):
                yield


def _totals(sec, nxt, seen):
    if seen != sec[5] or nxt != ((1 << sec[0]) if sec[5] else 0):
        raise DenyListError("bad_block", "bucket or entry totals")


def _side_ok(ub, o, ne, rp, rest):
    # The whole side stream decodes inside the payload: indices ascending and
    # < ne, statuses 1..5, every sample equal to its record.
    if o + 2 > F.BLK_PAYLOAD:
        return False
    m = (ub[o] << 8) | ub[o + 1]
    base = (o + F.side_head_bytes(m)) << 3
    lim = F.BLK_PAYLOAD << 3
    if base > lim:
        return False
    pos = base
    prev = 0
    for i in range(m):
        if i and not i & 15:
            so = o + 2 + 4 * ((i >> 4) - 1)
            sp = (ub[so] << 8) | ub[so + 1]
            if (ub[so + 2] << 8) | ub[so + 3] != pos - base:
                return False
        q = 0
        while pos < lim and (ub[pos >> 3] >> (7 - (pos & 7))) & 1:
            q += 1
            pos += 1
        if pos + 1 + rp + 2 > lim:
            return False
        pos += 1
        prev += (q << rp) | _bits(ub, pos, rp)
        pos += rp
        if i and not i & 15 and sp != prev:
            return False
        kind = _bits(ub, pos, 2)
        pos += 2
        n = 3 if kind == 2 else (4 if kind == 0 else (16 if kind == 1 else rest))
        if prev >= ne or pos + n > lim or (kind == 2 and not 1 <= _bits(ub, pos, 3) <= F.ST_UNPAID):
            return False
        pos += n
    return True


def _unary_ok(ub, u, r, nb, ne, ss):
    # One pass over the unary bytes: nb zeros and ne ones in the first nb+ne
    # bits, zero padding, and each sample equal to the ones before its bucket.
    # Bit by bit only in bytes where a sampled bucket starts.
    ones = 0
    zeros = 0
    nxt = 1 << ss
    for i in range(u, r):
        x = ub[i]
        zc = _ZC[x]
        if zeros + zc < nxt or nxt >= nb:
            zeros += zc
            ones += 8 - zc
            continue
        for bit in range(7, -1, -1):
            if (x >> bit) & 1:
                ones += 1
                continue
            zeros += 1
            if zeros == nxt and nxt < nb:
                o = 6 + 2 * (nxt >> ss)
                if (ub[o] << 8) | ub[o + 1] != ones:
                    return False
                nxt += 1 << ss
    pad = (r - u) * 8 - nb - ne
    return ones == ne and not ub[r - 1] & ((1 << pad) - 1)


def _verify_dir(p, sec, ub):
    # Merge the directory with the data blocks' first buckets: entry j must
    # name the block holding bucket j<<g and the next block start in group j.
    k, g, d0 = sec[0], sec[1], sec[8]
    hb = bytearray(4)
    bi = 0
    f1 = _fb(p, sec, 1, hb)
    for j in range(1 << (k - g)):
        o = j * 4
        if not o & 4095:
            p.readblocks(d0 + (o >> 12), ub)
            yield
        lo = j << g
        while f1 <= lo:
            bi += 1
            f1 = _fb(p, sec, bi + 1, hb)
        sp = f1 - lo if f1 < lo + (1 << g) else 0
        if sp and _fb(p, sec, bi + 2, hb) < lo + (1 << g):
            raise DenyListError("bad_dir", "group %d holds two block starts" % j)
        o &= 4095
        if (ub[o] << 8) | ub[o + 1] != bi or (ub[o + 2] << 8) | ub[o + 3] != sp:
            raise DenyListError("bad_dir", "entry %d" % j)
    for i in range(((1 << (k - g)) * 4) & 4095 or _BLOCK, _BLOCK):
        if ub[i]:  # unused tail of the last directory block
            raise DenyListError("bad_dir", "padding")
