"""Wire format and signature cost: bytes per tap in a batch (body and whole
HTTP request), HMAC and RSA verify time on the MicroPython unix port and
ESP32-equivalent (x45). Each figure is the best of 5 rounds (shared machine).

The firmware part runs under .venv/bin/micropython -X heapsize=256K as a
subprocess and is timed there with the real time.ticks_us."""
import json
import os
import subprocess
import sys
import tempfile

from ykt_tools import FIRMWARE, HOST, ROOT, SIMHW

ESP32_FACTOR = 45

_MP_SCRIPT = r"""
import sys, time, gc, json, binascii
from ykt import taprec
from ykt.net import wire
from yktsrv import wiresrv
from ykt.sec import sigverify
from ykt.sec import signed
from ykt.sec.hmac256 import hmac_sha256
P = json.loads(open(sys.argv[1]).read())

def us(fn, n):
    # best of 5 rounds: the machine is shared, the minimum is the code's cost
    best = None
    for _ in range(5):
        gc.collect()
        t = time.ticks_us()
        for _ in range(n):
            fn()
        d = time.ticks_diff(time.ticks_us(), t) / n
        if best is None or d < best:
            best = d
    return best

taps = []
for r in P["taps"]:
    taps.append(taprec.unpack_from(binascii.unhexlify(r)))
key = b"k" * 32
out = {}
w = wire.BatchWriter(len(taps))
def enc():
    w.begin(7)
    for t in taps:
        w.add(t)
    w.finish(key, 1795000000, b"12345678", 0)
out["encode_batch_unix_us"] = us(enc, P["n_enc"])
body = bytes(w.finish(key, 1795000000, b"12345678", 0))
out["body_mp"] = binascii.hexlify(body).decode()
w8 = wire.BatchWriter(8)
recs = bytearray(8 * 36)
for i in range(8):
    taprec.pack_into(recs, i * 36, taps[i])
def enc8():
    w8.begin(7)
    for i in range(8):
        w8.add(recs, i * 36)
out["encode_step_unix_us"] = us(enc8, P["n_enc"] * 5)
out["hmac_unix_us"] = us(lambda: hmac_sha256(key, body), P["n_hmac"])
out["decode_batch_unix_us"] = us(lambda: wiresrv.decode_batch(body, lambda d: key), P["n_enc"])
ring = sigverify.parse_keys(binascii.unhexlify(P["keys"]))
for name in ("rsa3072", "rsa2048"):
    blob = binascii.unhexlify(P[name])
    kinds = (signed.K_FARES,)
    out["verify_%s_unix_us" % name] = us(lambda: signed.verify_blob(blob, ring, kinds, 0, 4096), P["n_verify"])
# The alternative considered: pure-Python Ed25519 (RFC 8032 sec. 6 reference
# arithmetic). A verify is dominated by two 253-bit scalar multiplications;
# timing just those gives a lower bound for its cost on this runtime.
_P = 2 ** 255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
def _padd(P, Q):
    A = (P[1] - P[0]) * (Q[1] - Q[0]) % _P
    B = (P[1] + P[0]) * (Q[1] + Q[0]) % _P
    C = 2 * P[3] * Q[3] * _D % _P
    D = 2 * P[2] * Q[2] % _P
    E, F, G, H = B - A, D - C, D + C, B + A
    return (E * F % _P, G * H % _P, F * G % _P, E * H % _P)
def _pmul(s, P):
    Q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            Q = _padd(Q, P)
        P = _padd(P, P)
        s >>= 1
    return Q
_gy = 4 * pow(5, _P - 2, _P) % _P
_gx = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_G = (_gx, _gy, 1, _gx * _gy % _P)
_s = (1 << 252) + 27742317777372353535851937790883648493 - 12345
out["ed25519_2mul_unix_us"] = us(lambda: (_pmul(_s, _G), _pmul(_s - 99, _G)), 1)
gc.collect()
out["mem_free"] = gc.mem_free()
print("@@BENCH " + json.dumps(out))
"""


def add_args(p):
    p.add_argument("--taps", type=int, default=100, help="taps per batch (default 100)")
    p.add_argument("--verify-iters", type=int, default=10)
    p.add_argument("--heap", default="256K")


