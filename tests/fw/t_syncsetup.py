# The downloadable kinds table (firmware/ykt/net/syncsetup.py): each kind's
# file, parser and way of going live, with an error sink and a swap callback
# instead of the App. A refused payload changes nothing; an accepted one is
# on flash before it goes live, and versions.json follows. Portable.
import os
import struct

import vclock
import t_decide_kit as DK
from ykt.net import syncsetup as S
from ykt.sec import signed
from ykt.sec import sigverify

ROOT = "/tmp/ykt-syncsetup-" + "".join("%02x" % b for b in os.urandom(4))


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


def _root(with_keys=True):
    _rmtree(ROOT)
    os.mkdir(ROOT)
    os.mkdir(ROOT + "/data")
    if with_keys:
        with open(ROOT + "/data/keys.bin", "wb") as f:
            f.write(_keys(1))
    return ROOT


def _keys(tag, usage=sigverify.U_DOWNLOADS):
    n = bytearray(256)
    n[0] = 0xC0
    n[1] = tag
    for k in range(2, 256):
        n[k] = (tag * 7 + k) & 0xFF
    return bytes(struct.pack("<BBBIH", 1, 1, usage, 65537, 256)) + bytes(n)


def _hdr(version):
    h = signed.Header()
    h.version = version
    return h


def _read(p):
    with open(p, "rb") as f:
        return f.read()


def _sync(root, swaps, errs, denylist=None):
    return S.make_sync(root, None, 7, b"k" * 32, None, denylist,
                       lambda kind, obj: swaps.append((kind, obj)),
                       lambda where, e: errs.append((where, e)))


def _handler(s, name):
    for h in s.handlers:
        if h.name == name:
            return h
    raise AssertionError(name)


def _fares_v5():
    """A provisioned root, its sync, the fares handler and a version-5 fare
    table to commit -> (root, sync, handler, table, swaps)."""
    swaps = []
    root = _root()
    s = _sync(root, swaps, [])
    return root, s, _handler(s, "fares"), DK.fare_table(301, version=5, base=230), swaps


def test_table_rows():
    assert [r[0] for r in S.FILES] == ["keys", "fares", "catalog", "entitlements", "config"]
    assert S.path("/r", "fares") == "/r/data/fares.bin" and S.path("", "keys") == "data/keys.bin"
    assert sigverify.KEYS_MAX == 1 + sigverify.MAX_KEYS * (8 + 512)
    try:
        S.path("", "denylist")          # the deny list lives in its two slots, not in a file
        raise AssertionError("a path for the deny list")
    except ValueError:
        pass


def test_no_keys_goes_to_the_error_sink():
    swaps, errs = [], []
    assert _sync(_root(with_keys=False), swaps, errs) is None
    assert len(errs) == 1 and errs[0][0] == "keys" and isinstance(errs[0][1], OSError)
    _rmtree(ROOT)


def test_handlers_in_sync_order():
    swaps, errs = [], []
    s = _sync(_root(), swaps, errs)
    assert [h.name for h in s.handlers] == ["keys", "config", "fares", "catalog", "entitlements"]
    assert s.keyring.keys[0].n >> 2032 == 0xC001 and not errs
    _rmtree(ROOT)


def test_table_goes_live_after_it_is_on_flash():
    root, s, h, ft, swaps = _fares_v5()
    h.commit(_hdr(5), None, bytearray(ft))
    assert _read(root + "/data/fares.bin") == ft
    assert len(swaps) == 1 and swaps[0][0] == "fares" and swaps[0][1].version == 5
    assert h.version() == 5 and S.Versions(root).get("fares") == 5
    assert sorted(os.listdir(root + "/data")) == ["fares.bin", "keys.bin", "versions.json"]
    assert S.load(root, "fares").version == 5            # boot loads what sync wrote
    # a payload its parser refuses changes nothing: file, swap, versions
    bad = bytearray(DK.fare_table(301, version=6, base=240))
    bad[-1] ^= 1                                          # CRC mismatch
    try:
        h.commit(_hdr(6), None, bad)
        raise AssertionError("accepted")
    except ValueError:
        pass
    assert _read(root + "/data/fares.bin") == ft and len(swaps) == 1
    assert h.version() == 5 and S.Versions(root).get("fares") == 5
    c = _handler(s, "catalog")
    c.commit(_hdr(9), None, bytearray(DK.catalog_bin(9)))
    assert swaps[-1][0] == "catalog" and swaps[-1][1].version == 9
    v = S.Versions(root)
    assert (v.get("fares"), v.get("catalog")) == (5, 9)
    _rmtree(ROOT)


