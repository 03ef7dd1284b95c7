# The tap journal (ykt.journal): format, recovery, sequence numbers, upload
# cursor, rotation and the full-journal policy. Under MicroPython it runs on
# real littlefs (vfs.VfsLfs2 over vhw/lfsdev.py); under CPython on plain files.
# The power-cut sweep is tests/test_powercut.py (ykt powercut).
import os
import struct
import sys
from binascii import crc32, hexlify

from ykt import journal, taprec
from ykt.sec.crypt import Ctr
from ykt.journal import Journal, JournalError, JournalFull

KEY = b"0123456789abcdef"
_n = [0]


def _rng(seed):
    s = [seed]

    def rng(n):
        out = bytearray(n)
        for i in range(n):
            s[0] = (s[0] * 1103515245 + 12345) & 0x7FFFFFFF
            out[i] = (s[0] >> 16) & 0xFF
        return bytes(out)

    return rng


def _fresh_dir():
    """An empty journal directory: a fresh littlefs on MicroPython."""
    _n[0] += 1
    if sys.implementation.name == "micropython":
        import vfs
        from vhw.lfsdev import LfsBlockDev

        try:
            vfs.umount("/tj")
        except OSError:
            pass
        bd = LfsBlockDev(96, 512)
        vfs.VfsLfs2.mkfs(bd)
        vfs.mount(vfs.VfsLfs2(bd, mtime=False), "/tj")
        return "/tj/j"
    import tempfile

    return tempfile.mkdtemp(prefix="ykt-jt-") + "/j"


def _tap(i):
    t = taprec.Tap()
    t.time = 1795000000 + i
    for k in range(8):
        t.token[k] = (i + k * 17) & 0xFF
    t.fare = i % 400
    t.entry = 301
    t.stop = i % 30
    t.dl_ver = 7
    return t


def _open(d, **kw):
    kw.setdefault("seg_recs", 8)
    kw.setdefault("rng", _rng(1))
    if "capacity_bytes" not in kw:
        kw["capacity_bytes"] = 1 << 20
    return Journal(d, KEY, **kw).open()


def _segs(d):
    return sorted(n for n in os.listdir(d) if n.endswith(".seg"))


def test_append_pending_ack_rotation():
    d = _fresh_dir()
    j = _open(d)
    assert j.next_seq == 1 and j.backlog == 0 and j.oldest_pending_time is None
    for i in range(20):
        t = _tap(i)
        assert j.append(t) == i + 1 and t.seq == i + 1
    assert j.backlog == 20 and j.next_seq == 21
    assert _segs(d) == ["00000001.seg", "00000009.seg", "00000011.seg"]
    got = j.pending(5)
    assert [t.seq for t in got] == [1, 2, 3, 4, 5]
    assert taprec.pack(got[3])[4:] == taprec.pack(_tap(3))[4:]
    assert j.oldest_pending_time == 1795000000
    assert [t.seq for t in j.pending(3, after=7)] == [8, 9, 10]
    assert j.ack(5) == 5 and j.backlog == 15
    assert _segs(d) == ["00000001.seg", "00000009.seg", "00000011.seg"]  # seg 1 holds 6..8
    assert j.oldest_pending_time == 1795000005
    j.ack(9)
    assert _segs(d) == ["00000009.seg", "00000011.seg"]
    buf = bytearray(taprec.SIZE * 4)
    assert j.pending_into(buf) == 4
    assert taprec.unpack_from(buf, 0).seq == 10 and taprec.unpack_from(buf, 3 * taprec.SIZE).seq == 13
    assert j.ack(1000) == 20  # clamped to what exists
    assert _segs(d) == ["00000011.seg"]  # the newest stays: it holds the high-water mark
    assert j.backlog == 0 and j.pending(10) == []
    j.close()
    j = _open(d)
    assert j.next_seq == 21 and j.cursor == 20 and j.backlog == 0
    assert j.append(_tap(21)) == 21
    j.close()


def test_reopen_recovers_state():
    d = _fresh_dir()
    j = _open(d)
    for i in range(11):
        j.append(_tap(i))
    j.ack(3)
    j.close()
    j = _open(d)
    assert (j.next_seq, j.cursor, j.backlog) == (12, 3, 8)
    assert [t.seq for t in j.pending(100)] == list(range(4, 12))
    assert j.append(_tap(50)) == 12
    # a reboot never appends to an old segment: a new one starts at 12
    assert "0000000c.seg" in _segs(d)
    j.close()
    j = _open(d)
    assert [t.seq for t in j.pending(100)] == list(range(4, 13))
    j.close()


