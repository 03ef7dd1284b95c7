"""Power-cut sweep of the tap journal on the real MicroPython + littlefs: the
worker (`ykt powercut` and `ykt bench journal` start it through the launcher).

    journal.py sweep PART NPARTS SAMPLE LIVE_EVERY TAPS
        -> @@JSON {"violation": {...}} per failing cut point, then the summary
    journal.py bench TAPS BLOCKS OTHER_KB FILL   -> @@JSON {journal cost figures}

Method (littlefs' own emulated-bd testing, SQLite's crash tests):
1. Format a NOR-flash block device (vhw/lfsdev.py), mount littlefs, and run
   a deterministic scenario once: taps appended, uploads (pending) and acks,
   segment rotation and deletion, a full journal refusing taps, a reboot, and
   downloads going live through the firmware's own path (ykt.net.syncsetup's
   kinds table: a trusted-keys rotation, the device's trust anchor, and a fare
   table; each written with ykt.fs.replace_file, then versions.json). Every
   program and erase is logged with the oracle events (append/ack/switch
   start and return, as write counters).
2. Cut point (c, tear): writes 0..c-1 land, write c lands torn (none, start,
   middle, end). The image is rebuilt from the log, which is exactly what an
   in-process cut leaves: that equality is itself checked by re-running the
   scenario with LfsBlockDev.cut_after_writes(c, tear) raising
   vclock.DeviceReset("power") for a subset of the cut points.
3. On each image: littlefs mounts; Journal.open() recovers; every tap whose
   append returned (feedback given) and is not acked is present exactly once
   with its exact bytes; only the in-flight tap may additionally appear; the
   cursor is between the last returned and the last started ack; no frame is
   corrupt; next_seq is above every seq ever returned or stored. After the
   boot's leftover cleanup (ykt.fs.remove_leftovers: a .tmp is a replacement
   that never got renamed) no .tmp is left, data/keys.bin and data/fares.bin
   load as boot loads them (syncsetup.load) and are each the old or the new
   version, never neither and never a mix, and versions.json never claims a
   version newer than the file. Then one more tap is appended and the journal
   reopened: it is there once, with a never-used seq.
"""
import sys

KEY = b"powercut-test-k!"
BLOCKS = 48
BSIZE = 4096
SEG_RECS = 16
CAP_SEGS = 4
MOUNT = "/pc"
JDIR = MOUNT + "/j"
DATA = MOUNT + "/data"
DEV = 1
KINDS = ("keys", "fares")        # the downloads switched, alternately


from pcutlib import Rng, tap as _tap, JournalOracle, check_journal as _check_journal  # noqa: E402


def kind_bytes(kind, version):
    """The payload of a download of `kind` at `version`, deterministic and
    distinct per version (a mix of two versions fails to parse or compare).
    keys: one RSA-2048 download key whose modulus carries the version (the
    lockout check needs a download key); fares: a flat fare table whose base
    fare carries it. Both span several program units."""
    import struct
    from binascii import crc32

    if kind == "keys":
        n = bytearray(256)
        n[0] = 0xC0
        struct.pack_into(">I", n, 1, version)
        for k in range(5, 256):
            n[k] = (version * 37 + k) & 0xFF
        return bytes(bytearray(struct.pack("<BBBIH", 1, 1, 1, 65537, 256)) + n)
    from ykt.rules import fares as F

    body = struct.pack(F._PFMT, 100 + version, 30, 0, 0, 0, 0, 0, 0, 0, 0, 14400, 0, 0,
                       0, 0, 0, 0, 0, 0, 0)
    return struct.pack(F.HDR_FMT, b"YKTF", F.FORMAT_VERSION, F.MODE_FLAT, version, 301, 0, len(body),
                       crc32(body) & 0xFFFFFFFF) + body


def _provision():
    """The device as provisioned: version 1 of each kind on flash."""
    import os
    from ykt.fs import replace_file
    from ykt.net import syncsetup

    try:
        os.mkdir(DATA)
    except OSError:
        pass
    for kind in KINDS:
        replace_file(syncsetup.path(MOUNT, kind), kind_bytes(kind, 1))


