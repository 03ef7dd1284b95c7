"""Wire format and signature cost: bytes per tap in a batch (body and whole
HTTP request), HMAC and RSA verify time on the MicroPython unix port and
ESP32-equivalent (x45). Each figure is the best of 5 rounds (shared machine).

The firmware part (bench/workers/wire.py) runs on the MicroPython unix port
with a 256K heap as a subprocess and is timed there with the real
time.ticks_us."""
import json
import os
import tempfile

from ykt_tools.sim import mp

ESP32_FACTOR = 45

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "wire.py")


def add_args(p):
    p.add_argument("--taps", type=int, default=100, help="taps per batch (default 100)")
    p.add_argument("--verify-iters", type=int, default=10)
    p.add_argument("--heap", default="256K")


def _taps(n):
    mp.in_process()
    from ykt import taprec

    out = []
    # a bus validator: stops change every ~8 taps, 1 in 5 riders a concession,
    # a deny-list update mid-batch, taps seconds to minutes apart, a driver
    # change (shift handover) at tap 60
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
        t.shift = 99990 if i < 60 else 100000 + 60
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
        with open(pj, "w") as f:
            json.dump(params, f)
        # no simulated chip: the firmware runs on the interpreter's own (C) clock, as on a board
        m = mp.run("micropython", WORKER, [pj], heap=args.heap, sim=False, timeout=600).require("wire bench")
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
