"""The OpenAPI description is what the server does: schemathesis, every
phase (coverage, fuzzing, stateful), over the admin and device API of a
back office on a loopback port, with an operator session and a device whose
requests are signed (ykt_tools.backoffice.apicheck). Bounded and seeded here;
`make fuzz` runs a longer one. Plus the strict-type cases the issue names."""
import pytest
from fastapi.testclient import TestClient

from ykt_tools.backoffice import apicheck, auth
from ykt_tools.backoffice.app import create_app


def test_schemathesis_every_phase_no_failure(tmp_path):
    r = apicheck.run(max_examples=8, seed=1, workdir=str(tmp_path))
    detail = open(r["output"]).read()[-8000:]
    assert r["unique_failures"] == 0, detail
    assert r["exit_code"] == 0, detail
    assert r["errored"] == 0, detail
    assert r["operations_tested"] == r["operations"] - 1          # all but /admin/logout (ends the session)
    assert r["phases"]["stateful"] == "success" and r["phases"]["coverage"] == "success" \
        and r["phases"]["fuzzing"] == "success", r["phases"]
    assert "missing_auth" not in r["warnings"], detail             # the device and operator auth reached the routes
    assert r["cases"] > 500


@pytest.fixture
def op_client(tmp_path):
    app = create_app("sqlite:///" + str(tmp_path / "bo.db"))
    auth.add_operator(app.state.eng, "olga", "operator", "the long pass of O")
    with TestClient(app) as c:
        assert c.post("/admin/login", json={"name": "olga", "password": "the long pass of O"}).status_code == 200
        yield c


@pytest.mark.parametrize("body", [
    {"name": "bus-1", "entry": False},          # false is not 0
    {"name": "bus-1", "entry": True},
    {"name": "bus-1", "entry": "5"},            # a string is not a number
    {"name": "bus-1", "entry": 5.5},
    {"name": "bus-1", "entry": 5, "colour": "red"},   # additionalProperties: false
    {"name": "bus-1", "kind": "tram"},
])
def test_strict_types_refused(op_client, body):
    r = op_client.post("/admin/api/devices", json=body)
    assert r.status_code == 422, r.text
    assert op_client.get("/admin/api/fleet").json()["devices"] == []


def test_whole_float_is_an_integer(op_client):
    # JSON Schema's "integer" includes 5.0; the server agrees with its description
    r = op_client.post("/admin/api/devices", json={"name": "bus-1", "entry": 5.0})
    assert r.status_code == 200, r.text
    assert [d["entry"] for d in op_client.get("/admin/api/fleet").json()["devices"]] == [5]


def test_allow_lists_every_method_of_a_path(op_client):
    r = op_client.request("PUT", "/admin/api/rollouts")
    assert r.status_code == 405
    assert sorted(m.strip() for m in r.headers["allow"].split(",")) == ["GET", "POST"]
    r = op_client.get("/admin/api/cards/status")             # not a token: POST only
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_binary_bodies_described_with_sizes(op_client):
    doc = op_client.get("/openapi.json").json()
    taps = doc["paths"]["/v1/taps"]["post"]
    s = taps["requestBody"]["content"]["application/octet-stream"]["schema"]
    assert (s["format"], s["minLength"], s["maxLength"]) == ("binary", 68, 11080)
    ack = taps["responses"]["200"]["content"]["application/octet-stream"]["schema"]
    assert ack["minLength"] == ack["maxLength"] == 44
    assert set(taps["responses"]) >= {"200", "400", "401", "403", "409", "413", "415", "422", "503"}
    assert doc["paths"]["/admin/login"]["post"]["responses"]["429"]
    assert doc["components"]["securitySchemes"]["deviceAuth"]["name"] == "X-YKT-Auth"
