# Deny list on both runtimes: exact lookups (hits with their status, misses),
# boundary tokens, the empty list, <= 2 block reads, no allocation per
# lookup, pinned image/delta bytes. Updates, deltas, power cuts and
# corruption are in t_denylist_update.py.
import hashlib
import sys

import fwtest
import t_denylist_util as U
from yktsrv import dlbuild
from ykt.rules import dlformat as F
from ykt.rules.denylist import DenyList

MP = sys.implementation.name != "cpython"


def _install(toks, version, fill=F.BLK_PAYLOAD, status=U.status_of):
    img = U.image(toks, version, status) if fill == F.BLK_PAYLOAD else dlbuild.encode_image(
        toks, bytes(status(t) for t in toks), version, 1795000000, fill=fill)
    a, b = U.slots(len(img) // F.BLOCK + 1)
    dl = DenyList(a, b)
    dl.install(img)
    return dl, img


def test_lookup_exact_random_set():
    n = U.size_n()
    toks = U.make_set(n, 1)
    # on the small heap, part-filled blocks give several blocks and splits
    dl, img = _install(toks, 7, fill=1024 if MP else F.BLK_PAYLOAD)
    assert dl.version == 7 and dl.image_version == 7 and dl.count == len(toks)
    assert dl.slot == 0
    assert F.parse_header(img).data_blocks >= 4
    assert U.check_all(dl, toks) == 2
    part = dl._part
    for v in U.misses(toks, 300, 99):
        r0 = part.reads
        assert dl.lookup(U.tok(v)) == 0
        assert part.reads - r0 <= 2


def test_lookup_token_inside_a_larger_buffer():
    toks = U.make_set(50, 3)
    dl, _ = _install(toks, 1)
    buf = bytearray(5) + U.tok(toks[7]) + bytearray(3)
    assert dl.lookup(buf, 5) == U.status_of(toks[7])
    assert dl.lookup(memoryview(buf), 4) == 0


def test_boundary_tokens():
    m = U.M64
    k = dlbuild.choose_k(40)
    step = 1 << (64 - k)  # bucket width: tokens either side of bucket edges
    extra = (0, 1, 2, m, m - 1, step - 1, step, step + 1, 5 * step - 1, 5 * step, m - step, m - step + 1)
    toks = U.make_set(28, 4, extra)
    assert len(toks) == 40 and dlbuild.choose_k(len(toks)) == k
    dl, _ = _install(toks, 3)
    U.check_all(dl, toks)
    for v in (3, m - 2, step - 2, step + 2, 5 * step + 1, 5 * step - 2, m - step - 1):
        if not U.contains(toks, v):
            assert dl.lookup(U.tok(v)) == 0, "%016x" % v


def test_every_status_and_dense_bucket():
    # many tokens in one bucket (still uniform overall) and each status
    base = 0x7000000000000000
    extra = tuple(base + i * 977 for i in range(24))
    toks = U.make_set(40, 5, extra)
    for st in (1, 2, 3, 4):
        dl, _ = _install(toks, st, status=lambda t: st)
        U.check_all(dl, toks, lambda t: st)
    assert dl.lookup(U.tok(base + 1)) == 0


def test_empty_list():
    a, b = U.slots(4)
    dl = DenyList(a, b)
    assert dl.version == 0 and dl.count == 0 and dl.slot == -1
    assert dl.boot_reasons == ["bad_magic", "bad_magic"]
    r = a.reads + b.reads
    assert dl.lookup(U.tok(0)) == 0 and dl.lookup(U.tok(U.M64)) == 0
    assert a.reads + b.reads == r  # no flash read without a list
    img = dlbuild.encode_image([], b"", 9, 0)
    assert len(img) == F.BLOCK
    assert dl.install(img) == 9
    assert dl.count == 0 and dl.lookup(U.tok(12345)) == 0
    dl2 = DenyList(a, b)  # reboot
    assert dl2.version == 9 and dl2.slot == 0 and dl2.lookup(U.tok(1)) == 0


def test_bucket_overflow_is_a_build_error():
    toks = list(range(1000))  # sequential numbers, not keyed hashes
    try:
        dlbuild.encode_image(toks, bytes(1 for _ in toks), 1)
    except dlbuild.BuildError:
        return
    raise AssertionError("sequential tokens must be refused")


def test_build_rejects_bad_input():
    for toks, st in (([2, 1], b"\x01\x01"), ([1, 1], b"\x01\x01"), ([1], b"\x06"), ([1], b"\x00"),
                     ([1 << 64], b"\x01")):
        try:
            dlbuild.encode_image(toks, st, 1)
        except dlbuild.BuildError:
            continue
        raise AssertionError("accepted %r %r" % (toks, st))


def test_lookup_allocates_nothing():
    import gc

    if not hasattr(gc, "mem_alloc"):
        raise fwtest.Skip("CPython has no gc.mem_alloc; the heap check runs on MicroPython")
    toks = U.make_set(300, 6)
    dl, _ = _install(toks, 2)
    blob = bytearray(8 * 40)
    for i in range(20):
        blob[i * 8:i * 8 + 8] = U.tok(toks[i * 7])
    for i, v in enumerate(U.misses(toks, 20, 8)):
        blob[160 + i * 8:168 + i * 8] = U.tok(v)
    d = F.pack_delta(2, 3, [(U.tok(toks[0]), 0)])
    dl.apply_delta(d)
    dl.lookup(blob, 0)
    gc.collect()
    a0 = gc.mem_alloc()
    for rep in range(5):
        for i in range(40):
            dl.lookup(blob, i * 8)
    assert gc.mem_alloc() - a0 == 0, gc.mem_alloc() - a0


# Pinned bytes: the back office, the devices and old images depend on them.
_VEC_TOKS = (0, 0x0123456789ABCDEF, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFEDCBA9876543210, U.M64)
_VEC_STAT = (2, 1, 4, 3, 1, 3)
_VEC_IMG_SHA = "5809cb4902ca6f8753c05983d6e17f9b5210c68d0f2c3fdbe61773cf8774f3c2"
_VEC_DELTA_HEX = ("594b4444010000020000002a0000002b6afd8724"
                  "0123456789abcdef00" "111111111111111102" "7969e817")


def test_pinned_image_vector():
    img = dlbuild.encode_image(list(_VEC_TOKS), bytes(_VEC_STAT), 42, 1795000000)
    assert len(img) == 3 * F.BLOCK
    assert img[0:12] == b"YKDL\x01\x03\x03\x05\x00\x00\x00\x2a", img[0:12]
    assert hashlib.sha256(img).digest().hex() == _VEC_IMG_SHA
    ent = list(dlbuild.iter_entries(img))
    assert ent == list(zip(_VEC_TOKS, _VEC_STAT))
    a, b = U.slots(4)
    dl = DenyList(a, b)
    dl.install(img)
    for t, s in zip(_VEC_TOKS, _VEC_STAT):
        assert dl.lookup(U.tok(t)) == s


def test_pinned_delta_vector():
    d = F.pack_delta(42, 43, [(U.tok(0x0123456789ABCDEF), 0), (U.tok(0x1111111111111111), 2)], 1795000100)
    assert d.hex() == _VEC_DELTA_HEX
    assert F.parse_delta(d) == (42, 43, 2, 1795000100)


def test_image_file_looked_up_through_filedev():
    # yktsrv.dlbuild.FileDev: the host reads an image file with the device's
    # own DenyList (`ykt denylist lookup`), on either runtime
    import os

    toks = U.make_set(60, 8)
    img = U.image(toks, 12)
    path = "/tmp/ykt-dl-%s.img" % "".join("%02x" % b for b in os.urandom(4))
    with open(path, "wb") as f:
        f.write(img)
    dev = dlbuild.FileDev(path)
    try:
        assert dev.ioctl(4, 0) == len(img) // F.BLOCK and dev.ioctl(5, 0) == F.BLOCK
        dl = DenyList(dev, dlbuild.BlankDev())
        assert dl.slot == 0 and dl.version == 12 and dl.count == len(toks)
        U.check_all(dl, toks)
        for v in U.misses(toks, 20, 5):
            assert dl.lookup(U.tok(v)) == 0
    finally:
        dev.close()
        os.remove(path)


def test_format_2_image_holds_unpaid_cards():
    # A list with an `unpaid` entry (dlformat.ST_UNPAID, a returned
    # collection) is written in format 2: 3-bit statuses and a fifth count.
    # Lookups return every status exactly; the same set without unpaid
    # entries stays format 1 (readable by firmware that predates the status).
    toks = U.make_set(120, 11)

    def st(v):
        return F.ST_UNPAID if v % 7 == 0 else U.status_of(v)

    assert any(st(t) == F.ST_UNPAID for t in toks)
    dl, img = _install(toks, 21, status=st)
    h = F.parse_header(img)
    assert img[4] == F.FORMAT_UNPAID and h.size == F.HDR_SIZE_2 and h.sb == 3
    assert len(h.status_counts) == 5 and h.status_counts[4] == sum(1 for t in toks if st(t) == F.ST_UNPAID)
    assert U.check_all(dl, toks, status=st) == 2
    got = sorted(dlbuild.iter_entries(img))
    assert got == sorted((t, st(t)) for t in toks)
    dl1, img1 = _install(toks, 22)
    assert img1[4] == F.FORMAT and F.parse_header(img1).size == F.HDR_SIZE
    # a delta may set and clear the status too
    tok = U.tok(toks[3])
    dl1.apply_delta(F.pack_delta(22, 23, [(tok, F.ST_UNPAID)]))
    assert dl1.lookup(tok) == F.ST_UNPAID
    dl1.apply_delta(F.pack_delta(22, 24, [(tok, 0)]))
    assert dl1.lookup(tok) == 0
