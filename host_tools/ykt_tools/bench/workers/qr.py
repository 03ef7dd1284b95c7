# `ykt bench qr` worker (MicroPython): QR token verify, and scanner line ->
# feedback on a turnstile, timed with time.ticks_us.
#   qr.py DIR NOW JOURNAL_DIR   ->   @@JSON {...}
# DIR holds the compiled tables, texts.txt (one token per line) and keys.bin.
import sys, gc, time
from ykt import taprec as T, cardread as CR
from ykt.rules import catalog as C
from ykt.rules import fares as F
from ykt.rules import recent
from ykt.rules import decide
from ykt.ui import feedback
from ykt.ui import display
from ykt import outcome as O
from ykt.sec import sigverify
from ykt.qr import qrtoken
from ykt.qr import qrscan
from ykt.journal import Journal
D = sys.argv[1]
NOW = int(sys.argv[2])
JDIR = sys.argv[3]       # the journal's directory (in RAM)
TEXTS = [l.strip().encode() for l in open(D + "/texts.txt")]
ring = sigverify.parse_keys(open(D + "/keys.bin", "rb").read())

class Clock:
    uptime_s = 1 << 20
    def now(self):
        return NOW
    def trusted(self):
        return True

class Pin:
    __slots__ = ("v",)
    def __init__(self):
        self.v = 0
    def value(self, v=None):
        if v is not None:
            self.v = v
        return self.v

class PWM:
    def freq(self, f):
        pass
    def duty_u16(self, d):
        pass

class NullI2C:
    def writeto(self, a, b):
        pass

class UART:
    def __init__(self):
        self.b = b""
        self.p = 0
    def feed(self, b):
        self.b = b
        self.p = 0
    def any(self):
        return len(self.b) - self.p
    def readinto(self, buf, n):
        n = min(n, len(self.b) - self.p)
        for i in range(n):
            buf[i] = self.b[self.p + i]
        self.p += n
        return n

N = len(TEXTS) // 2
out = {}
# 1. verify alone
v = qrtoken.Verifier(ring, Clock())
cr = CR.CardRead()
ver = []
for i in range(N):
    t = TEXTS[i]
    t0 = time.ticks_us()
    r = v.verify_text(t, len(t), cr)
    ver.append(time.ticks_diff(time.ticks_us(), t0))
    assert r == 0, r
# 2. line -> feedback on a turnstile
prof = C.profile_from({"device": "BENCH", "entry": 5101, "stop": 1, "board": "turnstile", "direction": 3})
d = decide.Decider(prof, C.load(D + "/catalog.bin"), F.load(D + "/scenic.bin"), None, None,
                   recent.Recent(256), b"bench-key-not-for-devices-0123456")
disp = display.Display(display.SSD1306_I2C(128, 64, NullI2C()), display.load_glyphs())
fb = feedback.Feedback({"LED_R": Pin(), "LED_G": Pin(), "LED_B": Pin(), "RELAY": Pin(), "ASSIST": Pin()},
                       PWM(), disp, prof.feedback)
j = Journal(JDIR, b"0123456789abcdef")
j.open()
u = UART()
qr = qrscan.QRScanner(u, qrtoken.Verifier(ring, Clock()))
tap = T.Tap()
full = []
parts = ([], [], [], [])
kinds = {}
for i in range(N, 2 * N):
    u.feed(TEXTS[i] + b"\r\n")
    gc.collect()
    t0 = time.ticks_us()
    got = False
    while not got:
        got = qr.poll(cr)
    t1 = time.ticks_us()
    k = d.decide(cr, NOW, True, tap)
    t2 = time.ticks_us()
    j.append(tap)
    t3 = time.ticks_us()
    fb.show(k & O.KIND_MASK, tap, k >> O.KIND_BITS, 1000)
    t4 = time.ticks_us()
    full.append(time.ticks_diff(t4, t0))
    parts[0].append(time.ticks_diff(t1, t0))
    parts[1].append(time.ticks_diff(t2, t1))
    parts[2].append(time.ticks_diff(t3, t2))
    parts[3].append(time.ticks_diff(t4, t3))
    m = O.key(k >> O.KIND_BITS)
    kinds[m] = kinds.get(m, 0) + 1
ver.sort()
full.sort()
out["verify_median_us"] = ver[len(ver) // 2]
out["verify_p95_us"] = ver[len(ver) * 95 // 100]
out["line_median_us"] = full[len(full) // 2]
out["line_p95_us"] = full[len(full) * 95 // 100]
out["texts"] = kinds
for name, l in zip(("poll_verify", "decide", "journal", "feedback"), parts):
    l.sort()
    out["part_" + name] = l[len(l) // 2]
gc.collect()
out["heap_free_after"] = gc.mem_free()
print("@@JSON " + __import__("json").dumps(out))
