"""Power cuts at every persistent writer of the firmware, on the simulated
device: the worker of `ykt powercut --full` (ykt_tools/powercut/writers.py
drives it and says which writers exist).

    device.py sweep INPUTS PART NPARTS SAMPLES TAPS
        SAMPLES: "journal=1500,ack=700,..." cut points per writer (0: all);
        TAPS: the scenario's length (240 in the full sweep)
        -> @@JSON {"cut": {"writer", "write", "tear", "problems"}} per failing cut point,
           then {"summary": {...}}
    device.py record INPUTS TAPS   -> @@JSON {"summary": writes per writer}

A bus validator (World: chip, partition table, littlefs on the vfs
partition, deny-list slots on raw partitions) is provisioned and booted,
then one deterministic scenario runs every writer through the firmware's
own code, each program and erase of the flash logged with the writer that
issued it:
  journal   the journal's appends (the ring on the "jrnl" partition: slots, and
            sector erases ahead of need)           ack    its ack (cursor file; littlefs: segment deletion)
  tables    catalog, fares, entitlements, config switched by their sync handlers
  keys      the trusted-key rotation          denylist  images into the free slot, deltas
Cut point (c, tear): writes 0..c-1 land, write c lands torn (none, start,
middle, end), nothing after it; the chip image is rebuilt from the log. On
each image the device boots for real (World.reboot -> App.boot) and:
  - the boot completes, with a journal, decisions (tables loaded) and sync (keys);
  - every tap whose append returned is there once, byte for byte, unless
    acked (pcutlib.check_journal); nothing is lost, nothing repeated;
  - every downloaded kind is the old or the new version, never neither or a
    mix; versions.json never claims more than the file; the deny list in
    force is the old or the new version;
  - a signed download of the writer's kind (version 1000, signed by the
    download key every keyring holds) verifies and goes live: the device is
    not locked out of updates;
  - one more tap appends, with a seq never used, and is there once after
    the journal is reopened.
"""
import sys

DEV = 4242
BOARD = "bus_validator"
TAPS = 240
VERIFY_VERSION = 1000
TABLES = ("fares", "catalog", "entitlements", "config")
FILES = ("keys",) + TABLES


def _inputs(path):
    import json
    import binascii

    with open(path) as f:
        d = json.load(f)

    def b(x):
        if isinstance(x, str):
            return binascii.unhexlify(x)
        if isinstance(x, list):
            return [b(y) for y in x]
        return dict((k, b(v)) for k, v in x.items())

    return dict((k, b(v) if k != "meta" else v) for k, v in d.items())


class Log:
    """Every program and erase of the chip, with the writer that issued it."""

    def __init__(self, flash):
        self.ops = []
        self.tag = "boot"
        self.events = []
        p, e = flash.program, flash.erase
        log = self.ops
        me = self

        def program(addr, data):
            log.append((0, addr, bytes(data), me.tag))
            p(addr, data)

        def erase(addr, n):
            log.append((1, addr, n, me.tag))
            e(addr, n)

        flash.program = program
        flash.erase = erase

    def ev(self, kind, val):
        self.events.append((len(self.ops), kind, val))


def _world():
    import vclock
    from vhw.world import World

    vclock.reset(epoch=1795644000)
    # no littlefs file times: two processes must record the same writes
    return World(BOARD, uid=b"\x24\x0a\xc4\x00\x42\x42", epoch=1795644000, net=False, mtime=False)


def _boot(w, cause=None):
    """Boot the device; its journal's segment salts come from a seeded
    source instead of os.urandom, so the recorded writes replay exactly."""
    from pcutlib import Rng

    app = w.boot() if cause is None else w.reboot(cause)
    if app.journal is not None:
        app.journal._rng = Rng(1234 + w.chip.boots)
    return app


def _provision(w, inp):
    import json
    from ykt.fs import replace_file
    from ykt.net import syncsetup

    # a back office is configured (sync exists) but never reached: nothing steps the loop
    w.write_json("config.json", {"device_id": DEV, "backoffice": "http://192.0.2.1", "sync_interval_s": 60})
    w.write_json("data/profile.json", json.loads(inp["profile"]))
    for kind in FILES:
        replace_file(syncsetup.path(w.root, kind), inp[kind][0])
    replace_file(w.root + "/data/versions.json", json.dumps(dict((k, 1) for k in FILES)).encode())
    for name in ("dev_key", "tok_key", "jrnl_key"):
        w.nvs_set(name, inp[name])
    import esp32
    from ykt.rules.denylist import DenyList

    dl = DenyList(esp32.Partition.find(esp32.Partition.TYPE_DATA, label="dlist_a")[0],
                  esp32.Partition.find(esp32.Partition.TYPE_DATA, label="dlist_b")[0])
    dl.install(inp["dl_image"][0])


