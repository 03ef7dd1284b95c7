# vhw.flash: NOR semantics, counters, power cuts with torn writes, and a
# littlefs volume that survives a cut mid-write (MicroPython only).
import vclock
import fwtest
from vhw import flash

KB = 1024


def setup():
    vclock.reset()


def _cut(fn, *a):
    try:
        fn(*a)
    except vclock.DeviceReset as e:
        assert e.cause == "power"
        return
    raise AssertionError("no power cut")


def _rd(fc, addr, n):
    b = bytearray(n)
    fc.read(addr, b)
    return bytes(b)


def test_nor_semantics_and_counters():
    fc = flash.FlashChip(64 * KB)
    assert _rd(fc, 4090, 8) == b"\xff" * 8  # fresh flash is erased
    fc.program(4094, b"\x0f\xf0\x33\x55")  # spans two blocks
    assert _rd(fc, 4094, 4) == b"\x0f\xf0\x33\x55"
    fc.program(4094, b"\xf0\xff\xff\xff")  # programming only clears bits
    assert _rd(fc, 4094, 4) == b"\x00\xf0\x33\x55"
    fc.erase(0, 4096)
    assert _rd(fc, 4094, 4) == b"\xff\xff\x33\x55"
    assert fc.counters() == {"reads": 4, "programs": 2, "erases": 1, "read_bytes": 20,
                             "prog_bytes": 8, "erase_bytes": 4096, "writes": 3}
    for bad in ((1, 4096), (0, 100)):
        try:
            fc.erase(*bad)
        except OSError:
            pass
        else:
            raise AssertionError("unaligned erase accepted")
    try:
        fc.program(64 * KB - 1, b"\x00\x00")
    except OSError:
        pass
    else:
        raise AssertionError("write past the end accepted")


def test_power_cut_tears():
    data = bytes(range(1, 101))
    for tear, applied in (("none", 0), ("start", 25), ("middle", 50), ("end", 99)):
        fc = flash.FlashChip(16 * KB)
        fc.cut_after_writes(2, tear)
        fc.program(0, b"\x00")  # write 1 completes
        _cut(fc.program, 100, data)  # write 2 is cut
        assert fc.dead and fc.cuts == 1
        _cut(fc.read, 0, bytearray(1))  # nothing runs until power returns
        fc.power_on()
        got = _rd(fc, 100, 100)
        assert got == data[:applied] + b"\xff" * (100 - applied), tear
        assert _rd(fc, 0, 1) == b"\x00"


def test_power_cut_during_erase():
    fc = flash.FlashChip(16 * KB)
    fc.program(0, bytes(8192))
    fc.cut_after_writes(1, "middle")
    _cut(fc.erase, 0, 8192)
    fc.power_on()
    assert _rd(fc, 4095, 2) == b"\xff\x00"  # the first half is erased
    fc.cut_after_writes(1)
    fc.cancel_cut()
    fc.erase(0, 8192)


def test_snapshot_restore_and_file_backing():
    fc = flash.FlashChip(16 * KB)
    fc.program(10, b"abc")
    snap = fc.snapshot()
    fc.erase(0, 4096)
    fc.restore(snap)
    assert _rd(fc, 10, 3) == b"abc"
    assert fc.used_blocks() == [0]
    path = "/tmp/ykt_t_fakes_flash_%s.bin" % fwtest.runtime()
    try:
        import os
        os.remove(path)
    except OSError:
        pass
    f1 = flash.FlashChip(16 * KB, path)
    assert _rd(f1, 8190, 4) == b"\xff" * 4
    f1.program(8190, b"\x12\x34\x56\x78")
    f1.program(8190, b"\x10\xff\xff\xff")
    f1.close()
    f2 = flash.FlashChip(16 * KB, path)  # the same file: the contents persist
    assert _rd(f2, 8190, 4) == b"\x10\x34\x56\x78"
    f2.close()
    f3 = flash.FlashChip(32 * KB, path)  # a bigger chip on the old image grows erased
    assert _rd(f3, 8190, 4) == b"\x10\x34\x56\x78"
    assert _rd(f3, 30 * KB, 2) == b"\xff\xff"
    f3.close()


