"""Helpers for tests/test_backoffice_*.py and the ingest bench: throwaway
databases (SQLite file or a fresh PostgreSQL database per test) and device-
side request builders that use ykt.net.wire (never a second copy of the format)."""
import contextlib
import os
import uuid

from ykt import taprec
from ykt.net import wire

PG_ADMIN = os.environ.get("YKT_PG_ADMIN", "host=127.0.0.1 port=5432 user=postgres dbname=test")
PG_URL = os.environ.get("YKT_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/%s")


def pg_available():
    try:
        import psycopg
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except Exception:
        return False


@contextlib.contextmanager
def temp_db(kind, tmpdir):
    """Yield a database URL; PostgreSQL gets its own database, dropped after."""
    if kind == "sqlite":
        yield "sqlite:///" + os.path.join(str(tmpdir), "bo-%s.db" % uuid.uuid4().hex[:8])
        return
    import psycopg
    name = "ykt_t_%s" % uuid.uuid4().hex[:12]
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute("CREATE DATABASE %s" % name)
    try:
        yield PG_URL % name
    finally:
        from ykt_tools.backoffice import api
        for u, e in list(api._engines.items()):
            if name in u:
                e.dispose()
                del api._engines[u]
        with psycopg.connect(PG_ADMIN, autocommit=True) as c:
            c.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


def make_taps(seqs, t0=1795700000, token=None, fare=200, entry=5, step=60, **fields):
    out = []
    for i, s in enumerate(seqs):
        t = taprec.Tap()
        t.seq = s
        t.time = t0 + i * step
        t.token[:] = token if token is not None else s.to_bytes(4, "little") * 2
        t.fare = fare
        t.entry = entry
        for k, v in fields.items():
            setattr(t, k, v)
        out.append(t)
    return out


def batch(dev, key, seqs, **kw):
    return wire.encode_batch(dev, key, make_taps(seqs, **kw))


def auth_headers(dev, key, method, path, body=b""):
    return {"X-YKT-Auth": wire.sign_request(dev, key, method, path, body)}


def bulk_devices(eng, n, entry=5, prefix="sim"):
    """Register n devices in one transaction (benchmarks). -> [(id, key)]."""
    import secrets
    from sqlalchemy import select
    from ykt_tools.backoffice import schema as S
    from ykt_tools.backoffice.db import now
    rows = [dict(name="%s-%05d" % (prefix, i), kind="validator", entry=entry, key=secrets.token_bytes(32),
                 active=True, created=now(), seq_contig=0, seq_max=0, last_nonce=0) for i in range(n)]
    with eng.begin() as c:
        c.execute(S.devices.insert(), rows)
        got = {r.name: r.id for r in c.execute(select(S.devices.c.id, S.devices.c.name)
                                               .where(S.devices.c.name.like(prefix + "-%")))}
    return [(got[r["name"]], r["key"]) for r in rows]
