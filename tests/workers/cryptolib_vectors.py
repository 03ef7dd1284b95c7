# Encrypt and decrypt test vectors with this interpreter's cryptolib (on the
# MicroPython unix port: its built-in C module) for tests/test_powercut.py.
#   cryptolib_vectors.py CASES_JSON   (a list of [key hex, mode, iv hex, data hex])
#   -> @@JSON [[encrypted hex, decrypted hex], ...]
import sys
import json
import binascii
import cryptolib

with open(sys.argv[1]) as f:
    cases = json.load(f)
out = []
for k, m, iv, d in cases:
    k = binascii.unhexlify(k)
    iv = binascii.unhexlify(iv)
    d = binascii.unhexlify(d)
    a = cryptolib.aes(k, m, iv) if m == 2 else cryptolib.aes(k, m)
    e = a.encrypt(d)
    b = cryptolib.aes(k, m, iv) if m == 2 else cryptolib.aes(k, m)
    out.append([binascii.hexlify(e).decode(), binascii.hexlify(b.decrypt(d)).decode()])
print("@@JSON " + json.dumps(out))
