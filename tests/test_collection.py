"""The collection loop (backoffice/collect.py): collection files per acquirer
(documented format, totals, SHA-256 seal), return files, a returned item
puts the card on the deny list as `unpaid` (a signed delta with status 5 the
firmware's deny list applies), arrears, payment restores the card, every
step audited; bad files refused with a reason. And the scripted scenario:
charge -> returned item -> unpaid -> refused at the next sync -> paid ->
accepted again, on the simulated fleet."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

import conftest  # noqa: F401

os.environ.setdefault("YKT_RSA_BITS", "2048")

from sqlalchemy import select  # noqa: E402

from ykt.rules import dlformat as F  # noqa: E402
from ykt_tools.backoffice import api, collect, ops, settle, testing  # noqa: E402
from ykt_tools.backoffice import schema as S  # noqa: E402
from ykt_tools.backoffice.errors import OpError  # noqa: E402
from test_backoffice_admin import _ingest, _src, _tap  # noqa: E402

T0 = 1795660000
DAY = 20261126
A, B, C = "aa" * 8, "bb" * 8, "cc" * 8


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def eng(request, tmp_path):
    if request.param == "postgresql" and not testing.pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    with testing.temp_db(request.param, tmp_path) as url:
        e = api.engine(url)
        ops.ensure_signing_key(e)
        yield e


def _settled_day(eng):
    from ykt_tools.build import fares as fc
    ops.publish_file(eng, "fares", fc.compile_fares(_src("bus_nanning_301.txt")))
    d = ops.register_device(eng, "bus-a", "validator", 301)["id"]
    _ingest(eng, [_tap(d, 1, A, T0, 200), _tap(d, 2, B, T0 + 60, 200), _tap(d, 3, C, T0 + 120, 200),
                  _tap(d, 4, A, T0 + 7200, 200)])
    settle.settle_day(eng, DAY)
    collect.set_account(eng, "ICBC-GX", "MD-A", token=A)
    collect.set_account(eng, "GXRCU", "MD-B", token=B)
    return d


def test_collection_file_format_and_seal(eng):
    _settled_day(eng)
    r = collect.create(eng, DAY, actor="t")
    assert r["unassigned"] == {"cards": 1, "amount": 200}            # C has no payment account
    files = {f["acquirer"]: f for f in r["files"]}
    assert sorted(files) == ["GXRCU", "ICBC-GX"]
    body = files["ICBC-GX"]["body"]
    lines = body.split("\n")
    cid = files["ICBC-GX"]["id"]
    assert lines[0].startswith("H,1,ICBC-GX,%d,%d," % (DAY, cid))
    iid = int(lines[1].split(",")[1])
    assert lines[1] == "I,%d,MD-A,400,YKT-%d-%d" % (iid, cid, iid)          # A: 2.00 twice
    assert lines[2] == "T,1,400"
    head = "\n".join(lines[:3]) + "\n"
    assert lines[3] == "S," + hashlib.sha256(head.encode()).hexdigest() == "S," + files["ICBC-GX"]["sha256"]
    assert lines[4] == "" and len(lines) == 5
    assert collect.body(eng, cid)[0] == body
    with pytest.raises(OpError) as e:
        collect.create(eng, DAY)
    assert e.value.status == 409                                             # a day is collected once
    with pytest.raises(OpError) as e:
        settle.settle_day(eng, DAY)
    assert e.value.status == 409                                             # what was collected stands
    with pytest.raises(OpError) as e:
        collect.create(eng, DAY + 1)
    assert e.value.status == 409 and "not settled" in str(e.value)


def test_returned_item_unpaid_refused_then_paid_restored(eng):
    _settled_day(eng)
    files = {f["acquirer"]: f for f in collect.create(eng, DAY)["files"]}
    a_item = int(files["ICBC-GX"]["body"].split("\n")[1].split(",")[1])
    ret = collect.return_file(files["ICBC-GX"]["body"], {a_item: "AM04"})
    r = collect.import_return(eng, ret, actor="bank-import")
    assert (r["returned"], r["paid"], r["unpaid_cards"]) == (1, 0, [A])
    r2 = collect.import_return(eng, collect.return_file(files["GXRCU"]["body"]), actor="bank-import")
    assert (r2["returned"], r2["paid"], r2["unpaid_cards"]) == (0, 1, [])
    assert collect.import_return(eng, ret)["returned"] == 0                 # the same file again: no change
    arr = collect.arrears(eng)
    assert [(x["token"], x["amount"], x["items"], x["status"]) for x in arr] == [(A, 400, 1, "unpaid")]
    # on the deny list as unpaid: the signed delta carries status 5 and the
    # firmware's deny list reads it so
    with eng.connect() as c:
        ver = c.execute(select(S.card_status.c.dl_ver).where(S.card_status.c.token == bytes.fromhex(A))).scalar_one()
    body = ops.denylist_download(eng, 0)
    from ykt_tools.build import signing
    from ykt_tools.backoffice import keys
    from ykt.sec import signed as ksigned
    from ykt.sec import sigverify
    with eng.connect() as c:
        ring = sigverify.parse_keys(signing.keys_payload(keys.trusted_entries(c)))
    h, payload = ksigned.verify_blob(body, ring, (ksigned.K_DENYLIST,), 0, 1 << 20)
    from yktsrv import dlbuild
    assert dict(dlbuild.iter_entries(payload)) == {int(A, 16): F.ST_UNPAID}
    assert payload[4] == F.FORMAT_UNPAID and h.version == ver
    # paying: the wrong amount is refused, the right one restores the card
    with pytest.raises(OpError) as e:
        collect.pay(eng, A, 399, "desk-1")
    assert e.value.status == 409
    p = collect.pay(eng, A, 400, "desk-1", actor="desk")
    assert p["amount"] == 400 and p["dl_ver"] == ver + 1
    assert collect.arrears(eng) == []
    with eng.connect() as c:
        assert c.execute(select(S.card_status).where(S.card_status.c.token == bytes.fromhex(A))).first() is None
        acts = [r.action for r in c.execute(select(S.audit.c.action).order_by(S.audit.c.id))]
    delta = ops.denylist_download(eng, ver)
    h, payload = ksigned.verify_blob(delta, ring, (ksigned.K_DENYLIST_DELTA,), ver, 1 << 20)
    assert F.parse_delta(payload)[:3] == (ver, ver + 1, 1) and payload[F.DELTA_HDR + 8] == 0   # removed
    for step in ("account.set", "collect.file", "collect.day", "collect.returned", "collect.paid", "collect.return",
                 "card.unpaid", "card.restored"):
        assert step in acts, step
    with pytest.raises(OpError) as e:
        collect.pay(eng, A, 400, "desk-2")
    assert e.value.status == 404


def test_a_card_on_the_list_for_another_reason_stays_so(eng):
    _settled_day(eng)
    ops.set_card_status(eng, "lost", token=A)
    f = {x["acquirer"]: x for x in collect.create(eng, DAY)["files"]}["ICBC-GX"]
    iid = int(f["body"].split("\n")[1].split(",")[1])
    assert collect.import_return(eng, collect.return_file(f["body"], {iid: "AC04"}))["unpaid_cards"] == []
    collect.pay(eng, A, 400, "desk-1")
    with eng.connect() as c:
        assert c.execute(select(S.card_status.c.status).where(S.card_status.c.token == bytes.fromhex(A))).scalar_one() == "lost"


def _reseal(text):
    body = text[:text.rfind("S,")]
    return body + "S,%s\n" % hashlib.sha256(body.encode()).hexdigest()


def test_bad_return_files_are_refused_with_a_reason(eng):
    _settled_day(eng)
    f = {x["acquirer"]: x for x in collect.create(eng, DAY)["files"]}["ICBC-GX"]
    good = collect.return_file(f["body"])
    iid = good.split("\n")[1].split(",")[1]
    cases = [
        (good.replace(",paid,", ",returned,", 1), "SHA-256"),                              # tampered
        (good.replace("\n", "\r\n"), "LF"),
        (good[:-1], "LF"),
        (_reseal(good.replace(",400,", ",401,")), "amount"),
        (_reseal(good.replace("R,%s," % iid, "R,999999,")), "other items"),
        (_reseal(good.replace("T,1", "T,2")), "T record"),
        (_reseal(good.replace(",paid,400,", ",returned,400,")), "reason code"),
        (_reseal(good.replace("H,1,ICBC-GX", "H,1,GXRCU")), "no collection"),
        (_reseal(good.replace("H,1,", "H,2,")), "header"),
        (b"\xff\xfe" + good.encode(), "UTF-8"),
        ("x" * (collect.MAX_FILE + 1), "larger"),
    ]
    for text, why in cases:
        with pytest.raises(OpError) as e:
            collect.import_return(eng, text)
        assert why in str(e.value), (why, str(e.value))
    assert collect.import_return(eng, good)["paid"] == 1


@pytest.mark.micropython
def test_scenario_failed_debit_refused_then_accepted_again():
    """scenarios/collection.json on the simulated fleet (MicroPython), through
    `ykt run` with its output in a pipe (not a terminal: it ends with its
    report and serves nothing): each step expected in the scenario file, the
    log shows it."""
    conftest.need_runtime("micropython")
    env = dict(os.environ, PYTHONPATH=os.path.join(conftest.ROOT, "host_tools") + os.pathsep
               + os.path.join(conftest.ROOT, "firmware"))
    p = subprocess.run([sys.executable, "-m", "ykt_tools", "run", "--scenario",
                        os.path.join(conftest.ROOT, "scenarios", "collection.json")],
                       capture_output=True, text=True, timeout=1200, env=env, cwd=conftest.ROOT)
    out = p.stdout
    assert p.returncode == 0 and "RESULT: ok" in out, out[-3000:] + p.stderr[-2000:]
    assert "password:" not in out and "keeps serving" not in out
    sc = json.load(open(os.path.join(conftest.ROOT, "scenarios", "collection.json")))
    assert "expectations: %d checked, 0 failed" % sum(1 for e in sc["events"] if "expect" in e) in out
    steps = ["settled", "collection file", "returned 1 items", "deny_unpaid", "paid its arrears"]
    pos = [out.find(s) for s in steps]
    assert all(x >= 0 for x in pos) and pos == sorted(pos), (pos, out[-3000:])
    last_tap = [ln for ln in out.splitlines() if " bus " in ln and " seq " in ln][-1]
    assert " accept " in last_tap, last_tap
