# The fake esp32 module: partitions (erase/program semantics, errors, OTA
# with rollback) and NVS (commit, persistence across resets).
import vclock
import esp32
from vhw import bus, chip
from ykt import boardcfg

P = esp32.Partition


def setup():
    vclock.reset()
    bus.reset()
    chip.configure(flash_mb=8)


def _oserr(fn, *a):
    try:
        fn(*a)
    except OSError as e:
        return e.args[0]
    raise AssertionError("no OSError")


def _board_chip(name):
    b = boardcfg.load("boards/%s.json" % name)
    chip.configure(mcu=b["mcu"], flash_mb=b["flash_mb"], table=boardcfg.partition_table(b))
    return b


def test_board_layouts_through_the_partition_api():
    # What the firmware sees through esp32.Partition is the board file's layout.
    for name in ("bus_validator", "turnstile", "ferry_validator"):
        b = _board_chip(name)
        want = boardcfg.partition_table(b)
        got = [p.info() for p in P.find(P.TYPE_APP) + P.find(P.TYPE_DATA)]
        assert sorted((i[4], i[0], i[1], i[2], i[3]) for i in got) == sorted(want), name
        vfs = P("vfs").info()
        assert vfs[2] + vfs[3] == b["flash_mb"] * 1024 * 1024
        assert P.find(P.TYPE_DATA, label="dlist_b")[0].info()[1] == 0x40
        assert P(P.RUNNING).info()[4] == [w[0] for w in want if w[1] == 0][0]
    try:
        P("nope")
    except OSError as e:
        assert e.args[0] == 2
    else:
        raise AssertionError("unknown label accepted")


def test_writeblocks_erases_then_programs_without_offset():
    p = P("dlist_a")
    assert p.ioctl(4, 0) == 64 and p.ioctl(5, 0) == 4096
    p.writeblocks(2, bytes(4096))
    p.writeblocks(2, b"\x5a" * 4096)  # erase first: the new data, not an AND
    b = bytearray(4)
    p.readblocks(2, b)
    assert bytes(b) == b"\x5a" * 4
    p.writeblocks(2, b"\xa5\x0f", 100)  # with an offset: program only (AND)
    p.readblocks(2, b, 100)
    assert bytes(b) == b"\x00\x0a\x5a\x5a"
    assert p.ioctl(6, 2) == 0
    p.readblocks(2, b, 100)
    assert bytes(b) == b"\xff" * 4
    fl = chip.get().flash
    assert fl.erases == 3 and fl.programs == 3


def test_partition_errors_like_esp_idf():
    p = P("dlist_b")
    assert _oserr(p.readblocks, 64, bytearray(1)) == -260  # ESP_ERR_INVALID_SIZE
    assert _oserr(p.readblocks, 65, bytearray(1)) == -258  # ESP_ERR_INVALID_ARG
    assert _oserr(p.writeblocks, 0, b"\x00" * 100) == -260  # erase of a partial sector
    try:
        p.readblocks(64, bytearray(1))
    except OSError as e:
        assert e.args[1] == "ESP_ERR_INVALID_SIZE"


def test_small_block_size_keeps_neighbours():
    p = P("dlist_a", 512)
    assert p.ioctl(5, 0) == 512 and p.ioctl(4, 0) == 512
    p.writeblocks(0, b"\x11" * 512)
    p.writeblocks(1, b"\x22" * 512)  # rewrites the sector, keeping block 0
    b = bytearray(1024)
    p.readblocks(0, b)
    assert bytes(b) == b"\x11" * 512 + b"\x22" * 512


