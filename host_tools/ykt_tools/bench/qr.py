"""e-SSC QR: token verify time and scanner line -> feedback on a turnstile.

Mints real tokens (RSA-2048 QR key, cryptography) on the host, then runs the
firmware under the MicroPython unix port (`micropython -X heapsize=256K`),
timed there with the real time.ticks_us; ESP32-equivalent = x45 (design.md).
  verify_*: base45 decode + parse + RSA PKCS#1 v1.5 verify + window + replay
  line_to_feedback_*: the whole line through QRScanner.poll (every chunk, as
    if it all arrived at once: conservative) + decide + journal append
    (in a RAM directory: CPU only; flash time is bench_journal's) + feedback.show, plus the loop's idle
    period (20 ms) the terminator may wait before the next poll.
The line's wire time at 9600 baud is reported apart (it precedes the line end)."""
import json
import os
import subprocess
import tempfile

from ykt_tools import ROOT, FIRMWARE
from ykt_tools.build import fares as FC

ESP32_FACTOR = 45
BUDGET_MS = 300.0
IDLE_MS = 20     # firmware/ykt/app.py _IDLE_MS: worst wait before the poll that sees the terminator

_FW = r'''
import sys, gc, time
sys.path[:0] = [%(fw)r]
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
import binascii
D = %(dir)r
NOW = %(now)d
TEXTS = [l.strip().encode() for l in open(D + "/texts.txt")]
ring = sigverify.parse_keys(binascii.unhexlify(%(keys)r))

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
j = Journal(%(jdir)r, b"0123456789abcdef")
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
print("@@BENCH " + __import__("json").dumps(out))
'''


def add_args(p):
    p.add_argument("--tokens", type=int, default=40, help="tokens per measurement (default 40)")
    p.add_argument("--bits", type=int, default=2048, choices=(2048, 3072), help="QR key size")
    p.add_argument("--heap", default="256K")


def run(args):
    from ykt_tools.build import qr

    now = 1795700000
    key = qr.new_key(args.bits)
    texts = [qr.to_text(qr.mint(key, os.urandom(8), region=450100, valid_s=30, iat=now - 5))
             for _ in range(2 * args.tokens)]
    keys = qr.keys_payload([key]).hex()
    mp = os.path.join(ROOT, ".venv", "bin", "micropython")
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(ROOT, "data", "fares", "scenic_guilin_elephant.txt")) as f:
            data = FC.compile_fares(f.read(), "scenic")
        with open(os.path.join(d, "scenic.bin"), "wb") as f:
            f.write(data)
        with open(os.path.join(ROOT, "data", "catalog.json")) as f:
            cat = FC.compile_catalog(f.read())
        with open(os.path.join(d, "catalog.bin"), "wb") as f:
            f.write(cat)
        # the journal in RAM (/dev/shm when there is one): its CPU, not the host disk's fsync;
        # flash time on the device is bench_journal's figure
        jroot = tempfile.mkdtemp(dir="/dev/shm") if os.path.isdir("/dev/shm") else d
        jdir = os.path.join(jroot, "j")
        os.mkdir(jdir)
        with open(os.path.join(d, "texts.txt"), "w") as f:
            f.write("\n".join(texts) + "\n")
        script = os.path.join(d, "bench.py")
        with open(script, "w") as f:
            f.write(_FW % {"fw": FIRMWARE, "dir": d, "now": now, "keys": keys, "jdir": jdir})
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        p = subprocess.run([mp, "-X", "heapsize=" + args.heap, script], capture_output=True, text=True,
                           timeout=600, cwd=ROOT, env=env)
        if jroot != d:
            import shutil
            shutil.rmtree(jroot, ignore_errors=True)
    res = None
    for line in p.stdout.splitlines():
        if line.startswith("@@BENCH "):
            res = json.loads(line[8:])
    if res is None:
        raise RuntimeError("micropython bench failed (rc=%s): %s" % (p.returncode, p.stderr[-2000:] or p.stdout[-2000:]))
    tok = qr.from_text(texts[0])
    info = qr.qr_info(texts[0])
    line_ms = res["line_median_us"] * ESP32_FACTOR / 1000.0 + IDLE_MS
    return {
        "verify_unix_us": res["verify_median_us"],
        "verify_p95_unix_us": res["verify_p95_us"],
        "verify_esp32_ms": round(res["verify_median_us"] * ESP32_FACTOR / 1000.0, 1),
        "token_bytes": len(tok),
        "text_chars": len(texts[0]),
        "qr_version_m": info["qr_version"],
        "qr_modules": info["qr_modules"],
        "qr_version_l": qr.qr_info(texts[0], "l")["qr_version"],
        "line_wire_9600_ms": round((len(texts[0]) + 2) * 10 * 1000.0 / 9600, 1),
        "line_to_feedback_unix_us": res["line_median_us"],
        "line_to_feedback_p95_unix_us": res["line_p95_us"],
        "line_to_feedback_esp32_ms": round(line_ms, 1),
        "budget_esp32_ms": BUDGET_MS,
        "within_budget": line_ms <= BUDGET_MS,
        "rsa_bits": args.bits,
        "tokens": args.tokens,
        "heap": args.heap,
        "heap_free_after": res.get("heap_free_after"),
        "outcomes": res.get("texts"),
        "parts_unix_us": {k[5:]: v for k, v in res.items() if k.startswith("part_")},
        "factor": ESP32_FACTOR,
    }