def _sync():
    """The firmware's sync service on MOUNT (no network: commits are driven
    by the scenario), and what went live through the swap callback."""
    from ykt.net import syncsetup

    live = []
    s = syncsetup.make_sync(MOUNT, None, DEV, b"k" * 32, None, None,
                            lambda kind, obj: live.append((kind, obj.version)), _raise)
    return s, live


def _raise(where, e):
    raise e


def _switch(s, kind, version):
    """A download of `kind` goes live, as after its signature verified."""
    from ykt.sec import signed

    hdr = signed.Header()
    hdr.version = version
    for h in s.handlers:
        if h.name == kind:
            h.commit(hdr, None, kind_bytes(kind, version))
            return
    raise AssertionError("no handler for %s" % kind)


def _journal(rng_seed):
    from ykt.journal import Journal, SEG_RECS as _unused  # noqa: F401

    j = Journal(JDIR, KEY, capacity_bytes=CAP_SEGS * BSIZE, seg_recs=SEG_RECS, rng=Rng(rng_seed))
    return j


def scenario(bd, ev, taps):
    """The workload. ev(kind, value) records oracle events with bd.writes."""
    from ykt import taprec
    from ykt.journal import JournalFull

    j = _journal(1234).open()
    sy, _live = _sync()
    ver = {k: 1 for k in KINDS}
    nsw = 0
    for i in range(taps):
        if i == 70 or i == 260:  # a clean reboot: the next tap opens a new segment
            j.close()
            j = _journal(99).open()
        t = _tap(i)
        ev("append_start", j.next_seq)
        try:
            seq = j.append(t)
            ev("append_ret", (seq, taprec.pack(t)))
        except JournalFull:
            ev("full", j.next_seq)
        # uploads: every 5th tap a batch of up to 6 is committed, except during
        # an outage (taps 40..99) long enough to fill the journal
        if i % 5 == 4 and not (40 <= i < 100 or 300 <= i < 350):
            batch = j.pending(6)
            if batch:
                up = batch[-1].seq
                ev("ack_start", up)
                j.ack(up)
                ev("ack_ret", up)
        if i % 23 == 11:
            kind = KINDS[nsw % len(KINDS)]
            nsw += 1
            ver[kind] += 1
            ev("cfg_start", (kind, ver[kind]))
            _switch(sy, kind, ver[kind])
            ev("cfg_ret", (kind, ver[kind]))
    j.close()


def _fresh_device():
    import vfs
    from vhw.lfsdev import LfsBlockDev

    bd = LfsBlockDev(BLOCKS, BSIZE)
    vfs.VfsLfs2.mkfs(bd)
    vfs.mount(vfs.VfsLfs2(bd, mtime=False), MOUNT)
    _provision()
    return bd


def _umount():
    import vfs

    try:
        vfs.umount(MOUNT)
    except OSError:
        pass


def record(taps):
    """Run the scenario once; return (initial image, write log, events)."""
    bd = _fresh_device()
    init = bytes(bd.data)
    bd.log = []
    events = []
    w0 = bd.writes

    def ev(kind, val):
        events.append((bd.writes - w0, kind, val))

    scenario(bd, ev, taps)
    _umount()
    return init, bd.log, events


class Oracle(JournalOracle):
    """What must hold at cut point c, from the recorded events: the
    journal's part (pcutlib.JournalOracle) and the downloads switched."""

    def __init__(self, events, c):
        JournalOracle.__init__(self, events, c)
        self.cfg_ok = {}        # kind -> versions its file may hold
        cfg_ret = {k: 1 for k in KINDS}
        cfg_started = None
        for w, kind, val in events:
            if w > c:
                break
            if kind == "cfg_start":
                cfg_started = val
            elif kind == "cfg_ret":
                cfg_ret[val[0]] = val[1]
                cfg_started = None
        self.cfg_ret = cfg_ret
        for k in KINDS:
            self.cfg_ok[k] = {cfg_ret[k]}
        if cfg_started is not None:
            self.cfg_ok[cfg_started[0]].add(cfg_started[1])