def test_table_download_streams_to_flash():
    # A download goes to a .tmp file as it arrives (open() is the sink), is
    # parsed from flash after the signature, then renamed over the table;
    # a refused or aborted one leaves the table in force and no .tmp.
    root, s, h, ft, swaps = _fares_v5()
    sink = h.open()
    for o in range(0, len(ft), 100):
        sink.write(memoryview(ft)[o:o + 100])
    sink.flush()
    assert _read(root + "/data/fares.bin.tmp") == ft
    h.commit(_hdr(5), sink, None)
    assert _read(root + "/data/fares.bin") == ft and swaps[0][1].version == 5
    assert sorted(os.listdir(root + "/data")) == ["fares.bin", "keys.bin", "versions.json"]
    bad = bytearray(DK.fare_table(301, version=6, base=240))
    bad[-1] ^= 1
    sink = h.open()
    sink.write(bad)
    try:
        h.commit(_hdr(6), sink, None)
        raise AssertionError("accepted")
    except ValueError:
        h.abort(sink)                      # what sync does with a refusal
    sink = h.open()
    sink.write(ft[:50])
    h.abort(sink)                          # a download the network broke off
    assert _read(root + "/data/fares.bin") == ft and len(swaps) == 1 and h.version() == 5
    assert sorted(os.listdir(root + "/data")) == ["fares.bin", "keys.bin", "versions.json"]
    _rmtree(ROOT)


def test_config_settings_only_and_next_boot():
    swaps, errs = [], []
    root = _root()
    s = _sync(root, swaps, errs)
    h = _handler(s, "config")
    h.commit(_hdr(2), None, bytearray(b'{"sync_interval_s":30,"heartbeat_s":120}'))
    assert S.load(root, "config") == {"sync_interval_s": 30, "heartbeat_s": 120}
    assert swaps[-1][0] == "config" and S.Versions(root).get("config") == 2
    # provisioning's own settings (URL, device id) and non-integers are refused: nothing written
    for bad in (b'{"backoffice":"http://evil"}', b'{"sync_interval_s":"30"}', b'{"sync_interval_s":0}',
                b'[1]', b'{"heartbeat_s":true}'):
        try:
            h.commit(_hdr(3), None, bytearray(bad))
            raise AssertionError("accepted %r" % bad)
        except ValueError:
            pass
    assert S.load(root, "config") == {"sync_interval_s": 30, "heartbeat_s": 120} and h.version() == 2
    _rmtree(ROOT)


def test_keys_rotate_in_place_and_persist():
    swaps, errs = [], []
    root = _root()
    s = _sync(root, swaps, errs)
    ring = s.keyring
    h = _handler(s, "keys")
    h.commit(_hdr(3), None, bytearray(_keys(2)))
    assert s.keyring is ring and ring.keys[0].n >> 2032 == 0xC002   # the same object: QR, OTA see it
    assert _read(root + "/data/keys.bin") == _keys(2) and S.Versions(root).get("keys") == 3
    # a ring without a download key would lock the device out: refused, nothing written
    try:
        h.commit(_hdr(4), None, bytearray(_keys(3, sigverify.U_QR)))
        raise AssertionError("accepted")
    except ValueError:
        pass
    assert _read(root + "/data/keys.bin") == _keys(2) and ring.keys[0].n >> 2032 == 0xC002
    assert S.Versions(root).get("keys") == 3 and not swaps
    _rmtree(ROOT)
