# A NOR-flash block device for vfs.VfsLfs2 with write counting, a write log and
# power-cut injection, used by the journal's power-cut sweep and benchmark.
# Portable (MicroPython unix port and CPython). Flash semantics: erase sets a
# block to 0xFF, programming can only clear bits (data &= buf), so littlefs
# bugs that program without erasing would show as corruption.
#
# A "write" is one program (writeblocks with offset) or one erase (ioctl 6):
# the operations a power cut can interrupt. Tears of the interrupted write:
#   none    nothing of it reached the flash
#   start   the first quarter of its bytes
#   middle  the first half
#   end     all but the last byte
import vclock

TEARS = ("none", "start", "middle", "end")
_OP_PROG = 0
_OP_ERASE = 1


from vhw.flash import tear_len  # noqa: E402  (one definition of what a torn write keeps)


def apply_op(data, bsize, op, tear=None):
    """Apply one logged write (kind, block, off, payload) to an image, whole or torn."""
    kind, block, off, buf = op
    base = block * bsize + off
    if kind == _OP_ERASE:
        n = bsize if tear is None else tear_len(bsize, tear)
        data[base:base + n] = b"\xff" * n
    else:
        n = len(buf) if tear is None else tear_len(len(buf), tear)
        if data[base:base + n] == b"\xff" * n:  # erased: programming is a copy
            data[base:base + n] = buf[:n]
        else:
            for i in range(n):
                data[base + i] &= buf[i]


class LfsBlockDev:
    def __init__(self, blocks, block_size=4096, data=None):
        self.bsize = block_size
        self.blocks = blocks
        self.data = bytearray(b"\xff" * (blocks * block_size)) if data is None else data
        self.writes = 0          # program + erase operations
        self.progs = 0
        self.erases = 0
        self.prog_bytes = 0
        self.reads = 0
        self.erase_count = None  # per-block erase counters when enabled
        self.log = None          # list of (kind, block, off, bytes) when recording
        self._cut_at = -1
        self._tear = "none"
        self.dead = False        # after a cut nothing reaches the flash until revive()

    def count_erases_per_block(self):
        self.erase_count = [0] * self.blocks

    def cut_after_writes(self, n, tear="none"):
        """Power fails during write n+1: writes 1..n land, write n+1 lands torn
        (`tear`), and DeviceReset("power") is raised from inside littlefs."""
        if tear not in TEARS:
            raise ValueError("tear")
        self._cut_at = self.writes + n
        self._tear = tear

    def disarm(self):
        self._cut_at = -1

    def revive(self):
        """Power is back: the same chip accepts writes again."""
        self.dead = False
        self._cut_at = -1

    def _write(self, op):
        if self.dead:  # finalisers and cleanups after the cut: nothing lands
            return
        if self._cut_at >= 0 and self.writes >= self._cut_at:
            apply_op(self.data, self.bsize, op, self._tear)
            self._cut_at = -1
            self.dead = True
            raise vclock.DeviceReset("power", "cut during write %d (%s)" % (self.writes + 1, self._tear))
        self.writes += 1
        if self.log is not None:
            self.log.append(op)
        apply_op(self.data, self.bsize, op)

    # --- the block protocol vfs.VfsLfs2 calls -----------------------------

    def readblocks(self, block, buf, off=0):
        if self.dead:
            return
        self.reads += 1
        base = block * self.bsize + off
        buf[:] = memoryview(self.data)[base:base + len(buf)]

    def writeblocks(self, block, buf, off=None):
        if self.dead:  # no allocation: this may run in a finaliser with the heap locked
            return
        if off is None:  # simple interface (mkfs on some ports): erase then program
            for i in range(len(buf) // self.bsize):
                self.ioctl(6, block + i)
            off = 0
        self.progs += 1
        self.prog_bytes += len(buf)
        self._write((_OP_PROG, block, off, bytes(buf)))

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.bsize
        if op == 6:
            if self.dead:
                return 0
            self.erases += 1
            if self.erase_count is not None:
                self.erase_count[arg] += 1
            self._write((_OP_ERASE, arg, 0, b""))
            return 0
        return 0