def test_segment_format_bytes():
    d = _fresh_dir()
    j = _open(d, rng=lambda n: b"\x78\x56\x34\x12"[:n])
    t = _tap(7)
    t.shift = 0x0A0B0C0D
    j.append(t)
    j.close()
    with open(d + "/00000001.seg", "rb") as f:
        raw = f.read()
    assert len(raw) == 20 + 40
    ctr = Ctr(KEY)
    hdr = b"YKS2" + struct.pack("<III", 1, 0x12345678, ctr.kcv)
    assert raw[:16] == hdr and struct.unpack("<I", raw[16:20])[0] == crc32(hdr)
    plain = taprec.pack(t)
    assert plain[:4] == b"\x01\x00\x00\x00"
    frame = raw[20:]
    assert struct.unpack("<I", frame[36:])[0] == crc32(plain)
    assert bytes(t.token) not in raw  # the card token is not on flash in clear
    out = bytearray(36)
    ctr.xor(0x12345678, 1, frame, 0, out, 0, 36)
    assert bytes(out) == plain[4:]
    # pin the keystream: AES-128-ECB(KEY, "YKJ1"|salt|seq|block) XOR plaintext
    assert hexlify(frame).decode() == hexlify(_expected_frame(plain)).decode()
    with open(d + "/ack", "wb") as f:
        pass
    j = _open(d)  # an empty/garbled ack file: cursor 0, never a loss
    assert j.cursor == 0 and j.backlog == 1
    j.close()


def _expected_frame(plain):
    from cryptolib import aes

    e = aes(KEY, 1)
    ks = e.encrypt(b"YKJ1" + struct.pack("<III", 0x12345678, 1, 0)) + \
        e.encrypt(b"YKJ1" + struct.pack("<III", 0x12345678, 1, 1)) + \
        e.encrypt(b"YKJ1" + struct.pack("<III", 0x12345678, 1, 2))
    ct = bytes(plain[4 + i] ^ ks[i] for i in range(36))
    return ct + struct.pack("<I", crc32(plain))


def test_format_1_segments_are_read_then_left_behind():
    # A journal written by firmware before driver shifts (36-byte records,
    # segment magic YKS1) holds taps not yet uploaded when the device is
    # updated: they are read as format-2 records with shift 0, new taps go
    # to a new YKS2 segment, and nothing is renumbered.
    d = _fresh_dir()
    os.mkdir(d)
    ctr = Ctr(KEY)
    salt = 0x01020304
    hdr = b"YKS1" + struct.pack("<III", 1, salt, ctr.kcv)
    raw = bytearray(hdr + struct.pack("<I", crc32(hdr)))
    old = []
    for i in range(3):
        t = _tap(i)
        t.seq = i + 1
        plain = taprec.pack(t)[:36]     # format 1: the record without its shift
        fr = bytearray(36)
        ctr.xor(salt, t.seq, plain, 4, fr, 0, 32)
        struct.pack_into("<I", fr, 32, crc32(plain))
        raw += fr
        old.append(t)
    raw += b"\x55" * 17                 # and a torn tail
    with open(d + "/00000001.seg", "wb") as f:
        f.write(raw)
    j = _open(d)
    assert j.next_seq == 4 and j.backlog == 3 and j.dropped == 17
    got = j.pending(10)
    assert [taprec.pack(t) for t in got] == [taprec.pack(t) for t in old]
    assert [t.shift for t in got] == [0, 0, 0]
    n = j.append(_tap(9))
    assert n == 4 and _segs(d) == ["00000001.seg", "00000004.seg"]
    j.close()
    with open(d + "/00000004.seg", "rb") as f:
        assert f.read(4) == b"YKS2"
    j = _open(d)
    buf = bytearray(taprec.SIZE * 8)
    assert j.pending_into(buf) == 4 and j.corrupt == 0
    assert [taprec.unpack_from(buf, i * taprec.SIZE).seq for i in range(4)] == [1, 2, 3, 4]
    j.close()


def test_torn_tail_is_dropped_never_misread():
    d = _fresh_dir()
    j = _open(d)
    for i in range(5):
        j.append(_tap(i))
    j.close()
    # A torn append as a non-atomic filesystem could leave it: a partial frame,
    # or a whole frame of garbage (littlefs itself rolls back to the last sync).
    for garbage in (b"\x13" * 20, b"\x00" * 40, b"\xff" * 40 + b"\x42" * 7):
        with open(d + "/00000001.seg", "ab") as f:
            f.write(garbage)
        j = _open(d)
        assert j.next_seq == 6, (garbage, j.next_seq)
        assert [t.seq for t in j.pending(100)] == [1, 2, 3, 4, 5]
        assert j.dropped == len(garbage) or j.dropped >= 40
        j.close()
        with open(d + "/00000001.seg", "rb") as f:
            raw = f.read()
        with open(d + "/00000001.seg", "wb") as f:
            f.write(raw[:20 + 5 * 40])
    # after a torn tail the next tap goes to a new segment, never after garbage
    with open(d + "/00000001.seg", "ab") as f:
        f.write(b"\x13" * 30)
    j = _open(d)
    assert j.append(_tap(9)) == 6
    j.close()
    assert _segs(d) == ["00000001.seg", "00000006.seg"]
    j = _open(d)
    recs = j.pending(100)
    assert [t.seq for t in recs] == [1, 2, 3, 4, 5, 6] and j.corrupt == 0
    assert recs[5].time == 1795000009
    j.close()


