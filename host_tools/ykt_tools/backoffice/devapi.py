"""Device endpoints (/v1): batch ingest, signed downloads, time, heartbeats.
Bytes on the wire are ykt.net.wire's (firmware/ykt/net/wire.py, docs/protocol.md);
this module only maps its outcomes to HTTP. Every error carries
X-YKT-Error: <code> and a distinct status:

  413 oversized | 400 truncated, malformed, bad_version | 415 bad_magic
  401 bad_auth (missing/garbled X-YKT-Auth), bad_mac (wrong key, tampered)
  403 unknown_device (or deactivated) | 409 replay (nonce already used)
  422 seq_ahead (first seq > acked + MAX_AHEAD; body = signed RS_REJECTED ack)
  404 unknown kind | 503 storage unavailable (nothing acknowledged: retry)"""
import json
import time

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ykt.net import wire
from yktsrv import wiresrv
from ykt.sec import signed as ksigned
from ykt_tools.backoffice import ingest, ops
from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.db import now, readonly

from sqlalchemy import select, update

KEY_TTL_S = 10.0            # deactivation/rekey reach every worker within this
MAX_HEARTBEAT = 1024          # ykt.net.heartbeat.MAX_BYTES is 768
_STATUS = {"oversized": 413, "truncated": 400, "malformed": 400, "bad_version": 400,
           "bad_magic": 415, "bad_auth": 401, "bad_mac": 401, "unknown_device": 403,
           "replay": 409, "seq_ahead": 422, "bad_kind": 404, "nonce_mismatch": 400}
OCTET = "application/octet-stream"


def _bin(lo, hi):
    """An octet-stream body of lo..hi bytes."""
    return {"content": {OCTET: {"schema": {"type": "string", "format": "binary", "minLength": lo, "maxLength": hi}}}}


_REPLY = _bin(wire.REPLY_SIZE, wire.REPLY_SIZE)

router = APIRouter(prefix="/v1", tags=["device"])


class KeyCache:
    """Device keys in memory: the whole table is (re)loaded in one query at
    most every KEY_TTL_S, so rekey/deactivation reaches every worker within
    that; a device unknown at the last load costs one point query (and is
    cached negative until the next load, so unknown-device floods stay cheap)."""

    def __init__(self, eng):
        self.eng = eng
        self.d = {}
        self.loaded = -1e9

    def _load_all(self):
        with readonly(self.eng).connect() as c:
            rows = c.execute(select(S.devices.c.id, S.devices.c.key, S.devices.c.active)).all()
        self.d = {r.id: (bytes(r.key) if r.active else None) for r in rows}
        self.loaded = time.monotonic()

    def lookup(self, dev):
        if time.monotonic() - self.loaded > KEY_TTL_S:
            self._load_all()
        try:
            return self.d[dev]
        except KeyError:
            pass
        with readonly(self.eng).connect() as c:
            r = c.execute(select(S.devices.c.key, S.devices.c.active).where(S.devices.c.id == dev)).first()
        key = bytes(r.key) if r is not None and r.active else None
        if len(self.d) < 1_000_000:
            self.d[dev] = key
        return key

    def forget(self, dev=None):
        self.loaded = -1e9


def _err(code, msg="", body=None, status=None):
    st, h, content, media = _fail(code, msg, body, status)
    return Response(content, status_code=st, media_type=media, headers=dict(h))


def _full_path(request):
    q = request.scope.get("query_string", b"")
    return request.scope["path"] + ("?" + q.decode("latin-1") if q else "")


@router.post("/taps", summary="Upload a tap batch (ykt.net.wire batch format)",
             openapi_extra={"requestBody": dict(_bin(wire.HDR_SIZE_V1 + wire.MAC_LEN, wire.MAX_BODY), required=True,
                            description="YKTB batch: 56-byte header (52 in version 1), up to 256 delta-coded "
                                        "records, 16-byte HMAC (docs/protocol.md); the MAC covers every byte, so "
                                        "a body valid by this schema is still refused unless the device's key "
                                        "made it")},
             responses={200: dict(_REPLY, description="44-byte signed YKTR ack: value = highest contiguous committed seq; "
                                  "X-YKT-New/X-YKT-Dup count stored/duplicate taps, X-YKT-Gap 'a-b' reports skipped seqs"),
                        400: {"description": "truncated / malformed / bad_version"}, 401: {"description": "bad_mac"},
                        403: {"description": "unknown_device"}, 409: {"description": "replay"},
                        413: {"description": "oversized"}, 415: {"description": "bad_magic"},
                        422: {"description": "seq_ahead (signed RS_REJECTED ack)"}})
async def post_taps(request: Request):
    # Served by TapsFastPath (below) in the app; this route is its OpenAPI
    # description and the same exchange for an app mounted without it.
    cl = request.headers.get("content-length")
    body = bytearray()
    if not _too_big(cl):
        async for chunk in request.stream():
            body += chunk
            if len(body) > wire.MAX_BODY:
                break
    status, headers, content, media = await taps_exchange(request.app.state, cl, body)
    return Response(content, status_code=status, media_type=media, headers=dict(headers))


