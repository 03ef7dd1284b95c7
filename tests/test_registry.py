"""The card registry (backoffice/registry.py) on SQLite and PostgreSQL: the
import file, resolving a card number or citizen ID to card tokens, status
changes by any identifier (CLI, admin API), entitlements that follow the
holder to a replacement card, and refusals that change nothing."""
import json
import os

import pytest
from sqlalchemy import func, select

import conftest

os.environ.setdefault("YKT_RSA_BITS", "2048")

from ykt_tools.backoffice import api, ops, registry, testing  # noqa: E402
from ykt_tools.backoffice import schema as S  # noqa: E402
from ykt_tools.backoffice.errors import OpError  # noqa: E402
from ykt.sec import token as ktoken  # noqa: E402
from ykt.rules import fares as kfares  # noqa: E402

HDR = ",".join(registry.COLUMNS)
OLD = "450200d15600000520160606000007a1"
NEW = "450200d15600000520261101000007b2"
OTHER = "450100d15600000520200101000a0001"
CIT = "450203197007070011"      # MOD 11-2 check character below
CIT2 = "450103199003030015"


def _cit(body17):
    w = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body17 + "10X98765432"[sum(int(body17[i]) * w[i] for i in range(17)) % 11]


CIT = _cit(CIT[:17])
CIT2 = _cit(CIT2[:17])
CSV = "\n".join([
    "# exported by the card-management system",
    HDR,
    "%s,A45020001,%s,2,20160606,20300606,active," % (OLD, CIT),
    "%s,A45020002,%s,3,20261101,20361101,active," % (NEW, CIT),
    "%s,L00000001,%s,3,20200101,20300101,active," % (OTHER, CIT2),
]) + "\n"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def eng(request, tmp_path):
    if request.param == "postgresql":
        conftest.need_postgres()
    with testing.temp_db(request.param, tmp_path) as url:
        e = api.engine(url)
        ops.ensure_signing_key(e)
        yield e


def _key(eng):
    from ykt_tools.backoffice.db import setting
    with eng.connect() as c:
        return setting(c, "token_key")


def _tok(eng, cid):
    return ktoken.card_token(_key(eng), bytes.fromhex(cid))


def _dump(eng):
    """Everything a refused call must leave as it was."""
    with eng.connect() as c:
        return ([tuple(r) for r in c.execute(select(S.cards).order_by(S.cards.c.token))],
                [tuple(r) for r in c.execute(select(S.card_status).order_by(S.card_status.c.token))],
                c.execute(select(func.coalesce(func.max(S.denylist.c.version), 0))).scalar_one())


def test_import_stores_only_keyed_tokens(eng):
    r = registry.import_file(eng, CSV, "cards.csv")
    assert (r["rows"], r["added"], r["updated"], r["denied"]) == (3, 3, 0, 0)
    with eng.connect() as c:
        rows = c.execute(select(S.cards)).all()
    blob = repr([tuple(x) for x in rows]).encode()
    for plain in (OLD, NEW, "A45020001", CIT, CIT2):
        assert plain.encode() not in blob and bytes.fromhex(OLD) not in blob if len(plain) == 32 else \
            plain.encode() not in blob
    toks = {bytes(x.token) for x in rows}
    assert toks == {_tok(eng, OLD), _tok(eng, NEW), _tok(eng, OTHER)}   # the tokens devices compute
    # importing again updates, adds nothing
    r = registry.import_file(eng, CSV.replace("20300606,active", "20300606,lost"), "cards.csv")
    assert (r["added"], r["updated"], r["denied"]) == (0, 3, 1) and r["dl_ver"] == 1
    old = _tok(eng, OLD)
    with eng.connect() as c:
        assert c.execute(select(S.card_status.c.status)
                         .where(S.card_status.c.token == old)).scalar_one() == "lost"


