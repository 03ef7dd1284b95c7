"""Staged distribution of releases (docs/operations.md): application bundles
and firmware images, served alike (the device dispatches on the envelope's kind).

An operator uploads a signed release (`ykt release build [--image FILE]`), then
starts a roll-out of it to a target (every device, one catalog entry
"entry:301", or one board "board:bus_validator"), in stages:
  canary   only the listed canary devices are offered the bundle
  percent  canary + devices whose stable hash bucket (0..99) < percent
  all      every device of the target
  halted   nothing is offered (set by hand, or automatically when a canary
           device reports a rollback of this version)
Devices poll GET /v1/ota/offer?have=V&board=B&st=ok|trial[&rb=R] (X-YKT-Auth)
and download GET /v1/ota/bundle/<release id> with Range (resumable). Their
state per roll-out (offered, downloading, downloaded, trial, live,
rolled_back) is what the dashboard shows (static/rollout.js).

create_app() calls rollout.install(app). The three tables are in schema.py and
created by alembic migration 0003."""
import hashlib
import json
import re
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update

from ykt.ota import updater as ota
from ykt.sec import signed
from ykt_tools.backoffice import admin, devapi
from ykt_tools.backoffice.db import now, readonly

from ykt_tools.backoffice.schema import metadata, releases, rollouts, rollout_devices  # noqa: E402

STAGES = ("canary", "percent", "all", "halted")
STATES = ("offered", "downloading", "downloaded", "trial", "live", "rolled_back")
_TARGET = re.compile(r"^(all|entry:\d{1,9}|board:[A-Za-z0-9_.-]{1,64})$")
_VER = re.compile(r"^\d{1,3}(\.\d{1,3}){0,2}$")


class RolloutError(ValueError):
    def __init__(self, msg, status=400):
        super().__init__(msg)
        self.status = status


# --- operations (Python API: tests, CLI, admin routes) -------------------------------

_ready = set()


def ensure_tables(eng):
    """The tables come with the schema migrations (0003); nothing to do."""
    return


def add_release(eng, blob):
    """Store a bundle or a firmware image (checked for format; devices check
    the signature). -> {"id", "version", "size", "kind"}."""
    ensure_tables(eng)
    try:
        h = signed.parse_header(blob)
    except signed.SignedError as e:
        raise RolloutError("not a signed bundle: %s" % e.code) from e
    if h.kind not in (ota.K_RELEASE, ota.K_FIRMWARE):
        raise RolloutError("not a release bundle or firmware image (kind %d)" % h.kind)
    from ykt_tools.build import release as rel
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(suffix=".ykb")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        info = rel.inspect_release(tmp)
    except rel.ReleaseError as e:
        raise RolloutError(str(e)) from e
    finally:
        os.remove(tmp)
    with eng.begin() as c:
        if c.execute(select(releases.c.id).where(releases.c.version == info["version"])).first():
            raise RolloutError("release %s exists already" % info["version"], 409)
        rid = c.execute(releases.insert().values(
            version=info["version"], vint=h.version, boards=json.dumps(info["boards"]),
            min_interp=info["min_interp"], size=len(blob), sha256=hashlib.sha256(blob).hexdigest(),
            blob=bytes(blob), created=now())).inserted_primary_key[0]
    return {"id": rid, "version": info["version"], "size": len(blob), "kind": info["kind"]}


def start_rollout(eng, release_id, target="all", canary=(), percent=0, note=""):
    ensure_tables(eng)
    if not _TARGET.match(target):
        raise RolloutError("target must be all, entry:<n> or board:<name>")
    if not 0 <= percent <= 100:
        raise RolloutError("percent 0..100")
    with eng.begin() as c:
        if not c.execute(select(releases.c.id).where(releases.c.id == release_id)).first():
            raise RolloutError("no release %s" % release_id, 404)
        t = now()
        return c.execute(rollouts.insert().values(
            release=release_id, target=target, stage="canary" if canary else ("percent" if percent else "all"),
            percent=percent, canary=json.dumps(sorted(int(x) for x in canary)), created=t, updated=t,
            note=note[:200])).inserted_primary_key[0]


def set_stage(eng, rollout_id, stage, percent=None):
    ensure_tables(eng)
    if stage not in STAGES:
        raise RolloutError("stage: " + ", ".join(STAGES))
    vals = {"stage": stage, "updated": now()}
    if percent is not None:
        if not 0 <= percent <= 100:
            raise RolloutError("percent 0..100")
        vals["percent"] = percent
    with eng.begin() as c:
        n = c.execute(update(rollouts).where(rollouts.c.id == rollout_id).values(**vals)).rowcount
    if not n:
        raise RolloutError("no roll-out %s" % rollout_id, 404)


def bucket(rollout_id, device_id):
    """Stable 0..99 per (roll-out, device): a percentage stage reaches the same
    devices as it grows, and different roll-outs pick different first devices."""
    d = hashlib.sha256(b"ykt-rollout:%d:%d" % (rollout_id, device_id)).digest()
    return int.from_bytes(d[:4], "big") % 100


