# Part of the host's fake `machine` module (see machine.py): SPI, loaded on first
# use. Portable.
import vclock
import machine as _m
from vhw import bus as _bus
from vhw import chip as _chip
from machine import _gpio


# --- SPI ---------------------------------------------------------------------



def _rev8(b):
    r = 0
    for _ in range(8):
        r = (r << 1) | (b & 1)
        b >>= 1
    return r


_REV = bytes(_rev8(i) for i in range(256))  # bit-reversal table for LSB-first


class _SPIBase:
    MSB = 0
    LSB = 1

    def _xfer(self, out_mv, in_buf):
        """Clock out_mv (bytes as the firmware sees them), fill in_buf if given."""
        n = len(out_mv)
        _bus.count("spi_bytes", n)
        vclock.advance_us((n * 8 * 1000000) // self._baud)
        sel = []
        for cs, dev in _bus.spi_devices(self._bus):
            p = _m._pins.get(cs)
            if p is not None and p._mode and p._mode & 2 and p._out == 0:
                sel.append(dev)
        lsb = self._firstbit == 1
        wire = bytes(_REV[b] for b in out_mv) if lsb else bytes(out_mv)
        res = None
        for dev in sel:
            r = dev.spi_transfer(wire)
            if res is None:
                res = bytearray(r)
            else:
                for i in range(min(len(res), len(r))):
                    res[i] &= r[i]  # two drivers on MISO: a 0 wins
        if in_buf is None:
            return
        for i in range(len(in_buf)):
            w = res[i] if res is not None and i < len(res) else 0xFF
            in_buf[i] = _REV[w] if lsb else w

    def read(self, nbytes, write=0x00):
        b = bytearray(nbytes)
        self._xfer(bytes([write]) * nbytes, b)
        return bytes(b)

    def readinto(self, buf, write=0x00):
        self._xfer(bytes([write]) * len(buf), buf)

    def write(self, buf):
        self._xfer(memoryview(buf), None)

    def write_readinto(self, write_buf, read_buf):
        if len(write_buf) != len(read_buf):
            raise ValueError("buffers must be the same length")
        self._xfer(bytes(write_buf), read_buf)

    def deinit(self):
        pass

    def _cfg(self, baudrate, polarity, phase, bits, firstbit):
        if baudrate is not None:
            if baudrate <= 0:
                raise ValueError("baudrate")
            self._baud = baudrate
        if polarity is not None:
            self._pol = polarity
        if phase is not None:
            self._pha = phase
        if bits is not None:
            self._bits = bits
        if firstbit is not None:
            if firstbit not in (0, 1):
                raise ValueError("firstbit must be MSB or LSB")
            self._firstbit = firstbit


class SPI(_SPIBase):
    def __init__(self, id, baudrate=500000, *, polarity=0, phase=0, bits=8,
                 firstbit=0, sck=None, mosi=None, miso=None):
        if id not in _chip.get().spi_ids:
            raise ValueError("SPI(%s) doesn't exist" % (id,))
        self._bus = id
        self._baud = 500000
        self._pol = self._pha = 0
        self._bits = 8
        self._firstbit = 0
        self.init(baudrate, polarity=polarity, phase=phase, bits=bits,
                  firstbit=firstbit, sck=sck, mosi=mosi, miso=miso)

    def init(self, baudrate=None, *, polarity=None, phase=None, bits=None,
             firstbit=None, sck=None, mosi=None, miso=None):
        for p in (sck, mosi, miso):
            if p is not None and p != -1:
                _gpio(p)
        self._cfg(baudrate, polarity, phase, bits, firstbit)

    def __repr__(self):
        return "SPI(id=%d, baudrate=%d, polarity=%d, phase=%d, bits=%d, firstbit=%d)" % (
            self._bus, self._baud, self._pol, self._pha, self._bits, self._firstbit)