def _taps(n):
    sys.path[:0] = [FIRMWARE, SIMHW]
    from ykt import taprec

    out = []
    # a bus validator: stops change every ~8 taps, 1 in 5 riders a concession,
    # a deny-list update mid-batch, taps seconds to minutes apart
    t0 = 1795000000
    for i in range(n):
        t = taprec.Tap()
        t.seq = 100000 + i
        t0 += 5 + (i * 37) % 120
        t.time = t0
        for j in range(8):
            t.token[j] = (i * 131 + j * 17 + 3) & 0xFF
        conc = i % 5 == 0
        t.fare = 100 if conc else 200
        t.reason = taprec.R_CONCESSION if conc else taprec.R_OK
        t.concession = taprec.C_ELDERLY_HALF if conc else taprec.C_NONE
        t.entry = 301
        t.stop = 10 + i // 8
        t.direction = 1
        t.dl_ver = 7 if i < n // 2 else 8
        t.fare_ver = 3
        t.cat_ver = 2
        out.append(t)
    return out


def run(args):
    from ykt_tools.build import signing
    from ykt import taprec
    from ykt.net import httpc
    from ykt.net import wire
    from yktsrv import wiresrv

    taps = _taps(args.taps)
    key = b"k" * 32
    body = wire.encode_batch(7, key, taps, 1795000000, b"12345678")
    req = httpc.request_bytes("POST", "192.0.2.10", wire.PATH_TAPS,
                              (("Content-Type", "application/octet-stream"),), body)
    ack = wiresrv.encode_ack(key, 7, taps[-1].seq, b"12345678", 1795000000)
    k3, k2 = signing.generate_key(3072), signing.generate_key(2048)
    params = {
        "taps": [taprec.pack(t).hex() for t in taps],
        "keys": signing.keys_payload([k3, k2]).hex(),
        "rsa3072": signing.sign_file(k3, "fares", 1, b"x" * 512).hex(),
        "rsa2048": signing.sign_file(k2, "fares", 1, b"x" * 512).hex(),
        "n_enc": 20, "n_hmac": 200, "n_verify": args.verify_iters,
    }
    with tempfile.TemporaryDirectory() as d:
        pj = os.path.join(d, "params.json")
        sc = os.path.join(d, "bench_wire_mp.py")
        with open(pj, "w") as f:
            json.dump(params, f)
        with open(sc, "w") as f:
            f.write(_MP_SCRIPT)
        env = dict(os.environ, MICROPYPATH=FIRMWARE + ":" + HOST)   # HOST: yktsrv (the server half)
        mp = os.path.join(ROOT, ".venv", "bin", "micropython")
        p = subprocess.run([mp, "-X", "heapsize=" + args.heap, sc, pj], capture_output=True,
                           text=True, timeout=600, env=env)
    line = [x for x in p.stdout.splitlines() if x.startswith("@@BENCH ")]
    if not line:
        raise RuntimeError("micropython bench failed:\n" + p.stdout[-2000:] + p.stderr[-2000:])
    m = json.loads(line[0][8:])
    assert bytes.fromhex(m.pop("body_mp")) == body, "MicroPython and CPython encodings differ"
    v3 = m["verify_rsa3072_unix_us"]
    v2 = m["verify_rsa2048_unix_us"]
    return {
        "batch_size": len(taps),
        "bytes_per_tap": round(len(body) / len(taps), 2),
        "bytes_per_tap_http": round(len(req) / len(taps), 2),
        "batch_body_bytes": len(body),
        "http_request_bytes": len(req),
        "ack_bytes": len(ack),
        "budget_bytes_per_tap": 48,
        "signature_scheme": "RSA-3072 PKCS#1 v1.5 SHA-256, e=65537",
        "verify_unix_us": round(v3, 1),
        "verify_esp32_ms": round(v3 * ESP32_FACTOR / 1000, 1),
        "verify_rsa2048_unix_us": round(v2, 1),
        "verify_rsa2048_esp32_ms": round(v2 * ESP32_FACTOR / 1000, 1),
        "hmac_unix_us": round(m["hmac_unix_us"], 1),
        "hmac_esp32_ms": round(m["hmac_unix_us"] * ESP32_FACTOR / 1000, 2),
        "encode_batch_unix_us": round(m["encode_batch_unix_us"], 1),
        "encode_batch_esp32_ms": round(m["encode_batch_unix_us"] * ESP32_FACTOR / 1000, 1),
        "uplink_build_step_unix_us": round(m["encode_step_unix_us"], 1),
        "uplink_build_step_esp32_ms": round(m["encode_step_unix_us"] * ESP32_FACTOR / 1000, 2),
        "decode_batch_unix_us": round(m["decode_batch_unix_us"], 1),
        "ed25519_pure_python_lower_bound_unix_us": round(m["ed25519_2mul_unix_us"], 1),
        "ed25519_pure_python_lower_bound_esp32_ms": round(m["ed25519_2mul_unix_us"] * ESP32_FACTOR / 1000, 1),
        "esp32_factor": ESP32_FACTOR,
        "heap": args.heap,
    }