def _targets(r, dev_entry, board):
    t = r.target
    if t == "all":
        return True
    if t.startswith("entry:"):
        return dev_entry == int(t[6:])
    return board == t[6:]


def _eligible(r, dev, dev_entry, board, boards):
    if r.stage == "halted" or not _targets(r, dev_entry, board):
        return False
    if boards and board not in boards:
        return False
    if r.stage == "all":
        return True
    if dev in json.loads(r.canary):
        return True
    return r.stage == "percent" and bucket(r.id, dev) < r.percent


def _vint(v):
    try:
        return ota.ver_int(v) if v and _VER.match(v) else 0
    except ValueError:
        return 0


def _record(c, rid, dev, state, board=None, running=None, nbytes=None):
    t = now()
    row = c.execute(select(rollout_devices).where(rollout_devices.c.rollout == rid,
                                                  rollout_devices.c.device == dev)).first()
    vals = {"state": state, "updated": t}
    if board is not None:
        vals["board"] = board[:64]
    if running is not None:
        vals["running"] = running[:16]
    if nbytes is not None:
        vals["bytes"] = nbytes
    if row is None:
        vals.setdefault("bytes", 0)
        c.execute(rollout_devices.insert().values(rollout=rid, device=dev, **vals))
    elif row.state != state or nbytes is not None or running is not None:
        if _RANK[state] < _RANK[row.state] and state != "rolled_back" and row.state != "rolled_back":
            vals.pop("state")       # a late download request does not undo "live"
        c.execute(update(rollout_devices).where(rollout_devices.c.rollout == rid,
                                                rollout_devices.c.device == dev).values(**vals))


_RANK = {"offered": 0, "downloading": 1, "downloaded": 2, "trial": 3, "live": 4, "rolled_back": 5}


def offer_for(eng, dev, have, board, st="ok", rb=None):
    """The device's poll: records what it reports, returns the offer dict or None."""
    ensure_tables(eng)
    hv = _vint(have)
    with eng.begin() as c:
        entry = c.execute(select(devapi.S.devices.c.entry).where(devapi.S.devices.c.id == dev)).scalar()
        rows = c.execute(select(rollouts, releases.c.version, releases.c.vint, releases.c.boards,
                                releases.c.size)
                         .join(releases, releases.c.id == rollouts.c.release)
                         .order_by(rollouts.c.id.desc())).all()
        offer = None
        for r in rows:
            mine = c.execute(select(rollout_devices.c.state).where(
                rollout_devices.c.rollout == r.id, rollout_devices.c.device == dev)).scalar()
            if rb and rb == r.version:
                if mine is not None or _targets(r, entry, board):
                    _record(c, r.id, dev, "rolled_back", board, have)
                    if r.stage == "canary":   # a canary rolled back: stop the roll-out
                        c.execute(update(rollouts).where(rollouts.c.id == r.id)
                                  .values(stage="halted", updated=now(), note="auto-halted: rollback on device %d" % dev))
                continue
            if hv == r.vint and mine is not None:
                _record(c, r.id, dev, "trial" if st == "trial" else "live", board, have)
                continue
            if offer is None and hv < r.vint and mine != "rolled_back" and \
                    _eligible(r, dev, entry, board, json.loads(r.boards)):
                offer = {"version": r.version, "size": r.size, "url": "/v1/ota/bundle/%d" % r.release}
                if mine is None:
                    _record(c, r.id, dev, "offered", board, have)
                elif have:
                    _record(c, r.id, dev, mine, board, have)
    return offer


def progress(eng):
    """Every roll-out with its counts per state and the size of its target."""
    ensure_tables(eng)
    out = []
    with readonly(eng).connect() as c:
        devs = c.execute(select(devapi.S.devices.c.id, devapi.S.devices.c.entry)
                         .where(devapi.S.devices.c.active.is_(True))).all()
        for r in c.execute(select(rollouts, releases.c.version, releases.c.boards)
                           .join(releases, releases.c.id == rollouts.c.release)
                           .order_by(rollouts.c.id.desc())).all():
            counts = {s: 0 for s in STATES}
            seen = c.execute(select(rollout_devices.c.state, rollout_devices.c.board)
                             .where(rollout_devices.c.rollout == r.id)).all()
            for s in seen:
                counts[s.state] += 1
            if r.target == "all":
                total = len(devs)
            elif r.target.startswith("entry:"):
                total = sum(1 for d in devs if d.entry == int(r.target[6:]))
            else:
                total = max(len(seen), 0)
            out.append({"id": r.id, "version": r.version, "target": r.target, "stage": r.stage,
                        "percent": r.percent, "canary": json.loads(r.canary), "total": total,
                        "counts": counts, "note": r.note or "", "updated": r.updated})
    return out


# --- device endpoints -----------------------------------------------------------------

router = APIRouter(prefix="/v1/ota", tags=["device"])


@router.get("/offer", summary="OTA offer: 204 when nothing newer is offered to this device, else "
                              "{version, size, url} (JSON, <= 512 bytes)")
