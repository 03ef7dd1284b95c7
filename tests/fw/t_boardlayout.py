# The flash layout lives in the board file ("partitions"); a wrong layout is
# one line naming the file and the field, before anything is flashed or booted.
import json
from ykt import boardcfg


def _board(name="turnstile"):
    with open("boards/%s.json" % name) as f:
        return json.loads(f.read())


def _part(b, label):
    for p in b["partitions"]:
        if p["name"] == label:
            return p
    raise AssertionError(label)


def _err(b):
    try:
        boardcfg.validate(b, "boards/x.json")
    except boardcfg.BoardError as e:
        msg = str(e)
        assert "\n" not in msg, msg
        return msg
    raise AssertionError("accepted a bad layout")


def test_shipped_layouts_parse_in_flash_order():
    for name in ("bus_validator", "turnstile", "ferry_validator"):
        b = _board(name)
        t = boardcfg.partition_table(boardcfg.validate(b, name))
        assert [p[0] for p in t] == [p["name"] for p in b["partitions"]]
        assert t[-1][0] == "vfs" and t[-1][3] + t[-1][4] == b["flash_mb"] * 1024 * 1024
        end = 0x9000
        for lab, ty, sub, off, size in t:
            assert off >= end and off % (0x10000 if ty == 0 else 0x1000) == 0, (name, lab)
            end = off + size


def test_overlap_names_both_partitions():
    b = _board()
    _part(b, "dlist_b")["offset"] = "0x340000"
    msg = _err(b)
    assert msg.startswith("boards/x.json: partitions.dlist_b.offset: 0x340000 overlaps dlist_a"), msg


def test_first_partition_may_not_cover_the_partition_table():
    b = _board()
    _part(b, "nvs")["offset"] = "0x8000"
    assert "overlaps the boot loader and partition table" in _err(b)


def test_misaligned_data_and_app():
    b = _board()
    _part(b, "dlist_a")["offset"] = "0x310800"
    msg = _err(b)
    assert msg.startswith("boards/x.json: partitions.dlist_a.offset: 0x310800 is not a multiple of 4 KiB"), msg
    b = _board()
    _part(b, "ota_1")["offset"] = "0x191000"   # 4 KiB aligned, but an app needs 64 KiB
    assert _err(b).startswith("boards/x.json: partitions.ota_1.offset: 0x191000 is not a multiple of 64 KiB")
    b = _board()
    _part(b, "vfs")["size"] = "0x46f800"
    assert "partitions.vfs.size: 0x46f800 is not a positive multiple of 4 KiB" in _err(b)


def test_beyond_flash():
    b = _board()
    b["flash_mb"] = 4
    msg = _err(b)
    assert msg.startswith("boards/x.json: partitions.") and "beyond the 4 MB flash (flash_mb)" in msg, msg
    b = _board()
    vfs = _part(b, "vfs")
    vfs["size"] = "0x%x" % (0x1010000 - int(vfs["offset"], 16))   # 64 KiB past the end
    assert _err(b).startswith("boards/x.json: partitions.vfs.size: ends at 0x1010000, beyond the 16 MB flash")


def test_missing_required_partitions():
    for label, why in (("dlist_a", "'dlist_a'"), ("vfs", "'vfs'"), ("nvs", "'nvs'")):
        b = _board()
        b["partitions"] = [p for p in b["partitions"] if p["name"] != label]
        msg = _err(b)
        assert msg.startswith("boards/x.json: partitions: no %s partition" % why), msg
    b = _board()
    b["partitions"] = [p for p in b["partitions"] if p["type"] != "app"]
    assert _err(b).startswith("boards/x.json: partitions: no app partition")
    b = _board()
    b["partitions"] = [p for p in b["partitions"] if p["name"] != "otadata"]
    assert "OTA app slots need exactly one otadata" in _err(b)
    b = _board()
    _part(b, "otadata")["size"] = "0x1000"
    assert _err(b).startswith("boards/x.json: partitions.otadata.size: otadata must be 0x2000")
    b = _board()
    del b["partitions"]
    assert _err(b).startswith("boards/x.json: partitions: missing")


def test_bad_fields():
    b = _board()
    _part(b, "vfs")["offset"] = 3735552
    assert _err(b).startswith("boards/x.json: partitions.vfs.offset: missing or not a string")
    b = _board()
    _part(b, "vfs")["offset"] = "390000"
    assert "partitions.vfs.offset: must be a hex string like" in _err(b)
    b = _board()
    _part(b, "vfs")["subtype"] = "littlefs2"
    assert _err(b).startswith("boards/x.json: partitions.vfs.subtype: data subtype is one of")
    b = _board()
    _part(b, "ota_1")["subtype"] = "ota_16"
    assert "partitions.ota_1.subtype: app subtype is factory or ota_0..ota_15" in _err(b)
    b = _board()
    _part(b, "dlist_a")["subtype"] = "0x20"     # below the application range
    assert "partitions.dlist_a.subtype" in _err(b)
    b = _board()
    _part(b, "dlist_b")["name"] = "dlist_a"
    assert _err(b).startswith("boards/x.json: partitions.dlist_a: label used twice")
    b = _board()
    _part(b, "vfs")["name"] = "a_label_too_long"
    assert _err(b).startswith("boards/x.json: partitions[8].name: a label of 1..15 characters")
    b = _board()
    _part(b, "vfs")["type"] = "fs"
    assert _err(b).startswith("boards/x.json: partitions.vfs.type: app or data")
    b = _board()
    _part(b, "vfs")["subtype"] = "0x40"         # MicroPython mounts the data/fat one
    assert _err(b).startswith("boards/x.json: partitions.vfs.subtype: wrong type/subtype for vfs")