def _handler(app, name):
    for h in app.sync.handlers:
        if h.name == name:
            return h
    raise AssertionError("no handler for %s" % name)


def _header(version, base=0):
    from ykt.sec import signed

    h = signed.Header()
    h.version = version
    h.base = base
    return h


def _commit(app, kind, payload, version, base=0):
    """A download of `kind` goes live through its handler, as after its
    signature verified (the deny list streams an image into its free slot)."""
    h = _handler(app, kind)
    sink = h.open()
    if sink is not None:
        mv = memoryview(payload)
        for o in range(0, len(payload), 1024):
            sink.write(mv[o:o + 1024])
        h.commit(_header(version, base), sink, None)
    else:
        h.commit(_header(version, base), None, bytearray(payload))


def scenario(w, log, inp, taps=TAPS):
    """Every writer, many times, through the firmware's own code."""
    from ykt import taprec
    from pcutlib import tap

    full = _full_errors()
    app = _boot(w)
    ver = dict((k, 1) for k in FILES)
    dlv = 10                 # deny-list version in force (image or delta); provisioned: image 10
    img = 1                  # image version in force
    nimg = len(inp["dl_image"])
    nd = 0
    for i in range(taps):
        if i in (90, 180):   # clean reboots: the next tap opens a new segment
            log.tag = "boot"
            app = _boot(w, "hard")
        j = app.journal
        log.tag = "journal"
        log.ev("append_start", j.next_seq)
        t = tap(i)
        try:
            seq = j.append(t)
            log.ev("append_ret", (seq, taprec.pack(t)))
        except full:
            log.ev("full", j.next_seq)
        if i % 7 != 6 and hasattr(j, "idle"):
            j.idle()         # the ring's erase-ahead between taps (every 7th tap: the append erases)
        if i % 6 == 5:
            batch = j.pending(8)
            if batch:
                log.tag = "ack"
                log.ev("ack_start", batch[-1].seq)
                j.ack(batch[-1].seq)
                log.ev("ack_ret", batch[-1].seq)
        if i % 10 == 3:
            kind = TABLES[(i // 10) % len(TABLES)]
            v = ver[kind] + 1
            if v <= len(inp[kind]):
                log.tag = "tables"
                log.ev("cfg_start", (kind, v))
                _commit(app, kind, inp[kind][v - 1], v)
                ver[kind] = v
                log.ev("cfg_ret", (kind, v))
        if i % 20 == 7 and ver["keys"] < len(inp["keys"]):
            v = ver["keys"] + 1
            log.tag = "keys"
            log.ev("cfg_start", ("keys", v))
            _commit(app, "keys", inp["keys"][v - 1], v)
            ver["keys"] = v
            log.ev("cfg_ret", ("keys", v))
        if i % 40 == 27 and img < nimg:
            log.tag = "denylist"
            log.ev("dl_start", 10 * (img + 1))
            _commit(app, "denylist", inp["dl_image"][img], 10 * (img + 1))
            img += 1
            dlv = 10 * img
            log.ev("dl_ret", dlv)
            nd = 0
        elif i % 20 == 13 and nd < 5:
            nd += 1
            log.tag = "denylist"
            log.ev("dl_start", dlv + 1)
            _commit(app, "denylist", inp["dl_delta"][img - 1][nd - 1], dlv + 1, dlv)
            dlv += 1
            log.ev("dl_ret", dlv)
    log.tag = "end"
    return app


class Oracle:
    """What must hold at cut point c: the journal's part (pcutlib) and every
    download kind's allowed versions."""

    def __init__(self, events, c):
        from pcutlib import JournalOracle

        self.j = JournalOracle(events, c)
        ret = dict((k, 1) for k in FILES)
        started = None
        dl_ret, dl_started = 10, None      # provisioned with image version 10
        self.last_kind = "fares"
        for w, kind, val in events:
            if w > c:
                break
            if kind == "cfg_start":
                started = val
                self.last_kind = val[0]
            elif kind == "cfg_ret":
                ret[val[0]] = val[1]
                started = None
            elif kind == "dl_start":
                dl_started = val
                self.last_kind = "denylist"
            elif kind == "dl_ret":
                dl_ret, dl_started = val, None
        self.ret = ret
        self.ok = dict((k, {ret[k]}) for k in FILES)
        if started is not None:
            self.ok[started[0]].add(started[1])
        self.dl_ok = {dl_ret} if dl_started is None else {dl_ret, dl_started}


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def check(w, inp, o, writer):
    """Boot the image now on the chip and check every invariant. -> violations."""
    import json
    from pcutlib import check_journal, tap
    from ykt.net import syncsetup

    try:
        app = w.reboot("power")
    except Exception as e:  # the device must boot after any cut
        return ["boot failed: %r" % (e,)]
    bad = []
    if app.journal is None or app.sync is None or app.decider is None:
        return ["booted without %s: %r" % (", ".join(n for n, x in (("journal", app.journal), ("sync", app.sync),
                                                                     ("decisions", app.decider)) if x is None),
                                          app.errors[-3:])]
    bad += check_journal(app.journal, o.j)
    held = syncsetup.Versions(w.root)
    for kind in FILES:
        try:
            raw = _read(syncsetup.path(w.root, kind))
        except OSError as e:
            bad.append("%s missing: %r" % (kind, e))
            continue
        v = None
        for cand in o.ok[kind]:
            if raw == inp[kind][cand - 1]:
                v = cand
        if v is None:
            bad.append("%s is none of versions %r" % (kind, sorted(o.ok[kind])))
            continue
        rec = held.get(kind)
        if rec > v or rec < o.ret[kind] - 1:
            bad.append("versions.json holds %s %d, the file %d (last returned %d)" % (kind, rec, v, o.ret[kind]))
    if app.denylist.version not in o.dl_ok:
        bad.append("deny list version %d, expected one of %r" % (app.denylist.version, sorted(o.dl_ok)))
    bad += _verify(app, inp, writer, o)
    # one more tap: appended with a seq never used, there once after reopening
    j = app.journal
    ever = max([0] + list(o.j.returned.keys()))
    if j.full:
        j.ack(j.next_seq - 1)
    try:
        if hasattr(j, "idle"):
            j.idle()
        s = j.append(tap(999))
    except _full_errors():
        return bad + ["journal still full after acking everything"]
    if s <= ever:
        bad.append("post-cut tap got seq %d, %d was used" % (s, ever))
    j.close()
    j2 = _reopen(j, app.secrets["jrnl_key"])
    n = sum(1 for r in j2.pending(100000, after=0) if r.seq == s)
    if n != 1:
        bad.append("post-cut tap %d present %d times" % (s, n))
    j2.close()
    return bad


def _full_errors():
    """JournalFull of either journal (the ring on a "jrnl" partition, or
    littlefs segments on a layout without one)."""
    from ykt.journal import JournalFull as LF
    from ykt.jring import JournalFull as RF

    return (LF, RF)


def _reopen(j, key):
    """The same journal opened again, as the next boot would."""
    if hasattr(j, "part"):
        from ykt.jring import RingJournal

        return RingJournal(j.part, key, j.ack_path).open()
    from ykt.journal import Journal

    return Journal(j.dir, key).open()


def _verify(app, inp, writer, o):
    """The next signed download of the writer's kind verifies with the
    keyring that survived the cut and goes live."""
    from ykt.sec import signed

    kind = {"journal": "fares", "ack": "fares"}.get(writer, o.last_kind)
    if kind == "denylist":
        env = inp["verify_delta"].get(str(app.denylist.version))
        if env is None:
            return ["no delta prepared for deny list version %d" % app.denylist.version]
    else:
        env = inp["verify"][kind]
    h = _handler(app, kind)
    sink = h.open()
    try:
        r = signed.Reader(app.sync.keyring, h.codes, h.version(), h.max_len, DEV, sink)
        r.feed(env)
        hdr = r.finish()
        h.commit(hdr, sink, r.payload() if sink is None else None)
    except Exception as e:  # refused: locked out, or the state it checks against is wrong
        return ["signed %s download refused after the cut: %r" % (kind, e)]
    if h.version() != VERIFY_VERSION and not (kind == "denylist" and app.denylist.version == VERIFY_VERSION):
        return ["signed %s download did not go live (version %d)" % (kind, h.version())]
    return []


def _apply(blocks, op, tear=None):
    """One logged write on a sparse image {block: bytes}, whole or torn."""
    from vhw.flash import BLOCK, tear_len

    kind, addr, data, _ = op
    if kind == 1:
        n = data if tear is None else tear_len(data, tear)
        pos = 0
        while pos < n:
            i = (addr + pos) // BLOCK
            k = min(BLOCK, n - pos)
            if k == BLOCK:
                blocks.pop(i, None)
            else:
                b = bytearray(blocks.get(i, b"\xff" * BLOCK))
                b[:k] = b"\xff" * k
                blocks[i] = bytes(b)
            pos += k
        return
    n = len(data) if tear is None else tear_len(len(data), tear)
    pos = 0
    while pos < n:
        i = (addr + pos) // BLOCK
        o = (addr + pos) % BLOCK
        k = min(BLOCK - o, n - pos)
        b = bytearray(blocks.get(i, b"\xff" * BLOCK))
        for x in range(k):
            b[o + x] &= data[pos + x]
        blocks[i] = bytes(b)
        pos += k


def record(inp, taps=TAPS):
    w = _world()
    _provision(w, inp)
    flash = w.chip.flash
    snap = flash.snapshot()
    log = Log(flash)
    scenario(w, log, inp, taps)
    return w, snap, log


def _summary(log):
    per = {}
    for op in log.ops:
        per[op[3]] = per.get(op[3], 0) + 1
    h = 0
    for op in log.ops:
        h = (h * 31 + op[0] * 7 + op[1] + (len(op[2]) if op[0] == 0 else op[2])) & 0xFFFFFFFF
    return per, h


def worker_sweep(argv):
    import gc
    import json
    from vhw.flash import TEARS

    inp = _inputs(argv[0])
    part, nparts = int(argv[1]), int(argv[2])
    want = dict((kv.split("=")[0], int(kv.split("=")[1])) for kv in argv[3].split(","))
    w, snap, log = record(inp, int(argv[4]) if len(argv) > 4 else TAPS)
    per, h = _summary(log)
    flash = w.chip.flash
    del flash.program          # recording is over: the chip's own methods again
    del flash.erase
    # the cut points: per writer, a sample spread evenly over its writes x tears
    pts = []
    for writer in want:
        idx = [k for k, op in enumerate(log.ops) if op[3] == writer]
        total = len(idx) * len(TEARS)
        n = want[writer] if 0 < want[writer] < total else total
        for x in range(n):
            y = x * total // n
            pts.append((idx[y // len(TEARS)], TEARS[y % len(TEARS)], writer))
    pts.sort()
    pts = [p for k, p in enumerate(pts) if k % nparts == part]
    cur = dict(snap)
    applied = 0
    counts = {}
    viol = {}
    for c, tear, writer in pts:
        while applied < c:
            _apply(cur, log.ops[applied])
            applied += 1
        img = dict(cur)
        _apply(img, log.ops[c], tear)
        flash.restore(img)
        bad = check(w, inp, Oracle(log.events, c), writer)
        counts[writer] = counts.get(writer, 0) + 1
        if bad:
            viol[writer] = viol.get(writer, 0) + 1
            print("@@JSON " + json.dumps({"cut": {"writer": writer, "write": c, "tear": tear, "problems": bad[:4]}}))
        gc.collect()
    print("@@JSON " + json.dumps({"summary": {"cut_points": counts, "violations": viol, "writes": per,
                                              "loghash": h, "total_writes": len(log.ops)}}))


def worker_record(argv):
    import json

    w, snap, log = record(_inputs(argv[0]), int(argv[1]) if len(argv) > 1 else TAPS)
    per, h = _summary(log)
    import gc

    gc.collect()
    print("@@JSON " + json.dumps({"summary": {"writes": per, "loghash": h, "total_writes": len(log.ops),
                                              "events": len(log.events), "heap_used": gc.mem_alloc()}}))


if __name__ == "__main__":
    {"sweep": worker_sweep, "record": worker_record}[sys.argv[1]](sys.argv[2:])
