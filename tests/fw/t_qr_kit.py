# Shared fixtures of the QR tests (portable; no test_ functions here): two
# throwaway RSA-2048 keys (tests only, never trusted by a device), a signer
# in plain integers so MicroPython can mint tokens too, a clock and a UART.
import hashlib

from ykt.qr import qrtoken as Q
from ykt.sec import sigverify as S

A_N = (
    "b8bb7a2e6ebe78e0de7256b5ad0b86ee238e449958cf29e9637d506071d4e5c571add2e5162a8af9ff0188830f7b4af2"
    "934799d8397182d6289cc52f66229c87a5207c624651e847b3c16adb6edf466c07710bf44fa8835efc727387356fad8a"
    "9bc0afdab67dd60feadc031be4bb23a06985de7e6c4519f8148eb17c219a0e109ab02193d018a688b15a819c5b826eca"
    "010c9aa19ce695125b3958dd4eb35c4d9715155dddb37c939cd845d121d4ade0434aaf8183d2d2f81f1bc29391273ae0"
    "5b7afdbc3a4206f2ee0916e47b6d46b2e348450bcc98d38607aa9e95e602d2942d3d26ae45d7b17c25e4b36928eb2b04"
    "31a6fec80284ccb2968d15f3c4781e8f"
)
A_D = (
    "19146eda95f36b12d070828028cdab54726452c0e4f33f33edeb69f9a60aaae53af147f40d25da77655d0e6d08b18af3"
    "d2f602177e790033d610ae9ea845a3adb0c7efcb21d3e5eeb2235cc00cd5e8482b5c782c839213bfd6132dc71a049ef1"
    "7602db7d1c9089fae03e5d77b07e8db02e135c291ac6e8e72ad7529651338a9c0ffd890a9e70537cc840a965b799aa89"
    "cfc6ed5ca8370e690c7058170abf6e5bf1e5b9cfaf1805358e5ebb24db91ba3d868fef97f224f6c0877f6ba0a36bd634"
    "4908bad95712e330a981a25fbbcab5aacb0d68f4a74c1e10cb34fc16358a6a9b811cd1a3f99395938c39ecb768b42080"
    "13806856c724297dce8a857d86109131"
)
B_N = (
    "a53c5fffb34d96b6bb35ef60e05c3dcbac99bf5a33603f1d2ce4cbe2bc275d7dd0f348aa510bd59c1a5a4f1f080f88fc"
    "ff8b991aa004f781fb387f4acfb9f8280eb66cfb9ee95f7277de7ffe9255e352bbaa6342cf35ef753623b76cb0874d6d"
    "c1fdc0446ca2581bc90974e8e1886c9cdc1f03481e75db79f24a9a030bcddf9d27123775af42c21710c2635bbe050d0c"
    "8f6228323a5c73001e902b1a76e880a8f0f7076318b00e05e259c2e9522e7e89be660a33ddafbf7a6eb4032248633b14"
    "f3021fe6783f376cfafe8622967228d79932b67b428e8f777e689be0fee5d62c4a5428625dca16d46eb441b2ee6ec306"
    "edf88b6075e01798ef0491e19c24d16d"
)
B_D = (
    "01411b9373d77f70e4abeca4c61f3d22da2d129c4b2e8c5c1ad6a3cb9555112b1ed671f345093b766366d319efb43a7c"
    "7d2e209be8a21104ee14c83697ac183ba99cede7dd15757187826b6351d6101335347e6b67ea476692e22386d2323cbe"
    "bc0dc2936265bb187ee6b0fa01984906c9cefc75e4314dd8b7a3a456a894c80144c4c80d51f9a406afa72301625142d5"
    "4253f2ce094f872d6efeefed970e4c905968bbb499a3515ab16957028430db6916583291a45db5c5d798a755fa477d63"
    "cc2ea73cbfdfa3ea478130bd4384facb15eb4b110fbe4849812eb6eced531d522f3b29dbf8880c8611872f033b71cc37"
    "8cf613872f6c4f90c477dc9bbc5e99b1"
)

_DI = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"
NOW = 1795700000
HOLDER = b"\x11\x22\x33\x44\x55\x66\x77\x88"


class Key:
    def __init__(self, nh, dh, usage=S.U_QR):
        self.nb = bytes.fromhex("".join(nh)) if hasattr(bytes, "fromhex") else _unhex("".join(nh))
        self.n = int.from_bytes(self.nb, "big")
        self.d = int("".join(dh), 16)
        self.pub = S.PublicKey(self.nb, 65537, usage)
        self.kid = self.pub.kid

    def sign(self, msg):
        k = len(self.nb)
        em = bytearray(k)
        em[1] = 1
        pad_end = k - len(_DI) - 33
        for i in range(2, pad_end):
            em[i] = 0xFF
        em[pad_end + 1:pad_end + 1 + len(_DI)] = _DI
        em[k - 32:] = hashlib.sha256(msg).digest()
        return pow(int.from_bytes(bytes(em), "big"), self.d, self.n).to_bytes(k, "big")


def _unhex(s):
    import binascii
    return binascii.unhexlify(s)


_keys = {}


def key(name="A"):
    if name not in _keys:
        _keys[name] = Key(A_N, A_D) if name == "A" else Key(B_N, B_D)
    return _keys[name]


def ring(*names_usages):
    r = S.Keyring()
    for name, usage in (names_usages or (("A", S.U_QR),)):
        k = key(name)
        r.add(S.PublicKey(k.nb, 65537, usage))
    return r


_nonce = [0]


def mint(iat=NOW, valid=30, k=None, holder=HOLDER, region=450100, cat=0, flags=0, nonce=None, kid=None):
    """-> token bytes (body + signature)."""
    k = k or key("A")
    if nonce is None:
        _nonce[0] += 1
        nonce = (_nonce[0] * 2654435761 & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    body = Q.pack_body(kid or k.kid, holder, region, cat, flags, iat, valid, nonce)
    return body + k.sign(Q.signed_message(body))


def text(tok):
    return Q.to_text(tok)


class Clock:
    def __init__(self, now=NOW, trusted=True, uptime_s=3600):
        self.t = now
        self.ok = trusted
        self.uptime_s = uptime_s

    def now(self):
        return self.t

    def trusted(self):
        return self.ok

    def advance(self, s):
        self.t += s
        self.uptime_s += s


class UART:
    """A byte queue with the machine.UART calls the driver makes."""

    def __init__(self):
        self.q = bytearray()

    def feed(self, b):
        self.q += b

    def any(self):
        return len(self.q)

    def readinto(self, buf, n=None):
        n = len(buf) if n is None else min(n, len(buf))
        n = min(n, len(self.q))
        if not n:
            return None
        buf[:n] = self.q[:n]
        self.q = self.q[n:]
        return n
