# `ykt bench denylist` worker (MicroPython): the firmware's deny-list reader
# and a sorted-array baseline over files read as block devices: time, block
# reads and heap per lookup.
#   denylist.py IMAGE BASELINE TOKENS HITS MISSES BASELINE_ENTRIES   ->   @@JSON {"ours": ..., "baseline": ...}
import sys, time, gc, json, binascii, array
from ykt.rules.denylist import DenyList

class FileDev:
    def __init__(self, path):
        self.f = open(path, "rb")
        self.f.seek(0, 2)
        self.n = self.f.tell() // 4096
        self.reads = 0
    def readblocks(self, b, buf, off=0):
        self.reads += 1
        self.f.seek(b * 4096 + off)
        self.f.readinto(buf)
    def ioctl(self, op, arg):
        return self.n if op == 4 else (4096 if op == 5 else 0)

class Blank:
    def readblocks(self, b, buf, off=0):
        for i in range(len(buf)):
            buf[i] = 0xFF
    def ioctl(self, op, arg):
        return 1 if op == 4 else (4096 if op == 5 else 0)

class Baseline:
    # sorted 8-byte tokens + status byte, 455 per block, binary search
    def __init__(self, dev, n):
        self.dev = dev
        self.n = n
        self.buf = bytearray(4096)
    def lookup(self, tok, off=0, foreign=False):
        buf = self.buf
        lo = 0
        hi = self.n - 1
        cur = -1
        while lo <= hi:
            mid = (lo + hi) >> 1
            b = mid // 455
            if b != cur:
                self.dev.readblocks(b, buf)
                cur = b
            o = (mid - b * 455) * 9
            c = 0
            for i in range(8):
                c = buf[o + i] - tok[off + i]
                if c:
                    break
            if not c:
                return buf[o + 8]
            if c < 0:
                lo = mid + 1
            else:
                hi = mid - 1
        return 0

def measure(name, fn, dev, blob, nh, nm, nf=0):
    # the last nf tokens are other provinces' cards: looked up with foreign=True
    n = nh + nm + nf
    res = bytearray(n)
    gc.collect()
    a0 = gc.mem_alloc()
    t0 = time.ticks_us()
    for i in range(nh):
        fn(blob, i * 8)
    t1 = time.ticks_us()
    for i in range(nh, nh + nm):
        fn(blob, i * 8)
    for i in range(nh + nm, n):
        fn(blob, i * 8, True)
    t2 = time.ticks_us()
    alloc = gc.mem_alloc() - a0
    rmax = 0
    ts = array.array("I", bytes(4 * n))
    for i in range(n):
        r0 = dev.reads
        s0 = time.ticks_us()
        res[i] = fn(blob, i * 8, i >= nh + nm)
        ts[i] = time.ticks_diff(time.ticks_us(), s0)
        if dev.reads - r0 > rmax:
            rmax = dev.reads - r0
    tl = sorted(ts)
    worst = tl[-1]
    p99 = tl[(n * 99) // 100]
    return {"hit_us": time.ticks_diff(t1, t0) / nh, "miss_us": time.ticks_diff(t2, t1) / (nm + nf),
            "mean_us": time.ticks_diff(t2, t0) / n, "max_us": worst, "p99_us": p99, "reads_max": rmax,
            "alloc_per_lookup": alloc / n, "results": binascii.hexlify(res).decode()}

img, base, toks, nh, nm, nbase = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
nf = int(sys.argv[7]) if len(sys.argv) > 7 else 0   # a format-3 image: foreign lookups last
with open(toks, "rb") as f:
    blob = f.read()
out = {}
dev = FileDev(img)
gc.collect()
a0 = gc.mem_alloc()
dl = DenyList(dev, Blank())
gc.collect()
heap = gc.mem_alloc() - a0
if nf:   # with a full delta in force: the overlay's RAM is counted too
    import struct
    hd = struct.pack(">4sBBHIII", b"YKDD", 1, 0, 512, dl.image_version, dl.image_version + 1, 0)
    body = bytearray(hd)
    for i in range(512):
        body += struct.pack(">II", 0xFFFFFFFF, i) + b"\x01"   # top tokens: never a sampled card
    body += struct.pack(">I", binascii.crc32(body) & 0xFFFFFFFF)
    dl.apply_delta(body)
    del body
gc.collect()
out["ours"] = measure("ours", dl.lookup, dev, blob, nh, nm, nf)
out["ours"]["heap_bytes"] = heap
out["ours"]["ram_bytes"] = len(dl._buf) + len(dl._d4) + len(dl._tb) + (len(dl._db) if dl._db else 0)
out["ours"]["overlay_ram_bytes"] = len(dl._db) if dl._db else 0
dl.check_crc = True
r = measure("ours_crc", dl.lookup, dev, blob, nh, nm, nf)
out["ours"]["crc_mean_us"] = r["mean_us"]
out["ours"]["crc_p99_us"] = r["p99_us"]
out["ours"]["crc_results"] = r["results"]
del dl
gc.collect()
if base == "-":
    print("@@JSON " + json.dumps(out))
    sys.exit(0)
bdev = FileDev(base)
a0 = gc.mem_alloc()
bl = Baseline(bdev, nbase)
gc.collect()
heap = gc.mem_alloc() - a0
out["baseline"] = measure("baseline", bl.lookup, bdev, blob, nh, nm)
out["baseline"]["heap_bytes"] = heap
out["baseline"]["ram_bytes"] = len(bl.buf)
print("@@JSON " + json.dumps(out))