def check_image(img, o):
    """Mount a post-cut image and check every invariant. Returns a list of
    violation strings (empty when the cut point passes)."""
    import vfs
    from vhw.lfsdev import LfsBlockDev
    from ykt.journal import Journal, JournalFull

    bad = []
    bd = LfsBlockDev(BLOCKS, BSIZE, data=img)
    try:
        vfs.mount(vfs.VfsLfs2(bd, mtime=False), MOUNT)
    except OSError as e:
        return ["mount failed: %r" % (e,)]
    try:
        bad += _check_files(o)
        j = Journal(JDIR, KEY, capacity_bytes=CAP_SEGS * BSIZE, seg_recs=SEG_RECS, rng=Rng(7)).open()
        bad += _check_journal(j, o)
        ever = max([0] + list(o.returned.keys()))
        if j.full:
            j.ack(j.next_seq - 1)  # the back office catches up, as it would
        t = _tap(999)
        expect = j.next_seq
        try:
            s = j.append(t)
        except JournalFull:
            bad.append("journal still full after acking everything")
            s = None
        j.close()
        if s is not None:
            if s != expect or s <= ever or (o.inflight is None and s in o.returned):
                bad.append("post-reboot seq %d (next %d, highest returned %d)" % (s, expect, ever))
            j2 = Journal(JDIR, KEY, capacity_bytes=CAP_SEGS * BSIZE, seg_recs=SEG_RECS, rng=Rng(8)).open()
            recs = j2.pending(100000, after=0)
            n = sum(1 for r in recs if r.seq == s)
            if n != 1:
                bad.append("post-reboot tap %d present %d times" % (s, n))
            if j2.next_seq != s + 1:
                bad.append("after reopen next_seq %d, expected %d" % (j2.next_seq, s + 1))
            j2.close()
    except Exception as e:  # any exception in recovery is a violation
        bad.append("exception: %r" % (e,))
    finally:
        _umount()
    return bad


def _check_files(o):
    """The downloads after a cut, through the boot's own steps: leftover
    cleanup, then the files loaded as boot loads them."""
    import os
    from ykt import fs
    from ykt.net import syncsetup

    bad = []
    fs.remove_leftovers(MOUNT)
    fs.remove_leftovers(DATA)
    left = [n for n in os.listdir(DATA) if n.endswith(fs.TMP)]
    if left:
        bad.append("leftovers after boot cleanup: %r" % left)
    held = syncsetup.Versions(MOUNT)
    for kind in KINDS:
        ok = sorted(o.cfg_ok[kind])
        try:
            obj = syncsetup.load(MOUNT, kind)
            with open(syncsetup.path(MOUNT, kind), "rb") as f:
                raw = f.read()
        except Exception as e:  # neither old nor new: the file is gone or refused
            bad.append("%s does not load: %r (expected version %r)" % (kind, e, ok))
            continue
        v = None
        for cand in ok:
            if raw == kind_bytes(kind, cand):
                v = cand
        if v is None:
            bad.append("%s is none of versions %r" % (kind, ok))
            continue
        if kind == "fares" and obj.version != v:
            bad.append("fares parsed as version %d, file is %d" % (obj.version, v))
        if kind == "keys" and obj.keys[0].n >> 2008 != 0xC0 << 32 | v:
            bad.append("keys parsed with another modulus than version %d" % v)
        # versions.json is written after the file: it may lag by the switch
        # in flight (one repeated download), never claim more than the file
        rec = held.get(kind)
        ret = o.cfg_ret[kind]
        if rec > v or (rec < ret and not (rec == 0 and ret == 1)):
            bad.append("versions.json holds %s %d, the file %d (last switch returned %d)" % (kind, rec, v, ret))
    return bad


