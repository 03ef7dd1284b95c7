# A tiny real in-memory journal with the upload interface of
# ykt.journal.Journal (pending(n, after), pending_into(buf, after), ack(seq),
# backlog property), and a tap factory. Helper only: no tests here. The
# uplink tests also run against the real Journal (tests/test_uplink_loopback.py).
from ykt import taprec


def _seq(r):
    return r[0] | (r[1] << 8) | (r[2] << 16) | (r[3] << 24)


class MemJournal:
    def __init__(self):
        self.recs = []          # packed taprec records, seq increasing
        self.cursor = 0         # highest acknowledged seq
        self.next_seq = 1
        self.acks = []          # every cursor move, to check monotonicity

    def append(self, t):
        t.seq = self.next_seq
        self.next_seq += 1
        self.recs.append(taprec.pack(t))
        return t.seq

    def _after(self, after):
        a = self.cursor if after is None else after
        for r in self.recs:
            if _seq(r) > a:
                yield r

    def pending(self, max_n, after=None):
        out = []
        for r in self._after(after):
            if len(out) >= max_n:
                break
            out.append(taprec.unpack_from(r))
        return out

    def pending_into(self, buf, after=None):
        n = 0
        for r in self._after(after):
            if (n + 1) * taprec.SIZE > len(buf):
                break
            buf[n * taprec.SIZE:(n + 1) * taprec.SIZE] = r
            n += 1
        return n

    @property
    def backlog(self):
        return self.next_seq - 1 - self.cursor

    def ack(self, seq):
        if seq < self.cursor:
            raise AssertionError("cursor moved back %d -> %d" % (self.cursor, seq))
        if seq >= self.next_seq:
            raise AssertionError("ack beyond the journal: %d" % seq)
        self.acks.append(seq)
        self.cursor = seq
        return seq


def make_tap(i, t0=1795000000):
    t = taprec.Tap()
    t.time = t0 + i * 31
    for j in range(8):
        t.token[j] = (i * 29 + j * 7) & 0xFF
    t.fare = 200 if i % 5 else 100
    t.reason = 0 if i % 5 else taprec.R_CONCESSION
    t.concession = 0 if i % 5 else taprec.C_ELDERLY_HALF
    t.entry = 301
    t.stop = 10 + i // 9
    t.direction = 1
    t.dl_ver = 7
    t.fare_ver = 3
    t.cat_ver = 2
    return t
