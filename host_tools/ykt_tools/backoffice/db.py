"""Storage: one SQLAlchemy Core engine for `sqlite:///file.db` (WAL, the
embedded default) or `postgresql+psycopg://...` (postgresql:// is accepted
too); alembic migrations run programmatically at start (db.open_db)."""
import datetime
import os
import secrets
import time

from sqlalchemy import create_engine, event, select

from ykt_tools.backoffice import PKG_DIR
from ykt_tools.backoffice import schema as S

SERVICE_TZ = datetime.timezone(datetime.timedelta(hours=8))  # China Standard Time
_PG_LOCK = 0x796B74  # advisory lock id: one migrator at a time across workers


def normalize_url(url):
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:  # a bare path means an SQLite file
        return "sqlite:///" + os.path.abspath(url)
    return url


def make_engine(url):
    url = normalize_url(url)
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                            pool_size=8, max_overflow=16)

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn, _rec):
            # WAL: readers never block the single writer. FULL: every commit
            # is fsynced before the ack goes out, so an acknowledged tap
            # survives a power cut of the server too; group commit makes
            # that one fsync per group. YKT_SQLITE_SYNC=NORMAL trades that
            # for speed (durable across process crashes only).
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            sync = os.environ.get("YKT_SQLITE_SYNC", "FULL").upper()
            cur.execute("PRAGMA synchronous=%s" % (sync if sync in ("FULL", "NORMAL", "EXTRA") else "FULL"))
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(eng, "connect")
        def _iso(dbapi_conn, _rec):
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)

        @event.listens_for(eng, "begin")
        def _begin(conn):
            # Writers take the write lock up front (BEGIN IMMEDIATE) so two
            # writers never fail upgrading a read snapshot; readers (see
            # readonly()) BEGIN deferred and never wait for the ingest writer.
            if conn.get_execution_options().get("ykt_readonly"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return eng
    eng = create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)
    return eng


def readonly(eng):
    """The engine for read-only work (shares the pool): on SQLite its
    transactions are deferred so reads never queue behind a writer."""
    ro = getattr(eng, "_ykt_ro", None)
    if ro is None:
        ro = eng.execution_options(ykt_readonly=True)
        try:
            eng._ykt_ro = ro
        except AttributeError:
            pass
    return ro


def is_sqlite(eng):
    return eng.dialect.name == "sqlite"


def migrate(eng, revision="head"):
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(PKG_DIR, "alembic"))
    with eng.begin() as conn:
        if not is_sqlite(eng):
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%d)" % _PG_LOCK)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def open_db(url, migrate_now=True):
    eng = make_engine(url)
    if migrate_now:
        migrate(eng)
        ensure_settings(eng)
    return eng


def ensure_settings(eng):
    """Server-wide secrets, generated once: the card token key (tokenizes an
    identity typed by an operator) and the export pseudonym key."""
    with eng.begin() as c:
        have = {r.k for r in c.execute(select(S.settings.c.k))}
        for k in ("token_key", "export_key"):
            if k not in have:
                ins = S.settings.insert().values(k=k, v=secrets.token_bytes(32))
                if is_sqlite(eng):
                    c.execute(ins.prefix_with("OR IGNORE"))
                else:
                    from sqlalchemy.dialects.postgresql import insert as pg_insert
                    c.execute(pg_insert(S.settings).values(k=k, v=secrets.token_bytes(32))
                              .on_conflict_do_nothing())


def setting(conn, k):
    return conn.execute(select(S.settings.c.v).where(S.settings.c.k == k)).scalar_one()


_clock = time.time


def set_clock(fn=None):
    """Use fn() -> unix seconds as the server's clock (the simulator passes
    its virtual clock so replies, receipt times and settlement days follow
    simulated time); None restores the wall clock."""
    global _clock
    _clock = fn or time.time


def now():
    return int(_clock())


_DAY_CACHE = {}


def service_day(t):
    """YYYYMMDD of unix time t in the service time zone (UTC+8)."""
    d = (int(t) + 8 * 3600) // 86400
    v = _DAY_CACHE.get(d)
    if v is None:
        dt = datetime.datetime.fromtimestamp(d * 86400, datetime.timezone.utc)
        v = dt.year * 10000 + dt.month * 100 + dt.day
        if len(_DAY_CACHE) > 4096:
            _DAY_CACHE.clear()
        _DAY_CACHE[d] = v
    return v


def day_bounds(day):
    """Unix [start, end) of service day YYYYMMDD."""
    dt = datetime.datetime(day // 10000, day // 100 % 100, day % 100, tzinfo=SERVICE_TZ)
    s = int(dt.timestamp())
    return s, s + 86400
