# `ykt bench reader` worker (MicroPython): one SSC tap through the firmware
# reader. live: on the PN532 simulator and the virtual clock, recording the
# bus answers to LOG; cpu: the same tap replayed from LOG without the
# simulator, timed with time.ticks_us (best of REPS).
#   reader.py live|cpu KIND RATE OPTS REPS CARD LOG   ->   @@JSON {...}
import sys, gc, json
import time as rtime
import vclock
MODE = sys.argv[1]
KIND = sys.argv[2]
RATE = int(sys.argv[3])
OPTS = int(sys.argv[4])
REPS = int(sys.argv[5])
CARD = sys.argv[6]
LOG = sys.argv[7]
if MODE == "live":
    from vhw.pn532sim import PN532Sim
    gc.collect()
    import machine
    gc.collect()
    from vhw import bus, chip
from ykt.nfc.pn532 import PN532
from ykt.nfc.reader import Reader
from ykt.cardread import CardRead


class Rec:
    # Forwards the machine calls the transports make; logs every answer to a
    # file (tag 0 None, 1 int, 2 bytes) so the replay needs no simulator.
    def __init__(self, dev, f):
        self.dev = dev
        self.f = f
    def _put(self, v):
        f = self.f
        if v is None:
            f.write(b"\x00")
        elif isinstance(v, int):
            f.write(bytes((1, (v >> 24) & 255, (v >> 16) & 255, (v >> 8) & 255, v & 255)))
        else:
            f.write(bytes((2, len(v) >> 8, len(v) & 255)))
            f.write(v)
    def readfrom_into(self, addr, buf, stop=True):
        self.dev.readfrom_into(addr, buf)
        self._put(bytes(buf))
    def writeto(self, addr, buf, stop=True):
        try:
            n = self.dev.writeto(addr, buf)
        except OSError as e:
            self._put(-e.args[0])
            raise
        self._put(n)
        return n
    def write(self, buf):
        r = self.dev.write(buf)
        self._put(r)
        return r
    def readinto(self, buf, *a):
        r = self.dev.readinto(buf, *a)
        self._put(bytes(buf))
        self._put(r)
        return r
    def any(self):
        r = self.dev.any()
        self._put(r)
        return r
    def write_readinto(self, w, buf):
        self.dev.write_readinto(w, buf)
        self._put(bytes(buf))


def load(path):
    out = []
    with open(path, "rb") as f:
        d = f.read()
    i = 0
    while i < len(d):
        t = d[i]
        if t == 0:
            out.append(None)
            i += 1
        elif t == 1:
            v = (d[i + 1] << 24) | (d[i + 2] << 16) | (d[i + 3] << 8) | d[i + 4]
            if v & 0x80000000:
                v -= 1 << 32
            out.append(v)
            i += 5
        else:
            n = (d[i + 1] << 8) | d[i + 2]
            out.append(d[i + 3:i + 3 + n])
            i += 3 + n
    return out


class Play:
    # Answers from the recording: no simulator, (almost) no work.
    def __init__(self, log):
        self.log = log
        self.i = 0
    def readfrom_into(self, addr, buf, stop=True):
        buf[:] = self.log[self.i]
        self.i += 1
    def writeto(self, addr, buf, stop=True):
        r = self.log[self.i]
        self.i += 1
        if r < 0:
            raise OSError(-r)
        return r
    def write(self, buf):
        r = self.log[self.i]
        self.i += 1
        return r
    def readinto(self, buf, *a):
        buf[:] = self.log[self.i]
        r = self.log[self.i + 1]
        self.i += 2
        return r
    def any(self):
        r = self.log[self.i]
        self.i += 1
        return r
    def write_readinto(self, w, buf):
        buf[:] = self.log[self.i]
        self.i += 1
    def value(self, v=None):
        return 1