@pytest.mark.parametrize("line,field", [
    ("zz,A45020001,%s,2,20160606,20300606,active," % CIT, "card_id"),
    ("%s,A4502,%s,2,20160606,20300606,active," % (OLD, CIT), "card_no"),
    ("%s,A45020001,450203197007070019,2,20160606,20300606,active," % OLD, "citizen_id"),
    ("%s,A45020001,%s,4,20160606,20300606,active," % (OLD, CIT), "generation"),
    ("%s,A45020001,%s,2,20161306,20300606,active," % (OLD, CIT), "issued"),
    ("%s,A45020001,%s,2,20160606,20100606,active," % (OLD, CIT), "expires"),
    ("%s,A45020001,%s,2,20160606,20300606,gone," % (OLD, CIT), "status"),
    ("%s,A45020001,%s,2,20160606,20300606,active,%s" % (OLD, CIT, NEW), "replaced_by"),
])
def test_import_refuses_a_bad_row_naming_line_and_field(eng, line, field):
    registry.import_file(eng, CSV, "cards.csv")
    before = _dump(eng)
    with pytest.raises(ValueError) as e:
        registry.import_file(eng, CSV + line + "\n", "cards.csv")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("cards.csv line 6: field %s: " % field), msg
    assert _dump(eng) == before


