"""Back-office side of signed downloads: RSA key generation, key ids, the
public-key records devices trust, and signing of the firmware's envelope
(firmware/ykt/sec/signed.py, verified on the device by ykt.sec.sigverify).

Signing keys live only in the back office (PEM, optionally encrypted); the
device holds public keys only, so a stolen device cannot forge downloads."""
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ykt_tools import FIRMWARE, SIMHW

# ykt.compat needs a ticks source on CPython: the simulator's vclock provides it
for _p in (FIRMWARE, SIMHW):
    if _p not in sys.path:
        sys.path.append(_p)

from ykt.sec import signed  # noqa: E402  (the one definition of the format)
from ykt.sec import sigverify

DEFAULT_BITS = 3072  # 128-bit security (NIST SP 800-57); ~90 ms verify on an ESP32


def generate_key(bits=DEFAULT_BITS):
    if bits not in (2048, 3072, 4096):
        raise ValueError("RSA key size must be 2048, 3072 or 4096")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _pub(key):
    return key.public_key() if hasattr(key, "public_key") else key


def modulus_bytes(key):
    nums = _pub(key).public_numbers()
    return nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")


def key_id(key):
    """8-byte key id, as the device computes it (sigverify.key_id)."""
    return sigverify.key_id(modulus_bytes(key), _pub(key).public_numbers().e)


def public_record(key, usage=sigverify.U_DOWNLOADS):
    n = modulus_bytes(key)
    return struct.pack("<BBIH", sigverify.ALG_RSA_PKCS1_SHA256, usage, 65537, len(n)) + n


def keys_payload(keys, usage=sigverify.U_DOWNLOADS):
    """Payload of a K_KEYS file: count u8 then public key records.
    keys: list of keys or (key, usage) pairs."""
    if not 0 < len(keys) <= sigverify.MAX_KEYS:
        raise ValueError("1..%d keys" % sigverify.MAX_KEYS)
    out = bytearray([len(keys)])
    for k in keys:
        if isinstance(k, tuple):
            out += public_record(k[0], k[1])
        else:
            out += public_record(k, usage)
    return bytes(out)


def sign_bytes(key, data):
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def sign_file(key, kind, version, payload, base=0, created=0, scope=0):
    """The signed envelope; kind is a code (signed.K_*) or a name ('fares')."""
    if isinstance(kind, str):
        kind = signed.kind_code(kind)
    if not 0 < version <= 0xFFFFFFFF:
        raise ValueError("version must be 1..2^32-1")
    flags = signed.F_DELTA if kind == signed.K_DENYLIST_DELTA else 0
    if not flags and base:
        raise ValueError("only deltas have a base version")
    hdr = struct.pack("<4sBBBBII8sIII", signed.MAGIC, signed.FORMAT, kind,
                      sigverify.ALG_RSA_PKCS1_SHA256, flags, version, base, key_id(key),
                      created, scope, len(payload))
    body = hdr + bytes(payload)
    return body + sign_bytes(key, body)


def save_private(key, path, password=None):
    enc = (serialization.BestAvailableEncryption(password) if password
           else serialization.NoEncryption())
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def load_private(path, password=None):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=password)


def device_keyring(keys):
    """A sigverify.Keyring holding these public keys (tests, simulator)."""
    return sigverify.parse_keys(keys_payload(keys))


def keyid_hex(key):
    return key_id(key).hex()