def _too_big(cl):
    return cl is not None and (not cl.isdigit() or int(cl) > wire.MAX_BODY)


def _fail(code, msg="", body=None, status=None):
    return (status or _STATUS.get(code, 400), [("X-YKT-Error", code)],
            body if body is not None else json.dumps({"error": code, "detail": msg}).encode(),
            OCTET if body is not None else "application/json")


async def taps_exchange(st, content_length, body):
    """One tap batch upload, after the body is read (at most MAX_BODY + 1
    bytes): -> (status, [(header, value)], content, media type)."""
    if _too_big(content_length) or len(body) > wire.MAX_BODY:
        return _fail("oversized", "limit %d bytes" % wire.MAX_BODY)
    try:
        dev, recs = wiresrv.decode_fields(body, st.keys.lookup)
    except wire.WireError as e:
        return _fail(e.code, e.msg)
    nonce = bytes(body[20:28])
    rx = now()
    try:
        res = await st.ingestor.submit(dev, nonce, ingest.rows_from_fields(dev, recs, rx))
    except Exception as e:  # nothing was committed: the device keeps its cursor
        return _fail("storage", str(e)[:200], status=503)
    key = st.keys.lookup(dev)
    if res.status == ingest.REPLAY:
        return _fail("replay", "nonce already used")
    if res.status == ingest.GONE or key is None:
        return _fail("unknown_device", "device %d" % dev)
    if res.status == ingest.AHEAD:
        return _fail("seq_ahead", body=wiresrv.encode_ack(key, dev, res.ack, nonce, rx, wire.RS_REJECTED))
    h = [("X-YKT-New", str(res.new)), ("X-YKT-Dup", str(res.dups))]
    if res.gap:
        h.append(("X-YKT-Gap", "%d-%d" % res.gap))
    return 200, h, wiresrv.encode_ack(key, dev, res.ack, nonce, rx), OCTET


class TapsFastPath:
    """ASGI middleware serving POST /v1/taps before FastAPI's router: the
    fleet's hot path skips routing, dependency solving and Response objects
    (about 190 of 300 us of CPU per request here, docs/performance.md).
    Everything else passes through untouched."""

    def __init__(self, app, state):
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/v1/taps" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        cl = None
        for k, v in scope["headers"]:
            if k == b"content-length":
                cl = v.decode("latin-1")
        body = bytearray()
        if not _too_big(cl):
            while True:
                m = await receive()
                if m["type"] != "http.request":
                    return          # client went away: nothing to answer
                body += m.get("body", b"")
                if len(body) > wire.MAX_BODY or not m.get("more_body"):
                    break
        status, headers, content, media = await taps_exchange(self.state, cl, body)
        hdr = [(b"content-type", media.encode()), (b"content-length", b"%d" % len(content))]
        hdr += [(k.lower().encode(), v.encode()) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": hdr})
        await send({"type": "http.response.body", "body": content})


def _auth(request, body=b""):
    return wiresrv.verify_request(request.headers.get("x-ykt-auth"), request.method, _full_path(request),
                               body, request.app.state.keys.lookup)


@router.get("/time", summary="Trusted time: signed RK_TIME reply echoing the request nonce",
            responses={200: dict(_REPLY, description="44-byte YKTR reply, value = server unix time")})
async def get_time(request: Request):
    try:
        dev, ts, nonce = _auth(request)
    except wire.WireError as e:
        return _err(e.code, e.msg)
    t = now()
    return Response(wiresrv.encode_reply(request.app.state.keys.lookup(dev), wire.RK_TIME, dev, t, nonce, t),
                    media_type=OCTET)


def _u(v, lim):
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < lim else None


def heartbeat_columns(hb):
    """ykt.net.heartbeat JSON (keys fw dev up t tt v bl old ack rd heap st ln e) ->
    the fleet columns the dashboard shows."""
    v = hb.get("v") if isinstance(hb.get("v"), dict) else {}
    rd = hb.get("rd") if isinstance(hb.get("rd"), dict) else {}
    cols = {"dl_ver": _u(v.get("denylist"), 2 ** 32), "fare_ver": _u(v.get("fares"), 2 ** 16),
            "cat_ver": _u(v.get("catalog"), 2 ** 16), "backlog": _u(hb.get("bl"), 2 ** 31),
            "reader_faults": _u(rd.get("err"), 2 ** 31)}
    if isinstance(hb.get("fw"), str):
        cols["fw"] = hb["fw"][:32]
    return {k: x for k, x in cols.items() if x is not None}


# The heartbeat's keys and their JSON types (ykt.net.heartbeat.build): the
# OpenAPI schema and the server's check are both made from this table.
HB_FIELDS = {"fw": "string", "dev": "integer", "up": "integer", "t": "integer", "tt": "integer", "v": "object",
             "bl": "integer", "old": "integer", "ack": "integer", "rd": "object", "heap": "integer",
             "st": "string", "ln": "string", "e": "array"}
_PY = {"string": str, "integer": int, "object": dict, "array": list}


def heartbeat_schema():
    props = {k: {"type": t} for k, t in HB_FIELDS.items()}
    props["v"]["additionalProperties"] = {"type": "integer"}
    return {"type": "object", "maxProperties": 32, "properties": props}


def _is(x, t):
    if t == "integer":     # JSON Schema: 5.0 is the integer 5; false is not 0
        return (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())
    return isinstance(x, _PY[t])


def heartbeat_ok(hb):
    """The body has the schema's types for the keys it names."""
    if not isinstance(hb, dict):
        return False
    if not all(_is(hb[k], t) for k, t in HB_FIELDS.items() if k in hb):
        return False
    return all(_is(x, "integer") for x in hb.get("v", {}).values())


@router.post("/heartbeat", summary="Device status: ykt.net.heartbeat compact JSON, authenticated with X-YKT-Auth",
             openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
                 "schema": heartbeat_schema()}}}},
             responses={200: dict(_REPLY, description="44-byte YKTR RK_HEARTBEAT reply (value: request flags); "
                                                      "an empty body counts as {}")})
