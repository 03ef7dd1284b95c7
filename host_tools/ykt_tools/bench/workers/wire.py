# `ykt bench wire` worker (MicroPython): batch encode/decode, HMAC and
# signature verify time, best of 5 rounds with time.ticks_us.
#   wire.py PARAMS_JSON   ->   @@JSON {...}
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
recs = bytearray(8 * taprec.SIZE)
for i in range(8):
    taprec.pack_into(recs, i * taprec.SIZE, taps[i])
def enc8():
    w8.begin(7)
    for i in range(8):
        w8.add(recs, i * taprec.SIZE)
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
print("@@JSON " + json.dumps(out))
