"""The OpenAPI description completed with what the routes cannot say for
themselves: how each side authenticates, and every status an operation
answers with (apicheck holds the server to it with schemathesis).

Statuses common to a family of operations are listed here once, not on
each route: every admin operation can answer 401 (no or expired session)
and, with parameters or a body, 422 (schema violation; strict types) and
400 (a value no schema states: a day that is no date, a range backwards, a
file that does not compile); changes add 403 (role viewer). Device
operations answer with the ykt.net.wire errors (devapi)."""
from fastapi.openapi.utils import get_openapi

ADMIN = {401: "no session, or it expired (login again)",
         422: "a parameter or body violates this schema (types are strict: JSON false is not 0)"}
ADMIN_INPUT = {400: "a value the schema cannot check is refused; `detail` says which "
                    "(a day that is no date, a range backwards, a file that does not validate)"}
WRITER = {403: "role operator required (this session is a viewer)"}
# extra statuses by (method, path): the resource named in the path does not exist, conflicts, sizes
EXTRA = {
    ("get", "/admin/api/devices/{ident}/gaps"): {404: "no such device"},
    ("get", "/admin/api/export/{what}.{fmt}"): {404: "not one of export/{taps|settlements}.{csv|parquet}"},
    ("get", "/admin/api/cards/{token}"): {404: "the back office knows nothing of this card"},
    ("post", "/admin/api/devices"): {409: "a device with this name or id exists"},
    ("post", "/admin/api/devices/{ident}/{action}"): {404: "no such device"},
    ("post", "/admin/api/cards/status"): {404: "no card to replace",
                                          409: "the card already has this status, or is not on the deny list"},
    ("post", "/admin/api/files/{kind}"): {409: "version not above the published one",
                                          413: "file larger than 1 MiB (config: 4096 bytes)"},
    ("post", "/admin/api/keys/{action}"): {409: "nothing to retire, or a rotation pending"},
    ("post", "/admin/api/releases"): {409: "this release version exists", 413: "larger than the OTA partition"},
    ("post", "/admin/api/rollouts"): {404: "no such release"},
    ("post", "/admin/api/rollouts/{rollout_id}/stage"): {404: "no such roll-out"},
    ("post", "/admin/api/settle"): {409: "the day is not over or is settled"},
    ("post", "/admin/login"): {401: "bad name or password (the same answer for both)",
                               429: "too many failed logins for this account or from this address: "
                                    "locked for Retry-After seconds (audited)"},
}
DEVICE = {400: "truncated / malformed / bad_version (X-YKT-Error names it)",
          401: "bad_auth (X-YKT-Auth missing or garbled) / bad_mac (wrong key, tampered)",
          403: "unknown_device (or deactivated)", 409: "replay (this nonce was used)"}
DEVICE_EXTRA = {("post", "/v1/taps"): {413: "oversized", 415: "bad_magic",
                                       503: "storage unavailable: nothing acknowledged, retry"},
                ("post", "/v1/heartbeat"): {413: "oversized"},
                ("get", "/v1/ota/offer"): {204: "nothing newer is offered to this device"},
                ("get", "/v1/ota/bundle/{release_id}"): {404: "no such bundle offered to this device",
                                                         416: "Range beyond the bundle"}}
SECURITY = {"operatorSession": {"type": "http", "scheme": "bearer",
                                "description": "token from POST /admin/login (also set as the HttpOnly "
                                               "cookie ykt_session)"},
            "deviceAuth": {"type": "apiKey", "in": "header", "name": "X-YKT-Auth",
                           "description": "<dev>:<ts>:<nonce hex>:<HMAC-SHA256 hex> over method, path with "
                                          "query, device, time, nonce and body (docs/protocol.md)"}}


def _add(responses, table):
    for st, desc in table.items():
        responses.setdefault(str(st), {"description": desc})


# 422 comes from schema validation (a list of errors) or from a file's own
# checks (one message): both as {"detail": ...}
ERROR_BODY = {"application/json": {"schema": {"type": "object", "required": ["detail"], "properties": {
    "detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}}}}}


def complete(doc):
    doc.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            r = op.setdefault("responses", {})
            if "422" in r and not path.startswith("/v1/"):
                r["422"]["content"] = ERROR_BODY
            if path.startswith("/v1/"):
                op["security"] = [{"deviceAuth": []}]
                _add(r, DEVICE)
                _add(r, DEVICE_EXTRA.get((method, path), {}))
                if op.get("parameters"):
                    _add(r, {422: "a parameter violates this schema"})
                continue
            _add(r, EXTRA.get((method, path), {}))
            if path != "/admin/login":
                op["security"] = [{"operatorSession": []}]
                _add(r, ADMIN)
            if op.get("parameters") or op.get("requestBody"):
                _add(r, ADMIN_INPUT)
                _add(r, {422: ADMIN[422]})
            if method != "get" and path not in ("/admin/login",):
                _add(r, WRITER)
    return doc


def install(app):
    def openapi():
        if app.openapi_schema is None:
            app.openapi_schema = complete(get_openapi(title=app.title, version=app.version,
                                                      description=app.description, routes=app.routes))
        return app.openapi_schema
    app.openapi = openapi
