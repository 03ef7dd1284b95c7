"""Batch ingest with group commit. Request handlers authenticate and decode a
batch (ykt.net.wire) on the event loop, then hand the rows to this worker's one
writer thread, which commits every batch waiting at that moment in ONE
transaction (bulk INSERT .. ON CONFLICT DO NOTHING on SQLite; on PostgreSQL a
binary COPY straight into taps for rows above the device's seq_max, and COPY
into a staging table + INSERT .. SELECT .. ON CONFLICT DO NOTHING for the
rest) and only then resolves each request: the reply acknowledges only what is
committed.

Per device the back office keeps seq_max, the highest seq stored, and
seq_contig: every seq <= it is stored or was
skipped by the device (a batch starts at the device's upload cursor, so seqs
below its first seq that never arrived are recorded in seq_gaps and
reported). A batch whose first seq is more than MAX_AHEAD past seq_contig is
refused whole. (device, nonce) is unique: a replayed request stores nothing.

on_new (None by default, at no cost): a callback(device, seqs) the writer calls
after each commit with the seqs that batch stored as new, i.e. what the reply
acknowledges as new (the simulator counts a tap acknowledged as new twice as a
duplicate: docs/scenarios.md)."""
import asyncio
import functools
import os
import queue
import struct
import threading
import time
from itertools import chain

try:
    import fcntl
except ImportError:       # not POSIX: SQLite's own busy handler alone
    fcntl = None

from ykt.taprec import F_TIME_UNTRUSTED
from ykt_tools.backoffice.db import is_sqlite, now, service_day

_TZ = 8 * 3600               # service time zone offset (db.service_day)
MAX_AHEAD = 1_000_000       # > 30 days of a busy device between uploads, << 2^32
GROUP_ROWS = 50_000         # rows per transaction at most
NONCE_KEEP_S = 14 * 86400   # replay guard window (older nonces are pruned)

COLS = ("device", "seq", "day", "t", "token", "outcome", "reason", "fare", "concession", "flags",
        "entry", "stop", "direction", "stage", "dl_ver", "fare_ver", "cat_ver", "shift", "rx")

OK, REPLAY, AHEAD, GONE = "ok", "replay", "ahead", "gone"


class Result:
    __slots__ = ("status", "ack", "new", "dups", "gap")

    def __init__(self, status, ack=0, new=0, dups=0, gap=None):
        self.status = status
        self.ack = ack
        self.new = new
        self.dups = dups
        self.gap = gap


class _Item:
    __slots__ = ("dev", "nonce", "rows", "first", "last", "res", "fut", "loop", "ev", "base", "new_seqs")

    def __init__(self, dev, nonce, rows):
        self.dev = dev
        self.nonce = nonce
        self.rows = rows
        self.first = rows[0][1]
        self.last = rows[-1][1]
        self.res = None
        self.fut = None
        self.loop = None
        self.ev = None
        self.base = 0
        self.new_seqs = None


def rows_from_fields(dev, recs, rx):
    """ykt.net.wire.decode_fields tuples -> row tuples in COLS order. The day is
    the UTC+8 service day of the tap; for untrusted device time, of the
    receipt. Hot path: one tuple per tap, the day computed once per day."""
    rday = service_day(rx)
    out = []
    add = out.append
    lo = hi = 0
    day = rday
    for (seq, t, tok, o, rs, f, c, fl, e, s, d, st, dv, fv, cv, sh) in recs:
        if fl & F_TIME_UNTRUSTED:
            add((dev, seq, rday, t, tok, o, rs, f, c, fl, e, s, d, st, dv, fv, cv, sh, rx))
            continue
        if not lo <= t < hi:
            day = service_day(t)
            lo = (t + _TZ) // 86400 * 86400 - _TZ
            hi = lo + 86400
        add((dev, seq, day, t, tok, o, rs, f, c, fl, e, s, d, st, dv, fv, cv, sh, rx))
    return out


def rows_from_taps(dev, taps, rx):
    """taprec.Tap list -> row tuples (tools that hold Tap objects)."""
    return rows_from_fields(dev, [(t.seq, t.time, bytes(t.token), t.outcome, t.reason, t.fare, t.concession,
                                   t.flags, t.entry, t.stop, t.direction, t.stage, t.dl_ver, t.fare_ver,
                                   t.cat_ver, t.shift) for t in taps], rx)


