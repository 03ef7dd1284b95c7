"""Host side of the e-SSC QR token (docs/qr.md): minting (the back office and
`ykt qr issue`, which plays the holder's app in tests and `make run`),
decoding for inspection, and rendering with segno. The byte format comes from
the firmware's ykt.qr.qrtoken (one definition); signatures from cryptography.

QR keys are RSA-2048 with usage U_QR: the token is 36 bytes + a 256-byte
signature = 292 bytes, 441 characters of QR alphanumeric text."""
import os
import struct
import sys
import time

from ykt_tools import FIRMWARE, SIMHW

for _p in (FIRMWARE, SIMHW):
    if _p not in sys.path:
        sys.path.append(_p)

from ykt.qr import qrtoken  # noqa: E402
from ykt.sec import sigverify
from ykt_tools.build import signing  # noqa: E402

QR_BITS = 2048          # shortest key sigverify accepts: the QR stays version 11-L / 13-M
DEFAULT_VALID_S = 30


class QRError(ValueError):
    pass


def new_key(bits=QR_BITS):
    return signing.generate_key(bits)


def keys_payload(qr_keys, download_keys=()):
    """Trusted-keys payload (sigverify.parse_keys) with the QR keys marked U_QR."""
    return signing.keys_payload([(k, sigverify.U_DOWNLOADS) for k in download_keys] +
                                [(k, sigverify.U_QR) for k in qr_keys])


def parse_holder(token_hex):
    try:
        b = bytes.fromhex(token_hex.strip())
    except (ValueError, AttributeError):
        b = b""
    if len(b) != 8:
        raise QRError("card token must be 16 hex digits (8 bytes, as ykt.sec.token)")
    return b


def mint(key, holder, category=0, ent_flags=0, region=0, valid_s=DEFAULT_VALID_S, iat=None,
         nonce=None):
    """-> token bytes. key: RSA private key (cryptography). iat: unix seconds
    (default: now). nonce: 8 bytes (default: random)."""
    if isinstance(holder, str):
        holder = parse_holder(holder)
    if not 1 <= valid_s <= qrtoken.MAX_VALID_S:
        raise QRError("validity must be 1..%d s" % qrtoken.MAX_VALID_S)
    if not 0 <= category <= 255 or not 0 <= ent_flags <= 255:
        raise QRError("category and flags are 0..255")
    if not 0 <= region <= 0xFFFFFFFF:
        raise QRError("region out of range")
    iat = int(time.time()) if iat is None else int(iat)
    nonce = os.urandom(8) if nonce is None else bytes(nonce)
    body = qrtoken.pack_body(signing.key_id(key), holder, region, category, ent_flags, iat, valid_s,
                             nonce)
    return body + signing.sign_bytes(key, qrtoken.signed_message(body))


def to_text(token):
    return qrtoken.to_text(token).decode("ascii")


def from_text(text):
    """QR text -> token bytes (no verification)."""
    raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    if not raw.startswith(qrtoken.PREFIX):
        raise QRError("not an e-SSC QR token (prefix %r)" % qrtoken.PREFIX.decode())
    out = bytearray(qrtoken.MAX_TOKEN)
    n = qrtoken.b45_decode_into(raw, len(qrtoken.PREFIX), len(raw), out)
    if n < 0:
        raise QRError("not base45 or longer than %d bytes" % qrtoken.MAX_TOKEN)
    return bytes(out[:n])


def fields(token):
    """Decoded fields of a token (inspection; verify with verify())."""
    if len(token) < qrtoken.BODY:
        raise QRError("token shorter than its %d-byte body" % qrtoken.BODY)
    ver, kid, holder, region, cat, flags, iat, valid, nonce = struct.unpack_from(qrtoken._FMT, token)
    return {"version": ver, "kid": kid.hex(), "token": holder.hex(), "region": region, "category": cat,
            "ent_flags": flags, "iat": iat, "valid_s": valid, "expires": iat + valid,
            "nonce": nonce.hex(), "sig_bytes": len(token) - qrtoken.BODY, "token_bytes": len(token)}


def verify(text, ring, now, tol_s=20, uptime_s=None):
    """Run the firmware's Verifier on the host: -> (reason, CardRead)."""
    from ykt import cardread

    class _Clock:
        def __init__(self):
            self.uptime_s = uptime_s if uptime_s is not None else 1 << 30

        def now(self):
            return now

        def trusted(self):
            return True

    v = qrtoken.Verifier(ring, _Clock(), tol_s=tol_s)
    cr = cardread.CardRead()
    raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    return v.verify_text(raw, len(raw), cr), cr


def symbol(text, error="m"):
    import segno

    return segno.make(text, error=error, micro=False, boost_error=False)


def qr_info(text, error="m"):
    q = symbol(text, error)
    return {"qr_version": q.version, "qr_modules": q.symbol_size(scale=1, border=0)[0],
            "qr_error": q.error, "qr_mode": q.mode, "text_chars": len(text)}


def render_png(text, path, scale=4, error="m"):
    q = symbol(text, error)
    q.save(path, kind="png", scale=scale, border=4)
    return qr_info(text, error)
