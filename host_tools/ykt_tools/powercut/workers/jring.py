"""Power-cut sweep of the ring journal (ykt.jring) on the simulated NOR flash:
the worker of `ykt powercut --ring` (ykt_tools/powercut/jring.py drives it).

    jring.py sweep PART NPARTS SAMPLE TAPS SECTORS
        -> @@JSON {"violation": {...}} per failing cut point, then {"summary": {...}}

1. A chip with a raw "jrnl" partition of SECTORS sectors; the firmware's
   RingJournal runs one deterministic scenario: appends, acks that lag
   behind, erase-ahead between taps (idle) and sometimes not (the append
   then erases itself), a stretch without acks that fills the ring
   (JournalFull), clean reboots, and laps around the ring. Every program and
   erase of the flash is logged with the oracle events (append/ack start
   and return) at their write index.
2. Cut point (c, tear): writes 0..c-1 land, write c lands torn (none, start,
   middle, end: vhw/flash.py), nothing after it. The image is built
   incrementally from the log.
3. On each image the journal opens (a new boot: new Partition object, the
   ack file as the last ack that returned left it) and pcutlib.check_journal
   holds: every tap whose append returned and is not acked is there exactly
   once with its bytes, only the in-flight tap may also appear, seqs
   increase, next_seq is above every seq used. Then one more tap appends
   (erasing ahead first, as the loop does) and the journal is reopened: it
   is there once with a seq never used.
"""
import sys
import os

KEY = b"powercut-ring-k!"
BASE = 0x10000
TEARS = ("none", "start", "middle", "end")

from pcutlib import Rng, tap as _tap, JournalOracle, check_journal  # noqa: E402


def _chip(sectors):
    from vhw import chip

    c = chip.configure(flash_mb=4, table=[("factory", 0, 0, 0x100000, 0x100000),
                                          ("jrnl", 1, 0x41, BASE, sectors * 4096)])
    return c


def _part():
    import esp32

    return esp32.Partition.find(esp32.Partition.TYPE_DATA, label="jrnl")[0]


def _ack_file(path, v):
    import struct
    from binascii import crc32

    if v <= 0:
        try:
            os.remove(path)
        except OSError:
            pass
        return
    b = bytearray(12)
    b[0:4] = b"YKA1"
    struct.pack_into("<I", b, 4, v)
    struct.pack_into("<I", b, 8, crc32(b[0:8]))
    with open(path, "wb") as f:
        f.write(b)


