# SPI host link of the simulated PN532 (UM0701-02 6.2.5), loaded on first use so
# boards on I2C or HSU do not carry it. The first byte of a CS-low transaction
# selects status read (02), data write (01) or data read (03); bytes arrive in
# wire order and the PN532 is LSB first, so each byte is bit-reversed both ways.
import vclock

_WAKE_SPI = 0x20
_REV = bytes(sum(((i >> k) & 1) << (7 - k) for k in range(8)) for i in range(256))


def spi_select(sim, active):
    if active:
        sim._spi = "prefix"
        sim._spi_frame = None
        sim._spi_pos = 0
        if sim._asleep and (not sim._sam or sim._wake_mask & _WAKE_SPI):
            sim._wake()
    else:
        fr = sim._spi_frame
        if fr is not None and sim._spi_pos and sim._out and sim._out[0] is fr:
            sim._out.pop(0)
            sim._taken(fr)
        sim._spi = None
        sim._spi_frame = None

def spi_transfer(sim, wire):
    n = len(wire)
    out = bytearray(n)
    wr = bytearray()
    dead = sim._booting() or sim._silent or (sim._asleep and sim._sam)
    for i in range(n):
        b = _REV[wire[i]]
        st = sim._spi
        o = 0
        if dead or st is None:
            pass
        elif st == "prefix":
            if b == 0x02:
                sim._spi = "status"
            elif b == 0x01:
                sim._spi = "write"
            elif b == 0x03:
                sim._spi = "read"
                sim._spi_frame = sim._out[0] if sim._out else None
                sim._spi_pos = 0
            else:
                sim._spi = "ignore"
        elif st == "status":
            o = 1 if sim._out else 0
        elif st == "write":
            wr.append(b)
        elif st == "read":
            fr = sim._spi_frame
            if fr is not None and sim._spi_pos < len(fr):
                o = fr[sim._spi_pos]
            sim._spi_pos += 1
        out[i] = _REV[o]
    sim._count("bytes_in", len(wr))
    sim._count("bytes_out", n - len(wr))
    sim._link(n, sim.spi_baud, 8)
    if wr:
        sim._rx_bytes(wr, vclock.now_us())
    return bytes(out)
