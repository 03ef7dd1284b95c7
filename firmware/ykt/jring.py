# The tap journal as a ring of pre-erased flash sectors on its own raw
# partition ("jrnl"). Same guarantees as ykt.journal (littlefs segments):
# durable before feedback, encrypted at rest, no tap lost or doubled at any
# power cut, kept until the back office acked it. What changes is the cost:
# an append is ONE program of 48 bytes into an already erased slot (~0.15 ms
# of flash time), where a littlefs sync copies and erases a block (~45 ms).
# Erasing happens ahead of need, between taps (idle()).
#
# Format (docs/reliability.md, "Ring journal"):
#   sector (4096 B) = header 16 B + 85 slots of 48 B
#     header: b"YKR1" | kcv u32 | erases u32 (this sector's erase count) | crc32(bytes 0..11) u32
#             written only after the erase completed and read back erased:
#             a sector without a valid header is never written to.
#     slot:   seq u32 | nonce u32 | AES-CTR(taprec bytes 4..39) 36 B | crc32(nonce + plain 40-byte taprec) u32
#             (nonce: random per boot and after every failed write, so a seq
#             re-used after a cut never shares a keystream with the lost attempt)
#   ack cursor: the file `ack_path` on littlefs (ykt.fs.replace_file), as ykt.journal.
#
# Why it cannot lose or double a tap:
# - a slot is programmed once between erases; a torn slot fails its CRC and
#   is skipped for good (the next append goes to the slot after the last
#   non-erased one);
# - records are in seq order around the ring, so the newest record (highest
#   valid seq) is the head and next_seq = head + 1 (or ack + 1 if higher);
# - a sector is erased only when every record in it is acked (seq <= cursor),
#   so an erase, torn or not, only ever destroys acked taps.
import struct
from array import array
from binascii import crc32

from ykt import taprec
from ykt.compat import const
from ykt.sec.crypt import Ctr
from ykt.fs import replace_file, TMP
# One journal interface: the exceptions and the upload readers (pending,
# pending_into, oldest_pending_time over _read) are shared with ykt.journal,
# whose littlefs code this board does not load.
from ykt.jshared import JournalFull, JournalError, MSG_FULL, Readers  # noqa: F401

SECTOR = const(4096)
_HDR = const(16)
SLOT = const(48)
SLOTS = const(85)          # (4096 - 16) // 48
_MAGIC = b"YKR1"
_ERASE = const(6)
_BLOCKS = const(4)

def _u32(b, off):
    return struct.unpack_from("<I", b, off)[0]


