"""The OpenAPI description held to what the server does: schemathesis
(pinned in requirements.txt) runs every phase (examples, coverage, fuzzing,
stateful) over the admin and device API of a back office on a loopback port,
with an operator session and a provisioned device whose requests the hooks
(apicheck_hooks) sign, so the device routes are reached past their MAC.

    run(max_examples=15, seed=1) -> {"cases", "unique_failures", "failures": {code: n}, ...}

`make test` runs a bounded, seeded run (tests/test_backoffice_openapi.py);
`make fuzz` a longer one (`ykt apicheck --max-examples 300 --json`).

POST /admin/logout is left out: it ends the session the run uses (the
logout test covers it). The binary device bodies carry a MAC over their
bytes, so no schema makes random bytes valid: for those operations a
schema-valid body may be refused with the documented wire errors; the
table below lists such operations with the statuses and the rule, instead
of switching the check off."""
import json
import os
import subprocess
import sys
import tempfile

OPERATOR = "apicheck"
# Operations where a request valid by the schema may still be refused with
# a documented status, because the rule is one JSON Schema cannot state:
RULES_BEYOND_SCHEMA = {
    # a MAC or a signature over the body's bytes
    "/v1/taps": [400, 401, 403, 409, 413, 415, 422],
    "/admin/api/releases": [400, 409, 413],
    # the file must compile / validate (fares, catalog, entitlements) or fit 4096 bytes (config)
    "/admin/api/files/{kind}": [400, 409, 413, 422],
    # "dev" must be the signing device; the whole body at most 1024 bytes
    "/v1/heartbeat": [400, 413],
    # a day that is no date (20261399), a range backwards
    "/admin/api/day/{day}": [400],
    "/admin/api/report": [400],
    "/admin/api/report.{fmt}": [400],
    "/admin/api/settle": [400, 409],
    "/admin/api/charges": [400],
    # exactly one identity (404: no registered card has it)
    "/admin/api/lookup": [400],
    # a registry file must parse whole (one line naming the line and field)
    "/admin/api/registry/import": [400, 413],
    "/admin/api/cards/status": [400, 409],
}


# schemathesis' own defaults, kept
_ACCEPTED = ["2XX", "3XX", "401", "403", "404", "409", "429"]
_REFUSED = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429"]


def _config(path):
    # a body too large is refused with 413 (documented where it can happen)
    lines = ["[phases.stateful]", "enabled = true", "",
             "[checks.negative_data_rejection]", "expected-statuses = %s" % json.dumps(_REFUSED + ["413"]), ""]
    for p, statuses in sorted(RULES_BEYOND_SCHEMA.items()):
        lines += ["[[operations]]", 'include-path = "%s"' % p,
                  "checks.positive_data_acceptance.expected-statuses = %s" % json.dumps(
                      _ACCEPTED + [str(s) for s in statuses if str(s) not in _ACCEPTED]), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def run(max_examples=15, seed=1, db_url=None, workdir=None, phases=None, max_failures=None, only_path=None):
    """-> summary dict (schemathesis' JSON report, reduced). Starts and stops
    its own server; db_url defaults to a fresh SQLite file in workdir."""
    from ykt_tools.backoffice import api, auth

    wd = workdir or tempfile.mkdtemp(prefix="ykt-apicheck-")
    db_url = db_url or "sqlite:///" + os.path.join(wd, "apicheck.db")
    eng = api.engine(db_url)
    pw = os.urandom(16).hex()
    auth.add_operator(eng, OPERATOR, "operator", pw, actor="apicheck")
    tok, _ = auth.login(eng, OPERATOR, pw)
    dev = api.provision_device(db_url, "apicheck-dev", entry=5)
    cfg = os.path.join(wd, "schemathesis.toml")
    _config(cfg)
    report = os.path.join(wd, "report.json")
    url, stop = api.start(db_url)
    env = dict(os.environ, SCHEMATHESIS_HOOKS="ykt_tools.backoffice.apicheck_hooks",
               YKT_APICHECK_DEVICE="%d:%s" % (dev["id"], dev["key"]))
    cmd = [os.path.join(os.path.dirname(sys.executable), "schemathesis"), "--no-color", "--config-file", cfg,
           "run", url + "/openapi.json", "-H", "Authorization: Bearer " + tok, "--seed", str(seed),
           "-n", str(max_examples), "--workers", "1", "--generation-with-security-parameters", "false", "--exclude-path", "/admin/logout",
           "--no-shrink", "--generation-database", "none",
           "--report", "json", "--report-json-path", report, "--output-truncate", "true"]
    if phases:
        cmd += ["--phases", phases]
    if max_failures:
        cmd += ["--max-failures", str(max_failures)]
    if only_path:
        cmd += ["--include-path", only_path]
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    finally:
        stop()
    with open(os.path.join(wd, "output.txt"), "w") as f:
        f.write(p.stdout + p.stderr)
    with open(report) as f:
        r = json.load(f)
    tc = r["test_cases"]
    out = {"cases": tc["generated"], "cases_with_failures": tc["with_failures"],
           "unique_failures": tc["unique_failures"], "errored": tc["errored"],
           "failures": {f["code"] + " " + f["title"]: f["count"] for f in r["failures"]},
           "failed_operations": sorted({o for f in r["failures"] for o in f["operations"]}),
           "operations_tested": r["operations"]["tested"], "operations": r["operations"]["total"],
           "phases": {k: v["status"] for k, v in r["phases"].items()},
           "warnings": sorted(k for k, v in r["warnings"].items() if v),
           "seed": seed, "max_examples": max_examples, "exit_code": p.returncode,
           "output": os.path.join(wd, "output.txt")}
    return out
