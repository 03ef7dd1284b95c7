"""What the power-cut workers share (portable: the MicroPython workers import
it from their folder): a deterministic byte source, the taps a scenario
appends, and the journal invariants checked after every cut."""


class Rng:
    """Deterministic xorshift32: segment salts must replay identically."""

    def __init__(self, seed):
        self.s = seed or 1

    def __call__(self, n):
        out = bytearray(n)
        for i in range(n):
            x = self.s
            x ^= (x << 13) & 0xFFFFFFFF
            x ^= x >> 17
            x ^= (x << 5) & 0xFFFFFFFF
            self.s = x
            out[i] = x & 0xFF
        return bytes(out)


def tap(i):
    """The i-th tap of a scenario: every field varies, nothing random."""
    from ykt import taprec

    t = taprec.Tap()
    t.time = 1795000000 + 7 * i
    for k in range(8):
        t.token[k] = (i * 31 + k * 7 + 1) & 0xFF
    t.outcome = i % 3
    t.reason = (i * 5) % 34
    t.fare = (i * 13) % 600
    t.concession = i % 9
    t.flags = i & 0x1F
    t.entry = 300 + i % 7
    t.stop = i % 40
    t.direction = i % 5
    t.stage = i % 3
    t.dl_ver = 7 + i // 50
    t.fare_ver = 3
    t.cat_ver = 2
    return t


class JournalOracle:
    """What the journal must hold at cut point c, from the scenario's events
    (write index, kind, value): appends started and returned, acks started
    and returned."""

    def __init__(self, events, c):
        self.returned = {}      # seq -> bytes, appends that returned (feedback given)
        self.inflight = None    # seq of an append started but not returned
        self.ack_ret = 0
        self.ack_max = 0
        pending_seq = None
        for w, kind, val in events:
            if w > c:
                break
            if kind == "append_start":
                pending_seq = val
            elif kind == "append_ret":
                self.returned[val[0]] = val[1]
                pending_seq = None
            elif kind == "full":
                pending_seq = None
            elif kind == "ack_start":
                self.ack_max = max(self.ack_max, val)
            elif kind == "ack_ret":
                self.ack_ret = max(self.ack_ret, val)
        self.inflight = pending_seq


def check_journal(j, o):
    """Every tap whose append returned and is not acked is there exactly once
    with its exact bytes; only the in-flight tap may also appear; the cursor
    lies between the last returned and the last started ack; seqs increase;
    nothing corrupt; next_seq above every seq used. -> violations."""
    from ykt import taprec

    bad = []
    if j.cursor < o.ack_ret or j.cursor > max(o.ack_max, o.ack_ret):
        bad.append("cursor %d outside [%d, %d]" % (j.cursor, o.ack_ret, o.ack_max))
    recs = j.pending(100000, after=0)
    if j.corrupt:
        bad.append("%d corrupt frames" % j.corrupt)
    seen = {}
    last = 0
    for r in recs:
        if r.seq <= last:
            bad.append("seq %d out of order after %d" % (r.seq, last))
        last = r.seq
        seen[r.seq] = seen.get(r.seq, 0) + 1
        b = taprec.pack(r)
        if r.seq in o.returned:
            if b != o.returned[r.seq]:
                bad.append("tap %d altered" % r.seq)
        elif r.seq != o.inflight:
            bad.append("unexpected tap %d" % r.seq)
    for s in o.returned:
        if s > j.cursor and seen.get(s, 0) != 1:
            bad.append("tap %d (feedback given, not acked) present %d times" % (s, seen.get(s, 0)))
    top = max([0, last] + list(o.returned.keys()))
    if j.next_seq <= top:
        bad.append("next_seq %d would repeat seq %d" % (j.next_seq, top))
    return bad
