# The tap journal: every decided tap is made durable here before the rider gets
# feedback, survives power cuts, is encrypted at rest, and stays until the back
# office has committed it. Runs on littlefs (vfs.VfsLfs2) on the device and on
# the simulator, and on plain files under CPython. Format (docs/reliability.md):
#
#  dir/XXXXXXXX.seg  segment, XXXXXXXX = hex seq of its first record
#     header 20 B: b"YKS2" | base u32 | salt u32 | kcv u32 | crc32(bytes 0..15) u32
#     frames 40 B: AES-CTR(taprec bytes 4..39) 36 B | crc32(plain 40-byte taprec) u32
#     (the seq, bytes 0..3 of the taprec, is implicit: base + frame index)
#     A b"YKS1" segment (tap record format 1, before driver shifts) has 36-byte
#     frames over the 36-byte record; it is read as shift 0 and never written.
#  dir/ack           upload cursor, 12 B: b"YKA1" | acked seq u32 | crc32(bytes 0..7) u32
#                    replaced atomically (ykt.fs.replace_file: ack.tmp, renamed over ack)
#
# Why this shape:
# - One append = one write of 40 bytes + flush (lfs_file_sync): durable on
#   return. littlefs commits a sync atomically, and the per-frame CRC (over the
#   plaintext, so over key, salt and position too) drops a torn tail anywhere
#   else; records are never read past the first invalid tail frame.
# - A segment is only ever appended to in the boot (and salt) that created it:
#   after a reboot or a failed write the next tap opens a new segment. So a
#   record lost in a cut never shares a keystream with its re-numbered
#   successor, and garbage at an old tail is bounded by the next base.
# - Sequence numbers: next = max(newest base + its valid records, ack + 1).
#   The newest segment is never deleted, so its name keeps the high-water mark
#   even when every tap has been uploaded.
# - Full journal: appends never overwrite taps that are not acked. When no
#   segment can be allocated within capacity, append raises JournalFull and the
#   app shows MSG_FULL until acks free whole segments.
import os
import struct
from binascii import crc32

from ykt import taprec
from ykt.compat import const
from ykt.sec.crypt import Ctr
from ykt.fs import replace_file, remove_leftovers

_HDR = const(20)
_FRAME = const(40)         # format 2 frame (taprec.SIZE 40 = 4 implicit + 36 encrypted)
_FRAME_V1 = const(36)      # format 1 frame, read only
SEG_RECS = const(408)      # 20 + 408*40 = 16340 B: 4 littlefs blocks of 4 KiB
_ENOENT = const(2)
_EEXIST = const(17)
_ENOSPC = const(28)
# The exceptions and upload readers both journals share (ykt.jring too);
# imported from here by the app, the tools and the tests.
from ykt.jshared import MSG_FULL, JournalFull, JournalError, Readers  # noqa: F401


def _fsync(f):
    # CPython only: MicroPython's flush() already is lfs_file_sync.
    if hasattr(os, "fsync"):
        os.fsync(f.fileno())


def _u32(b, off):
    return struct.unpack_from("<I", b, off)[0]


