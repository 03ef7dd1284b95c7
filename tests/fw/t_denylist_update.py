# Deny-list updates on both runtimes: two-slot install and reboot, power cuts
# swept over every flash operation (clean and torn), every corruption of an
# image or delta rejected with its reason while the list in force stays,
# deltas (add / change / remove, bounds, base version), flash rot.
import struct

import t_denylist_util as U
from ykt.rules import dlformat as F
from ykt.rules.denylist import DenyList
from ykt.rules.dlformat import DenyListError

_N = 150
_FILL = 512  # part-filled blocks: several data blocks from few entries


def _img(seed, version, n=_N):
    toks = U.make_set(n, seed)
    return toks, U.blocks(toks, version, _FILL)


def _inst(dl, blks):
    return U.install(dl, blks)


def _expect_error(code, fn, *args):
    try:
        fn(*args)
    except DenyListError as e:
        assert e.code == code, "want %s got %s (%s)" % (code, e.code, e.msg)
        return e
    raise AssertionError("no DenyListError, wanted " + code)


def _only(dl, toks, others):
    U.check_all(dl, toks)
    for t in others[:40]:
        if not U.contains(toks, t):
            assert dl.lookup(U.tok(t)) == 0


def test_two_slots_switch_and_reboot():
    ta, ia = _img(11, 1)
    tb, ib = _img(12, 2)
    tc, ic = _img(13, 3)
    a, b = U.slots(len(ia) + 1)
    dl = DenyList(a, b)
    assert _inst(dl, ia) == 1 and dl.slot == 0
    assert _inst(dl, ib) == 2 and dl.slot == 1
    _only(dl, tb, ta)
    dl = DenyList(a, b)  # reboot: highest valid version wins
    assert dl.version == 2 and dl.slot == 1 and dl.boot_reasons == [None, None]
    _only(dl, tb, ta)
    assert _inst(dl, ic) == 3 and dl.slot == 0
    dl = DenyList(a, b)
    assert dl.version == 3 and dl.slot == 0
    _only(dl, tc, tb)


def test_streamed_in_odd_chunks():
    toks, blks = _img(14, 5)
    a, b = U.slots(len(blks))
    dl = DenyList(a, b)
    assert dl.begin_update(len(blks) * F.BLOCK) == 0
    carry = b""
    for blk in blks:  # 1000-byte writes straddling block edges
        data = carry + bytes(blk)
        o = 0
        while len(data) - o >= 1000:
            dl.write(memoryview(data)[o:o + 1000])
            o += 1000
        carry = data[o:]
    dl.write(carry)
    assert dl.version == 0  # nothing in force before commit
    assert dl.commit() == 5
    U.check_all(dl, toks)


def _two_installed(i1, i2, nblk):
    U._compact()
    a, b = U.slots(nblk)
    dl = DenyList(a, b)
    _inst(dl, i1)
    _inst(dl, i2)
    a.ops = 0
    return dl, a, b


def test_power_cut_at_every_flash_operation():
    # v1 in slot A, v2 in slot B; v3 goes to A. Cut power at each erase /
    # program of that update (clean, or torn: half the bytes written), then
    # reboot: v2 stays in force, never a half-written slot; v3 only once its
    # header (the commit record, written last after full verification) is.
    t1, i1 = _img(21, 1)
    t2, i2 = _img(22, 2)
    t3, i3 = _img(23, 3)
    nblk = len(i3)
    dl, a, b = _two_installed(i1, i2, nblk)
    _inst(dl, i3)
    total = a.ops  # erase header + (erase, program) per block + header (erase, program)
    assert total == 1 + 2 * (nblk - 1) + 2, total
    for cut in range(total + 1):
        for torn in (False, True):
            dl = a = b = None  # free the last run's slots before making new ones
            dl, a, b = _two_installed(i1, i2, nblk)
            a.cut_at = cut
            a.torn = torn
            try:
                _inst(dl, i3)
                assert cut == total
            except U.PowerCut:
                assert cut < total
            a.cut_at = -1
            dl = DenyList(a, b)  # reboot
            if cut == total or (cut == total - 1 and torn):
                # done, or torn inside the header program after its first
                # 80 bytes: the commit record is complete and verified
                assert dl.version == 3 and dl.slot == 0, (cut, torn)
                _only(dl, t3, t2)
            else:
                assert dl.version == 2 and dl.slot == 1, (cut, torn, dl.version)
                # slot A's old header survives only a clean cut before its erase
                assert (dl.boot_reasons[0] is None) == (cut == 0 and not torn), (cut, torn)
                _only(dl, t2, t3)
                assert _inst(dl, i3) == 3  # the retry completes
                _only(dl, t3, t2)


