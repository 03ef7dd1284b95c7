# Helpers for the deny-list tests (no tests here): an in-memory raw flash
# partition with the esp32.Partition block protocol and NOR semantics
# (erase sets 0xFF, programming only clears bits), read counting and power
# cuts after N erase/program operations (optionally torn mid-block); and a
# deterministic 64-bit generator that gives the same sets on both runtimes.
from yktsrv import dlbuild

BLOCK = 4096
_FF = b"\xff" * BLOCK
M64 = (1 << 64) - 1


class PowerCut(BaseException):
    """The modeled supply dropped during a flash operation."""


class MemPart:
    """One bytearray per 4 KB block: no large contiguous allocation on the
    small heap, and whole-block or small reads allocate nothing."""

    def __init__(self, nblocks):
        self.nblocks = nblocks
        self.blocks = [bytearray(_FF) for _ in range(nblocks)]
        self.reads = 0
        self.ops = 0          # erase/program operations done
        self.cut_at = -1      # operation index at which power fails (-1 never)
        self.torn = False     # a cut program writes half its bytes first

    def readblocks(self, block, buf, offset=0):
        n = len(buf)
        if block < 0 or block >= self.nblocks or offset < 0 or offset + n > BLOCK:
            raise OSError(22)  # EINVAL: one block per read in these tests
        blk = self.blocks[block]
        if n == BLOCK:
            buf[0:BLOCK] = blk
        else:
            for i in range(n):
                buf[i] = blk[offset + i]
        self.reads += 1

    def _op(self):
        self.ops += 1
        return self.ops - 1 == self.cut_at

    def writeblocks(self, block, buf, offset=None):
        n = len(buf)
        if offset is None:
            if n % BLOCK or block < 0 or block + n // BLOCK > self.nblocks:
                raise OSError(22)
            for b in range(n // BLOCK):
                self.ioctl(6, block + b)
            offset = 0
        if offset < 0 or block * BLOCK + offset + n > self.nblocks * BLOCK:
            raise OSError(22)
        cut = self._op()
        if cut and not self.torn:
            raise PowerCut()
        m = n // 2 if cut else n
        for i in range(m):  # NOR programming only clears bits
            a = block * BLOCK + offset + i
            self.blocks[a >> 12][a & 4095] &= buf[i]
        if cut:
            raise PowerCut()

    def ioctl(self, op, arg):
        if op == 4:
            return self.nblocks
        if op == 5:
            return BLOCK
        if op == 6:
            if self._op():
                if self.torn:  # erase interrupted: half the block erased
                    blk = self.blocks[arg]
                    for i in range(BLOCK // 2):
                        blk[i] = 0xFF
                raise PowerCut()
            self.blocks[arg][0:BLOCK] = _FF
            return 0
        return 0

    def raw(self, block):
        return self.blocks[block]


class Rng:
    """splitmix64: identical streams on CPython and MicroPython."""

    def __init__(self, seed):
        self.s = seed & M64

    def next64(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)


def tok(v):
    return v.to_bytes(8, "big")


def _compact():
    # MicroPython: 64-bit tokens are heap integers and splitmix leaves
    # garbage; collecting often keeps live data packed at the heap start so
    # the encoder's 4 KB buffers still find contiguous room.
    import gc

    if hasattr(gc, "mem_free"):
        gc.collect()


def status_of(v):
    """Status of a test token: mixed from high bits, so a decoder that
    confused status and remainder bits would fail."""
    return 1 + (((v >> 17) ^ (v >> 43)) & 3)


def make_set(n, seed, extra=()):
    """Sorted distinct tokens: n random ones plus extra (no dict: on the
    64-bit unix port every token above 2^62 is a heap integer)."""
    rng = Rng(seed)
    toks = [0] * (n + len(extra))  # sized once: growing lists fragment a small heap
    for i in range(n):
        toks[i] = rng.next64()
        if not i & 63:
            _compact()
    for i in range(len(extra)):
        toks[n + i] = extra[i]
    toks.sort()
    j = 0
    for i in range(len(toks)):
        if not i or toks[i] != toks[j - 1]:
            toks[j] = toks[i]
            j += 1
    del toks[j:]
    return toks


def contains(toks, v):
    lo = 0
    hi = len(toks) - 1
    while lo <= hi:
        m = (lo + hi) >> 1
        if toks[m] == v:
            return True
        if toks[m] < v:
            lo = m + 1
        else:
            hi = m - 1
    return False


def image(toks, version, status=status_of):
    st = bytearray(len(toks))
    for i in range(len(toks)):
        st[i] = status(toks[i])
    _compact()
    return dlbuild.encode_image(toks, st, version, 1795000000)


def slots(nblocks):
    return MemPart(nblocks), MemPart(nblocks)


def misses(toks, n, seed):
    rng = Rng(seed)
    out = [0] * n
    i = 0
    while i < n:
        v = rng.next64()
        if not contains(toks, v):
            out[i] = v
            i += 1
        if not i & 63:
            _compact()
    return out


def size_n():
    """CI-sized sets: 20k on CPython, fewer on the 256K-heap unix port."""
    import sys

    return 20000 if sys.implementation.name == "cpython" else 600


# Images as lists of 4096-byte blocks: the small heap cannot always find
# 20 KB contiguous, and a corruption copies only the block it changes.
def blocks(toks, version, fill=4092, status=status_of):
    st = bytearray(len(toks))
    for i in range(len(toks)):
        st[i] = status(toks[i])
    _compact()
    return dlbuild.encode_blocks(toks, st, version, 1795000000, fill=fill)


def install(dl, blks, size=True, tail=None):
    """Stream blocks (then an optional partial tail) as an update."""
    dl.begin_update(len(blks) * BLOCK if size else 0)
    for b in blks:
        dl.write(b)
    if tail is not None:
        dl.write(tail)
    return dl.commit()


def with_byte(blks, off, val):
    out = list(blks)
    b = bytearray(out[off >> 12])
    b[off & 4095] = val
    out[off >> 12] = b
    return out


def fix_header_crc(blks):
    import binascii
    import struct

    out = list(blks)
    h = bytearray(out[0])
    struct.pack_into(">I", h, 76, binascii.crc32(memoryview(h)[0:76]) & 0xFFFFFFFF)
    out[0] = h
    return out


def fix_block_crc(blks, i):
    import binascii
    import struct

    out = list(blks)
    b = bytearray(out[i])
    struct.pack_into("<I", b, 4092, binascii.crc32(memoryview(b)[0:4092]) & 0xFFFFFFFF)
    out[i] = b
    return out


def reseal(blks):
    """Recompute body SHA-256 and header CRC of a modified image: the checks
    behind them must then catch what the hash no longer can."""
    import hashlib
    from ykt.rules import dlformat as F

    out = fix_header_crc(blks)
    h = F.parse_header(out[0])
    sha = hashlib.sha256()
    for b in out[1:]:
        sha.update(b)
    h.sha256 = sha.digest()
    head = bytearray(out[0])
    head[0:F.HDR_SIZE] = h.pack()
    out[0] = head
    return out


def check_all(dl, toks, status=status_of):
    """Every token answers its status; returns the worst reads per lookup
    on the partition in force."""
    part = dl._part if hasattr(dl._part, "reads") else None
    worst = 0
    for t in toks:
        r0 = part.reads if part else 0
        s = dl.lookup(tok(t))
        if s != status(t):
            raise AssertionError("token %016x: got %d want %d" % (t, s, status(t)))
        if part and part.reads - r0 > worst:
            worst = part.reads - r0
    return worst