# PostgreSQL binary COPY: per field a length word and the value, big-endian;
# every column has a fixed size (token 8 bytes), so one row is one pack.
_PG_SIG = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_PG_ROW = struct.Struct(">h" + "ii" + "iq" + "ii" + "iq" + "i8s" + "ii" * 9 + "iq" + "ii" * 2 + "iq" + "iq")


def pg_copy_binary(rows):
    """Row tuples (COLS order) -> one COPY ... (FORMAT BINARY) payload."""
    pk = _PG_ROW.pack
    parts = [_PG_SIG]
    add = parts.append
    for (dev, seq, day, t, tok, o, rs, f, c, fl, e, s, d, st, dv, fv, cv, sh, rx) in rows:
        if len(tok) != 8:
            raise ValueError("token of %d bytes" % len(tok))
        add(pk(19, 4, dev, 8, seq, 4, day, 8, t, 8, tok, 4, o, 4, rs, 4, f, 4, c, 4, fl, 4, e, 4, s,
               4, d, 4, st, 8, dv, 4, fv, 4, cv, 8, sh, 8, rx))
    add(b"\xff\xff")
    return b"".join(parts)


class Ingestor:
    """One per worker process: a writer thread owning one raw DB connection."""

    def __init__(self, eng):
        self.eng = eng
        self.sqlite = is_sqlite(eng)
        self.q = queue.SimpleQueue()
        self.stats = {"batches": 0, "taps_new": 0, "taps_dup": 0, "replays": 0, "groups": 0,
                      "commit_s": 0.0}
        self._stop = False
        self.on_new = None
        self.stage_all = False
        self._lock = self._writer_lock() if self.sqlite else None
        self._th = threading.Thread(target=self._run, name="ykt-ingest", daemon=True)
        self._th.start()

    # -- producer side -----------------------------------------------------------

    async def submit(self, dev, nonce, rows):
        it = _Item(dev, nonce, rows)
        it.loop = asyncio.get_running_loop()
        it.fut = it.loop.create_future()
        self.q.put(it)
        return await it.fut

    def submit_sync(self, dev, nonce, rows):
        it = _Item(dev, nonce, rows)
        it.ev = threading.Event()
        self.q.put(it)
        it.ev.wait()
        if isinstance(it.res, BaseException):
            raise it.res
        return it.res

    def close(self):
        self._stop = True
        self.q.put(None)
        self._th.join(timeout=10)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # -- writer thread --------------------------------------------------------------

    def _writer_lock(self):
        """SQLite: N worker processes on one file take turns through a lock
        file. flock wakes the next writer the moment the lock is released,
        where SQLite's busy handler polls with sleeps of up to 100 ms."""
        db = self.eng.url.database
        if not db or db == ":memory:" or fcntl is None:
            return None
        return os.open(db + ".ingest-lock", os.O_RDWR | os.O_CREAT, 0o600)

    def _connect(self):
        raw = self.eng.raw_connection()
        dbc = raw.driver_connection
        if not self.sqlite:
            dbc.autocommit = False
            dbc.execute("CREATE TEMP TABLE IF NOT EXISTS tap_stage (LIKE taps) ON COMMIT DELETE ROWS")
            dbc.commit()
        return raw, dbc

    def _run(self):
        raw = dbc = None
        last_prune = 0.0
        try:
            while not self._stop:
                it = self.q.get()
                if it is None:
                    break
                group = [it]
                n = len(it.rows)
                while n < GROUP_ROWS:
                    try:
                        nx = self.q.get_nowait()
                    except queue.Empty:
                        break
                    if nx is None:
                        self._stop = True
                        break
                    group.append(nx)
                    n += len(nx.rows)
                t0 = time.perf_counter()
                try:
                    for attempt in range(5):
                        try:
                            if dbc is None:
                                raw, dbc = self._connect()
                            if self.sqlite:
                                self._commit_sqlite(dbc, group)
                            else:
                                self._commit_pg(dbc, group)
                            break
                        except Exception as e:  # lock timeout, deadlock, lost connection
                            raw, dbc = _discard(raw, dbc, self.sqlite)
                            for g in group:
                                g.res = None
                            if type(e).__name__ == "UniqueViolation" and not self.stage_all:
                                # a stored seq above seq_max (rows written
                                # outside ingest): from now on every row
                                # goes through ON CONFLICT
                                self.stage_all = True
                                continue
                            if attempt == 4 or not _retryable(e):
                                raise
                            time.sleep(0.05 * (attempt + 1))
                except Exception as e:
                    for g in group:
                        g.res = e
                self.stats["commit_s"] += time.perf_counter() - t0
                self._resolve(group)
                if time.monotonic() - last_prune > 600:
                    last_prune = time.monotonic()
                    try:
                        prune_nonces(self.eng)
                    except Exception:
                        pass   # best effort; retried in ten minutes
        finally:
            _discard(raw, dbc, self.sqlite)

    def _resolve(self, group):
        for g in group:
            if g.ev is not None:
                g.ev.set()
            elif isinstance(g.res, BaseException):
                g.loop.call_soon_threadsafe(_set_exc, g.fut, g.res)
            else:
                g.loop.call_soon_threadsafe(_set_res, g.fut, g.res)

    def _plan(self, group, devstate, fresh_nonce):
        """Decide each item's fate given device states; returns items to store."""
        store = []
        seen = set()
        for g in group:
            st = devstate.get(g.dev)
            if st is None:
                g.res = Result(GONE)
                continue
            contig, smax = st
            key = (g.dev, g.nonce)
            if key in seen or not fresh_nonce(g):
                g.res = Result(REPLAY, ack=contig)
                self.stats["replays"] += 1
                continue
            seen.add(key)
            if g.first > contig + MAX_AHEAD:
                g.res = Result(AHEAD, ack=contig)
                continue
            g.base = smax     # no stored seq above this: rows past it are new
            gap = None
            if g.first > contig + 1:
                gap = (contig + 1, g.first - 1)
            if g.last > contig:
                contig = g.last
            devstate[g.dev] = (contig, max(smax, g.last))
            g.res = Result(OK, ack=contig, gap=gap)
            store.append(g)
        return store

    def _commit_sqlite(self, c, group):
        if self._lock is None:
            return self._commit_sqlite_locked(c, group)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            return self._commit_sqlite_locked(c, group)
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def _commit_sqlite_locked(self, c, group):
        t = now()
        c.execute("BEGIN IMMEDIATE")
        devs = sorted({g.dev for g in group})
        devstate = {}
        for d in devs:
            r = c.execute("SELECT seq_contig, seq_max FROM devices WHERE id=? AND active", (d,)).fetchone()
            if r:
                devstate[d] = (r[0], r[1])

        def fresh(g):
            cur = c.execute("INSERT OR IGNORE INTO nonces (device, nonce, at) VALUES (?,?,?)",
                            (g.dev, g.nonce, t))
            return cur.rowcount == 1

        store = self._plan(group, devstate, fresh)
        for g in store:
            # One multi-row statement per batch: one sqlite3_step, so the
            # GIL is released once per batch rather than once per row
            # (per-row handoffs starve this thread behind the event loop).
            if self.on_new is None:
                before = c.total_changes
                c.execute(_sqlite_insert(len(g.rows)), list(chain.from_iterable(g.rows)))
                g.res.new = c.total_changes - before
            else:
                g.new_seqs = [r[0] for r in c.execute(_sqlite_insert(len(g.rows)) + " RETURNING seq",
                                                      list(chain.from_iterable(g.rows))).fetchall()]
                g.res.new = len(g.new_seqs)
            g.res.dups = len(g.rows) - g.res.new
            if g.res.gap:
                c.execute("INSERT OR IGNORE INTO seq_gaps (device, first, last, at) VALUES (?,?,?,?)",
                          (g.dev, g.res.gap[0], g.res.gap[1], t))
        for d in {g.dev for g in store}:
            contig, smax = devstate[d]
            c.execute("UPDATE devices SET seq_contig=?, seq_max=?, last_seen=? WHERE id=?",
                      (contig, smax, t, d))
        c.execute("COMMIT")
        self._count(group)
        self._report_new(store)

    def _commit_pg(self, c, group):
        t = now()
        devs = sorted({g.dev for g in group})
        devstate = {}
        # lock device rows in id order: two workers never deadlock
        for r in c.execute("SELECT id, seq_contig, seq_max FROM devices WHERE id = ANY(%s) AND active "
                           "ORDER BY id FOR UPDATE", (devs,)):
            devstate[r[0]] = (r[1], r[2])
        cand = [g for g in group if g.dev in devstate]
        fresh_set = set()
        if cand:
            cur = c.execute(
                "INSERT INTO nonces (device, nonce, at) SELECT * FROM unnest(%s::int[], %s::bytea[], "
                "%s::bigint[]) ON CONFLICT DO NOTHING RETURNING device, nonce",
                ([g.dev for g in cand], [g.nonce for g in cand], [t] * len(cand)))
            fresh_set = {(r[0], bytes(r[1])) for r in cur.fetchall()}
        claimed = set()

        def fresh(g):
            k = (g.dev, g.nonce)
            if k in fresh_set and k not in claimed:
                claimed.add(k)
                return True
            return False

        store = self._plan(group, devstate, fresh)
        if store:
            # Rows above the device's highest stored seq cannot collide: they
            # are COPYed straight into taps. Only the rest (retries after a
            # lost ack) go through the staging table and ON CONFLICT.
            fresh_rows, maybe = [], []
            direct = not self.stage_all
            for g in store:
                if not direct:
                    maybe += g.rows
                elif g.first > g.base:
                    fresh_rows += g.rows
                    g.res.new = len(g.rows)
                else:
                    for r in g.rows:
                        (fresh_rows if r[1] > g.base else maybe).append(r)
            with c.cursor() as cur:
                if fresh_rows:
                    with cur.copy(_PG_COPY % "taps") as cp:
                        cp.write(pg_copy_binary(fresh_rows))
                newset = set()
                if maybe:
                    with cur.copy(_PG_COPY % "tap_stage") as cp:
                        cp.write(pg_copy_binary(maybe))
                    cur.execute("INSERT INTO taps SELECT * FROM tap_stage ON CONFLICT DO NOTHING "
                                "RETURNING device, seq")
                    newset = set(cur.fetchall())
            for g in store:
                if direct and g.first > g.base:
                    g.res.dups = 0
                    if self.on_new is not None:
                        g.new_seqs = [r[1] for r in g.rows]
                else:
                    new = []
                    for r in g.rows:
                        if direct and r[1] > g.base:
                            new.append(r[1])
                        elif (r[0], r[1]) in newset:
                            newset.discard((r[0], r[1]))    # counted once if sent twice
                            new.append(r[1])
                    g.new_seqs = new
                    g.res.new = len(new)
                    g.res.dups = len(g.rows) - len(new)
                if g.res.gap:
                    c.execute("INSERT INTO seq_gaps (device, first, last, at) VALUES (%s,%s,%s,%s) "
                              "ON CONFLICT DO NOTHING", (g.dev, g.res.gap[0], g.res.gap[1], t))
            for d in sorted({g.dev for g in store}):
                contig, smax = devstate[d]
                c.execute("UPDATE devices SET seq_contig=%s, seq_max=%s, last_seen=%s WHERE id=%s",
                          (contig, smax, t, d))
        c.commit()
        self._count(group)
        self._report_new(store)

    def _report_new(self, store):
        if self.on_new is not None:
            for g in store:
                self.on_new(g.dev, g.new_seqs or ())

    def _count(self, group):
        s = self.stats
        s["groups"] += 1
        for g in group:
            if g.res.status == OK:
                s["batches"] += 1
                s["taps_new"] += g.res.new
                s["taps_dup"] += g.res.dups


