# Bounded recent-tap memory: what the device remembers about cards it saw
# lately, for double taps, anti-passback, ferry tap-out, the transfer window
# and daily free-ride limits. Offline first: nothing here needs the network.
#
# A 4-way set-associative table over the keyed token (tokens are HMAC output,
# so their first bytes are uniform). Capacity is fixed at boot; when a set is
# full the least recently used card is forgotten. Forgetting fails in the
# rider's favour (a fresh daily allowance, no passback block); the back office
# applies caps and transfers at settlement anyway. RAM: 27 bytes per slot.
from array import array

from ykt.compat import const

_WAYS = const(4)


class Recent:
    def __init__(self, cap=512):
        if cap < _WAYS or cap & (cap - 1):
            raise ValueError("capacity must be a power of two >= 4")
        self.cap = cap
        self._mask = cap // _WAYS - 1
        self.tok = bytearray(8 * cap)
        z = bytes(4 * cap)
        self.use = array("I", z)     # LRU stamp; 0 = empty slot
        self.last = array("I", z)    # time of the last accepted tap (double tap)
        self.paid = array("I", z)    # start of the transfer window (last full-fare ride)
        self.inside = array("I", z)  # entry / tap-in time with no exit yet; 0 = none
        self.in_stop = array("H", bytes(2 * cap))
        self.day = array("H", bytes(2 * cap))   # day number of free_n
        self.free_n = bytearray(cap)            # concession rides on that day
        self._stamp = 0
        self.evictions = 0

    def clear(self):
        for i in range(self.cap):
            self.use[i] = 0
        self._stamp = 0

    def _set(self, tok):
        return ((tok[0] | (tok[1] << 8)) & self._mask) * _WAYS

    def find(self, tok):
        """Slot index of this token, or -1."""
        base = self._set(tok)
        t = self.tok
        for i in range(base, base + _WAYS):
            if self.use[i]:
                o = i * 8
                k = 0
                while k < 8 and t[o + k] == tok[k]:
                    k += 1
                if k == 8:
                    return i
        return -1

    def slot(self, tok):
        """Slot for this token, taking the LRU slot of its set when new (fields zeroed)."""
        i = self.find(tok)
        if i >= 0:
            self.touch(i)
            return i
        base = self._set(tok)
        i = base
        for j in range(base, base + _WAYS):
            if self.use[j] < self.use[i]:
                i = j
        if self.use[i]:
            self.evictions += 1
        o = i * 8
        for k in range(8):
            self.tok[o + k] = tok[k]
        self.last[i] = 0
        self.paid[i] = 0
        self.inside[i] = 0
        self.in_stop[i] = 0
        self.day[i] = 0
        self.free_n[i] = 0
        self.touch(i)
        return i

    def touch(self, i):
        self._stamp += 1
        if self._stamp >= 0x3FFFFFFF:  # stay a small int on the ESP32; restart the order
            self.clear()
            self._stamp = 1
        self.use[i] = self._stamp

    def count(self):
        n = 0
        for i in range(self.cap):
            if self.use[i]:
                n += 1
        return n
