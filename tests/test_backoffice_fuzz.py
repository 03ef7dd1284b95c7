"""Fuzzing the back office: mutated tap batches (never a 5xx, nothing stored
that does not authenticate and decode) and every operation of its OpenAPI
description with generated parameters and bodies, anonymous and logged in
(never a 5xx; anonymous never gets past 401/403/404/405/422)."""
import json
import os
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import conftest  # noqa: F401

os.environ.setdefault("YKT_RSA_BITS", "2048")

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from yktsrv import wiresrv  # noqa: E402
from ykt_tools.backoffice import app as bo_app, auth, ops, testing  # noqa: E402
from ykt_tools.backoffice import schema as S  # noqa: E402

EXAMPLES = int(os.environ.get("YKT_FUZZ_EXAMPLES", "300"))
PW = "fuzzing password 1"


@pytest.fixture(scope="module")
def bo(tmp_path_factory):
    url = "sqlite:///" + str(tmp_path_factory.mktemp("bofuzz") / "fuzz.db")
    app = bo_app.create_app(url)
    with TestClient(app) as client:
        client.eng = app.state.eng
        d = ops.register_device(client.eng, "fz", "validator", 5)
        client.dev, client.key = d["id"], bytes.fromhex(d["key"])
        auth.add_operator(client.eng, "fz-op", "operator", PW)
        auth.add_operator(client.eng, "fz-view", "viewer", PW)
        # log in once per role (scrypt is deliberately slow)
        client.tokens = {n: client.post("/admin/login", json={"name": n, "password": PW}).json()["token"]
                         for n in ("fz-op", "fz-view")}
        yield client
    app.state.eng.dispose()


def _count(eng):
    with eng.connect() as c:
        return c.execute(select(func.count()).select_from(S.taps)).scalar_one()


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_tap_batches(bo, data):
    n = data.draw(st.integers(1, 40))
    seq0 = data.draw(st.integers(1, 5000))
    body = bytearray(testing.batch(bo.dev, bo.key, range(seq0, seq0 + n)))
    op = data.draw(st.sampled_from(["flip", "truncate", "extend", "splice", "random", "none"]))
    if op == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(body) - 1))
            body[i] ^= data.draw(st.integers(1, 255))
    elif op == "truncate":
        body = body[:data.draw(st.integers(0, len(body) - 1))]
    elif op == "extend":
        body += data.draw(st.binary(min_size=1, max_size=64))
    elif op == "splice":
        i = data.draw(st.integers(0, len(body)))
        body[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    elif op == "random":
        body = bytearray(data.draw(st.binary(max_size=300)))
    before = _count(bo.eng)
    r = bo.post("/v1/taps", content=bytes(body))
    assert r.status_code in (200, 400, 401, 403, 409, 413, 415, 422), r.text
    after = _count(bo.eng)
    if r.status_code == 200:
        dev, taps = wiresrv.decode_batch(bytes(body), lambda d: bo.key if d == bo.dev else None)
        assert after - before == int(r.headers["x-ykt-new"]) <= len(taps)
    else:
        assert after == before
        assert r.headers.get("x-ykt-error")


def _ops(app):
    spec = app.openapi()
    out = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            out.append((method.upper(), path, op))
    return out


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_jsonval = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 40, 2 ** 40) | _text,
                        lambda ch: st.lists(ch, max_size=4) | st.dictionaries(_text, ch, max_size=4),
                        max_leaves=12)


def _param(p):
    sch = p.get("schema", {})
    if sch.get("type") == "integer" or any(a.get("type") == "integer" for a in sch.get("anyOf", [])):
        return st.one_of(st.integers(-2 ** 40, 2 ** 40).map(str), _text)
    return _text


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_openapi_operations(bo, data):
    # RSA keygen is slow, logout would end the shared sessions
    ops_ = [o for o in _ops(bo.app) if not o[1].startswith("/admin/api/keys") and o[1] != "/admin/logout"]
    method, path, op = data.draw(st.sampled_from(ops_))
    who = data.draw(st.sampled_from([None, "fz-view", "fz-op"]))
    headers = {}
    if who:
        headers["Authorization"] = "Bearer " + bo.tokens[who]
    bo.cookies.clear()
    url = path
    query = {}
    for p in op.get("parameters", []):
        v = data.draw(_param(p))
        if p["in"] == "path":
            url = url.replace("{%s}" % p["name"], quote(v, safe="") or "x")
        elif p["in"] == "query" and data.draw(st.booleans()):
            query[p["name"]] = v
    body = None
    if "requestBody" in op:
        kind = data.draw(st.sampled_from(["json", "binary", "none"]))
        if kind == "json":
            body = json.dumps(data.draw(_jsonval)).encode()
            headers["Content-Type"] = "application/json"
        elif kind == "binary":
            body = data.draw(st.binary(max_size=512))
            headers["Content-Type"] = "application/octet-stream"
    if "X-YKT-Auth" not in headers and data.draw(st.booleans()):
        headers.update(testing.auth_headers(bo.dev, bo.key, method, url, body or b""))
    r = bo.request(method, url, params=query, content=body, headers=headers)
    assert r.status_code < 500, (method, url, r.status_code, r.text[:300])
    if url.startswith("/admin/api") and who is None:
        assert r.status_code in (401, 404, 405, 422), (method, url, r.status_code)