def _fresh():
    t1, i1 = _img(31, 10)
    a, b = U.slots(len(i1) + 1)
    dl = DenyList(a, b)
    _inst(dl, i1)
    return dl, t1, a, b


def _rejected(dl, t1, a, b, code, blks, size=True, tail=None):
    U._compact()
    e = _expect_error(code, U.install, dl, blks, size, tail)
    assert dl.version == 10 and dl.slot == 0, code
    U.check_all(dl, t1[:60])
    dl2 = DenyList(a, b)  # reboot: still the last good list
    assert dl2.version == 10 and dl2.slot == 0, code
    return e


def _set(blks, off, val):
    return U.with_byte(blks, off, val)


def _b(blks, off):
    return blks[off >> 12][off & 4095]


def test_corrupted_images_rejected_with_reason():
    dl, t1, a, b = _fresh()
    t2, good = _img(32, 11)
    h = F.parse_header(good[0])
    d0 = (1 + h.dir_blocks) * F.BLOCK
    cases = (  # made one at a time; each copies only the block it changes
        ("bad_magic", lambda: _set(good, 0, ord("X"))),
        ("bad_header_crc", lambda: _set(good, 12, _b(good, 12) ^ 1)),
        ("bad_format", lambda: U.fix_header_crc(_set(good, 4, 4))),
        ("bad_header", lambda: U.fix_header_crc(_set(good, 15, _b(good, 15) ^ 1))),  # count != statuses
        ("bad_header", lambda: _set(good, 100, 1)),                                   # header padding
        ("bad_block", lambda: _set(good, d0 + 200, _b(good, d0 + 200) ^ 0x10)),     # data block CRC
        ("bad_hash", lambda: _set(good, F.BLOCK + 3, _b(good, F.BLOCK + 3) ^ 1)),    # directory
        ("bad_hash", lambda: U.fix_header_crc(_set(good, 50, _b(good, 50) ^ 1))),    # SHA field
        ("trailing", lambda: good + [bytes(F.BLOCK)]),
        ("not_newer", lambda: U.blocks(t2, 10, _FILL)),
        ("not_newer", lambda: U.blocks(t2, 9, _FILL)),
    )
    for code, mk in cases:
        _rejected(dl, t1, a, b, code, mk())
    # streamed without a declared size, ending early
    _rejected(dl, t1, a, b, "truncated", good[:-1], size=False)
    _rejected(dl, t1, a, b, "truncated", good[:-1], size=False, tail=memoryview(good[-1])[0:4089])
    _rejected(dl, t1, a, b, "truncated", [], size=False, tail=memoryview(good[0])[0:40])
    _rejected(dl, t1, a, b, "truncated", good[:1], size=False)
    # too large for the partition: by declared size and by header
    _rejected(dl, t1, a, b, "too_large", good + [bytes(F.BLOCK)] * (a.nblocks + 1 - len(good)))
    _rejected(dl, t1, a, b, "too_large", U.blocks(t2, 11, 256), size=False)
    # the good one still installs afterwards
    assert _inst(dl, good) == 11
    U.check_all(dl, t2)


