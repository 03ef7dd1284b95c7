# The virtual SPI NOR flash of the simulated ESP32: the whole chip as 4096-byte
# erase blocks with NOR semantics (program ANDs bits, erase sets 0xFF), counters
# for benchmarks, and power-cut injection for the crash sweeps. Portable.
#
# Storage is sparse (only touched blocks take RAM) so a 4 MB chip costs nothing
# under `micropython -X heapsize=256K`; FlashChip(size, path=...) keeps the
# bytes in a file instead (persistent across processes, no heap at all).
#
# A "write" is one program or one erase call: the operations a power cut can
# interrupt. Tears of the interrupted write (same words as vhw/lfsdev.py):
#   none    nothing of it reached the flash
#   start   the first quarter of its bytes
#   middle  the first half
#   end     all but the last byte
# After a cut the chip is dead (every access raises DeviceReset("power")) until
# power_on(): nothing can reach flash between the cut and the next boot.
import vclock

BLOCK = 4096
TEARS = ("none", "start", "middle", "end")
_FF = b"\xff" * BLOCK
_FFMV = memoryview(_FF)  # slices of it copy nothing


def tear_len(n, tear):
    if tear == "none":
        return 0
    if tear == "start":
        return n // 4
    if tear == "middle":
        return n // 2
    if tear == "end":
        return n - 1 if n else 0
    raise ValueError("tear must be one of none/start/middle/end")


def image_path(device_id, folder="/tmp"):
    """A flash image file no other run can be using. The name was once
    device id + pid, but MicroPython's os has no getpid: every run then
    shared /tmp/ykt-flash-<id>-0.img, and a run starting beside another
    removed and re-created it, so the other's device came back from a power
    cut on a stranger's flash (no tables: "not configured" for every tap)."""
    import os
    from binascii import hexlify

    return "%s/ykt-flash-%d-%s.img" % (folder, device_id, hexlify(os.urandom(6)).decode())


class FlashError(OSError):
    pass


