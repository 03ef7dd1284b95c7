# The OTA bundle payload: built by the host half (yktsrv.bundle), parsed by
# the device's Installer (ykt.ota.updater), bytes pinned here so neither half
# can drift. Portable.
import binascii
import os

import vclock
from yktsrv import bundle
from ykt.ota import updater as ota

# "1.2.3", min interpreter 1.22.0, board bus_validator, two files
VECTOR = ("594b544201010200a82f0000312e322e3300000000000000000000000d6275735f76616c696461746f72"
          "08796b742f612e70790600000041203d20310a0c796b742f75692f622e6d7079020000004d06")
FILES = [("ykt/a.py", b"A = 1\n"), ("ykt/ui/b.mpy", b"M\x06")]
SCRATCH = "/tmp/ykt-bundle-" + binascii.hexlify(os.urandom(4)).decode()


def setup():
    vclock.reset()


def _payload():
    return bundle.payload("1.2.3", FILES, ota.interp_int((1, 22, 0)), ["bus_validator"])


def _install(data, board="bus_validator", interp=12200, version=1002003):
    try:
        os.mkdir(SCRATCH)
    except OSError:
        pass
    src = SCRATCH + "/b.bin"
    with open(src, "wb") as f:
        f.write(data)
    slot = SCRATCH + "/slot"
    inst = ota.Installer(src, 0, len(data), slot, board, interp, version)
    try:
        for _ in range(100):
            if inst.step():
                break
    finally:
        inst.close()
    got = []
    for rel in ("ykt/a.py", "ykt/ui/b.mpy"):
        with open(slot + "/" + rel, "rb") as f:
            got.append((rel, f.read()))
    return inst, got


def _clean():
    ota.rmtree(SCRATCH)


def test_payload_bytes_pinned():
    assert binascii.hexlify(_payload()).decode() == VECTOR


def test_device_installs_what_the_host_builds():
    try:
        inst, got = _install(binascii.unhexlify(VECTOR))
        assert inst.version == "1.2.3" and inst.files == 2
        assert got == FILES
    finally:
        _clean()


def test_device_checks_board_interpreter_and_version():
    data = binascii.unhexlify(VECTOR)
    for kw, code in (({"board": "turnstile"}, "wrong_board"), ({"interp": 12100}, "interpreter_too_old"),
                     ({"version": 1002004}, "version_mismatch")):
        try:
            _install(data, **kw)
            raise AssertionError("installed with %r" % (kw,))
        except ota.OtaError as e:
            assert e.code == code, (kw, e.code)
        finally:
            _clean()


def test_host_parses_what_it_builds_and_refuses_what_the_device_refuses():
    b = bundle.parse(binascii.unhexlify(VECTOR))
    assert b == {"version": "1.2.3", "min_interp": 12200, "boards": ["bus_validator"], "files": FILES}
    data = binascii.unhexlify(VECTOR)
    for bad in (data[:-1], data + b"\x00", b"XKTB" + data[4:]):
        try:
            bundle.parse(bad)
            raise AssertionError("parsed")
        except bundle.BundleError as e:
            assert e.code == "bad_manifest"
    for p in ("../x.py", "/ykt/x.py", "ykt/a b.py", "ykt//x.py"):
        for fn in (lambda: bundle.file_entry(p, 1), lambda: ota.check_path(p)):
            try:
                fn()
                raise AssertionError("accepted %r" % p)
            except (bundle.BundleError, ota.OtaError) as e:
                assert e.code == "bad_path"
