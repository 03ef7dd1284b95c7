# Part of the host's fake `machine` module (see machine.py): I2C, loaded on first
# use. Portable.
import vclock
import machine as _m
from vhw import bus as _bus
from vhw import chip as _chip
from machine import _gpio


# --- I2C ---------------------------------------------------------------------


class _I2CBase:
    def _link(self, nbytes):
        _bus.count("i2c_bytes", nbytes)
        vclock.advance_us((nbytes * 9 * 1000000) // self._freq)

    def _dev(self, addr):
        self._link(1)  # the address byte, ACKed or not
        d = _bus.i2c_device(self._bus, addr)
        if d is None:
            raise OSError(19)
        return d

    def scan(self):
        out = []
        for a in range(0x08, 0x78):
            self._link(1)
            if _bus.i2c_device(self._bus, a) is not None:
                out.append(a)
        return out

    def writeto(self, addr, buf, stop=True):
        d = self._dev(addr)
        self._link(len(buf))
        if len(buf):
            d.i2c_write(buf)
        return len(buf)

    def writevto(self, addr, vector, stop=True):
        data = b"".join(bytes(v) for v in vector)
        return self.writeto(addr, data, stop)

    def readfrom_into(self, addr, buf, stop=True):
        d = self._dev(addr)
        n = len(buf)
        data = d.i2c_read(n)
        self._link(n)
        k = min(n, len(data))
        mv = memoryview(buf)
        mv[:k] = memoryview(data)[:k]
        for i in range(k, n):
            buf[i] = 0xFF  # nobody drives SDA: the pull-up reads 1s
        return None

    def readfrom(self, addr, nbytes, stop=True):
        b = bytearray(nbytes)
        self.readfrom_into(addr, b, stop)
        return bytes(b)

    def _memaddr(self, memaddr, addrsize):
        n = addrsize // 8
        return bytes((memaddr >> (8 * (n - 1 - i))) & 0xFF for i in range(n))

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        self.writeto(addr, self._memaddr(memaddr, addrsize), False)
        self.readfrom_into(addr, buf)

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        b = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, b, addrsize=addrsize)
        return bytes(b)

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        self.writeto(addr, self._memaddr(memaddr, addrsize) + bytes(buf))


class I2C(_I2CBase):
    def __init__(self, id, *, scl=None, sda=None, freq=400000, timeout=50000):
        if not (0 <= id < _chip.get().n_i2c):
            raise ValueError("I2C(%d) doesn't exist" % id)
        self._bus = id
        self.init(scl=scl, sda=sda, freq=freq, timeout=timeout)

    def init(self, *, scl=None, sda=None, freq=400000, timeout=50000):
        self._scl = _gpio(scl) if scl is not None else None
        self._sda = _gpio(sda) if sda is not None else None
        if freq <= 0:
            raise ValueError("freq")
        self._freq = freq
        self._timeout = timeout

    def __repr__(self):
        return "I2C(%d, scl=%s, sda=%s, freq=%d)" % (self._bus, self._scl, self._sda, self._freq)

    # the hardware I2C has no primitive operations
    def start(self):
        raise OSError(95)

    def stop(self):
        raise OSError(95)

    def readinto(self, buf, nack=True):
        raise OSError(95)

    def write(self, buf):
        raise OSError(95)