def transport(dev, cs):
    if KIND == "i2c":
        from ykt.nfc.pn532_i2c import PN532_I2C
        return PN532_I2C(dev)
    if KIND == "spi":
        from ykt.nfc.pn532_spi import PN532_SPI
        return PN532_SPI(dev, cs)
    from ykt.nfc.pn532_hsu import PN532_HSU
    return PN532_HSU(dev)


def script(r, cr, sim, tap):
    # Bring-up, a warm-up tap and departure, then the measured tap.
    r.start()
    r.poll(cr)
    if sim:
        sim.field.present(CARD)
    r.poll(cr)
    if sim:
        sim.field.clear()
    for _ in range(3):
        r.poll(cr)
    return tap(r, cr, sim)


out = {}


def live_tap(r, cr, sim):
    sim.field.present(CARD)
    pn = r.pn
    c0, b0, v0 = pn.commands, pn.t.bytes, vclock.now_us()
    ev = r.poll(cr)
    out["virtual_us"] = vclock.now_us() - v0
    out["commands"] = pn.commands - c0
    out["link_bytes"] = pn.t.bytes - b0
    out["event"] = ev
    out["error"] = cr.error
    out["region"] = cr.region
    out["birth"] = cr.birth_date
    sim.field.clear()
    r.poll(cr)
    r.poll(cr)
    c0, b0, v0 = pn.commands, pn.t.bytes, vclock.now_us()
    r.poll(cr)
    out["idle_us"] = vclock.now_us() - v0
    out["idle_commands"] = pn.commands - c0
    out["idle_bytes"] = pn.t.bytes - b0


cpu = []
idle = []


def cpu_tap(r, cr, sim):
    gc.collect()
    t0 = rtime.ticks_us()
    r.poll(cr)
    cpu.append(rtime.ticks_diff(rtime.ticks_us(), t0))
    assert cr.error == 0 and cr.region != 0
    r.poll(cr)
    r.poll(cr)
    gc.collect()
    t0 = rtime.ticks_us()
    r.poll(cr)
    idle.append(rtime.ticks_diff(rtime.ticks_us(), t0))


vclock.reset()
if MODE == "live":
    bus.reset()
    chip.configure()
    sim = PN532Sim()
    cs = None
    if KIND == "i2c":
        sim.attach_i2c(0, freq=0)
        dev = machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21), freq=RATE)
    elif KIND == "spi":
        sim.attach_spi(1, 5, baud=0)
        cs = machine.Pin(5, machine.Pin.OUT, value=1)
        dev = machine.SPI(1, baudrate=RATE, polarity=0, phase=0, firstbit=machine.SPI.MSB,
                          sck=machine.Pin(18), mosi=machine.Pin(23), miso=machine.Pin(19))
    else:
        dev = machine.UART(2, RATE, tx=17, rx=16, timeout=0)
        sim.attach_hsu(2, bus.uart_port(2), baud=RATE)
    with open(LOG, "wb") as f:
        script(Reader(PN532(transport(Rec(dev, f), cs)), opts=OPTS), CardRead(), sim, live_tap)
else:
    class Clock:
        # The device's clock functions are C builtins; the virtual clock's are
        # Python and would be counted as firmware CPU. Waits end on the
        # replayed ready answers, so sleeping is not needed here.
        ticks_ms = rtime.ticks_ms
        ticks_diff = rtime.ticks_diff
        ticks_add = rtime.ticks_add

        @staticmethod
        def sleep_ms(ms):
            pass

    log = load(LOG)
    gc.collect()
    for _ in range(REPS):
        p = Play(log)
        script(Reader(PN532(transport(p, p)), clock=Clock, opts=OPTS), CardRead(), None, cpu_tap)
    cpu.sort()
    idle.sort()
    # best of REPS: the machine is shared, the minimum is the code's own cost
    out["cpu_unix_us"] = cpu[0]
    out["cpu_unix_us_median"] = cpu[len(cpu) // 2]
    out["idle_cpu_unix_us"] = idle[0]
gc.collect()
out["mem_free"] = gc.mem_free()
print("@@JSON " + json.dumps(out))
