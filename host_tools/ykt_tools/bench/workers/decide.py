# `ykt bench decide` worker (MicroPython): CPU per tap from identity to
# feedback on each board kind, timed with time.ticks_us.
#   decide.py TABLES_DIR TAPS   ->   @@JSON {board: {...}, "heap_free_after": n}
import sys, gc, time
from ykt import taprec as T, cardread as CR
from ykt.rules import catalog as C
from ykt.rules import fares as F
from ykt.rules import recent
from ykt.rules import decide
from ykt.ui import feedback
from ykt.ui import display
from ykt import outcome as O
from ykt.sec.token import card_token
D = sys.argv[1]   # the compiled tables
N = int(sys.argv[2])   # taps per board kind

class Pin:  # as cheap as the C machine.Pin: one attribute store
    __slots__ = ("v",)
    def __init__(self):
        self.v = 0
    def value(self, v=None):
        if v is not None:
            self.v = v
        return self.v

class PWM:
    def __init__(self):
        self.f = 0
        self.d = 0
    def freq(self, f):
        self.f = f
    def duty_u16(self, d):
        self.d = d

class NullI2C:  # bytes are counted; their wire time is modeled, not measured
    def __init__(self):
        self.n = 0
    def writeto(self, a, b):
        self.n += len(b)

class Deny:
    def __init__(self):
        self.version = 42
        self.d = {}
    def lookup(self, tok, off=0, foreign=False):
        return self.d.get(bytes(tok[off:off + 8]), 0)

KEY = b"bench-key-not-for-devices-0123456"
BOARDS = (("bus_validator", 301, "bus.bin", False, 0),
          ("ferry_validator", 820, "ferry.bin", True, 1),
          ("turnstile", 5101, "scenic.bin", True, 1))
cat = C.load(D + "/catalog.bin")
glyphs = display.load_glyphs()
ents = F.load(D + "/ents.bin", F.Entitlements)
out = {}
NC = 16
for board, entry, fname, has_disp, stop in BOARDS:
    d = rc = fb = disp = fares = cards = toks = full = dec = None  # drop the previous board first
    gc.collect()
    prof = C.profile_from({"device": "BENCH", "entry": entry, "stop": stop, "board": board,
                           "direction": 3 if board == "turnstile" else 1})
    fares = F.load(D + "/" + fname)
    cards = []
    toks = []
    for i in range(NC):
        cr = CR.CardRead()
        cr.kind = CR.KIND_SSC
        cid = "450100%010d" % i
        for k in range(16):
            cr.card_id[k] = ord(cid[k])
        cr.region = 450100
        cr.issue_date = 20200101
        cr.expiry_date = 20301231
        cr.birth_date = (19500101, 19800101, 19620101, 0)[i % 4]
        cards.append(cr)
        toks.append(card_token(KEY, cr.card_id))
    deny = Deny()
    deny.d[toks[7]] = 1
    rc = recent.Recent(512)
    d = decide.Decider(prof, cat, fares, ents, deny, rc, KEY)
    pins = {"LED_R": Pin(), "LED_G": Pin(), "LED_B": Pin(), "RELAY": Pin(), "ASSIST": Pin()}
    i2c = NullI2C()
    disp = display.Display(display.SSD1306_I2C(128, 64, i2c), glyphs) if has_disp else None
    fb = feedback.Feedback(pins, PWM(), disp, prof.feedback)
    tap = T.Tap()
    now = 1795000000
    full = [0] * N  # preallocated: the bench must not fragment the heap it measures
    dec = [0] * N
    kinds = {}
    for r in range(N):
        cr = cards[r % NC]
        now += 7
        ms = (now % 1000000) * 1000
        t0 = time.ticks_us()
        k = d.decide(cr, now, True, tap)
        t1 = time.ticks_us()
        fb.show(k & O.KIND_MASK, tap, k >> O.KIND_BITS, ms)
        fb.step(ms)
        t2 = time.ticks_us()
        dec[r] = time.ticks_diff(t1, t0)
        full[r] = time.ticks_diff(t2, t0)
        m = O.key(k >> O.KIND_BITS)
        kinds[m] = kinds.get(m, 0) + 1
    # heap bytes allocated per decision / per full tap in steady state
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    for r in range(64):
        now += 7
        d.decide(cards[r % NC], now, True, tap)
    a1 = gc.mem_alloc()
    for r in range(64):
        now += 7
        ms = (now % 1000000) * 1000
        k = d.decide(cards[r % NC], now, True, tap)
        fb.show(k & O.KIND_MASK, tap, k >> O.KIND_BITS, ms)
        fb.step(ms)
    a2 = gc.mem_alloc()
    gc.enable()
    full.sort()
    dec.sort()
    out[board] = {"full_median_us": full[N // 2], "full_p95_us": full[N * 95 // 100],
                  "decide_median_us": dec[N // 2], "alloc_bytes_per_decide": (a1 - a0) // 64,
                  "alloc_bytes_per_tap": (a2 - a1) // 64, "texts": kinds,
                  "display_bytes_per_refresh": (i2c.n // max(1, disp.refreshes)) if disp else 0}
gc.collect()
out["heap_free_after"] = gc.mem_free()
print("@@JSON " + __import__("json").dumps(out))
