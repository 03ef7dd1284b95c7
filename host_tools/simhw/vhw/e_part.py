# Part of the host's fake `esp32` module (see esp32.py): flash partitions and OTA. Portable.
from vhw import chip as _chip
from esp32 import _err

_NATIVE = 4096


# --- Partition -----------------------------------------------------------------


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=4096):
        c = _chip.get()
        if type(id) is int:
            if id == 0:
                label = c.ota_boot
            elif id == 1:
                label = c.ota_running
            else:
                raise ValueError()
            p = c.partition(label)
        else:
            p = None
            for ty in (0, 1):  # the port looks for an app first, then data
                for q in c.partitions:
                    if q[0] == id and q[1] == ty:
                        p = q
                        break
                if p is not None:
                    break
        if p is None:
            raise OSError(2)  # ENOENT
        self._p = p
        self._bs = block_size
        self._epoch = c.flash.epoch  # a Partition belongs to one boot (see vhw/flash.py)

    @staticmethod
    def find(type=0, subtype=0xFF, label=None, block_size=4096):
        out = []
        for q in _chip.get().partitions:
            if q[1] == type and (subtype == 0xFF or q[2] == subtype) and (label is None or q[0] == label):
                out.append(Partition(q[0], block_size))
        return out

    def __repr__(self):
        p = self._p
        return "<Partition type=%d, subtype=%d, address=%d, size=%d, label=%s, encrypted=0>" % (
            p[1], p[2], p[3], p[4], p[0])

    def __eq__(self, other):
        return isinstance(other, Partition) and other._p[0] == self._p[0]

    def __hash__(self):
        return hash(self._p[0])

    def info(self):
        p = self._p
        return (p[1], p[2], p[3], p[4], p[0], False)

    def _range(self, off, n):
        size = self._p[4]
        if off > size:
            _err(0x102)
        if off + n > size:
            _err(0x104)

    def _erase(self, off, n):
        if n % _NATIVE:
            _err(0x104)
        if off % _NATIVE:
            _err(0x102)
        self._range(off, n)
        _chip.get().flash.erase(self._p[3] + off, n)

    def _write(self, off, buf):
        self._range(off, len(buf))
        _chip.get().flash.program(self._p[3] + off, buf)

    def _stale(self):
        return self._epoch != _chip.get().flash.epoch

    def readblocks(self, block_num, buf, offset=0):
        if self._stale():
            return
        off = block_num * self._bs + offset
        self._range(off, len(buf))
        _chip.get().flash.read(self._p[3] + off, buf)

    def writeblocks(self, block_num, buf, offset=None):
        if self._stale():
            return
        off = block_num * self._bs
        if offset is None:
            # a simple write: erase the blocks first, like the port
            if self._bs >= _NATIVE:
                self._erase(off, len(buf))
            else:
                self._erase_small(off, len(buf))
        else:
            off += offset  # extended write: the caller erased already
        self._write(off, buf)

    def _erase_small(self, off, n):
        # block_size < 4096: read-modify-erase each 4096-byte sector
        fl = _chip.get().flash
        base = self._p[3]
        addr = off - off % _NATIVE
        o = off % _NATIVE
        top = off + n
        cache = bytearray(_NATIVE)
        while addr < top:
            keep_tail = top < addr + _NATIVE
            if o or keep_tail:
                self._range(addr, _NATIVE)
                fl.read(base + addr, cache)
            self._erase(addr, _NATIVE)
            if o:
                self._write(addr, memoryview(cache)[:o])
            if keep_tail:
                self._write(top, memoryview(cache)[top - addr:])
            o = 0
            addr += _NATIVE

    def ioctl(self, cmd, arg):
        if cmd in (1, 2, 3):
            return 0
        if cmd == 4:
            return self._p[4] // self._bs
        if cmd == 5:
            return self._bs
        if cmd == 6:
            if self._stale():
                return 0
            self._erase(arg * self._bs, self._bs)
            return 0
        return None

    def set_boot(self):
        c = _chip.get()
        p = self._p
        if p[1] != 0:
            _err(0x102)
        magic = bytearray(1)
        c.flash.read(p[3], magic)
        if magic[0] != 0xE9:  # not an ESP app image: esp_image_verify fails
            _err(0x1503)
        c.ota_boot = p[0]
        c.ota_state[p[0]] = "new"

    def get_next_update(self):
        apps = [q for q in _chip.get().partitions if q[1] == 0 and 0x10 <= q[2] < 0x20]
        if not apps:
            raise OSError(2)
        for i in range(len(apps)):
            if apps[i][0] == self._p[0]:
                return Partition(apps[(i + 1) % len(apps)][0], self._bs)
        return Partition(apps[0][0], self._bs)

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        c = _chip.get()
        if not c.rollback:
            _err(0x105)
        c.ota_state[c.ota_running] = "valid"
