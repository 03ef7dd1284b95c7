# HSU (UART) host link of the simulated PN532 (UM0701-02 6.2.3), loaded on first
# use. 115200 8N1 at power-up. Asleep (after power-up or PowerDown) the first
# byte only wakes the chip; bytes arriving within hsu_wake_us of it are lost,
# which is why hosts send 55 55 00 00 00 ... before a frame.
import vclock

_WAKE_HSU = 0x10


def uart_rx(sim, buf):
    n = len(buf)
    sim._count("bytes_in", n)
    if sim._baud_mismatch():
        sim._count("hsu_lost", n)  # sent at another speed: framing errors only
        return
    now = vclock.now_us()
    bt = 100000000 // sim.hsu_baud  # tenths of a microsecond per 10-bit character
    for i in range(n):
        t = max(now - ((n - 1 - i) * bt) // 10, sim._hsu_t + bt // 10)
        sim._hsu_t = t
        if sim._booting() or sim._silent:
            continue
        if sim._asleep:
            if not sim._sam or sim._wake_mask & _WAKE_HSU:
                sim._asleep = False
                sim._wake_until = t + sim.timing["hsu_wake_us"]
            sim._count("hsu_lost")
            continue
        if sim._wake_until is not None:
            if t < sim._wake_until:
                sim._count("hsu_lost")
                continue
            sim._wake_until = None
        sim._rx_bytes(buf[i:i + 1], t)
