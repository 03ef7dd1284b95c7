"""Run the back office: serve() in the foreground (CLI) or run_in_thread()
for the simulator and tests (a uvicorn server on a free loopback port)."""
import socket
import threading
import time

import uvicorn

from ykt_tools.backoffice.app import create_app


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def options(log_level="warning"):
    """uvicorn settings shared by every way of running the back office."""
    kw = {}
    try:
        import httptools  # noqa: F401
        kw["http"] = "httptools"
    except ImportError:
        kw["http"] = "h11"
    try:
        import uvloop  # noqa: F401
        kw["loop"] = "uvloop"
    except ImportError:
        kw["loop"] = "asyncio"
    # Ctrl-C or a stop never hangs on a client that keeps a request open (a
    # dashboard left open): requests still running after 5 s are cancelled.
    return dict(kw, log_level=log_level, access_log=False, limit_concurrency=4096, backlog=2048,
                timeout_keep_alive=30, timeout_graceful_shutdown=5)


def _config(app, host, port, log_level):
    return uvicorn.Config(app, host=host, port=port, **options(log_level))


def run_in_thread(db_url, host="127.0.0.1", port=0, log_level="warning", app=None):
    """Start the back office in a daemon thread. -> (base_url, stop_fn);
    stop_fn() shuts it down and waits (pending batches are committed)."""
    app = app or create_app(db_url)
    port = port or free_port(host)
    srv = uvicorn.Server(_config(app, host, port, log_level))
    th = threading.Thread(target=srv.run, name="ykt-backoffice", daemon=True)
    th.start()
    t0 = time.monotonic()
    while not srv.started:
        if not th.is_alive() or time.monotonic() - t0 > 30:
            raise RuntimeError("back office did not start")
        time.sleep(0.01)

    def stop():
        srv.should_exit = True
        th.join(timeout=30)

    return "http://%s:%d" % (host, port), stop


def serve(db_url, host="127.0.0.1", port=8080, log_level="info", workers=1):
    """Foreground server. workers > 1: that many processes share the port
    (uvicorn's supervisor); each builds its own app from $YKT_DB."""
    if workers <= 1:
        uvicorn.Server(_config(create_app(db_url), host, port, log_level)).run()
        return
    import os

    from ykt_tools.backoffice.db import open_db

    open_db(db_url).dispose()       # migrate once here, not in N workers at once
    os.environ["YKT_DB"] = db_url
    uvicorn.run("ykt_tools.backoffice.app:create_app", factory=True, workers=workers, host=host, port=port,
                **options(log_level))


def main(argv=None):
    """`python -m ykt_tools.backoffice.server --db URL --port P`: one worker
    process (benchmarks and the multi-worker test start several)."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="ykt-backoffice-worker")
    p.add_argument("--db", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log-level", default="warning")
    a = p.parse_args(argv)
    app = create_app(a.db)
    srv = uvicorn.Server(_config(app, a.host, a.port, a.log_level))
    orig = srv.startup

    async def startup(sockets=None):
        await orig(sockets)
        print("ready", flush=True)
        sys.stdout.flush()

    srv.startup = startup
    srv.run()


if __name__ == "__main__":
    main()