async def get_offer(request: Request):
    try:
        dev, ts, nonce = devapi._auth(request)
    except devapi.wire.WireError as e:
        return devapi._err(e.code, e.msg)
    q = request.query_params
    have = q.get("have", "")[:16]
    board = q.get("board", "")[:64]
    rb = q.get("rb")
    o = offer_for(request.app.state.eng, dev, have, board, q.get("st", "ok"), rb[:16] if rb else None)
    if o is None:
        return Response(status_code=204)
    return Response(json.dumps(o, separators=(",", ":")), media_type="application/json")


_RANGE = re.compile(r"^bytes=(\d{1,10})-$")


@router.get("/bundle/{release_id}", summary="The signed bundle; `Range: bytes=N-` resumes (206)")
async def get_bundle(request: Request, release_id: int = Path(ge=1, le=2 ** 31 - 1)):
    try:
        dev, ts, nonce = devapi._auth(request)
    except devapi.wire.WireError as e:
        return devapi._err(e.code, e.msg)
    eng = request.app.state.eng
    with readonly(eng).connect() as c:
        row = c.execute(select(releases.c.blob, releases.c.size).where(releases.c.id == release_id)).first()
        ro = c.execute(select(rollouts.c.id).join(rollout_devices, rollout_devices.c.rollout == rollouts.c.id)
                       .where(rollouts.c.release == release_id, rollout_devices.c.device == dev)
                       .order_by(rollouts.c.id.desc())).scalar()
    if row is None or ro is None:
        return devapi._err("bad_kind", "no such bundle offered to this device", status=404)
    blob = bytes(row.blob)
    start = 0
    rg = request.headers.get("range")
    if rg:
        m = _RANGE.match(rg.strip())
        if not m:
            return Response(status_code=416, headers={"Content-Range": "bytes */%d" % len(blob)})
        start = int(m.group(1))
        if start >= len(blob):
            return Response(status_code=416, headers={"Content-Range": "bytes */%d" % len(blob)})
    with eng.begin() as c:
        _record(c, ro, dev, "downloading", nbytes=start)
    body = blob[start:]
    if start:
        return Response(body, status_code=206, media_type=devapi.OCTET,
                        headers={"Content-Range": "bytes %d-%d/%d" % (start, len(blob) - 1, len(blob))})
    return Response(body, media_type=devapi.OCTET)


# --- admin endpoints --------------------------------------------------------------------

admin_router = APIRouter(prefix="/admin/api", tags=["admin"])


class NewRollout(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")    # as admin.STRICT
    release: admin.jint(1, 2 ** 31 - 1)
    target: str = Field("all", pattern=r"^(all|entry:\d{1,9}|board:[A-Za-z0-9_.-]{1,64})$")
    canary: list[admin.jint(1, 2 ** 31 - 1)] = Field(default_factory=list, max_length=1000, description="device ids")
    percent: admin.jint(0, 100) = 0
    note: str = Field("", max_length=200)


class Stage(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    stage: Literal[STAGES]
    percent: admin.jint(0, 100) | None = None


def _guard(fn, *a):
    try:
        return fn(*a)
    except RolloutError as e:
        raise HTTPException(e.status, str(e))


@admin_router.post("/releases", summary="Upload a signed release (body: the .ykb bundle or signed image)",
                   openapi_extra={"requestBody": {"required": True, "content": {devapi.OCTET: {"schema": {
                       "type": "string", "format": "binary", "minLength": 1, "maxLength": ota.MAX_DOWNLOAD}}},
                       "description": "a YKTS-signed bundle or image; its signature decides, not this schema"}})
async def upload_release(request: Request, op=Depends(admin.writer)):
    blob = await request.body()
    if len(blob) > ota.MAX_DOWNLOAD:
        raise HTTPException(413, "release too large")
    r = _guard(add_release, request.app.state.eng, blob)
    _audit(request, op, "release.add", r["version"])
    return r


@admin_router.post("/rollouts")
def new_rollout(body: NewRollout, request: Request, op=Depends(admin.writer)):
    rid = _guard(start_rollout, request.app.state.eng, body.release, body.target, body.canary,
                 body.percent, body.note)
    _audit(request, op, "rollout.start", str(rid))
    return {"id": rid}


@admin_router.post("/rollouts/{rollout_id}/stage")
def stage(body: Stage, request: Request, rollout_id: int = Path(ge=1, le=2 ** 31 - 1), op=Depends(admin.writer)):
    _guard(set_stage, request.app.state.eng, rollout_id, body.stage, body.percent)
    _audit(request, op, "rollout.stage", "%d:%s" % (rollout_id, body.stage))
    return {"ok": True}


@admin_router.get("/rollouts")
def list_rollouts(request: Request, op=Depends(admin.operator)):
    return progress(request.app.state.eng)


def _audit(request, op, what, subject):
    from ykt_tools.backoffice import auth

    with request.app.state.eng.begin() as c:
        auth.audit(c, admin._actor(op), what, "ota:" + subject)


def install(app):
    """create_app() hook: the device and admin routes of OTA distribution."""
    ensure_tables(app.state.eng)
    app.include_router(router)
    app.include_router(admin_router)
    return app