class Journal(Readers):
    def __init__(self, dirpath, key, capacity_bytes=None, seg_recs=SEG_RECS,
                 reserve_blocks=8, rng=None):
        self.dir = dirpath
        self._ctr = Ctr(key)
        self._cap_arg = capacity_bytes
        self._seg_recs = seg_recs
        self._reserve = reserve_blocks  # kept free for littlefs copy-on-write and config switches
        self._rng = rng or os.urandom
        self._frame = bytearray(_FRAME)
        self._fmv = memoryview(self._frame)
        self._rf = _FRAME      # frame size of the segment being read (YKS1: 36)
        self._pt = bytearray(taprec.SIZE)
        self._hdr = bytearray(_HDR)
        self._f = None
        self._bases = []       # base seq of each segment, oldest first
        self._sizes = []       # bytes in each segment file
        self.next_seq = 1
        self.cursor = 0        # highest acked seq
        self.corrupt = 0       # frames skipped on read (bad CRC in the middle)
        self.dropped = 0       # torn tail bytes dropped at open
        self._cnt = 0          # records in the segment being appended to
        self._salt = 0
        self._bsize = 4096
        self._cap = 0
        self._otime = None
        self._otime_seq = -1

    # --- paths and small helpers ------------------------------------------

    def _seg_path(self, base):
        return "%s/%08x.seg" % (self.dir, base)

    def _read_hdr(self, f, base):
        """Salt of a segment, or None if its header is missing or torn."""
        b = self._hdr
        if f.readinto(b) != _HDR or _u32(b, 4) != base:
            return None
        if b[0:4] == b"YKS2":
            self._rf = _FRAME
        elif b[0:4] == b"YKS1":
            self._rf = _FRAME_V1
        else:
            return None
        if crc32(memoryview(b)[0:16]) != _u32(b, 16):
            return None
        if _u32(b, 12) != self._ctr.kcv:
            raise JournalError("journal key does not match this journal")
        return _u32(b, 8)

    def _decode(self, salt, seq):
        """self._frame (a frame of the segment last opened, self._rf bytes)
        -> self._pt (plaintext format-2 taprec); False if the CRC fails."""
        pt = self._pt
        enc = self._rf - 4
        struct.pack_into("<I", pt, 0, seq)
        self._ctr.xor(salt, seq, self._frame, 0, pt, 4, enc)
        if enc == _FRAME - 4:
            return crc32(pt) == _u32(self._frame, enc)
        # format 1: a 36-byte record, no shift
        ok = crc32(memoryview(pt)[0:_FRAME_V1]) == _u32(self._frame, enc)
        for i in range(_FRAME_V1, _FRAME):
            pt[i] = 0
        return ok

    def _flash_bytes(self, size):
        # littlefs stores a file in whole blocks; blocks after the first lose
        # one or two CTZ pointer words (a full segment is exactly 4 blocks).
        if size == 0:
            return 0
        per = self._bsize - 4
        return ((size + per - 1) // per) * self._bsize

    def _used(self):
        u = 0
        for s in self._sizes:
            u += self._flash_bytes(s)
        return u

    def _refresh_capacity(self):
        if self._cap_arg is not None:
            self._cap = self._cap_arg
            return
        st = os.statvfs(self.dir)
        self._bsize = st[0]
        self._cap = self._used() + st[0] * (st[4] - self._reserve)

    # --- recovery ---------------------------------------------------------

    def open(self):
        """Recover after power loss: find segments, drop a torn tail, load the
        upload cursor, finish an interrupted rotation, compute next_seq."""
        try:
            os.mkdir(self.dir)
        except OSError:
            pass  # exists (or a real error that the listdir below reports)
        try:
            st = os.statvfs(self.dir)
            self._bsize = st[0]
        except (OSError, AttributeError):
            pass
        remove_leftovers(self.dir)   # an ack.tmp that never got renamed: ack is still valid
        self.cursor = self._load_ack()
        bases = []
        for name in os.listdir(self.dir):
            if len(name) == 12 and name.endswith(".seg"):
                try:
                    bases.append(int(name[:8], 16))
                except ValueError:
                    pass
        bases.sort()
        self._bases = bases
        self._sizes = [os.stat(self._seg_path(b))[6] for b in bases]
        self._f = None
        self._cnt = 0
        nxt = 1
        if bases:
            base = bases[-1]
            cnt = self._scan_tail(base, self._sizes[-1])
            nxt = base + cnt
            self._cnt = cnt
            if self.cursor < bases[0] - 1:
                self.cursor = bases[0] - 1  # deleted segments were acked
        if self.cursor + 1 > nxt:
            nxt = self.cursor + 1
        self.next_seq = nxt
        self._drop_acked()
        self._refresh_capacity()
        self._otime_seq = -1
        return self

    def _scan_tail(self, base, size):
        """Valid records in the newest segment, scanning back from the end:
        appends are sequential, so everything before the last valid frame is
        a committed prefix."""
        try:
            f = open(self._seg_path(base), "rb")
        except OSError:
            return 0
        try:
            salt = self._read_hdr(f, base)
            if salt is None:
                self.dropped += size
                return 0
            fs = self._rf
            n = (size - _HDR) // fs
            fr = self._fmv[0:fs]
            while n > 0:
                f.seek(_HDR + (n - 1) * fs)
                if f.readinto(fr) == fs and self._decode(salt, base + n - 1):
                    break
                n -= 1
            self.dropped += size - _HDR - n * fs
            return n
        finally:
            f.close()

    def _load_ack(self):
        try:
            f = open(self.dir + "/ack", "rb")
        except OSError:
            return 0
        try:
            b = f.read(12)
        finally:
            f.close()
        if len(b) != 12 or b[0:4] != b"YKA1" or crc32(b[0:8]) != _u32(b, 8):
            # Cannot happen with an atomic rename; if it does, re-uploading is
            # safe (the back office dedupes on (device, seq)), losing is not.
            return 0
        return _u32(b, 4)

    # --- appending --------------------------------------------------------

    def _new_segment(self):
        """Open a fresh segment (new salt) for appending at next_seq."""
        self._close_writer()
        base = self.next_seq
        reuse = self._bases and self._bases[-1] == base  # newest holds no record
        used = self._used()
        if reuse:
            used -= self._flash_bytes(self._sizes[-1])
        if self._cap_arg is None:
            self._refresh_capacity()
        need = self._flash_bytes(_HDR + self._seg_recs * _FRAME)
        if used + need > self._cap:
            raise JournalFull()
        self._salt = _u32(self._rng(4), 0)
        h = self._hdr
        h[0:4] = b"YKS2"
        struct.pack_into("<III", h, 4, base, self._salt, self._ctr.kcv)
        struct.pack_into("<I", h, 16, crc32(memoryview(h)[0:16]))
        f = open(self._seg_path(base), "wb")
        try:
            f.write(h)
            f.flush()
            _fsync(f)
        except Exception:  # not DeviceReset: after a power cut nothing runs
            f.close()
            raise
        if reuse:
            self._sizes[-1] = _HDR
        else:
            self._bases.append(base)
            self._sizes.append(_HDR)
        self._f = f
        self._cnt = 0

    def _close_writer(self):
        if self._f is not None:
            f = self._f
            self._f = None
            try:
                f.close()
            except OSError:
                pass

    def append(self, tap):
        """Assign tap.seq, encrypt, write, sync. Durable when it returns.
        Raises JournalFull (nothing written) or OSError (the tap is not
        recorded; the next append starts a new segment)."""
        if self._f is None or self._cnt >= self._seg_recs:
            self._new_segment()
        seq = self.next_seq
        tap.seq = seq
        pt = self._pt
        fr = self._frame
        taprec.pack_into(pt, 0, tap)
        self._ctr.xor(self._salt, seq, pt, 4, fr, 0, _FRAME - 4)
        struct.pack_into("<I", fr, _FRAME - 4, crc32(pt))
        try:
            self._f.write(fr)
            self._f.flush()
            _fsync(self._f)
        except OSError as e:
            self._close_writer()  # its tail may hold a partial frame: never append there
            if e.args and e.args[0] == _ENOSPC:
                raise JournalFull()
            raise
        self._cnt += 1
        self._sizes[-1] += _FRAME
        self.next_seq = seq + 1
        return seq

    # --- reading for upload -----------------------------------------------

    def _read(self, after, max_n, sink):
        seq = (self.cursor if after is None else after) + 1
        bases = self._bases
        if not bases:
            return 0
        if seq < bases[0]:
            seq = bases[0]
        i = len(bases) - 1
        while i > 0 and bases[i] > seq:
            i -= 1
        n = 0
        while n < max_n and seq < self.next_seq and i < len(bases):
            base = bases[i]
            end = bases[i + 1] if i + 1 < len(bases) else self.next_seq
            if seq < end:
                try:
                    f = open(self._seg_path(base), "rb")
                except OSError:
                    f = None
                if f is None:
                    self.corrupt += end - seq
                    seq = end
                else:
                    try:
                        salt = self._read_hdr(f, base)
                        if salt is None:
                            self.corrupt += end - seq
                            seq = end
                        else:
                            fs = self._rf
                            fr = self._fmv[0:fs]
                            f.seek(_HDR + (seq - base) * fs)
                            while n < max_n and seq < end:
                                if f.readinto(fr) == fs and self._decode(salt, seq):
                                    sink(self._pt)
                                    n += 1
                                else:
                                    self.corrupt += 1
                                seq += 1
                    finally:
                        f.close()
            i += 1
        return n

    # --- acknowledgement and rotation -------------------------------------

    def ack(self, up_to_seq):
        """The back office committed every seq <= up_to_seq. Persist the
        cursor, then delete segments that hold only acked taps (never the
        newest: it carries the sequence high-water mark)."""
        up = up_to_seq
        if up > self.next_seq - 1:
            up = self.next_seq - 1
        if up <= self.cursor:
            return self.cursor
        b = bytearray(12)
        b[0:4] = b"YKA1"
        struct.pack_into("<I", b, 4, up)
        struct.pack_into("<I", b, 8, crc32(memoryview(b)[0:8]))
        replace_file(self.dir + "/ack", b)
        self.cursor = up
        self._drop_acked()
        return up

    def _drop_acked(self):
        while len(self._bases) > 1 and self._bases[1] - 1 <= self.cursor:
            os.remove(self._seg_path(self._bases[0]))
            self._bases.pop(0)
            self._sizes.pop(0)

    # --- state for the app and diagnostics --------------------------------

    @property
    def backlog(self):
        return self.next_seq - 1 - self.cursor

    @property
    def room(self):
        """Taps that can still be appended before the journal is full."""
        left = self._seg_recs - self._cnt if self._f is not None else 0
        seg = self._flash_bytes(_HDR + self._seg_recs * _FRAME)
        used = self._used()
        if self._f is None and self._bases and self._bases[-1] == self.next_seq:
            used -= self._flash_bytes(self._sizes[-1])
        free = self._cap - used
        if free > 0:
            left += (free // seg) * self._seg_recs
        return left

    @property
    def full(self):
        # Fast path for the app's per-tap check: room left in the open segment.
        if self._f is not None and self._cnt < self._seg_recs:
            return False
        return self.room == 0

    @property
    def flash_bytes(self):
        return self._used()

    def close(self):
        self._close_writer()