def test_block_device_interface():
    fc = flash.FlashChip(64 * KB)
    bd = flash.FlashBlockDev(fc, 4, 8)
    assert bd.ioctl(4, 0) == 8 and bd.ioctl(5, 0) == 4096 and bd.ioctl(1, 0) == 0
    bd.writeblocks(1, b"\x00" * 4096)  # simple write: erase + program
    assert fc.erases == 1 and fc.programs == 1
    bd.writeblocks(1, b"\xaa", 10)  # extended: program only
    b = bytearray(2)
    bd.readblocks(1, b, 10)
    assert bytes(b) == b"\x00\x00"  # 0x00 & 0xaa
    assert bd.ioctl(6, 1) == 0
    bd.readblocks(1, b, 10)
    assert bytes(b) == b"\xff\xff"
    assert _rd(fc, 5 * 4096, 1) == b"\xff"
    try:
        bd.readblocks(8, b)
    except OSError:
        pass
    else:
        raise AssertionError("read past the device accepted")


def _lfs():
    try:
        import vfs
        return vfs, vfs.VfsLfs2
    except (ImportError, AttributeError):
        raise fwtest.Skip("no littlefs in CPython")


def test_littlefs_survives_power_cut_mid_write():
    vfs, Lfs = _lfs()
    fc = flash.FlashChip(128 * KB)
    bd = flash.FlashBlockDev(fc, 0, 32)
    Lfs.mkfs(bd)
    vfs.mount(Lfs(bd), "/flash")
    try:
        with open("/flash/journal", "wb") as f:
            f.write(b"A" * 3000)
        before = fc.writes
        fc.cut_after_writes(3, "middle")
        try:
            with open("/flash/journal", "ab") as f:
                for _ in range(8):
                    f.write(b"B" * 1000)
            raise AssertionError("no power cut")
        except vclock.DeviceReset as e:
            assert e.cause == "power"
        assert fc.writes == before + 3
    finally:
        try:
            vfs.umount("/flash")
        except OSError:
            pass
    fc.power_on()
    bd = flash.FlashBlockDev(fc, 0, 32)  # the next boot's block device
    vfs.mount(Lfs(bd), "/flash")  # the same chip, remounted after the reboot
    try:
        with open("/flash/journal", "rb") as f:
            data = f.read()
        assert data[:3000] == b"A" * 3000  # what was synced survives
        assert data[3000:] == b"B" * (len(data) - 3000)  # and nothing torn shows
        with open("/flash/after", "wb") as f:
            f.write(b"ok")
        with open("/flash/after", "rb") as f:
            assert f.read() == b"ok"
    finally:
        vfs.umount("/flash")


def test_littlefs_power_cut_sweep():
    # cut after write n for a range of n and every tear; remount; check that
    # the file is an intact prefix of what was appended
    vfs, Lfs = _lfs()
    runs = 0
    for tear in flash.TEARS:
        for n in range(1, 30, 4):
            fc = flash.FlashChip(128 * KB)
            bd = flash.FlashBlockDev(fc, 0, 32)
            Lfs.mkfs(bd)
            vfs.mount(Lfs(bd), "/flash")
            with open("/flash/j", "wb") as f:
                f.write(b"A" * 3000)
            fc.cut_after_writes(n, tear)
            try:
                for _ in range(6):
                    with open("/flash/j", "ab") as f:
                        f.write(b"B" * 700)
            except vclock.DeviceReset:
                pass
            try:
                vfs.umount("/flash")
            except OSError:
                pass
            fc.cancel_cut()
            fc.power_on()
            assert bd.stale()
            vfs.mount(Lfs(flash.FlashBlockDev(fc, 0, 32)), "/flash")
            with open("/flash/j", "rb") as f:
                d = f.read()
            vfs.umount("/flash")
            nb = len(d) - 3000
            assert d[:3000] == b"A" * 3000 and d[3000:] == b"B" * nb and nb % 700 == 0, (tear, n)
            runs += 1
    assert runs == 32


def test_stale_block_device_cannot_write():
    fc = flash.FlashChip(16 * KB)
    bd = flash.FlashBlockDev(fc, 0, 4)
    fc.power_on()
    bd.writeblocks(0, b"\x00" * 4096)  # a zombie from the last boot: dropped
    assert fc.writes == 0 and _rd(fc, 0, 1) == b"\xff"


def test_image_paths_are_never_shared_between_runs():
    # Two runs of one device id (two scripted days side by side) must not get
    # the same image: the one starting second used to remove and re-create
    # the other's file, whose device then rebooted after its power cut on a
    # fresh flash and refused every tap as not configured.
    paths = set(flash.image_path(1001) for _ in range(20))
    assert len(paths) == 20
    for p in paths:
        assert p.startswith("/tmp/ykt-flash-1001-") and p.endswith(".img")
    assert flash.image_path(7, "/run/x").startswith("/run/x/ykt-flash-7-")
