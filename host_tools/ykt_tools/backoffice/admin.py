"""Admin API (/admin/api) for the dashboard and scripts. Authentication is an
operator session (cookie `ykt_session` or `Authorization: Bearer <token>`
from POST /admin/login); device keys are never accepted here. GET needs role
viewer or operator; every change needs operator and writes the audit log."""
import io
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy import func, select
from starlette.convertors import StringConvertor, register_url_convertor

from ykt_tools.backoffice import auth, export, ops, registry, settle
from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.db import now, readonly, service_day

router = APIRouter(tags=["admin"])


def operator(request: Request):
    tok = request.cookies.get("ykt_session")
    h = request.headers.get("authorization", "")
    if h.lower().startswith("bearer "):
        tok = h[7:].strip()
    op = auth.session_operator(request.app.state.eng, tok)
    if op is None:
        raise HTTPException(401, "login required", headers={"WWW-Authenticate": "Bearer"})
    return op


def writer(op=Depends(operator)):
    if op["role"] != "operator":
        raise HTTPException(403, "role operator required")
    return op


def _actor(op):
    return "op:" + op["name"]


# Request bodies are strict: JSON false is not 0, 1.0 is not 1, "5" is not 5,
# and a property the model does not name is refused (additionalProperties: false).
STRICT = ConfigDict(strict=True, extra="forbid")


def _json_int(v):
    # JSON Schema counts 13.0 as the integer 13; booleans and strings stay refused
    if isinstance(v, float) and v.is_integer() and abs(v) < 2 ** 53:
        return int(v)
    return v


def jint(lo, hi):
    """A JSON integer lo..hi (bounds before the validator so the schema says minimum/maximum)."""
    return Annotated[int, Field(ge=lo, le=hi), BeforeValidator(_json_int)]
TOKEN = r"^[0-9a-fA-F]{16}$"       # a card token, 8 bytes in hex (ykt.sec.token)
CARD_ID = r"^[0-9a-fA-F]{32}$"     # the card identification code, 16 bytes in hex
CARD_NO = r"^[0-9A-Za-z]{9}$"      # the printed card number
CITIZEN_ID = r"^[0-9]{17}[0-9Xx]$"
DEVICE_ACTIONS = ("rekey", "activate", "deactivate") + tuple(ops.REQUESTS)


class _Choice(StringConvertor):
    """A path segment that is one of a fixed set of words (or matches a
    pattern): routes that share a prefix (cards/{token} and cards/status)
    then never swallow each other's paths, so a wrong method gets 405."""

    def __init__(self, regex):
        self.regex = regex


register_url_convertor("cardtoken", _Choice(TOKEN[1:-1]))
register_url_convertor("devaction", _Choice("|".join(re.escape(a) for a in DEVICE_ACTIONS)))


class Login(BaseModel):
    model_config = STRICT
    name: str = Field(max_length=64)
    password: str = Field(max_length=256)


@router.post("/admin/login")
def login(body: Login, request: Request):
    try:
        tok, op = auth.login(request.app.state.eng, body.name, body.password,
                             source=request.client.host if request.client else None)
    except auth.Locked as e:
        raise HTTPException(429, str(e), headers={"Retry-After": str(int(e.retry_after))})
    except auth.AuthError:
        raise HTTPException(401, "bad name or password")
    r = JSONResponse({"token": tok, **op})
    # Secure whenever the request came over TLS (directly, or as the proxy says
    # when uvicorn runs with --forwarded-allow-ips): the browser then never
    # sends the session over plain HTTP
    r.set_cookie("ykt_session", tok, httponly=True, samesite="strict", max_age=auth.SESSION_S, path="/",
                 secure=request.url.scheme == "https")
    return r


@router.post("/admin/logout")
def logout(request: Request, op=Depends(operator)):
    tok = request.cookies.get("ykt_session") or request.headers.get("authorization", "")[7:]
    auth.logout(request.app.state.eng, tok)
    r = JSONResponse({"ok": True})
    r.delete_cookie("ykt_session", path="/")
    return r