def test_corrupt_middle_frame_is_skipped_and_counted():
    d = _fresh_dir()
    j = _open(d)
    for i in range(6):
        j.append(_tap(i))
    j.close()
    with open(d + "/00000001.seg", "rb") as f:
        raw = bytearray(f.read())
    raw[20 + 40 * 2 + 5] ^= 0x40  # one flipped bit in record 3
    with open(d + "/00000001.seg", "wb") as f:
        f.write(raw)
    j = _open(d)
    assert [t.seq for t in j.pending(100)] == [1, 2, 4, 5, 6] and j.corrupt == 1
    j.close()


def test_wrong_key_is_refused_not_treated_as_torn():
    d = _fresh_dir()
    j = _open(d)
    j.append(_tap(1))
    j.close()
    try:
        Journal(d, b"another-key-0000", seg_recs=8).open()
        raise AssertionError("opened with the wrong key")
    except JournalError:
        pass
    j = _open(d)
    assert j.backlog == 1
    j.close()
    for bad in (b"short", b"x" * 24):
        try:
            Journal(d, bad)
            raise AssertionError("accepted a %d-byte key" % len(bad))
        except ValueError:
            pass


def test_full_journal_refuses_and_never_overwrites():
    d = _fresh_dir()
    j = _open(d, capacity_bytes=1)
    try:
        j.append(_tap(0))
        raise AssertionError("appended beyond capacity")
    except JournalFull as e:
        assert str(e) == journal.MSG_FULL
    j.close()
    j = _open(d, capacity_bytes=None)
    per_seg = j._flash_bytes(20 + 8 * 40)
    j.close()
    j = _open(d, capacity_bytes=3 * per_seg)
    assert j.room == 24 and not j.full
    n = 0
    try:
        while True:
            j.append(_tap(n))
            n += 1
    except JournalFull:
        pass
    assert n == 24 and j.full and j.room == 0 and j.backlog == 24
    # refusing keeps raising, writes nothing, and keeps every unacked tap
    for _ in range(3):
        try:
            j.append(_tap(99))
            raise AssertionError("accepted a tap while full")
        except JournalFull:
            pass
    assert j.next_seq == 25
    recs = j.pending(100)
    assert [t.seq for t in recs] == list(range(1, 25))
    assert recs[23].time == 1795000023
    j.ack(4)  # not a whole segment: still full
    assert j.full
    j.ack(8)  # first segment fully uploaded: room for one more segment
    assert not j.full and j.room == 8
    assert j.append(_tap(100)) == 25
    j.close()
    # after a reboot the partly filled segment is closed (fresh salt per boot):
    # the journal is full again until a whole segment is acked
    j = _open(d, capacity_bytes=3 * per_seg)
    assert j.backlog == 17 and j.full
    j.ack(16)
    assert j.room == 8 and j.append(_tap(101)) == 26
    j.close()


def test_reboots_without_taps_do_not_grow_or_reuse():
    d = _fresh_dir()
    j = _open(d)
    j.append(_tap(0))
    j.close()
    for k in range(5):
        j = _open(d, rng=_rng(k + 10))
        j.close()
    assert _segs(d) == ["00000001.seg"]
    j = _open(d)
    assert j.append(_tap(1)) == 2
    j.close()
    j = _open(d)
    j.ack(2)
    assert _segs(d) == ["00000002.seg"]
    j.close()
    j = _open(d)
    assert j.next_seq == 3  # high-water mark survives with everything acked
    j.close()


def test_empty_newest_segment_is_reused_with_a_new_salt():
    d = _fresh_dir()
    j = _open(d, rng=lambda n: b"\x01\x00\x00\x00")
    j.append(_tap(0))
    j.ack(1)
    j.close()
    # simulate a cut right after a segment was created (header only)
    j = _open(d, rng=lambda n: b"\x02\x00\x00\x00")
    j.append(_tap(1))
    j.close()
    with open(d + "/00000002.seg", "rb") as f:
        hdr = f.read(20)
    with open(d + "/00000002.seg", "wb") as f:
        f.write(hdr)
    j = _open(d, rng=lambda n: b"\x03\x00\x00\x00")
    assert j.next_seq == 2
    assert j.append(_tap(5)) == 2
    j.close()
    with open(d + "/00000002.seg", "rb") as f:
        raw = f.read()
    assert struct.unpack_from("<I", raw, 8)[0] == 3 and len(raw) == 60
    # and a torn header (file created, header not synced) is rewritten too
    j = _open(d)
    j.ack(2)
    j.close()
    with open(d + "/00000003.seg", "wb") as f:
        f.write(b"YKS")
    j = _open(d)
    assert j.next_seq == 3 and j.append(_tap(6)) == 3
    j.close()
    j = _open(d)
    assert [t.seq for t in j.pending(10)] == [3]
    j.close()
