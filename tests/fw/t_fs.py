# The firmware's one set of file helpers (firmware/ykt/fs.py) and otaboot's
# copy of replace_file (it may not import ykt before choosing a slot): the two
# give the same bytes and leave the same files, with and without an old
# target, with a stale .tmp, with a writer, and when the write fails midway
# (the old file stays, the .tmp is what is left). A leftover .tmp is never
# read as the new file: boot removes it and the old one loads. On MicroPython
# the same replacement is cut at every flash write of littlefs. Portable.
import os

import otaboot
import vclock
from ykt import fs

SCRATCH = "/tmp/ykt-fs-" + "".join("%02x" % b for b in os.urandom(4))
IMPLS = (("ykt.fs", fs.replace_file), ("otaboot", otaboot.replace_file))


def setup():
    vclock.reset()


def _rmtree(d):
    try:
        names = os.listdir(d)
    except OSError:
        return
    for n in names:
        p = d + "/" + n
        if os.stat(p)[0] & 0x4000:
            _rmtree(p)
        else:
            os.remove(p)
    os.rmdir(d)


def _dir(name):
    try:
        os.mkdir(SCRATCH)
    except OSError:
        pass
    d = SCRATCH + "/" + name
    _rmtree(d)
    os.mkdir(d)
    return d


def _state(d):
    out = []
    for n in sorted(os.listdir(d)):
        with open(d + "/" + n, "rb") as f:
            out.append((n, f.read()))
    return out


def _both(case):
    """Run case(d, replace_file) for each copy; -> the resulting states."""
    got = []
    for name, impl in IMPLS:
        d = _dir(name.replace(".", "_"))
        case(d, impl)
        got.append(_state(d))
    _rmtree(SCRATCH)
    return got


def test_join_and_exists():
    assert fs.join("", "data/keys.bin") == "data/keys.bin"
    assert fs.join("/flash", "data/keys.bin") == "/flash/data/keys.bin"
    d = _dir("ex")
    assert fs.exists(d) and not fs.exists(d + "/nothing")
    _rmtree(SCRATCH)


def test_new_file_same_bytes_no_leftover():
    a, b = _both(lambda d, rf: rf(d + "/cfg", b"one"))
    assert a == b == [("cfg", b"one")]


def test_over_an_existing_file():
    def case(d, rf):
        rf(d + "/cfg", b"one-longer-than-two")
        rf(d + "/cfg", b"two")
    a, b = _both(case)
    assert a == b == [("cfg", b"two")]


def test_stale_tmp_is_overwritten_not_appended():
    def case(d, rf):
        with open(d + "/cfg", "wb") as f:
            f.write(b"old")
        with open(d + "/cfg.tmp", "wb") as f:
            f.write(b"a torn write from before a power cut, longer than the new one")
        rf(d + "/cfg", b"new")
    a, b = _both(case)
    assert a == b == [("cfg", b"new")]


def test_writer_callable():
    def case(d, rf):
        rf(d + "/big", lambda f: [f.write(b"%04d," % i) for i in range(50)])
    a, b = _both(case)
    assert a == b and a[0][0] == "big" and a[0][1].startswith(b"0000,0001,") and len(a[0][1]) == 250


def test_failed_write_keeps_the_old_file():
    def boom(f):
        f.write(b"half")
        raise OSError(28, "no space")

    def case(d, rf):
        rf(d + "/cfg", b"old")
        try:
            rf(d + "/cfg", boom)
            raise AssertionError("no error")
        except OSError as e:
            assert e.args[0] == 28
    a, b = _both(case)
    # the old file is intact; what is left is the .tmp that never got renamed
    assert a == b == [("cfg", b"old"), ("cfg.tmp", b"half")]


def test_remove_leftovers_only_tmp():
    d = _dir("left")
    for n, data in (("a.tmp", b"x"), ("keys.bin", b"k"), ("keys.bin.tmp", b"y"), ("tmp", b"z")):
        with open(d + "/" + n, "wb") as f:
            f.write(data)
    assert sorted(fs.remove_leftovers(d)) == ["a.tmp", "keys.bin.tmp"]
    assert _state(d) == [("keys.bin", b"k"), ("tmp", b"z")]
    assert fs.remove_leftovers(d + "/missing") == []
    _rmtree(SCRATCH)


def test_boot_removes_leftovers_and_keeps_the_old_files():
    # a cut after the .tmp was written but before the rename: the old file is
    # the valid one; boot must delete the .tmp and never load it
    from vhw.world import World

    w = World("bus_validator")
    w.write("data/keys.bin", b"old keys")
    w.write("data/keys.bin.tmp", b"new keys, never renamed")
    w.write("config.json.tmp", "{\"device_id\": 99}")
    w.write("ota/dl.json.tmp", "{}")
    w.write("j/ack.tmp", b"YKA1")
    app = w.boot()
    assert app.device_id == 0                          # config.json.tmp was not read
    for p in ("data/keys.bin.tmp", "config.json.tmp", "ota/dl.json.tmp", "j/ack.tmp"):
        assert not fs.exists(w.path(p)), p
    with open(w.path("data/keys.bin"), "rb") as f:
        assert f.read() == b"old keys"


def _lfs_cut_states(impl, old, new):
    """Every state a power cut during impl(path, new) over `old` can leave on
    littlefs (each flash write cut, torn in the middle), after mount."""
    import vfs
    from vhw.lfsdev import LfsBlockDev

    out = []
    c = 0
    while True:
        bd = LfsBlockDev(16, 4096)
        vfs.VfsLfs2.mkfs(bd)
        vfs.mount(vfs.VfsLfs2(bd, mtime=False), "/fscut")
        fs.replace_file("/fscut/cfg", old)
        bd.cut_after_writes(c, "middle")
        done = False
        try:
            impl("/fscut/cfg", new)
            done = True
        except vclock.DeviceReset:
            pass
        vfs.umount("/fscut")
        import gc

        gc.collect()                      # the cut's open files are gone with the device
        bd.revive()
        vfs.mount(vfs.VfsLfs2(bd, mtime=False), "/fscut")
        out.append(_state("/fscut"))
        vfs.umount("/fscut")
        if done:
            return out
        c += 1


def test_power_cut_at_every_write_is_old_or_new_and_same_for_both():
    try:
        import vfs
        vfs.VfsLfs2
    except (ImportError, AttributeError):
        import fwtest
        raise fwtest.Skip("no littlefs in CPython (the sweep runs on MicroPython)")
    old, new = b"O" * 300, b"N" * 700
    got = [_lfs_cut_states(impl, old, new) for _n, impl in IMPLS]
    assert got[0] == got[1], got
    for st in got[0]:
        files = dict(st)
        assert files.get("cfg") in (old, new), st       # never neither, never a mix
        assert set(files) <= {"cfg", "cfg.tmp"}, st
    assert got[0][-1] == [("cfg", new)]
    assert len(got[0]) > 2                              # the sweep did cut inside the replacement