def live_image(c, tear, taps):
    """Re-run the scenario with a real in-process cut at write c and return
    the flash image. Uses the simulator's FlashChip (vhw/flash.py: the chip
    the device simulation boots on) when present, else LfsBlockDev."""
    import gc
    import vclock
    import vfs

    try:
        from vhw.flash import FlashBlockDev, FlashChip
    except ImportError:
        FlashChip = None
    if FlashChip is None:
        bd = _fresh_device()
        bd.cut_after_writes(c, tear)
        chip = None
    else:
        chip = FlashChip(BLOCKS * BSIZE)
        bd = FlashBlockDev(chip, 0, BLOCKS)
        vfs.VfsLfs2.mkfs(bd)
        vfs.mount(vfs.VfsLfs2(bd, mtime=False), MOUNT)
        _provision()
        chip.cut_after_writes(c + 1, tear)  # its n counts the cut write itself
    try:
        scenario(bd, lambda k, v: None, taps)
        raise AssertionError("scenario finished before write %d" % c)
    except vclock.DeviceReset:
        pass
    if chip is None:
        img = bytes(bd.data)
    else:
        img = bytearray(b"\xff" * (BLOCKS * BSIZE))
        for i, blk in chip.snapshot().items():
            img[i * BSIZE:(i + 1) * BSIZE] = blk
        img = bytes(img)
    _umount()
    # The device stays dead: the abandoned open files are finalised (closed)
    # by this collection, now, and none of their writes reach any flash.
    gc.collect()
    return img


def live_chip_name():
    try:
        from vhw.flash import FlashChip  # noqa: F401

        return "vhw.flash.FlashChip"
    except ImportError:
        return "vhw.lfsdev.LfsBlockDev"