def test_import_refuses_header_duplicates_and_oversize():
    with pytest.raises(ValueError, match="line 1: header must be"):
        registry.parse("card_no,card_id\n")
    with pytest.raises(ValueError, match="line 4: field card_id: the same card as line 3"):
        registry.parse(HDR + "\n\n%s,A45020001,%s,2,20160606,20300606,active,\n" % (OLD, CIT) * 1 +
                       "%s,A45020009,%s,2,20160606,20300606,active,\n" % (OLD, CIT))
    with pytest.raises(ValueError, match="longer than"):
        registry.parse(HDR + "\n" + "x" * 300)
    with pytest.raises(ValueError, match="no header"):
        registry.parse("# nothing\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        registry.parse(b"\xff\xfe")


def test_status_by_card_no_and_citizen_id(eng):
    registry.import_file(eng, CSV, "cards.csv")
    r = registry.set_status(eng, "lost", "card_no", "l00000001")         # typed in lower case
    assert r["cards"] == [_tok(eng, OTHER).hex()] and r["dl_ver"] == 1
    # the holder of OLD and NEW has two cards in use: a citizen ID reports both
    r = registry.set_status(eng, "suspended", "citizen_id", CIT)
    assert sorted(r["cards"]) == sorted([_tok(eng, OLD).hex(), _tok(eng, NEW).hex()]) and r["dl_ver"] == 2
    # the deny list holds exactly these tokens, with these statuses
    with eng.connect() as c:
        got = {bytes(x.token): x.status for x in c.execute(select(S.card_status))}
    assert got == {_tok(eng, OTHER): "lost", _tok(eng, OLD): "suspended", _tok(eng, NEW): "suspended"}
    body = ops.denylist_download(eng, 1)
    assert body is not None
    # restoring by citizen ID restores the holder's listed cards
    r = registry.set_status(eng, "restored", "citizen_id", CIT)
    assert len(r["cards"]) == 2
    with pytest.raises(OpError) as e:
        registry.set_status(eng, "restored", "citizen_id", CIT)
    assert e.value.status == 409


@pytest.mark.parametrize("by,value,status", [
    ("card_no", "Z99999999", 404), ("citizen_id", _cit("11010119491231003"), 404),
    ("card_no", "12", 400), ("citizen_id", "45020319700707001X" if CIT[-1] != "X" else "450203197007070010", 400),
    ("token", "nothex", 400), ("nickname", "x", 400)])
def test_unmatched_identifier_changes_nothing(eng, by, value, status):
    registry.import_file(eng, CSV, "cards.csv")
    before = _dump(eng)
    with pytest.raises(OpError) as e:
        registry.set_status(eng, "lost", by, value)
    assert e.value.status == status and "\n" not in str(e.value)
    assert _dump(eng) == before


def test_replacement_carries_the_holders_entitlement(eng):
    registry.import_file(eng, CSV, "cards.csv")
    ops.set_entitlement(eng, _tok(eng, OLD).hex(), 3, kfares.E_COMPANION)
    v1 = ops.publish_entitlements(eng)["version"]
    # both cards of the holder are in use: both carry it; the other holder's card does not
    ents = _published_ents(eng)
    assert ents == {_tok(eng, OLD): (3, 1), _tok(eng, NEW): (3, 1)}
    r = registry.set_status(eng, "replaced", "card_no", "A45020001", replaced_by="A45020002")
    assert r["replaced_by"] == _tok(eng, NEW).hex() and r["entitlements_ver"] == v1 + 1
    ents = _published_ents(eng)
    assert ents[_tok(eng, NEW)] == (3, 1)
    old, new = _tok(eng, OLD), _tok(eng, NEW)
    with eng.connect() as c:
        row = c.execute(select(S.cards).where(S.cards.c.token == old)).first()
        assert row.status == "replaced" and bytes(row.replaced_by) == new
        assert c.execute(select(S.card_status.c.status)
                         .where(S.card_status.c.token == old)).scalar_one() == "replaced"


def test_successor_unknown_to_the_registry_joins_the_holder(eng):
    registry.import_file(eng, CSV, "cards.csv")
    ops.set_entitlement(eng, _tok(eng, OTHER).hex(), 5)
    fresh = "450100d15600000520261201000a0002"
    registry.set_status(eng, "replaced", "citizen_id", CIT2, replaced_by=fresh)
    assert _published_ents(eng) == {_tok(eng, OTHER): (5, 0), _tok(eng, fresh): (5, 0)}


def test_successor_of_another_holder_is_refused(eng):
    registry.import_file(eng, CSV, "cards.csv")
    before = _dump(eng)
    with pytest.raises(OpError, match="another holder"):
        registry.set_status(eng, "replaced", "card_no", "A45020001", replaced_by="L00000001")
    assert _dump(eng) == before


def _published_ents(eng):
    with eng.connect() as c:
        body = c.execute(select(S.files.c.doc).where(S.files.c.kind == "entitlements")
                         .order_by(S.files.c.version.desc())).first()
    e = kfares.Entitlements(bytes.fromhex(body.doc))
    out = {}
    for i in range(e.n):
        o = e._o + i * 10
        out[bytes(e._b[o:o + 8])] = (e._b[o + 8], e._b[o + 9])
    return out


def test_cli_card_status_by_card_no_and_registry_import(tmp_path, capsys):
    from ykt_tools.cli import main as cli

    db = "sqlite:///" + str(tmp_path / "cli.db")
    f = tmp_path / "cards.csv"
    f.write_text(CSV)

    def run(*argv):
        rc = cli.main(["backoffice"] + list(argv) + ["--db", db])
        o = capsys.readouterr()
        return rc, o.out, o.err

    assert run("keys", "init")[0] == 0
    rc, out, err = run("registry-import", str(f))
    assert rc == 0 and json.loads(out)["rows"] == 3, err
    rc, out, err = run("card-status", "lost", "--card-no", "Z99999999")
    assert rc == 2 and err.strip() == "error: no registered card has this card number" and out == ""
    rc, out, err = run("card-status", "lost", "--citizen-id", CIT2)
    assert rc == 0 and json.loads(out)["cards"] == [_tok(api.engine(db), OTHER).hex()]
    f.write_text(CSV + "%s,A45020001,%s,9,20160606,20300606,active,\n" % ("aa" * 16, CIT))
    rc, out, err = run("registry-import", str(f))
    assert rc == 2 and err.strip() == "error: cards.csv line 6: field generation: generation must be 1, 2 or 3"


def _bulk(n, seed, status="active"):
    import random

    r = random.Random(seed)
    rows = [HDR]
    for i in range(n):
        cid = "4502%028x" % r.getrandbits(112)
        rows.append("%s,R%08d,%s,3,20240101,20340101,%s," % (cid, seed * 100000 + i,
                                                             _cit("450203198001%02d%03d" % (1 + i % 28, i % 997)),
                                                             status))
    return "\n".join(rows) + "\n"


def _device_list(signed_image, signed_delta=None):
    from ykt.rules.denylist import DenyList
    from yktsrv.dlbuild import BlankDev

    dl = DenyList(ops._MemPart(ops._payload(signed_image)), BlankDev())
    if signed_delta is not None:
        dl.apply_delta(ops._payload(signed_delta))
    return dl


def test_published_image_is_a_registry_filter_and_new_cards_are_cleared(eng, monkeypatch):
    # With a registry, the back office publishes format 3 (docs/denylist.md):
    # every registered card gets exactly its status through the device's own
    # reader; a card reported by token that the registry does not know is in
    # both sections. Cards registered later that the filter would refuse get
    # a "not denied" record in the next delta.
    from ykt.rules import dlformat as F
    from ykt_tools.build import denyfilter

    monkeypatch.setattr(denyfilter, "FILTER_MIN_ENTRIES", 0)   # a filter even for this small list
    registry.import_file(eng, _bulk(3000, 1), "a.csv")
    key = _key(eng)
    with eng.connect() as c:
        toks = [bytes(r.token) for r in c.execute(select(S.cards.c.token).order_by(S.cards.c.token))]
    lost = toks[::10]
    ops.set_cards_status(eng, [(t, "lost", None) for t in lost])
    stray = bytes.fromhex("44" * 8)                # reported by token, unknown to the registry
    ops.set_card_status(eng, "cancelled", token=stray.hex())
    img = ops.denylist_download(eng, 0)
    payload = ops._payload(img)
    assert payload[4] == F.FORMAT_SECTIONS
    dl = _device_list(img)
    assert dl.counts == (len(lost) + 1, 1)
    want = set(lost)
    for t in toks:
        assert dl.lookup(t) == (F.ST_LOST if t in want else 0)
    assert dl.lookup(stray) == F.ST_CANCELLED and dl.lookup(stray, 0, True) == F.ST_CANCELLED
    v_img = dl.version
    # new cards: enough that some share an entry's bits in this small list
    res = registry.import_file(eng, _bulk(6000, 2), "b.csv")
    assert res["added"] == 6000 and res["cleared"] >= 1, res
    delta = ops.denylist_download(eng, v_img)
    dl = _device_list(img, delta)
    with eng.connect() as c:
        new = [bytes(r.token) for r in c.execute(select(S.cards.c.token))]
    assert all(dl.lookup(t) == (F.ST_LOST if t in want else 0) for t in new)
    assert dl.lookup(stray) == F.ST_CANCELLED
    assert key is not None


def test_small_lists_stay_exact_for_cards_the_registry_does_not_know(eng):
    # Below FILTER_MIN_ENTRIES the Guangxi section is exact: a card the
    # registry has not heard of is never refused (the filter's one exception
    # only exists at province scale).
    import random

    from ykt.rules import dlformat as F

    registry.import_file(eng, _bulk(2000, 3), "a.csv")
    with eng.connect() as c:
        toks = [bytes(r.token) for r in c.execute(select(S.cards.c.token).order_by(S.cards.c.token))]
    ops.set_cards_status(eng, [(t, "lost", None) for t in toks[::5]])
    dl = _device_list(ops.denylist_download(eng, 0))
    r = random.Random(4)
    assert not any(dl.lookup(r.getrandbits(64).to_bytes(8, "big")) for _ in range(20000))
    assert all(dl.lookup(t) == F.ST_LOST for t in toks[::5])