def test_ota_update_confirm_and_rollback():
    c = chip.get()
    run = P(P.RUNNING)
    assert run.info()[4] == "ota_0" and P(P.BOOT) == run
    nxt = run.get_next_update()
    assert nxt.info()[4] == "ota_1"
    assert nxt.get_next_update() == run
    assert _oserr(nxt.set_boot) == -0x1503  # no app image there yet
    nxt.writeblocks(0, b"\xe9" + bytes(4095))
    nxt.set_boot()
    assert P(P.BOOT) == nxt and P(P.RUNNING) == run
    c.reboot("hard")
    assert P(P.RUNNING) == nxt  # boots the new image, pending verification
    c.reboot("hard")  # ... which never confirmed itself: rolled back
    assert P(P.RUNNING) == run and P(P.BOOT) == run
    nxt.set_boot()
    c.reboot("hard")
    P.mark_app_valid_cancel_rollback()
    c.reboot("power")
    assert P(P.RUNNING) == nxt
    chip.configure(flash_mb=8, rollback=False)
    assert _oserr(P.mark_app_valid_cancel_rollback) == -261


def test_nvs_commit_and_persistence():
    n = esp32.NVS("ykt")
    n.set_i32("seq", 41)
    n.set_blob("key", b"\x01\x02\x03")
    assert n.get_i32("seq") == 41
    chip.get().reboot("hard")  # not committed: lost
    assert _oserr(n.get_i32, "seq") == -4354  # ESP_ERR_NVS_NOT_FOUND
    n.set_i32("seq", -7)
    n.set_blob("key", "abc")
    n.commit()
    chip.get().reboot("power")
    m = esp32.NVS("ykt")
    assert m.get_i32("seq") == -7
    buf = bytearray(8)
    assert m.get_blob("key", buf) == 3 and bytes(buf[:3]) == b"abc"
    assert _oserr(m.get_blob, "key", bytearray(2)) == -4364  # buffer too small
    assert _oserr(m.get_i32, "key") == -4354  # a blob is not an i32
    assert _oserr(esp32.NVS("other").get_i32, "seq") == -4354  # namespaces apart
    m.erase_key("seq")
    m.commit()
    assert _oserr(m.erase_key, "seq") == -4354
    assert _oserr(m.set_i32, "a_key_that_is_too_long", 1) == -4361
    try:
        m.set_i32("big", 1 << 31)
    except OverflowError:
        pass
    else:
        raise AssertionError("int32 overflow accepted")


def test_nvs_space_is_bounded():
    n = esp32.NVS("big")
    blob = bytes(1000)
    try:
        for i in range(20):
            n.set_blob("b%d" % i, blob)
    except OSError as e:
        assert e.args[0] == -0x1105  # ESP_ERR_NVS_NOT_ENOUGH_SPACE
        assert 8 <= i < 20
    else:
        raise AssertionError("NVS never filled up")


def test_nonexistent_names():
    for obj, name in ((esp32, "OTA"), (P("vfs"), "erase"), (esp32.NVS("x"), "get_str")):
        try:
            getattr(obj, name)
        except AttributeError:
            pass
        else:
            raise AssertionError(name)


def test_16mb_bus_board_has_two_app_slots_the_province_list_and_room_for_the_journal():
    _board_chip("bus_validator")
    assert [p.info()[4] for p in P.find()] == ["ota_0", "ota_1"]
    vfs = P("vfs").info()
    jr = P("jrnl").info()
    # The tap journal is a ring on "jrnl" (85 taps per 4 KiB sector, one sector
    # kept erased ahead): the budget's 30 days of 1,500 taps (README) need 531
    # sectors; it holds 576.
    assert jr[:2] == (1, 0x41) and (jr[3] // 4096 - 1) * 85 >= 30 * 1500
    assert jr[2] + jr[3] == vfs[2]
    # littlefs keeps the tables, keys, the ack cursor and the other files: 3.8 MiB
    assert vfs[2] + vfs[3] == 16 * 1024 * 1024 and vfs[3] >= 3 * 1024 * 1024
    assert P("dlist_a").info()[3] == 3 * 1024 * 1024   # format 3: 1M + 100k cards (docs/denylist.md)
    assert P(P.RUNNING).get_next_update().info()[4] == "ota_1"