_PG_COPY = "COPY %%s (%s) FROM STDIN (FORMAT BINARY)" % ",".join(COLS)


@functools.lru_cache(maxsize=300)
def _sqlite_insert(n):
    row = "(" + ",".join("?" * len(COLS)) + ")"
    return "INSERT INTO taps (%s) VALUES %s ON CONFLICT DO NOTHING" % (",".join(COLS), ",".join([row] * n))


def _retryable(e):
    name = type(e).__name__
    return name in ("SerializationFailure", "DeadlockDetected", "OperationalError", "InterfaceError",
                    "AdminShutdown", "ConnectionFailure")


def _discard(raw, dbc, sqlite):
    """Roll back and close a writer connection after a failure; the next
    attempt opens a fresh one (the server may have restarted)."""
    if raw is not None:
        try:
            if sqlite:
                if dbc.in_transaction:
                    dbc.execute("ROLLBACK")
            else:
                dbc.rollback()
        except Exception:
            pass
        try:
            raw.invalidate()
        except Exception:
            pass
    return None, None


def _set_res(fut, v):
    if not fut.done():
        fut.set_result(v)


def _set_exc(fut, e):
    if not fut.done():
        fut.set_exception(e)


def prune_nonces(eng, keep_s=NONCE_KEEP_S):
    from sqlalchemy import delete
    from ykt_tools.backoffice import schema as S
    with eng.begin() as c:
        return c.execute(delete(S.nonces).where(S.nonces.c.at < now() - keep_s)).rowcount
