"""Deny list, CPython side: property tests over random sets and corruptions,
the CSV builder (tokens from card identity match the firmware), the
`ykt denylist` CLI and a small run of the benchmark."""
import hashlib
import json
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import conftest  # noqa: F401  (paths)
import t_denylist_util as U
from yktsrv import dlbuild
from ykt.rules import dlformat as F
from ykt.sec import token as T
from ykt.rules.denylist import DenyList
from ykt.rules.dlformat import DenyListError
from ykt_tools.cli import main as cli
from ykt_tools.build import denylist as B

EX = int(os.environ.get("YKT_FUZZ_EXAMPLES", "300"))
M64 = (1 << 64) - 1


def _install(toks, stats, version=1, fill=F.BLK_PAYLOAD):
    img = dlbuild.encode_image(toks, bytes(stats), version, 0, fill=fill)
    a, b = U.slots(len(img) // F.BLOCK + 1)
    dl = DenyList(a, b)
    dl.install(img)
    return dl, img, a


tokens = st.one_of(st.integers(0, M64), st.sampled_from([0, 1, 2, M64, M64 - 1, 1 << 63, (1 << 63) - 1]))


@pytest.mark.fuzz
@settings(max_examples=EX, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(tokens, st.integers(1, 4), max_size=300), st.lists(tokens, max_size=50),
       st.sampled_from([F.BLK_PAYLOAD, 600, 200]))
def test_fuzz_exact_lookups(d, probes, fill):
    toks = sorted(d)
    stats = [d[t] for t in toks]
    try:
        dl, img, a = _install(toks, stats, fill=fill)
    except dlbuild.BuildError as e:
        # The builder's stated contract for clustered (non-keyed) tokens: a
        # clear refusal, never a wrong image (docs/denylist.md).
        assert "too many tokens for one block" in str(e)
        return
    assert list(dlbuild.iter_entries(img)) == list(zip(toks, stats))
    for t in toks + probes:
        r0 = a.reads
        assert dl.lookup(t.to_bytes(8, "big")) == d.get(t, 0)
        assert a.reads - r0 <= 2


@pytest.mark.fuzz
@settings(max_examples=EX, deadline=None)
@given(st.integers(0, 3 * F.BLOCK - 1), st.integers(1, 255))
def test_fuzz_every_image_byte_corruption_rejected(off, x):
    # a 3-block image (header, directory, data): any byte changed anywhere is
    # refused at install time, and the list in force is kept
    r = random.Random(5)
    toks = sorted(r.getrandbits(64) for _ in range(40))
    img = bytearray(dlbuild.encode_image(toks, bytes([1, 2, 3, 4] * 10), 5, 0))
    assert len(img) == 3 * F.BLOCK
    old = dlbuild.encode_image([7], b"\x01", 4, 0)
    a, b = U.slots(4)
    dl = DenyList(a, b)
    dl.install(old)
    img[off] ^= x
    with pytest.raises(DenyListError):
        dl.install(bytes(img))
    assert dl.version == 4 and dl.lookup((7).to_bytes(8, "big")) == 1
    assert DenyList(a, b).version == 4


@pytest.mark.fuzz
@settings(max_examples=EX, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 60), st.integers(1, 255))
def test_fuzz_delta_parser(junk, off, x):
    d = bytearray(F.pack_delta(3, 4, [(bytes([i]) * 8, i % 5) for i in range(1, 5)]))
    off %= len(d)
    d[off] ^= x
    a, b = U.slots(3)
    dl = DenyList(a, b)
    dl.install(dlbuild.encode_image([9], b"\x02", 3, 0))
    for data in (bytes(d), junk, bytes(d) + junk[:1]):
        try:
            dl.apply_delta(data)
        except DenyListError:
            assert dl.version == 3 and dl.delta_count == 0
        else:  # only an intact delta may apply (a flip in 'created' is caught by the CRC too)
            raise AssertionError("corrupted delta applied")


def test_bound_at_200k_entries():
    rng = random.Random(3)
    toks = sorted({rng.getrandbits(64) for _ in range(200000)})
    stats = bytes(rng.choice((1, 2, 3, 4)) for _ in toks)
    img = dlbuild.encode_image(toks, stats, 1, 0)
    n = len(toks)
    mn = B.info_min_bits(n, B.status_entropy_bits([stats.count(s) for s in (1, 2, 3, 4)]))
    assert len(img) * 8 <= 1.1 * mn, len(img) * 8 / mn


