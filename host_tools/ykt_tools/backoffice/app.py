"""FastAPI app factory: create_app(db_url) -> app. Workers are stateless
(everything lives in the database), so N of them can sit behind a load
balancer; each runs one group-commit ingest writer."""
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from ykt_tools.backoffice import PKG_DIR, admin, devapi, ingest, ops
from ykt_tools.backoffice.db import open_db


# Every response, the dashboard's and the APIs': the page loads only its own
# scripts and styles (no inline code, no CDN), may not be framed (clickjacking),
# content types are not sniffed, and no URL leaks in a Referer.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                                 b"form-action 'self'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware adding SECURITY_HEADERS to every HTTP response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with(msg):
            if msg["type"] == "http.response.start":
                msg = dict(msg, headers=list(msg.get("headers", [])) + SECURITY_HEADERS)
            await send(msg)

        await self.app(scope, receive, send_with)


def create_app(db_url=None, migrate=True, signing_key=True):
    """db_url defaults to $YKT_DB, else sqlite:///ykt-backoffice.db, so
    `YKT_DB=postgresql://... uvicorn --factory ykt_tools.backoffice.app:create_app
    --workers N` works too."""
    db_url = db_url or os.environ.get("YKT_DB", "sqlite:///ykt-backoffice.db")
    eng = open_db(db_url, migrate_now=migrate)
    if signing_key:
        ops.ensure_signing_key(eng)

    @asynccontextmanager
    async def lifespan(app):
        yield
        app.state.ingestor.close()
        eng.dispose()

    # No Swagger/ReDoc pages: they load their JS from a CDN. /openapi.json stays.
    app = FastAPI(title="ykt-gate back office", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Device API (/v1, binary ykt.net.wire bodies, see docs/protocol.md) and "
                              "operator admin API (/admin). docs/backoffice.md.")
    app.state.eng = eng
    app.state.ingestor = ingest.Ingestor(eng)
    app.state.keys = devapi.KeyCache(eng)
    app.include_router(devapi.router)
    app.add_middleware(devapi.TapsFastPath, state=app.state)
    app.add_middleware(SecurityHeaders)
    app.include_router(admin.router)
    app.mount("/dashboard", StaticFiles(directory=os.path.join(PKG_DIR, "static"), html=True), name="dashboard")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc):
        # FastAPI's default handler echoes the input and fails (500) on
        # bytes that are not UTF-8; answer 422 without echoing anything.
        errs = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", ""))[:200],
                 "type": str(e.get("type", ""))} for e in exc.errors()[:20]]
        return JSONResponse({"detail": errs}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc):
        # 405: Starlette names only the first route that matched the path;
        # Allow lists every method the path has (RFC 9110 15.5.6).
        if exc.status_code == 405:
            allow = set()
            for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
                sc = {"type": "http", "path": request.scope["path"], "root_path": request.scope.get("root_path", ""),
                      "method": method, "headers": []}
                if any(route.matches(sc)[0] == Match.FULL for route in app.router.routes):
                    allow.add(method)
            exc = StarletteHTTPException(405, exc.detail, dict(exc.headers or {}, Allow=", ".join(sorted(allow))))
        return await http_exception_handler(request, exc)

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("/dashboard/")

    from ykt_tools.backoffice import rollout

    rollout.install(app)
    from ykt_tools.backoffice import openapi_doc

    openapi_doc.install(app)
    return app