class FlashChip:
    def __init__(self, size, path=None):
        if size % BLOCK:
            raise ValueError("flash size must be a multiple of 4096")
        self.size = size
        self.n_blocks = size // BLOCK
        self.path = path
        self._blocks = {}  # block index -> bytearray(4096); absent = erased
        self._f = None
        if path is not None:
            try:
                self._f = open(path, "r+b")
            except OSError:
                self._f = open(path, "w+b")
            have = self._f.seek(0, 2)  # a new or smaller image grows erased
            if have is None:
                have = self._f.tell()
            have -= have % BLOCK
            self._f.seek(have)
            for _ in range(have // BLOCK, self.n_blocks):
                self._f.write(_FF)
            self._f.flush()
        self._tmp = bytearray(BLOCK) if path is not None else None
        self.reset_counters()
        self._cut_in = 0  # writes until the cut; 0 = no cut armed
        self._tear = "none"
        self.dead = False
        self.cuts = 0
        # One epoch per boot of the device. Block devices remember theirs:
        # objects of an earlier boot (e.g. a file that littlefs closes from a
        # GC finaliser long after the cut) must not reach the flash.
        self.epoch = 0

    # --- counters ---------------------------------------------------------
    def reset_counters(self):
        self.reads = 0
        self.programs = 0
        self.erases = 0
        self.read_bytes = 0
        self.prog_bytes = 0
        self.erase_bytes = 0
        self.writes = 0  # programs + erases (the ops a cut counts)

    def counters(self):
        return {"reads": self.reads, "programs": self.programs, "erases": self.erases,
                "read_bytes": self.read_bytes, "prog_bytes": self.prog_bytes,
                "erase_bytes": self.erase_bytes, "writes": self.writes}

    # --- power ------------------------------------------------------------
    def cut_after_writes(self, n, tear="none"):
        """The n-th program/erase from now (n >= 1) is cut: `tear` of it is
        applied, then DeviceReset("power") is raised."""
        tear_len(4, tear)
        if n < 1:
            raise ValueError("n >= 1")
        self._cut_in = n
        self._tear = tear

    def cancel_cut(self):
        self._cut_in = 0

    def power_on(self):
        """Power returns (after a cut or a power-on reset): a new epoch."""
        self.dead = False
        self.epoch += 1

    def new_epoch(self):
        """A reset without power loss: objects of the old boot go stale."""
        self.epoch += 1

    def _check_alive(self):
        if self.dead:
            raise vclock.DeviceReset("power", "flash access after power cut")

    def _cut_now(self):
        """Count one write; return the tear to apply if this is the cut one."""
        self._check_alive()
        self.writes += 1
        if self._cut_in:
            self._cut_in -= 1
            if self._cut_in == 0:
                return self._tear
        return None

    def _die(self, what):
        self.dead = True
        self.cuts += 1
        raise vclock.DeviceReset("power", "cut during %s" % what)

    # --- raw block access ---------------------------------------------------
    def _check(self, addr, n):
        if addr < 0 or n < 0 or addr + n > self.size:
            raise FlashError(22, "flash access out of range 0x%x+%d" % (addr, n))

    def _blk(self, i):
        """A writable bytearray for block i (RAM mode only)."""
        b = self._blocks.get(i)
        if b is None:
            b = bytearray(_FF)
            self._blocks[i] = b
        return b

    def read(self, addr, buf):
        """Read len(buf) bytes at addr into buf."""
        self._check_alive()
        n = len(buf)
        self._check(addr, n)
        self.reads += 1
        self.read_bytes += n
        self.peek(addr, buf)

    def zombie_read(self, addr, buf):
        """An uncounted read that allocates nothing: GC finalisers run with the
        heap locked (RAM mode; a file-backed chip returns 0xFF)."""
        blocks = self._blocks
        for j in range(len(buf)):
            a = addr + j
            b = blocks.get(a >> 12) if self._f is None else None
            buf[j] = 0xFF if b is None else b[a & 4095]

    def peek(self, addr, buf):
        """read() without counting and without power: for tools and zombies."""
        n = len(buf)
        self._check(addr, n)
        mv = memoryview(buf)
        if self._f is not None:
            self._f.seek(addr)
            self._f.readinto(mv)
            return
        pos = 0
        while pos < n:
            i = (addr + pos) // BLOCK
            o = (addr + pos) % BLOCK
            k = min(BLOCK - o, n - pos)
            b = self._blocks.get(i)
            if b is None:
                mv[pos:pos + k] = _FFMV[:k]
            else:
                mv[pos:pos + k] = memoryview(b)[o:o + k]
            pos += k

    def _program_raw(self, addr, data, n):
        mv = memoryview(data)
        pos = 0
        while pos < n:
            i = (addr + pos) // BLOCK
            o = (addr + pos) % BLOCK
            k = min(BLOCK - o, n - pos)
            if self._f is not None:
                b = self._tmp
                self._f.seek(i * BLOCK)
                self._f.readinto(b)
            else:
                b = self._blk(i)
            src = mv[pos:pos + k]
            if memoryview(b)[o:o + k] == _FFMV[:k]:
                b[o:o + k] = src  # programming erased flash: a plain copy
            else:
                for j in range(k):  # NOR: a program can only clear bits
                    b[o + j] &= src[j]
            if self._f is not None:
                self._f.seek(i * BLOCK)
                self._f.write(b)
            pos += k

    def program(self, addr, data):
        """NOR program: flash &= data. One write for the power-cut counter."""
        n = len(data)
        self._check(addr, n)
        tear = self._cut_now()
        self.programs += 1
        self.prog_bytes += n
        if tear is not None:
            self._program_raw(addr, data, tear_len(n, tear))
            self._die("program")
        self._program_raw(addr, data, n)

    def _erase_raw(self, addr, n):
        pos = 0
        while pos < n:
            i = (addr + pos) // BLOCK
            o = (addr + pos) % BLOCK
            k = min(BLOCK - o, n - pos)
            if self._f is not None:
                self._f.seek(addr + pos)
                self._f.write(_FFMV[:k])
            elif o == 0 and k == BLOCK:
                self._blocks.pop(i, None)
            else:
                self._blk(i)[o:o + k] = _FFMV[:k]
            pos += k

    def erase(self, addr, n):
        """Erase whole 4096-byte blocks to 0xFF. One write for the counter."""
        if addr % BLOCK or n % BLOCK:
            raise FlashError(22, "erase must be 4096-aligned")
        self._check(addr, n)
        tear = self._cut_now()
        self.erases += 1
        self.erase_bytes += n
        if tear is not None:
            self._erase_raw(addr, tear_len(n, tear))
            self._die("erase")
        self._erase_raw(addr, n)

    # --- whole-chip helpers for sweeps ----------------------------------------
    def snapshot(self):
        """An opaque copy of the contents (RAM mode), for restore()."""
        if self._f is not None:
            raise ValueError("snapshot needs a RAM-backed chip")
        return dict((i, bytes(b)) for i, b in self._blocks.items())

    def restore(self, snap):
        self._blocks = dict((i, bytearray(b)) for i, b in snap.items())
        self.dead = False
        self._cut_in = 0

    def used_blocks(self):
        """Blocks that are not fully erased (RAM mode)."""
        return sorted(i for i, b in self._blocks.items() if b != _FF)

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


class FlashBlockDev:
    """Block device over a FlashChip window for vfs.VfsLfs2 (extended interface:
    readblocks/writeblocks with offset, ioctl 6 erases one block)."""

    def __init__(self, chip, start_block, n_blocks, block_size=BLOCK):
        if block_size % BLOCK and BLOCK % block_size:
            raise ValueError("block_size must divide or be a multiple of 4096")
        self.chip = chip
        self.bs = block_size
        self.base = start_block * BLOCK
        self.n = n_blocks
        self.epoch = chip.epoch
        if self.base + n_blocks * block_size > chip.size:
            raise ValueError("block device does not fit the flash")

    def _addr(self, block, off, n):
        if block < 0 or off < 0 or (block * self.bs + off + n) > self.n * self.bs:
            raise OSError(5)  # EIO, like a driver refusing out-of-range access
        return self.base + block * self.bs + off

    def stale(self):
        """True once the device rebooted: this object belongs to a dead boot.
        Its writes are dropped (its RAM no longer exists) and its reads are
        served uncounted, so that littlefs closing a zombie file from a GC
        finaliser completes quietly instead of printing errors."""
        return self.epoch != self.chip.epoch

    def readblocks(self, block, buf, off=0):
        if self.epoch != self.chip.epoch:
            self.chip.zombie_read(self.base + block * self.bs + off, buf)
            return
        self.chip.read(self._addr(block, off, len(buf)), buf)

    def writeblocks(self, block, buf, off=None):
        if self.epoch != self.chip.epoch:
            return
        if off is None:
            a = self._addr(block, 0, len(buf))
            start = a - a % BLOCK
            end = a + len(buf)
            end += (-end) % BLOCK
            self.chip.erase(start, end - start)
            self.chip.program(a, buf)
        else:
            self.chip.program(self._addr(block, off, len(buf)), buf)

    def ioctl(self, op, arg):
        if op == 4:
            return self.n
        if op == 5:
            return self.bs
        if op == 6:
            if self.epoch != self.chip.epoch:
                return 0
            a = self._addr(arg, 0, self.bs)
            self.chip.erase(a - a % BLOCK, max(self.bs, BLOCK))
            return 0
        if op in (1, 2, 3):
            return 0
        return None