class RingJournal(Readers):
    def __init__(self, part, key, ack_path, rng=None):
        import os

        self.part = part          # esp32.Partition (block size 4096) or the same interface
        self.ack_path = ack_path
        self._ctr = Ctr(key)
        self._rng = rng or os.urandom
        self.n = part.ioctl(_BLOCKS, 0)
        if self.n < 3:
            raise JournalError("journal partition needs at least 3 sectors")
        self._slot = bytearray(SLOT)
        self._nmv = memoryview(self._slot)[4:8]   # the nonce, start of the CRC: made once, no slice per tap
        self._pt = bytearray(taprec.SIZE)
        self._hdr = bytearray(_HDR)
        # Per-sector state, compact (4 + 1 bytes a sector: 2.9 KB for 576
        # sectors, where two lists took 4.6 KB on the ESP32 and 9.2 KB on a
        # 64-bit port, in one block each): made from a range, which the array
        # sizes up front, with no temporary beside it.
        self._first = array("I", range(self.n))   # first valid seq in each sector, 0: none
        for s in range(self.n):
            self._first[s] = 0
        self._ready = bytearray(self.n)  # 1: header valid and every slot erased
        self.head = 0             # sector being appended to
        self.pos = 0              # next slot in it
        self.next_seq = 1
        self.cursor = 0
        self.corrupt = 0          # kept for the journal interface: ring slots are never "in the middle"
        self.dropped = 0          # torn slots seen (a cut or a failed write)
        self.erases = 0           # sector erases this boot (wear figures)
        self._nonce = 0
        self._otime = None
        self._otime_seq = -1

    # --- flash helpers ----------------------------------------------------
    def _read_slot(self, s, i):
        self.part.readblocks(s, self._slot, _HDR + i * SLOT)

    def _blank(self):
        for b in self._slot:
            if b != 0xFF:
                return False
        return True

    def _decode(self):
        """self._slot -> self._pt (plain taprec); False if the CRC fails."""
        sl = self._slot
        pt = self._pt
        seq = _u32(sl, 0)
        nonce = _u32(sl, 4)
        struct.pack_into("<I", pt, 0, seq)
        self._ctr.xor(nonce, seq, sl, 8, pt, 4, taprec.SIZE - 4)
        return crc32(pt, crc32(self._nmv)) == _u32(sl, SLOT - 4)

    def _read_hdr(self, s):
        """Erase count of sector s if its header is valid, else -1."""
        h = self._hdr
        self.part.readblocks(s, h, 0)
        if h[0:4] != _MAGIC or crc32(memoryview(h)[0:12]) != _u32(h, 12):
            return -1
        if _u32(h, 4) != self._ctr.kcv:
            raise JournalError("journal key does not match this journal")
        return _u32(h, 8)

    def _scan(self, s):
        """(first valid seq, last valid seq, slots used) of sector s."""
        first = last = 0
        used = 0
        for i in range(SLOTS):
            self._read_slot(s, i)
            if self._blank():
                continue
            used = i + 1
            if self._decode():
                seq = _u32(self._slot, 0)
                if not first:
                    first = seq
                last = seq
        return first, last, used

    # --- recovery ---------------------------------------------------------
    def open(self):
        """Find the head (the newest valid record), the next free slot and
        which sectors are ready; load the upload cursor."""
        import os

        try:
            os.remove(self.ack_path + TMP)   # a replacement never renamed: the ack is still valid
        except OSError:
            pass
        self.cursor = self._load_ack()
        best = 0
        head = 0
        for s in range(self.n):
            self._ready[s] = False
            self._first[s] = 0
            hv = self._read_hdr(s)
            if hv < 0:
                continue
            # the first valid record of the sector (torn slots may precede it)
            for i in range(SLOTS):
                self._read_slot(s, i)
                if self._blank():
                    if i == 0:
                        self._ready[s] = True   # checked in full below for the one that matters
                    break
                if self._decode():
                    self._first[s] = _u32(self._slot, 0)
                    break
            if self._first[s] > best:
                best = self._first[s]
                head = s
        last = 0
        pos = 0
        if best:
            f, last, pos = self._scan(head)
            # slots after the last used one must be erased to be written
            for i in range(pos, SLOTS):
                self._read_slot(head, i)
                if not self._blank():
                    pos = SLOTS   # damaged: leave the sector
                    break
            self.dropped += 0
        else:
            # empty journal: start in a ready sector 0 (prepared now if needed)
            head = 0
            pos = 0
            if not self._check_ready(0):
                self._prepare(0)
        self.head = head
        self.pos = pos
        nxt = last + 1 if last else 1
        if self.cursor + 1 > nxt:
            nxt = self.cursor + 1
        self.next_seq = nxt
        for s in range(self.n):
            if s != head and self._ready[s]:
                self._ready[s] = self._check_ready(s)
        self._ready[head] = False
        self._nonce = _u32(self._rng(4), 0)
        self._otime_seq = -1
        return self

    def _check_ready(self, s):
        if self._read_hdr(s) < 0:
            return False
        for i in range(SLOTS):
            self._read_slot(s, i)
            if not self._blank():
                return False
        return True

    def _load_ack(self):
        try:
            f = open(self.ack_path, "rb")
        except OSError:
            return 0
        try:
            b = f.read(12)
        finally:
            f.close()
        if len(b) != 12 or b[0:4] != b"YKA1" or crc32(b[0:8]) != _u32(b, 8):
            return 0   # re-uploading is safe (the back office dedupes), losing is not
        return _u32(b, 4)

    # --- erasing ahead ------------------------------------------------------
    def _upper(self, s):
        """Highest seq sector s can hold: below the first seq of the next
        sector (ring order) that has records; the head's own: next_seq - 1."""
        if s == self.head:
            return self.next_seq - 1
        k = s
        for _ in range(self.n):
            k = k + 1 if k + 1 < self.n else 0
            if self._first[k]:
                return self._first[k] - 1
            if k == self.head:
                break
        return self.next_seq - 1

    def _reclaimable(self, s):
        return s != self.head and (not self._first[s] or self._upper(s) <= self.cursor)

    def _prepare(self, s):
        """Erase sector s, check it reads erased, then write its header."""
        old = self._read_hdr(s)
        self.part.ioctl(_ERASE, s)
        self.erases += 1
        self._first[s] = 0
        self._ready[s] = False
        for i in range(SLOTS):
            self._read_slot(s, i)
            if not self._blank():
                raise OSError(5)   # EIO: the sector did not erase
        h = self._hdr
        h[0:4] = _MAGIC
        struct.pack_into("<II", h, 4, self._ctr.kcv, (old if old >= 0 else 0) + 1)
        struct.pack_into("<I", h, 12, crc32(memoryview(h)[0:12]))
        self.part.writeblocks(s, h, 0)
        self._ready[s] = True

    def _next(self):
        return self.head + 1 if self.head + 1 < self.n else 0

    def idle(self):
        """Between taps: make sure the sector after the head is erased and
        ready, so no append has to erase. Returns True if it erased."""
        nx = self._next()
        if self._ready[nx] or not self._reclaimable(nx):
            return False
        self._prepare(nx)
        return True

    # --- appending ----------------------------------------------------------
    def append(self, tap):
        """Assign tap.seq, encrypt, program one slot. Durable when it returns.
        Raises JournalFull (nothing written) or OSError (not recorded)."""
        if self.pos >= SLOTS:
            nx = self._next()
            if not self._ready[nx]:
                if not self._reclaimable(nx):
                    raise JournalFull()
                self._prepare(nx)    # idle() did not get to it: erase now (slow path)
            self._ready[nx] = False
            self.head = nx
            self.pos = 0
        seq = self.next_seq
        tap.seq = seq
        pt = self._pt
        sl = self._slot
        taprec.pack_into(pt, 0, tap)
        struct.pack_into("<II", sl, 0, seq, self._nonce)
        self._ctr.xor(self._nonce, seq, pt, 4, sl, 8, taprec.SIZE - 4)
        struct.pack_into("<I", sl, SLOT - 4, crc32(pt, crc32(self._nmv)))
        i = self.pos
        self.pos = i + 1          # a slot is tried once: after a failure it may be torn
        try:
            self.part.writeblocks(self.head, sl, _HDR + i * SLOT)
        except OSError:
            self._nonce = _u32(self._rng(4), 0)
            raise
        if not self._first[self.head]:
            self._first[self.head] = seq
        self.next_seq = seq + 1
        return seq

    # --- reading for upload ---------------------------------------------------
    def _read(self, after, max_n, sink):
        seq = (self.cursor if after is None else after) + 1
        if seq >= self.next_seq:
            return 0
        n = 0
        s = self._next()
        for _ in range(self.n):
            if n >= max_n:
                break
            if self._first[s] and self._upper(s) >= seq:
                for i in range(SLOTS if s != self.head else self.pos):
                    self._read_slot(s, i)
                    if self._blank():
                        break
                    if not self._decode():
                        continue
                    q = _u32(self._slot, 0)
                    if q >= seq:
                        sink(self._pt)
                        n += 1
                        seq = q + 1
                        if n >= max_n:
                            break
            s = s + 1 if s + 1 < self.n else 0
        return n

    # --- acknowledgement ------------------------------------------------------
    def ack(self, up_to_seq):
        """The back office committed every seq <= up_to_seq: persist the
        cursor. Sectors are erased later, ahead of need (idle)."""
        up = up_to_seq
        if up > self.next_seq - 1:
            up = self.next_seq - 1
        if up <= self.cursor:
            return self.cursor
        b = bytearray(12)
        b[0:4] = b"YKA1"
        struct.pack_into("<I", b, 4, up)
        struct.pack_into("<I", b, 8, crc32(memoryview(b)[0:8]))
        replace_file(self.ack_path, b)
        self.cursor = up
        return up

    # --- state for the app and diagnostics --------------------------------------
    @property
    def backlog(self):
        return self.next_seq - 1 - self.cursor

    @property
    def room(self):
        """Taps that can still be appended before the journal is full."""
        left = SLOTS - self.pos
        s = self._next()
        for _ in range(self.n - 1):
            if not self._reclaimable(s):
                break
            left += SLOTS
            s = s + 1 if s + 1 < self.n else 0
        return left

    @property
    def full(self):
        if self.pos < SLOTS:
            return False
        return self.room == 0

    @property
    def flash_bytes(self):
        return sum(SECTOR for f in self._first if f)

    def wear(self):
        """Erase counts from the sector headers (diagnostics, benchmarks)."""
        out = []
        for s in range(self.n):
            out.append(max(0, self._read_hdr(s)))
        return out

    def close(self):
        pass
