# The deny list on the simulator's esp32.Partition (dlist_a / dlist_b on the
# virtual NOR flash): install, reboot, 2 flash reads per lookup, and power
# cuts with every tear at every flash write of an update.
import esp32
import vclock
import t_denylist_util as U
from vhw import chip as _chip
from vhw import flash as _flash
from ykt.rules import dlformat as F
from ykt.rules.denylist import DenyList


def _parts():
    a = esp32.Partition.find(type=1, label="dlist_a")[0]
    b = esp32.Partition.find(type=1, label="dlist_b")[0]
    return a, b


def _img(seed, version, n=120):
    toks = U.make_set(n, seed)
    return toks, U.blocks(toks, version, 600)


def test_install_reboot_and_reads_on_partitions():
    c = _chip.configure(dlist_size=16 * F.BLOCK)
    t1, i1 = _img(41, 1)
    t2, i2 = _img(42, 2)
    a, b = _parts()
    dl = DenyList(a, b)
    assert dl.version == 0 and dl.boot_reasons == ["bad_magic", "bad_magic"]
    U.install(dl, i1)
    U.install(dl, i2)
    dl = DenyList(*_parts())
    assert dl.version == 2 and dl.slot == 1
    for t in t2:
        r0 = c.flash.reads
        assert dl.lookup(U.tok(t)) == U.status_of(t)
        assert c.flash.reads - r0 == 2
    for t in t1[:30]:
        if not U.contains(t2, t):
            assert dl.lookup(U.tok(t)) == 0


def test_power_cut_every_write_every_tear():
    t1, i1 = _img(43, 1, 60)
    t2, i2 = _img(44, 2, 60)
    c = _chip.configure(dlist_size=8 * F.BLOCK)
    dl = DenyList(*_parts())
    U.install(dl, i1)
    w0 = c.flash.writes
    U.install(dl, i2)
    total = c.flash.writes - w0
    for n in range(1, total + 1):
        for tear in _flash.TEARS:
            U._compact()
            c = _chip.configure(dlist_size=8 * F.BLOCK)
            dl = DenyList(*_parts())
            U.install(dl, i1)
            c.flash.cut_after_writes(n, tear)
            try:
                U.install(dl, i2)
                raise AssertionError("no cut at write %d" % n)
            except vclock.DeviceReset:
                pass
            c.flash.power_on()
            dl = DenyList(*_parts())
            # the last write is the header program: v2 only if its 80 bytes landed
            if n == total and tear != "none":
                assert dl.version == 2, (n, tear)
            else:
                assert dl.version == 1 and dl.slot == 0, (n, tear, dl.version)
                U.check_all(dl, t1)
                assert U.install(dl, i2) == 2  # and the retry completes
            U.check_all(dl, t2)