def test_consistent_but_wrong_structure_rejected():
    # Hashes recomputed (a builder bug, or a signed but broken image): the
    # structural checks behind them must still refuse it.
    dl, t1, a, b = _fresh()
    t2, good = _img(33, 12)
    h = F.parse_header(good[0])
    d0 = 1 + h.dir_blocks
    o = d0 * F.BLOCK
    nb0 = struct.unpack_from(">H", good[d0], 4)[0]
    assert nb0 > 32  # block 0 has a sample
    u = F.block_layout(nb0, 0, h.k, h.ss)[0]

    def bad_data(off, x):
        return U.reseal(U.fix_block_crc(_set(good, o + off, _b(good, o + off) ^ x), d0))

    _rejected(dl, t1, a, b, "bad_block", bad_data(7, 1))      # entry count of block 0
    _rejected(dl, t1, a, b, "bad_block", bad_data(3, 1))      # first bucket of block 0
    _rejected(dl, t1, a, b, "bad_block", bad_data(u, 0x80))   # a unary bit
    _rejected(dl, t1, a, b, "bad_block", bad_data(9, 1))      # first sample
    _rejected(dl, t1, a, b, "bad_dir", U.reseal(_set(good, F.BLOCK + 1, _b(good, F.BLOCK + 1) ^ 1)))
    _rejected(dl, t1, a, b, "bad_dir", U.reseal(_set(good, 2 * F.BLOCK - 1, 1)))  # dir padding
    ng = 1 << (h.k - h.g)
    assert ng >= 2, ng
    o2 = F.BLOCK + 4 * (ng - 1) + 3                            # last entry's split
    _rejected(dl, t1, a, b, "bad_dir", U.reseal(_set(good, o2, _b(good, o2) ^ 1)))


def test_delta_add_change_remove_and_rejections():
    dl, t1, a, b = _fresh()
    new = U.misses(t1, 3, 5)
    ch = sorted([(U.tok(new[0]), 1), (U.tok(new[1]), 4), (U.tok(t1[5]), 0),
                 (U.tok(t1[9]), 1 + (U.status_of(t1[9]) & 3))])
    d = F.pack_delta(10, 11, ch)
    assert dl.apply_delta(d) == 11
    assert dl.version == 11 and dl.image_version == 10 and dl.delta_count == 4
    assert dl.lookup(U.tok(new[0])) == 1 and dl.lookup(U.tok(new[1])) == 4
    assert dl.lookup(U.tok(new[2])) == 0
    assert dl.lookup(U.tok(t1[5])) == 0
    assert dl.lookup(U.tok(t1[9])) == 1 + (U.status_of(t1[9]) & 3)
    assert dl.lookup(U.tok(t1[6])) == U.status_of(t1[6])

    def still():
        assert dl.version == 11 and dl.delta_count == 4 and dl.lookup(U.tok(new[0])) == 1

    # same version again is an idempotent re-apply; an older one is refused
    assert dl.apply_delta(d) == 11
    assert dl.apply_delta(F.pack_delta(10, 13, ch)) == 13
    _expect_error("not_newer", dl.apply_delta, d)
    assert dl.version == 13
    dl.clear_delta()
    dl.apply_delta(d)
    still()
    cases = [
        ("base_mismatch", F.pack_delta(9, 12, ch)),
        ("bad_magic", b"XKDD" + d[4:]),
        ("bad_format", d[:4] + b"\x02" + d[5:]),
        ("bad_crc", d[:-1] + bytes([d[-1] ^ 1])),
        ("bad_crc", d[:22] + bytes([d[22] ^ 1]) + d[23:]),
        ("truncated", d[:-3]),
        ("truncated", d[:10]),
        ("trailing", d + b"\x00"),
        ("bad_order", F.pack_delta(10, 12, [ch[1], ch[0]])),
        ("bad_order", F.pack_delta(10, 12, [ch[0], ch[0]])),
        ("bad_status", F.pack_delta(10, 12, [(U.tok(5), 6)])),
        ("bad_header", F.pack_delta(10, 10, ch)),
        ("too_large", F.pack_delta(10, 12, [(U.tok(i), 1) for i in range(F.DELTA_MAX + 1)])),
    ]
    for code, data in cases:
        _expect_error(code, dl.apply_delta, data)
        still()
    full = F.pack_delta(10, 14, [(U.tok(i * 7919), 2) for i in range(F.DELTA_MAX)])
    assert dl.apply_delta(full) == 14 and dl.delta_count == F.DELTA_MAX
    assert dl.lookup(U.tok(7919 * 511)) == 2 and dl.lookup(U.tok(new[0])) == 0
    full = cases = None
    U._compact()
    # a new image ends the delta; a delta for the old base is then refused
    t2, i2 = _img(34, 20)
    _inst(dl, i2)
    assert dl.version == 20 and dl.delta_count == 0
    _expect_error("base_mismatch", dl.apply_delta, d)