@router.get("/admin/api/me")
def me(op=Depends(operator)):
    return op


def _run(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except ops.OpError as e:
        raise HTTPException(e.status, str(e))
    except ValueError as e:
        raise HTTPException(400, str(e))


@router.get("/admin/api/fleet")
def fleet(request: Request, op=Depends(operator)):
    eng = request.app.state.eng
    devs = ops.list_devices(eng)
    with readonly(eng).connect() as c:
        dl = c.execute(select(S.denylist.c.version, S.denylist.c.created, S.denylist.c.entries)
                       .order_by(S.denylist.c.version.desc()).limit(1)).first()
    return {"now": now(), "devices": devs,
            "denylist": {"version": dl.version, "created": dl.created, "entries": dl.entries} if dl else None,
            "ingest": dict(request.app.state.ingestor.stats)}


@router.get("/admin/api/taps_per_hour")
def taps_per_hour(request: Request, hours: int = Query(24, ge=1, le=24 * 14), op=Depends(operator)):
    t1 = now()
    t0 = (t1 // 3600 - hours + 1) * 3600
    eng = request.app.state.eng
    # by the taps' own time; the day bound lets the (day) index do the work
    with readonly(eng).connect() as c:
        hour = (S.taps.c.t - S.taps.c.t % 3600).label("h")     # integer hour start on both backends
        rows = c.execute(select(hour, func.count())
                         .where(S.taps.c.day >= service_day(t0), S.taps.c.day <= service_day(t1 + 3600),
                                S.taps.c.t >= t0, S.taps.c.t < t1 + 3600).group_by("h")).all()
    got = {int(h) // 3600: n for h, n in rows}
    return [{"hour": (t0 // 3600 + i) * 3600, "taps": got.get(t0 // 3600 + i, 0)} for i in range(hours)]


@router.get("/admin/api/devices/{ident}/gaps")
def gaps(ident: str, request: Request, op=Depends(operator)):
    return _run(ops.seq_gaps, request.app.state.eng, ident)


class NewDevice(BaseModel):
    model_config = STRICT
    name: str = Field(min_length=1, max_length=64)
    kind: Literal[ops.DEVICE_KINDS] = "validator"
    entry: jint(0, 65535) = 0
    device_id: jint(1, 2 ** 31 - 1) | None = None


@router.post("/admin/api/devices")
def add_device(body: NewDevice, request: Request, op=Depends(writer)):
    """Returns the device key ONCE."""
    return _run(ops.register_device, request.app.state.eng, body.name, body.kind, body.entry,
                body.device_id, actor=_actor(op))


@router.post("/admin/api/devices/{ident}/{action:devaction}")
def device_action(ident: str, action: Literal[DEVICE_ACTIONS], request: Request, op=Depends(writer)):
    eng = request.app.state.eng
    if action == "rekey":
        r = _run(ops.rekey_device, eng, ident, actor=_actor(op))
    elif action in ops.REQUESTS:
        r = _run(ops.request_device, eng, ident, action, actor=_actor(op))
    elif action in ("activate", "deactivate"):
        _run(ops.set_device_active, eng, ident, action == "activate", actor=_actor(op))
        r = {"ok": True}
    else:
        raise HTTPException(404, "actions: rekey, activate, deactivate, sync-now, upload-now")
    request.app.state.keys.forget()
    return r


class CardStatus(BaseModel):
    model_config = STRICT
    status: Literal[tuple(ops.STATUSES)]
    token: str | None = Field(None, pattern=TOKEN)
    card_id: str | None = Field(None, pattern=CARD_ID)
    card_no: str | None = Field(None, pattern=CARD_NO)
    citizen_id: str | None = Field(None, pattern=CITIZEN_ID)
    replaced_by: str | None = Field(None, pattern=r"^([0-9a-fA-F]{16}|[0-9a-fA-F]{32}|[0-9A-Za-z]{9})$",
                                    description="the successor's token, card identification code or card number")
    note: str = Field("", max_length=500)


@router.post("/admin/api/cards/status")
def card_status(body: CardStatus, request: Request, op=Depends(writer)):
    """Report a card lost/suspended/cancelled/replaced/restored by exactly one
    of token, card identification code, card number or citizen ID, resolved
    through the card registry (tokenized here with the operator token key;
    never stored). replaced_by: the successor's token, code or card number.
    404 when a card number or citizen ID matches no registered card."""
    given = [(k, getattr(body, k)) for k in ("token", "card_id", "card_no", "citizen_id") if getattr(body, k)]
    if len(given) != 1:
        raise HTTPException(400, "give exactly one of token, card_id, card_no, citizen_id")
    by, value = given[0]
    return _run(registry.set_status, request.app.state.eng, body.status, by, value,
                replaced_by=body.replaced_by or None, note=body.note, actor=_actor(op))


@router.post("/admin/api/registry/import",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"}}}}})
async def registry_import(request: Request, name: str = Query("cards.csv", max_length=100),
                          op=Depends(writer)):
    """Import a card-registry file (docs/registry-import.md). The whole file
    or nothing: 400 with one line naming the line and field."""
    data = await request.body()
    if len(data) > registry.MAX_BYTES:
        raise HTTPException(413, "file larger than %d bytes" % registry.MAX_BYTES)
    return _run(registry.import_file, request.app.state.eng, data, name=name, actor=_actor(op))


@router.get("/admin/api/cards/{token:cardtoken}")
def card(request: Request, token: str = Path(pattern=TOKEN), op=Depends(operator)):
    return _run(ops.card_history, request.app.state.eng, token)


@router.post("/admin/api/files/{kind}",
             openapi_extra={"requestBody": {"required": True, "description":
                 "fares, catalog, entitlements: the compiled file (ykt fares compile ...); config: a JSON object "
                 "of at most 4096 bytes. The file's own checks decide (400/422), not this schema", "content": {
                     "application/octet-stream": {"schema": {"type": "string", "format": "binary",
                                                             "minLength": 1, "maxLength": 1 << 20}},
                     "application/json": {"schema": {"type": "object", "maxProperties": 256}}}}})
async def publish(kind: Literal["fares", "catalog", "entitlements", "config"], request: Request, ident: int = Query(0, ge=0, le=2 ** 31 - 1),
                  op=Depends(writer)):
    data = await request.body()
    if len(data) > 1 << 20:
        raise HTTPException(413, "file larger than 1 MiB")
    return _run(ops.publish_file, request.app.state.eng, kind, data, ident=ident, actor=_actor(op))


class Entitlement(BaseModel):
    model_config = STRICT
    token: str = Field(pattern=TOKEN)
    concession: jint(0, 255)
    flags: jint(0, 255) = 0
    valid_from: jint(0, 99991231) = 0
    valid_to: jint(0, 99991231) = 99991231


@router.post("/admin/api/entitlements")
def entitlement(body: Entitlement, request: Request, op=Depends(writer)):
    _run(ops.set_entitlement, request.app.state.eng, body.token, body.concession, body.flags,
         body.valid_from, body.valid_to, actor=_actor(op))
    return {"ok": True}


@router.post("/admin/api/entitlements/publish")
def entitlements_publish(request: Request, op=Depends(writer)):
    return _run(ops.publish_entitlements, request.app.state.eng, actor=_actor(op))


@router.post("/admin/api/keys/{action}")
def keys(action: Literal["rotate", "retire"], request: Request, op=Depends(writer)):
    eng = request.app.state.eng
    if action == "rotate":
        return _run(ops.rotate_keys, eng, actor=_actor(op))
    if action == "retire":
        return _run(ops.retire_keys, eng, actor=_actor(op))
    raise HTTPException(404, "actions: rotate, retire")


class Day(BaseModel):
    model_config = STRICT
    day: jint(19700101, 99991231)


@router.post("/admin/api/settle")
def settle_day(body: Day, request: Request, op=Depends(writer)):
    return _run(settle.settle_day, request.app.state.eng, body.day, actor=_actor(op))


@router.get("/admin/api/settlements")
def settlements(request: Request, day: int = Query(ge=19700101, le=99991231), op=Depends(operator)):
    return settle.settlements(request.app.state.eng, day)


@router.get("/admin/api/charges")
def charges(request: Request, token: str = Query(pattern=TOKEN), day: int = Query(ge=19700101, le=99991231),
            op=Depends(operator)):
    """Audit trail: each charge with the tap (device, seq) it came from."""
    return _run(settle.charges, request.app.state.eng, day, token)


@router.get("/admin/api/export/{what}.{fmt}")
def export_(what: str, fmt: str, request: Request, day_from: int = Query(0, ge=0, le=99991231),
            day_to: int = Query(99991231, ge=0, le=99991231), op=Depends(operator)):
    if what not in ("taps", "settlements") or fmt not in ("csv", "parquet"):
        raise HTTPException(404, "export/{taps|settlements}.{csv|parquet}")
    buf = io.BytesIO()
    n = export.export(request.app.state.eng, what, fmt, buf, day_from, day_to)
    with request.app.state.eng.begin() as c:
        auth.audit(c, _actor(op), "export." + what, fmt, rows=n, day_from=day_from, day_to=day_to)
    return Response(buf.getvalue(), media_type="text/csv" if fmt == "csv" else "application/vnd.apache.parquet",
                    headers={"Content-Disposition": "attachment; filename=%s.%s" % (what, fmt)})


@router.get("/admin/api/audit")
def audit_log(request: Request, limit: int = Query(100, ge=1, le=1000), op=Depends(operator)):
    with readonly(request.app.state.eng).connect() as c:
        return [dict(r._mapping) for r in c.execute(select(S.audit).order_by(S.audit.c.id.desc())
                                                    .limit(max(1, min(limit, 1000))))]


# --- the operator dashboard: days, one day, reports, health, card lookup, collection ---
# (docs/backoffice.md, "Dashboard"). Figures in fen; days are service days
# YYYYMMDD (UTC+8); tokens pseudonymous.
from typing import Optional  # noqa: E402

from ykt_tools.backoffice import collect, dash, report  # noqa: E402

_ERRORS = {401: {"description": "login required"}, 403: {"description": "role operator required"},
           422: {"description": "invalid parameters"}}


def _errs(**more):
    """_ERRORS plus statuses given as s404="..." (the keys of responses= are ints)."""
    out = dict(_ERRORS)
    for k, v in more.items():
        out[int(k[1:])] = v if isinstance(v, dict) else {"description": v}
    return out
DayQ = Query(ge=19700101, le=99991231, description="service day YYYYMMDD (UTC+8)")


class DayRow(BaseModel):
    day: int
    taps: int
    settled: bool
    amount: Optional[int] = Field(None, description="settled fares of the day, fen")


@router.get("/admin/api/days", response_model=list[DayRow], responses=_ERRORS)
def days(request: Request, op=Depends(operator)):
    """Service days that have taps, newest first (the dashboard opens on the first)."""
    return dash.days(request.app.state.eng)


class Series(BaseModel):
    key: str = Field(description="device name or route (catalog entry id)")
    hours: list[int] = Field(description="taps in each local hour 0..23")


class Refusal(BaseModel):
    reason: str
    code: int
    taps: int


class DaySummary(BaseModel):
    day: int
    taps: int
    outcomes: dict[str, int]
    refusals: list[Refusal]
    riders: int
    provisional: int = Field(description="fares the devices showed, fen")
    settled: bool
    shifts: int = Field(description="driver shifts signed on")
    per_device: list[Series]
    per_route: list[Series]
    fares: Optional[int] = Field(None, description="fares charged by settlement, fen (settled days)")
    concession_value: Optional[int] = None
    concession_rides: Optional[int] = None
    reconciled: Optional[bool] = None
    settle_note: Optional[str] = None


@router.get("/admin/api/day/{day}", response_model=DaySummary, responses=_ERRORS)
def day_summary(request: Request, day: int = Path(ge=19700101, le=99991231), op=Depends(operator)):
    """One service day: taps per hour by device and by route, outcomes and
    refusal reasons, revenue and concession value."""
    return _run(dash.day, request.app.state.eng, day)    # a day that is no date (20261399): 400


class Report(BaseModel):
    by: str
    from_: int = Field(alias="from")
    to: int
    columns: list[str]
    rows: list[list[int | str]]
    totals: dict[str, int]
    settlement: int = Field(description="the settlement total of the days, fen")
    settled_days: list[int]
    reconciled: bool = Field(description="fares charged in the report == settlement total")

    model_config = {"populate_by_name": True}


ByQ = Query(description="route | vehicle | shift | card-type | concession")


@router.get("/admin/api/report", response_model=Report, response_model_by_alias=True,
            responses=_errs(s409="a day in the range is not settled"))
def report_json(request: Request, day: int = DayQ, to: Optional[int] = Query(None, ge=19700101, le=99991231),
                by: Literal["route", "vehicle", "shift", "card-type", "concession"] = ByQ, op=Depends(operator)):
    """Taps, riders, fares and concession value of settled days by a key
    (`concession` = the subsidy claim by concession class)."""
    return _run(report.build, request.app.state.eng, day, to or day, by)


@router.get("/admin/api/report.{fmt}", responses=_errs(
    s200={"description": "the report file", "content": {
        "text/csv": {}, "application/vnd.apache.parquet": {},
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}},
    s404="unknown format", s409="a day in the range is not settled"))
def report_file(fmt: str, request: Request, day: int = DayQ,
                to: Optional[int] = Query(None, ge=19700101, le=99991231),
                by: Literal["route", "vehicle", "shift", "card-type", "concession"] = ByQ, op=Depends(operator)):
    if fmt not in report.FORMATS:
        raise HTTPException(404, "report.{csv|parquet|xlsx}")
    eng = request.app.state.eng
    rep = _run(report.build, eng, day, to or day, by)
    buf = io.BytesIO()
    report.write(rep, fmt, buf)
    with eng.begin() as c:
        auth.audit(c, _actor(op), "report." + by, fmt, day_from=rep["from"], day_to=rep["to"], rows=len(rep["rows"]))
    media = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet",
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}[fmt]
    return Response(buf.getvalue(), media_type=media, headers={
        "Content-Disposition": "attachment; filename=report-%s-%d-%d.%s" % (by, rep["from"], rep["to"], fmt)})


class Alert(BaseModel):
    kind: Literal["offline", "reader_down", "reader_faults", "backlog", "denylist_behind"]
    since: Optional[int] = None
    errors: Optional[int] = None
    taps: Optional[int] = None
    oldest_s: Optional[int] = None
    versions: Optional[int] = None


class DeviceHealth(BaseModel):
    id: int
    name: str
    kind: str
    entry: int
    active: bool
    last_seen: Optional[int]
    fw: Optional[str]
    dl_ver: Optional[int]
    dl_current: int
    dl_behind: Optional[int]
    fare_ver: Optional[int]
    cat_ver: Optional[int]
    backlog: Optional[int]
    reader_faults: Optional[int]
    seq_acked: int
    seq_max: int
    alerts: list[Alert]


class Health(BaseModel):
    now: int
    devices: list[DeviceHealth]
    alerts: int
    thresholds: dict[str, int]


@router.get("/admin/api/health", response_model=Health, responses=_ERRORS)
def health(request: Request, op=Depends(operator)):
    """Each device with its alerts: offline too long, reader faults, journal
    backlog, deny list behind."""
    return dash.health(request.app.state.eng)


class LookupTap(BaseModel):
    device: str
    seq: int
    t: int
    day: int
    outcome: str
    reason: str
    fare: int
    charged: Optional[int]
    concession: int
    entry: int


class Arrears(BaseModel):
    token: str
    amount: int
    items: int
    since: int
    status: Optional[str]


class CardEvent(BaseModel):
    at: int
    status: str
    actor: str
    dl_ver: int
    note: str


class Lookup(BaseModel):
    token: str
    resolved_by: str
    status: str
    since: Optional[int]
    entitlement: Optional[dict[str, int]]
    registry: Optional[dict[str, Optional[int | str]]]
    arrears: Optional[Arrears]
    history: list[CardEvent]
    taps: list[LookupTap]


@router.get("/admin/api/lookup", response_model=Lookup, responses=_errs(
    s400="malformed identity", s404="no registered card has this card number or citizen ID"))
def lookup(request: Request, card_no: Optional[str] = Query(None, pattern=CARD_NO),
           citizen_id: Optional[str] = Query(None, pattern=CITIZEN_ID),
           card_id: Optional[str] = Query(None, pattern=CARD_ID), token: Optional[str] = Query(None, pattern=TOKEN),
           op=Depends(operator)):
    """A card's status, arrears and pseudonymous tap history. The identity
    typed is tokenized and never stored, logged or returned."""
    eng = request.app.state.eng
    r = _run(dash.lookup, eng, card_no=card_no, citizen_id=citizen_id, card_id=card_id, token=token)
    with eng.begin() as c:
        auth.audit(c, _actor(op), "card.lookup", "token:" + r["token"], by=r["resolved_by"])
    return r


class CollectionRow(BaseModel):
    id: int
    acquirer: str
    day: int
    created: int
    items: int
    amount: int
    sha256: str
    returned_at: Optional[int]
    by_status: dict[str, dict[str, int]]


@router.get("/admin/api/collections", response_model=list[CollectionRow], responses=_ERRORS)
def collections(request: Request, day_from: int = Query(0, ge=0, le=99991231),
                day_to: int = Query(99991231, ge=0, le=99991231), op=Depends(operator)):
    """Collection files per acquirer and day with their items by status
    (sent, paid, returned, repaid)."""
    return collect.status(request.app.state.eng, day_from, day_to)


@router.get("/admin/api/collections/{cid}.csv", responses=_errs(
    s200={"description": "the collection file as sent", "content": {"text/csv": {}}},
    s404="no such collection"))
def collection_file(request: Request, cid: int = Path(ge=1, le=2 ** 31 - 1), op=Depends(operator)):
    body, name = _run(collect.body, request.app.state.eng, cid)
    return Response(body, media_type="text/csv", headers={"Content-Disposition": "attachment; filename=" + name})


@router.get("/admin/api/arrears", response_model=list[Arrears], responses=_ERRORS)
def arrears(request: Request, op=Depends(operator)):
    """Cards with returned collection items not yet paid."""
    return collect.arrears(request.app.state.eng)


class Payment(BaseModel):
    model_config = STRICT
    token: str = Field(pattern=TOKEN)
    amount: jint(1, 10 ** 9) = Field(description="fen; must equal the arrears")
    ref: str = Field(pattern=r"^[A-Za-z0-9_./-]{1,64}$", description="payment reference (receipt, app order)")


class Paid(BaseModel):
    token: str
    amount: int
    items: int
    dl_ver: Optional[int] = Field(description="deny-list version that takes the card off, when it was unpaid")


@router.post("/admin/api/arrears/pay", response_model=Paid, responses=_errs(
    s404="the card has no arrears", s409="amount is not the arrears"))
def arrears_pay(body: Payment, request: Request, op=Depends(writer)):
    """The holder paid: the returned items are cleared and an unpaid card is
    accepted again after the next deny-list sync."""
    return _run(collect.pay, request.app.state.eng, body.token, body.amount, body.ref, actor=_actor(op))
