"""e-SSC QR: token verify time and scanner line -> feedback on a turnstile.

Mints real tokens (RSA-2048 QR key, cryptography) on the host, then runs the
firmware under the MicroPython unix port with a 256K heap (the worker is
bench/workers/qr.py), timed there with the real time.ticks_us; ESP32-equivalent = x45 (docs/design.md, "Time factor").
  verify_*: base45 decode + parse + RSA PKCS#1 v1.5 verify + window + replay
  line_to_feedback_*: the whole line through QRScanner.poll (every chunk, as
    if it all arrived at once: conservative) + decide + journal append
    (in a RAM directory: CPU only; flash time is bench_journal's) + feedback.show, plus the loop's idle
    period (20 ms) the terminator may wait before the next poll.
The line's wire time at 9600 baud is reported apart (it precedes the line end)."""
import os
import tempfile

from ykt_tools import ROOT
from ykt_tools.build import fares as FC
from ykt_tools.sim import mp

ESP32_FACTOR = 45
BUDGET_MS = 300.0
IDLE_MS = 20     # firmware/ykt/app.py _IDLE_MS: worst wait before the poll that sees the terminator

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "qr.py")


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
        with open(os.path.join(d, "keys.bin"), "wb") as f:
            f.write(qr.keys_payload([key]))
        # no simulated chip: the firmware runs on the interpreter's own (C) clock, as on a board
        r = mp.run("micropython", WORKER, [d, now, jdir], heap=args.heap, sim=False, timeout=600)
        if jroot != d:
            import shutil
            shutil.rmtree(jroot, ignore_errors=True)
    res = r.require("qr bench")
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