def test_delta_without_image_refused():
    a, b = U.slots(2)
    dl = DenyList(a, b)
    _expect_error("base_mismatch", dl.apply_delta, F.pack_delta(0, 1, [(U.tok(1), 1)]))
    assert dl.version == 0 and dl.lookup(U.tok(1)) == 0


def test_write_protocol_errors():
    dl, t1, a, b = _fresh()
    _expect_error("no_update", dl.write, b"x")
    _expect_error("no_update", dl.commit)
    t2, good = _img(35, 11)
    dl.begin_update()
    dl.write(good[0])
    dl.write(good[1])
    dl.abort()
    _expect_error("no_update", dl.write, good[2])
    assert dl.version == 10 and DenyList(a, b).version == 10
    assert _inst(dl, good) == 11


def test_flash_rot_found_by_scrub_and_crc_mode():
    dl, t1, a, b = _fresh()
    assert dl.scrub(100) == 0 or dl.scrub(100) >= 0  # clean image scrubs
    n = dl._secs[0][8]
    assert n >= 3
    dl.verify()
    blk = a.raw(dl._secs[0][7] + 1)
    blk[300] ^= 0x04  # one bit flips in data block 1
    try:
        for _ in range(n):
            dl.scrub(1)
    except DenyListError as e:
        assert e.code == "bad_block"
    else:
        raise AssertionError("scrub missed the flipped bit")
    _expect_error("bad_block", dl.verify)
    dl.check_crc = True
    hit = 0
    for t in t1:
        try:
            assert dl.lookup(U.tok(t)) == U.status_of(t)
        except DenyListError as e:
            assert e.code == "bad_block"
            hit += 1
    assert hit > 0


def test_commit_in_steps_keeps_serving_the_list_in_force():
    dl, t1, a, b = _fresh()
    t2, good = _img(36, 11)
    dl.begin_update()
    for blk in good:
        dl.write(blk)
    steps = 0
    for _ in dl.commit_steps():  # an asyncio task awaits between these
        steps += 1
        assert dl.version == 10
        assert dl.lookup(U.tok(t1[steps % len(t1)])) == U.status_of(t1[steps % len(t1)])
    assert steps >= len(good) - 2 and dl.version == 11
    U.check_all(dl, t2)


def test_update_borrows_the_shared_block_buffer():
    # The update's block buffer is the Scratch's (shared with the uplink's
    # batch): refused while lent out, held while writing, back after commit
    # or abort; the update itself is unchanged.
    from ykt.compat import Scratch

    t1, i1 = _img(31, 10)
    a, b = U.slots(len(i1) + 1)
    sc = Scratch()
    dl = DenyList(a, b, scratch=sc)
    other = object()
    assert sc.take(other) is sc.buf
    _expect_error("busy", dl.begin_update)
    assert sc.owner is other and dl.version == 0
    sc.give(other)
    _inst(dl, i1)
    assert dl.version == 10 and sc.owner is None
    U.check_all(dl, t1)
    t2, i2 = _img(36, 11)
    dl.begin_update()
    assert sc.owner is dl and dl._up[4] is sc.buf
    dl.write(i2[0])
    dl.abort()
    assert sc.owner is None and dl.version == 10
    _expect_error("trailing", U.install, dl, i2 + [i2[-1]], False)   # a refused image gives it back too
    assert sc.owner is None and dl.version == 10
    _inst(dl, i2)
    assert sc.owner is None and dl.version == 11
    U.check_all(dl, t2)