@pytest.mark.slow
def test_bound_at_1m_entries():
    rng = random.Random(4)
    toks = sorted({rng.getrandbits(64) for _ in range(1000000)})
    img = dlbuild.encode_image(toks, bytes(1 for _ in toks), 1, 0)
    n = len(toks)
    # with a single status the status entropy is 0: the strictest bound
    assert len(img) * 8 <= 1.1 * B.info_min_bits(n, 0.0)


KEY = bytes(range(32))


def _csv(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_csv_identity_tokens_match_firmware(tmp_path):
    cid = "450100d1560000050000000000000001"
    path = _csv(tmp_path, "s.csv", "card_id,card_no,status,since\n%s,A12345678,挂失,2026-01-02\n" % cid)
    ents, summ = B.load_status_csv(path, KEY)
    want = {int.from_bytes(T.card_token(KEY, bytes.fromhex(cid)), "big"): 1,
            int.from_bytes(T.cardno_token(KEY, b"A12345678"), "big"): 1}
    assert ents == want and summ["identity_rows"] == 1
    ents, _ = B.load_status_csv(path, KEY, tokens="card")
    assert list(ents) == [int.from_bytes(T.card_token(KEY, bytes.fromhex(cid)), "big")]


def test_csv_latest_since_wins_and_normal_removes(tmp_path):
    path = _csv(tmp_path, "s.csv", "token,status,since\n"
                "00000000000000aa,lost,2026-01-01\n"
                "00000000000000aa,replaced,2026-03-01T10:00:00Z\n"
                "00000000000000aa,suspended,1700000000\n"
                "00000000000000bb,cancelled,\n"
                "00000000000000bb,normal,2026-05-01\n"
                "00000000000000cc,Canceled,\n")
    ents, summ = B.load_status_csv(path)
    assert ents == {0xAA: F.ST_REPLACED, 0xCC: F.ST_CANCELLED}
    assert summ["duplicates"] == 3 and summ["normal"] == 1


@pytest.mark.parametrize("text,msg", [
    ("token,status\nzz,lost\n", "16 hex"),
    ("token,status\n00000000000000zz,lost\n", "not hex"),
    ("token,status\n0000000000000001,stolen\n", "unknown status"),
    ("card_id,status\n4501,lost\n", "no --key-file"),
    ("name,status\nx,lost\n", "need a status column"),
    ("token,status,since\n0000000000000001,lost,yesterday\n", "bad since"),
])
def test_csv_errors_name_the_line(tmp_path, text, msg):
    path = _csv(tmp_path, "bad.csv", text)
    with pytest.raises(B.InputError, match=msg):
        B.load_status_csv(path)


def test_csv_identity_checks(tmp_path):
    for row, msg in (("4501,A12345678", "16 bytes"), ("450100d1560000050000000000000001,A1", "9 ASCII")):
        path = _csv(tmp_path, "i.csv", "card_id,card_no,status\n%s,lost\n" % row)
        with pytest.raises(B.InputError, match=msg):
            B.load_status_csv(path, KEY)


def test_key_file_hex_or_raw(tmp_path):
    (tmp_path / "k.hex").write_text(KEY.hex() + "\n")
    (tmp_path / "k.bin").write_bytes(KEY)
    (tmp_path / "short").write_bytes(b"abc")
    assert B.read_key(str(tmp_path / "k.hex")) == KEY
    assert B.read_key(str(tmp_path / "k.bin")) == KEY
    with pytest.raises(B.InputError):
        B.read_key(str(tmp_path / "short"))


def test_cli_build_info_delta_lookup(tmp_path, capsys):
    (tmp_path / "key").write_text(KEY.hex())
    r = random.Random(1)
    rows = ["%016x,%s" % (r.getrandbits(64), ("lost", "suspended", "cancelled", "replaced")[i % 4])
            for i in range(2000)]
    s1 = _csv(tmp_path, "s1.csv", "token,status\n" + "\n".join(rows) + "\n")
    s2 = _csv(tmp_path, "s2.csv", "token,status\n" + "\n".join(rows[5:] + ["0000000000000001,lost"]) + "\n")
    i1, i2, d = (str(tmp_path / n) for n in ("i1.bin", "i2.bin", "d.bin"))
    assert cli.main(["denylist", "build", "--input", s1, "--out", i1, "--version", "100", "--json",
                     "--created", "1795000000"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["entries"] == 2000 and res["version"] == 100 and res["verified_entries"] == 2000
    assert cli.main(["denylist", "info", i1, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["valid"] and info["verified_entries"] == 2000
    assert cli.main(["denylist", "build", "--input", s2, "--out", i2, "--version", "101"]) == 0
    capsys.readouterr()
    assert cli.main(["denylist", "delta", "--base", i1, "--new", i2, "--out", d, "--json"]) == 0
    dres = json.loads(capsys.readouterr().out)
    assert dres["kind"] == "delta" and dres["entries"] == 6 and dres["removes"] == 5
    assert dres["base_version"] == 100 and dres["version"] == 101
    assert cli.main(["denylist", "delta", "--base", i1, "--input", s2, "--out", d, "--version", "102"]) == 0
    capsys.readouterr()
    gone = rows[0].split(",")[0]
    kept = rows[7].split(",")[0]
    assert cli.main(["denylist", "lookup", i1, "--delta", d, gone, kept, "0000000000000001"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("version 102")
    assert out[1:] == ["%s none" % gone, "%s replaced" % kept, "0000000000000001 lost"]
    # a corrupted file: info says why and exits 1
    data = bytearray(open(i1, "rb").read())
    data[F.BLOCK + 5] ^= 1
    open(i1, "wb").write(data)
    assert cli.main(["denylist", "info", i1, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "bad_hash"


def test_cli_delta_too_large_refused(tmp_path, capsys):
    r = random.Random(2)
    a = B.build_image({r.getrandbits(64): 1 for i in range(600)}, 1, 0)
    b = B.build_image({r.getrandbits(64): 1 for i in range(600)}, 2, 0)
    (tmp_path / "a").write_bytes(a)
    (tmp_path / "b").write_bytes(b)
    rc = cli.main(["denylist", "delta", "--base", str(tmp_path / "a"), "--new", str(tmp_path / "b"),
                   "--out", str(tmp_path / "d")])
    assert rc == 2 and "build a new image" in capsys.readouterr().err


def _filter_image(den, reg, fx, version, rw=3):
    ext = dlbuild.plan_small(den, reg, rw)
    st_ = [1 + (t % 5) for t in den]
    return b"".join(dlbuild.encode_sections((den, st_, ext), (fx, [1 + (t % 5) for t in fx]), version, 0,
                                            rw=rw, rp=1)), st_


@pytest.mark.fuzz
@settings(max_examples=EX, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tokens, min_size=1, max_size=400, unique=True), st.integers(1, 40), st.integers(1, 12),
       st.lists(tokens, max_size=30, unique=True), st.lists(tokens, max_size=40))
def test_fuzz_filter_exact_over_its_registry(reg, every, rw, fx, probes):
    # format 3: every registry card gets exactly its status, whatever the
    # registry and record width; foreign cards by the exact section
    reg = sorted(reg)
    den = reg[::every]
    fx = sorted(set(fx) - set(den))
    img, st_ = _filter_image(den, reg, fx, 3, rw)
    a, b = U.slots(len(img) // F.BLOCK + 1)
    dl = DenyList(a, b)
    dl.install(img)
    want = dict(zip(den, st_))
    for t in reg:
        r0 = a.reads
        assert dl.lookup(t.to_bytes(8, "big")) == want.get(t, 0)
        assert a.reads - r0 <= 2
    fw = {t: 1 + (t % 5) for t in fx}
    for t in fx + probes:
        assert dl.lookup(t.to_bytes(8, "big"), 0, True) == fw.get(t, 0)
    got = [(v, s) for v, _b, s, _x in dlbuild.iter_section(img, 1)]
    assert got == sorted(fw.items())


@pytest.mark.fuzz
@settings(max_examples=EX, deadline=None)
@given(st.integers(0, 6 * F.BLOCK - 1), st.integers(1, 255))
def test_fuzz_filter_image_byte_corruption_rejected(off, x):
    r = random.Random(9)
    reg = sorted(r.getrandbits(64) for _ in range(3000))
    img, _st = _filter_image(reg[::10], reg, sorted(r.getrandbits(64) for _ in range(30)), 5)
    img = bytearray(img)
    off %= len(img)
    a, b = U.slots(len(img) // F.BLOCK + 1)
    dl = DenyList(a, b)
    dl.install(dlbuild.encode_image([7], b"\x01", 4, 0))
    img[off] ^= x
    with pytest.raises(DenyListError):
        dl.install(bytes(img))
    assert dl.version == 4 and dl.lookup((7).to_bytes(8, "big")) == 1
    assert DenyList(a, b).version == 4


def test_cli_build_with_registry(tmp_path, capsys):
    r = random.Random(12)
    reg = [r.getrandbits(64) for _ in range(4000)]
    den = reg[:300]
    outside = r.getrandbits(64)             # denied, unknown to the registry
    (tmp_path / "reg.txt").write_text("# registry\n" + "\n".join("%016x" % t for t in reg) + "\n")
    (tmp_path / "s.csv").write_text("token,status\n" + "".join("%016x,lost\n" % t for t in den)
                                    + "%016x,unpaid\n" % outside)
    rc = cli.main(["denylist", "build", "--input", str(tmp_path / "s.csv"), "--out", str(tmp_path / "i"),
                   "--version", "3", "--registry", str(tmp_path / "reg.txt"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["format"] == 3 and out["guangxi"]["entries"] == 301 and out["foreign"]["entries"] == 1
    probe = ["%016x" % t for t in (den[0], reg[-1], outside)]
    assert cli.main(["denylist", "lookup", str(tmp_path / "i")] + probe) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert lines == [probe[0] + " lost", probe[1] + " none", probe[2] + " unpaid"]
    assert cli.main(["denylist", "lookup", "--foreign", str(tmp_path / "i"), probe[2], probe[0]]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [probe[2] + " unpaid", probe[0] + " none"]
    (tmp_path / "bad.txt").write_text("%016x\n12345\n" % reg[0])
    rc = cli.main(["denylist", "build", "--input", str(tmp_path / "s.csv"), "--out", str(tmp_path / "j"),
                   "--version", "3", "--registry", str(tmp_path / "bad.txt")])
    assert rc == 2 and "bad.txt:2: a token is 16 hex digits" in capsys.readouterr().err
    assert not (tmp_path / "j").exists()
    rc = cli.main(["denylist", "delta", "--base", str(tmp_path / "i"), "--input", str(tmp_path / "s.csv"),
                   "--out", str(tmp_path / "d"), "--version", "4"])
    assert rc == 2 and "format-3 image keeps only part" in capsys.readouterr().err


def test_bench_registry_small_run():
    from types import SimpleNamespace

    from ykt_tools.bench import denylist as bench_denylist

    res = bench_denylist.run(SimpleNamespace(entries=5000, registry=200000, foreign=500, sample=20000,
                                             lookups=300, seed=3, heap="256K", keep=None, runtime="micropython32"))
    assert res["false_refusals"] == 0 and res["false_accepts"] == 0 and res["wrong_status"] == 0
    assert res["builder_check"]["registry_checked"] == res["registry"] >= 199990
    assert res["registry_sampled"] >= 20000 and res["timed_results_exact"]
    assert res["block_reads_max"] <= 2 and res["alloc_bytes_per_lookup"] == 0
    assert res["extensions"] > 0 and 0 < res["new_card_false_refusal_rate"] < 0.05
    assert set(res["fits"]) == {"bus_validator", "ferry_validator", "turnstile"}


def test_bench_small_run():
    from types import SimpleNamespace

    from ykt_tools.bench import denylist as bench_denylist

    res = bench_denylist.run(SimpleNamespace(entries=3000, lookups=200, seed=2, heap="256K", keep=None))
    for key in ("entries", "bytes_per_entry", "bound_bytes_per_entry", "block_reads_max", "ram_bytes",
                "lookup_unix_us", "lookup_esp32_ms", "build_s"):
        assert key in res and key in res["baseline"], key
    assert res["exact"] and res["baseline"]["exact"]
    assert res["block_reads_max"] <= 2 and res["baseline"]["block_reads_max"] > 2
    assert res["ram_bytes"] <= 8192 and res["alloc_bytes_per_lookup"] == 0
    assert res["entries"] == 3000


def test_image_bytes_are_deterministic():
    r = random.Random(9)
    toks = sorted({r.getrandbits(64) for _ in range(5000)})
    a = dlbuild.encode_image(toks, bytes([2] * len(toks)), 77, 1795000000)
    b = B.build_image({t: 2 for t in toks}, 77, 1795000000)
    assert a == b and hashlib.sha256(a).digest() == hashlib.sha256(b).digest()
