"""schemathesis hooks for apicheck (loaded through SCHEMATHESIS_HOOKS):
sign every /v1 request with the provisioned device's key (X-YKT-Auth over
the method, the path with its query and the body bytes exactly as sent),
unless the case carries its own X-YKT-Auth or is about that header (a
negative case: the server must refuse it)."""
import os

import requests
import schemathesis

from ykt.net import wire

_dev, _key = os.environ["YKT_APICHECK_DEVICE"].split(":")
DEVICE, KEY = int(_dev), bytes.fromhex(_key)


@schemathesis.hook
def before_call(context, case, kwargs):
    if not case.path.startswith("/v1/"):
        return
    if case.headers and any(k.lower() == "x-ykt-auth" for k in case.headers):
        return
    data = getattr(getattr(case.meta, "phase", None), "data", None)
    if str(getattr(data, "parameter", "")).lower() == "x-ykt-auth":
        return                   # the case is about that header (missing or wrong): leave it so
    kw = case.as_transport_kwargs(base_url="http://h")
    prep = requests.Request(method=kw["method"], url=kw["url"], params=kw.get("params"), headers=kw.get("headers"),
                            data=kw.get("data"), json=kw.get("json"), files=kw.get("files")).prepare()
    body = prep.body or b""
    if isinstance(body, str):
        body = body.encode()
    if case.headers is None:
        case.headers = {}
    case.headers["X-YKT-Auth"] = wire.sign_request(DEVICE, KEY, case.method.upper(), prep.path_url, body)