def worker_sweep(argv):
    """sweep PART NPARTS SAMPLE LIVE_EVERY TAPS: this process checks the cut
    points of the sample whose index is PART modulo NPARTS."""
    import json
    from vhw.lfsdev import TEARS, apply_op

    part, nparts, sample, live_every, taps = [int(a) for a in argv[:5]]
    init, log, events = record(taps)
    total = len(log) * len(TEARS)
    h = 0
    for op in log:
        h = (h * 31 + op[0] * 7 + op[1] * 13 + op[2] + len(op[3])) & 0xFFFFFFFF
    if sample and sample < total:
        idx = [(k * total) // sample for k in range(sample)]
    else:
        idx = list(range(total))
    idx = [x for x in idx if x % nparts == part]
    cur = bytearray(init)
    applied = 0
    cuts = 0
    viol = 0
    live = 0
    for x in idx:
        c = x // len(TEARS)
        tear = TEARS[x % len(TEARS)]
        while applied < c:
            apply_op(cur, BSIZE, log[applied])
            applied += 1
        img = bytearray(cur)
        apply_op(img, BSIZE, log[c], tear)
        o = Oracle(events, c)
        bad = []
        if live_every and cuts % live_every == 0:
            live += 1
            if live_image(c, tear, taps) != img:
                bad.append("replayed image differs from an in-process cut")
        bad += check_image(img, o)  # (mounting writes to img)
        cuts += 1
        if bad:
            viol += 1
            print("@@JSON " + json.dumps({"violation": {"write": c, "tear": tear, "problems": bad[:5]}}))
    print("@@JSON " + json.dumps({"summary": {"cuts": cuts, "violations": viol, "writes": len(log),
                                  "loghash": h, "live_checked": live, "taps": taps,
                                  "total_cut_points": total, "live_chip": live_chip_name()}}))


def worker_bench(argv):
    """bench TAPS BLOCKS OTHER_KB FILL: journal cost on
    a 4 MB board's littlefs (2 MB) with OTHER_KB of other files."""
    import json
    import vfs
    import time as rt
    from binascii import crc32
    from vhw.lfsdev import LfsBlockDev
    from ykt import taprec
    from ykt.journal import Journal, JournalFull

    taps, blocks, other_kb, fill = [int(a) for a in argv[:4]]

    class TimedDev(LfsBlockDev):
        """Counts the time spent in the simulated flash (Python here, C and
        SPI on the device) so that firmware CPU can be reported without it."""
        cb_us = 0

        def readblocks(self, block, buf, off=0):
            t0 = rt.ticks_us()
            LfsBlockDev.readblocks(self, block, buf, off)
            self.cb_us += rt.ticks_diff(rt.ticks_us(), t0)

        def writeblocks(self, block, buf, off=None):
            t0 = rt.ticks_us()
            LfsBlockDev.writeblocks(self, block, buf, off)
            self.cb_us += rt.ticks_diff(rt.ticks_us(), t0)

        def ioctl(self, op, arg):
            t0 = rt.ticks_us()
            r = LfsBlockDev.ioctl(self, op, arg)
            self.cb_us += rt.ticks_diff(rt.ticks_us(), t0)
            return r

    bd = TimedDev(blocks, 4096)
    bd.count_erases_per_block()
    vfs.VfsLfs2.mkfs(bd)
    vfs.mount(vfs.VfsLfs2(bd), "/flash")
    if other_kb:
        with open("/flash/other.bin", "wb") as f:
            chunk = b"\x5a" * 1024
            for _ in range(other_kb):
                f.write(chunk)
    j = Journal("/flash/j", KEY, rng=Rng(5)).open()
    free0 = vfs_stat("/flash")
    bd.erase_count = [0] * blocks
    w0, p0, e0, b0 = bd.writes, bd.progs, bd.erases, bd.prog_bytes
    t = _tap(1)
    # Per chunk of 50 taps, CPU = elapsed - time inside the flash callbacks;
    # the machine is shared, so report the median chunk (and the minimum).
    chunks = []
    i = 0
    while i < taps:
        bd.cb_us = 0
        t0 = rt.ticks_us()
        for _ in range(50):
            t.time = 1795000000 + i
            j.append(t)
            i += 1
        chunks.append((rt.ticks_diff(rt.ticks_us(), t0) - bd.cb_us) / 50)
    chunks.sort()
    cpu_us = chunks[len(chunks) // 2]
    cpu_min = chunks[0]
    taps = i
    # pack + encrypt + CRC alone (the journal's own Python per tap): best of 5
    enc_us = None
    for r in range(5):
        t0 = rt.ticks_us()
        for k in range(100):
            taprec.pack_into(j._pt, 0, t)
            j._ctr.xor(1, k, j._pt, 4, j._frame, 0, taprec.SIZE - 4)
            crc32(j._pt)
        e = rt.ticks_diff(rt.ticks_us(), t0) / 100
        enc_us = e if enc_us is None or e < enc_us else enc_us
    bd.cb_us = 0
    t0 = rt.ticks_us()
    buf = bytearray(taprec.SIZE * 100)
    got = j.pending_into(buf)
    pend_us = rt.ticks_diff(rt.ticks_us(), t0) - bd.cb_us
    res = {"taps": taps, "writes": bd.writes - w0, "progs": bd.progs - p0, "erases": bd.erases - e0,
           "prog_bytes": bd.prog_bytes - b0, "used_bytes": (free0 - vfs_stat("/flash")) * 4096,
           "cpu_append_us_unix": cpu_us, "cpu_append_us_unix_min": cpu_min, "cpu_pending100_us_unix": pend_us, "cpu_encode_us_unix": enc_us,
           "pending_got": got, "max_block_erases": max(bd.erase_count), "blocks": blocks,
           "other_kb": other_kb, "fs_blocks_free_at_start": free0}
    if fill:
        k = taps
        try:
            while True:
                j.append(t)
                k += 1
        except JournalFull:
            pass
        res["taps_until_full"] = k
        res["free_bytes_at_full"] = vfs_stat("/flash") * 4096
    j.close()
    print("@@JSON " + json.dumps(res))


def vfs_stat(path):
    import os

    return os.statvfs(path)[3]


if __name__ == "__main__":
    if sys.argv[1] == "sweep":
        worker_sweep(sys.argv[2:])
    elif sys.argv[1] == "bench":
        worker_bench(sys.argv[2:])
