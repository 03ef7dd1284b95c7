# The format-3 deny list on every runtime: a Guangxi section that is a filter
# over a card registry (exact for every registered card thanks to extension
# bits), an exact section for other provinces' cards chosen by region, 3-bit
# statuses in the side stream, deltas on top, no allocation per lookup, and
# corrupt side streams refused with the list in force kept.
import fwtest
import t_denylist_util as U
from yktsrv import dlbuild
from ykt.rules import dlformat as F
from ykt.rules.denylist import DenyList, DenyListError

RW = 3  # few record bits: a small registry collides often, so extensions abound


def _status(v):
    return F.ST_UNPAID if v % 5 == 0 else U.status_of(v)


def _build(nden=70, nreg=900, nfor=40, version=5, seed=31):
    reg = U.make_set(nreg, seed)
    den = [reg[i] for i in range(0, len(reg), len(reg) // nden)][:nden]
    fx = U.make_set(nfor, seed + 1)
    ext = dlbuild.plan_small(den, reg, RW)
    img = b"".join(dlbuild.encode_sections(
        (den, [_status(t) for t in den], ext), (fx, [_status(t) for t in fx]), version, 1795000000,
        rw=RW, rp=1))
    return reg, den, fx, ext, img


def _install(img):
    a, b = U.slots(len(img) // F.BLOCK + 1)
    dl = DenyList(a, b)
    dl.install(img)
    return dl, a, b


def test_exact_over_the_registry_and_foreign_by_region():
    reg, den, fx, ext, img = _build()
    assert sum(1 for x in ext if x is not None) >= 10  # the case under test happens
    dl, _a, _b = _install(img)
    assert dl.counts == (len(den), len(fx))
    dset = set(den)
    for t in reg:
        want = _status(t) if t in dset else 0
        assert dl.lookup(U.tok(t)) == want, hex(t)
    for t in fx:
        assert dl.lookup(U.tok(t), 0, True) == _status(t)
    for t in den:  # a Guangxi entry is not in the foreign section
        assert dl.lookup(U.tok(t), 0, True) == 0
    unpaid = [t for t in den if _status(t) == F.ST_UNPAID]
    assert unpaid and all(dl.lookup(U.tok(t)) == F.ST_UNPAID for t in unpaid)


def test_decoder_agrees_with_the_device():
    reg, den, fx, ext, img = _build(seed=37)
    got = list(dlbuild.iter_section(img, 0))
    assert [v for v, _b, _s, _x in got] == [t >> (64 - _b) for t, (_v, _b, _s, _x) in zip(den, got)]
    assert [s for _v, _b, s, _x in got] == [_status(t) for t in den]
    assert sum(1 for _v, _b, _s, x in got if x) == sum(1 for x in ext if x is not None)
    assert [(v, s) for v, _b, s, _x in dlbuild.iter_section(img, 1)] == [(t, _status(t)) for t in fx]


def test_delta_overlays_a_filter_image():
    # a card registered after the build that collides with an entry gets a
    # "not denied" record in the next delta
    reg, den, fx, ext, img = _build(seed=41)
    dl, _a, _b = _install(img)
    rng = U.Rng(99)
    new = None
    k = dlbuild.choose_k(len(den))
    for _ in range(200000):
        v = rng.next64()
        if dl.lookup(U.tok(v)) and v not in set(den):
            new = v
            break
    assert new is not None
    dl.apply_delta(F.pack_delta(5, 6, [(U.tok(new), 0)]))
    assert dl.lookup(U.tok(new)) == 0 and dl.version == 6
    assert k >= 1


def test_lookup_allocates_nothing():
    import gc

    if not hasattr(gc, "mem_alloc"):
        raise fwtest.Skip("CPython has no gc.mem_alloc; the heap check runs on MicroPython")
    reg, den, fx, ext, img = _build(seed=43)
    dl, _a, _b = _install(img)
    blob = bytearray(8 * 30)
    for i in range(30):
        blob[i * 8:i * 8 + 8] = U.tok(den[i] if i < 20 else reg[i * 11])
    dl.lookup(blob, 0)
    gc.collect()
    a0 = gc.mem_alloc()
    for i in range(30):
        dl.lookup(blob, i * 8)
        dl.lookup(blob, i * 8, True)
    assert gc.mem_alloc() - a0 == 0, gc.mem_alloc() - a0


def test_corrupt_side_stream_is_refused_and_the_list_kept():
    reg, den, fx, ext, img = _build(seed=47)
    dl, a, b = _install(img)
    _r2, _d2, _f2, _e2, img2 = _build(seed=47, version=9)
    h = F.parse_header(img2)
    s0 = F.sections(h)[0]
    blk = s0[8] + s0[6]                    # first Guangxi data block
    o = blk * F.BLOCK
    nb, ne = (img2[o + 4] << 8) | img2[o + 5], (img2[o + 6] << 8) | img2[o + 7]
    end = F.block_layout(nb, ne, s0[0], s0[2], 2, s0[3])[2]
    bad = bytearray(img2)
    bad[o + end] = 0xFF                    # side count far beyond the block
    try:
        dl.install(bytes(bad))
        raise AssertionError("corrupt image installed")
    except DenyListError as e:
        assert e.code in ("bad_block", "bad_hash"), e.code
    assert dl.version == 5
    for t in den[:10]:
        assert dl.lookup(U.tok(t)) == _status(t)