def record(sectors, taps, ackpath):
    """Run the scenario once, logging writes and oracle events."""
    from ykt import taprec
    from ykt.jring import RingJournal, JournalFull

    c = _chip(sectors)
    fl = c.flash
    ops = []
    events = []
    p0, e0 = fl.program, fl.erase

    def program(addr, data):
        ops.append((0, addr, bytes(data)))
        p0(addr, data)

    def erase(addr, n):
        ops.append((1, addr, n))
        e0(addr, n)

    fl.program = program
    fl.erase = erase
    _ack_file(ackpath, 0)
    boot = [0]

    def openj():
        boot[0] += 1
        fl.new_epoch()
        return RingJournal(_part(), KEY, ackpath, rng=Rng(77 + boot[0])).open()

    j = openj()
    per_sector = 85
    for i in range(taps):
        if i and i % 170 == 0:
            j = openj()                 # clean reboot
        events.append((len(ops), "append_start", j.next_seq))
        t = _tap(i)
        try:
            seq = j.append(t)
            events.append((len(ops), "append_ret", (seq, taprec.pack(t))))
        except JournalFull:
            events.append((len(ops), "full", j.next_seq))
        # acks lag about two sectors behind; none for a while (the ring fills)
        starve = (i // 300) % 5 == 2
        if i % 4 == 3 and not starve:
            up = j.next_seq - 1 - 2 * per_sector
            if up > j.cursor:
                events.append((len(ops), "ack_start", up))
                j.ack(up)
                events.append((len(ops), "ack_ret", up))
        if i % 97 < 90:                 # mostly erase ahead; sometimes the append must
            j.idle()
    return ops, events, j


def _image_apply(img, op, tear=None):
    from vhw.flash import tear_len

    if op[0] == 0:
        addr, data = op[1] - BASE, op[2]
        n = len(data) if tear is None else tear_len(len(data), tear)
        for k in range(n):
            img[addr + k] &= data[k]
    else:
        addr, n = op[1] - BASE, op[2]
        if tear is not None:
            n = tear_len(n, tear)
        for k in range(n):
            img[addr + k] = 0xFF


def _load_image(fl, img, sectors):
    snap = {}
    for s in range(sectors):
        snap[(BASE >> 12) + s] = bytes(img[s * 4096:(s + 1) * 4096])
    fl.restore(snap)
    fl.new_epoch()


def check(fl, img, sectors, ackpath, o):
    from ykt import taprec
    from ykt.jring import RingJournal, JournalFull

    _load_image(fl, img, sectors)
    _ack_file(ackpath, o.ack_ret)
    try:
        j = RingJournal(_part(), KEY, ackpath, rng=Rng(4242)).open()
    except Exception as e:  # noqa: BLE001 (any failure to boot is the finding)
        return ["open raised %r" % (e,)]
    bad = check_journal(j, o)
    if bad:
        return bad
    top = max([0, j.next_seq - 1] + list(o.returned.keys()))
    t = _tap(99999)
    try:
        j.idle()
        seq = j.append(t)
    except JournalFull:
        return bad
    except Exception as e:  # noqa: BLE001
        return ["append after the cut raised %r" % (e,)]
    if seq <= top:
        bad.append("new tap got seq %d, used before" % seq)
    fl.new_epoch()
    j2 = RingJournal(_part(), KEY, ackpath, rng=Rng(4343)).open()
    n = 0
    for r in j2.pending(100000, after=seq - 1):
        if r.seq == seq:
            n += 1
            if taprec.pack(r) != taprec.pack(t):
                bad.append("new tap %d altered" % seq)
    if n != 1:
        bad.append("new tap %d present %d times after reopen" % (seq, n))
    return bad


def sweep(part, nparts, sample, taps, sectors):
    import json

    ackpath = "/tmp/ykt-pc-ring-%d-%d.ack" % (taps, part)
    ops, events, j = record(sectors, taps, ackpath)
    total = len(ops) * len(TEARS)
    step = 1 if sample <= 0 or sample >= total else total / float(sample)
    want = set(int(k * step) for k in range(total if step == 1 else sample))
    fl = _chip(sectors).flash
    img = bytearray(b"\xff" * (sectors * 4096))
    cuts = 0
    viol = 0
    h = 0
    for c in range(len(ops)):
        for ti in range(len(TEARS)):
            k = c * len(TEARS) + ti
            if k % nparts != part or k not in want:
                continue
            cut = bytearray(img)
            _image_apply(cut, ops[c], TEARS[ti])
            o = JournalOracle(events, c)
            bad = check(fl, cut, sectors, ackpath, o)
            cuts += 1
            if bad:
                viol += 1
                print("@@JSON " + json.dumps({"violation": {"write": c, "tear": TEARS[ti], "op": ops[c][0],
                                                            "problems": bad[:5]}}))
        _image_apply(img, ops[c])
        h = (h * 31 + ops[c][0] + ops[c][1] + (len(ops[c][2]) if ops[c][0] == 0 else ops[c][2])) & 0xFFFFFFF
    try:
        os.remove(ackpath)
    except OSError:
        pass
    erases = sum(1 for op in ops if op[0] == 1)
    fulls = sum(1 for e in events if e[1] == "full")
    print("@@JSON " + json.dumps({"summary": {
        "cuts": cuts, "violations": viol, "writes": len(ops), "erases": erases, "programs": len(ops) - erases,
        "total_cut_points": total, "loghash": h, "taps": taps, "sectors": sectors, "full_refusals": fulls,
        "laps": erases / float(sectors), "appended": j.next_seq - 1}}))


if __name__ == "__main__":
    if sys.argv[1] == "sweep":
        sweep(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