async def post_heartbeat(request: Request):
    body = await request.body()
    if len(body) > MAX_HEARTBEAT:
        return _err("oversized", "limit %d bytes" % MAX_HEARTBEAT)
    try:
        dev, ts, nonce = _auth(request, body)
    except wire.WireError as e:
        return _err(e.code, e.msg)
    try:
        hb = json.loads(body or b"{}")
        if not heartbeat_ok(hb) or hb.get("dev", dev) != dev:
            raise ValueError
    except ValueError:
        return _err("malformed", "heartbeat body must be a JSON object for this device with the schema's types")
    t = now()
    vals = heartbeat_columns(hb)
    vals["last_seen"] = t
    vals["status"] = json.dumps(hb, separators=(",", ":"))[:MAX_HEARTBEAT]
    eng = request.app.state.eng
    with eng.begin() as c:
        if not _fresh_nonce(c, dev, nonce):
            return _err("replay", "nonce already used")
        flags = c.execute(select(S.devices.c.requests).where(S.devices.c.id == dev)).scalar_one()
        vals["requests"] = 0      # delivered by this reply; if it is lost the device still syncs on its interval
        c.execute(update(S.devices).where(S.devices.c.id == dev).values(**vals))
        c.execute(S.heartbeats.insert().values(device=dev, at=t, body=vals["status"]))
    return Response(wiresrv.encode_reply(request.app.state.keys.lookup(dev), wire.RK_HEARTBEAT, dev, flags, nonce, t),
                    media_type=OCTET)


def _fresh_nonce(c, dev, nonce):
    from sqlalchemy.exc import IntegrityError
    try:
        with c.begin_nested():
            c.execute(S.nonces.insert().values(device=dev, nonce=nonce, at=now()))
        return True
    except IntegrityError:
        return False


SYNC_KINDS = ("denylist", "fares", "catalog", "entitlements", "config", "keys")


@router.get("/sync/{kind}", summary="Signed download (YKTS envelope) newer than ?have=",
            responses={200: dict(_bin(ksigned.HDR_SIZE, 1 << 20), description="YKTS signed file: denylist answers with a delta "
                                 "(base = have) when close, else the full image"),
                       304: {"description": "already current"}, 404: {"description": "unknown kind"}})
async def get_sync(request: Request, kind: str, have: int = Query(0, ge=0, le=0xFFFFFFFF)):
    try:
        dev, ts, nonce = _auth(request)
    except wire.WireError as e:
        return _err(e.code, e.msg)
    if kind not in SYNC_KINDS:
        return _err("bad_kind", "kinds: " + ", ".join(SYNC_KINDS), status=404)
    if not 0 <= have <= 0xFFFFFFFF:
        return _err("malformed", "have out of range")
    eng = request.app.state.eng
    if kind == "denylist":
        body = ops.denylist_download(eng, have)
        ver = None
    else:
        ident = 0
        if kind in ("fares", "config"):
            with readonly(eng).connect() as c:
                entry = c.execute(select(S.devices.c.entry).where(S.devices.c.id == dev)).scalar_one()
            ident = entry if kind == "fares" else dev
        ver, body = ops.latest_file(eng, kind, ident)
        if kind == "config" and body is None:
            ver, body = ops.latest_file(eng, kind, 0)
        if body is not None and ver <= have:
            body = None
    if body is None:
        return Response(status_code=304)
    h = ksigned.parse_header(body)
    return Response(body, media_type=OCTET, headers={"X-YKT-Version": str(h.version)})
