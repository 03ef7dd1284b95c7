# UID-only cards (no ISO/IEC 14443-4): MIFARE Classic and Ultralight. Loaded
# by vhw.rfcards.load() only when a profile needs them. Portable.
from vhw.iso14443 import Picc


class MifareClassic(Picc):
    """MIFARE Classic 1K: 4-byte UID, SAK 08, no ISO/IEC 14443-4. The PN532 does
    the Crypto1 authentication itself, so it is modeled at that level."""

    def __init__(self, name, uid, key_a=b"\xff" * 6):
        Picc.__init__(self, uid, b"\x00\x04", 0x08, name)
        self.key_a = key_a
        self.authed = -1

    def reset_protocol(self):
        self.authed = -1

    def mifare(self, cmd):
        """InDataExchange on a MIFARE target -> (status, data)."""
        if len(cmd) >= 12 and cmd[0] in (0x60, 0x61):
            if cmd[0] == 0x60 and cmd[2:8] == self.key_a and cmd[8:12] == self.uid[:4]:
                self.authed = cmd[1] // 4
                return 0x00, b""
            self.authed = -1
            return 0x14, b""
        if len(cmd) >= 2 and cmd[0] == 0x30:
            if cmd[1] // 4 != self.authed:
                return 0x14, b""
            if cmd[1] == 0:
                u = self.uid
                return 0x00, u + bytes((u[0] ^ u[1] ^ u[2] ^ u[3], 0x08, 0x04, 0x00)) + bytes(8)
            return 0x00, bytes(16)
        return 0x01, b""


class Ultralight(Picc):
    """MIFARE Ultralight: 7-byte UID, SAK 00, 16 pages of 4 bytes."""

    def __init__(self, name, uid):
        Picc.__init__(self, uid, b"\x00\x44", 0x00, name)
        u = self.uid
        b0 = 0x88 ^ u[0] ^ u[1] ^ u[2]
        b1 = u[3] ^ u[4] ^ u[5] ^ u[6]
        self.mem = bytearray(u[:3] + bytes((b0,)) + u[3:7] + bytes((b1, 0x48, 0, 0)) + bytes(48))

    def mifare(self, cmd):
        if len(cmd) >= 2 and cmd[0] == 0x30:
            p = (cmd[1] % 16) * 4
            m = bytes(self.mem) * 2
            return 0x00, m[p:p + 16]
        if len(cmd) >= 6 and cmd[0] == 0xA2:
            return 0x00, b""  # writes are accepted and forgotten
        return 0x01, b""

    def raw(self, data, timing):
        st, out = self.mifare(data)
        return (out if st == 0 and out else None), timing.get("block_us", 1000)
