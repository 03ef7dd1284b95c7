"""Back-office ingest: committed taps/s from many concurrent simulated devices (SQLite and PostgreSQL).

Each simulated device uploads its journal as ykt.net.wire batches over its own
keep-alive HTTP/1.1 connection, in order, waiting for each ack (as a device
does); a fraction of batches is re-sent with a fresh nonce (lost-ack
retries) and must be dropped as duplicates. The server runs as separate
worker process(es) on a fresh database; CPU seconds are the workers' own
(/proc), per 100,000 committed taps. The run checks that the database holds
exactly the unique taps sent."""
import asyncio
import os
import random
import tempfile
import time

from ykt_tools.backoffice import testing


def add_args(p):
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--taps", type=int, default=1000, help="taps per device (default 1000: 5 batches each)")
    p.add_argument("--batch", type=int, default=200, help="taps per batch (wire max 256)")
    p.add_argument("--dup-rate", type=float, default=0.05, help="fraction of batches re-sent")
    p.add_argument("--workers", type=int, default=2, help="SQLite: server worker processes (ports)")
    p.add_argument("--pg-workers", type=int, default=2, help="PostgreSQL: server worker processes (ports)")
    p.add_argument("--conns", type=int, default=0, help="concurrent connections (default: one per device)")
    p.add_argument("--backends", default="sqlite,postgresql")


async def _post(reader, writer, body, retries=3):
    writer.write(b"POST /v1/taps HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
    line = await reader.readline()
    status = int(line.split()[1])
    hdr = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        hdr[k.strip().lower()] = v.strip()
    data = await reader.readexactly(int(hdr.get("content-length", "0")))
    return status, hdr, data


def _plan(devs, ntaps, bsize, dup_rate, rng):
    from ykt.net import wire
    plans = []
    t0 = 1795660000
    for did, key in devs:
        reqs = []
        for s in range(1, ntaps + 1, bsize):
            seqs = range(s, min(s + bsize, ntaps + 1))
            taps = testing.make_taps(seqs, t0=t0 + s * 30, step=30, token=None)
            for t in taps:
                t.token[:] = rng.randbytes(8)
                t.stop = rng.randrange(40)
            reqs.append(wire.encode_batch(did, key, taps))
            if rng.random() < dup_rate:
                reqs.append(wire.encode_batch(did, key, taps, flags=wire.BF_RETRY))
        plans.append(reqs)
    return plans


async def _load(urls, plans, conns):
    lat = []
    stats = {"new": 0, "dup": 0, "errors": 0}
    q = asyncio.Queue()
    for p in plans:
        q.put_nowait(p)

    async def worker(i):
        host, port = urls[i % len(urls)].rsplit("//", 1)[1].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while not q.empty():
                reqs = q.get_nowait()
                for body in reqs:
                    t = time.perf_counter()
                    st, hdr, _ = await _post(reader, writer, body)
                    lat.append(time.perf_counter() - t)
                    if st != 200:
                        stats["errors"] += 1
                        continue
                    stats["new"] += int(hdr["x-ykt-new"])
                    stats["dup"] += int(hdr["x-ykt-dup"])
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(conns)))
    return time.perf_counter() - t0, lat, stats


def _pg_cpu(eng):
    """CPU seconds of this database's PostgreSQL backends (same host, /proc)."""
    from sqlalchemy import text
    with eng.connect() as c:
        pids = [r[0] for r in c.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                             "AND pid <> pg_backend_pid()"))]
    tot = 0.0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                parts = f.read().rsplit(")", 1)[1].split()
            tot += (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass
    return tot


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))] if xs else 0.0


def run_backend(kind, args):
    from ykt_tools.backoffice.db import open_db
    from ykt_tools.backoffice.procs import start_workers
    from sqlalchemy import func, select
    from ykt_tools.backoffice import schema as S
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="ykt-bench-") as tmp, testing.temp_db(kind, tmp) as url:
        eng = open_db(url)
        devs = testing.bulk_devices(eng, args.devices)
        plans = _plan(devs, args.taps, min(args.batch, 256), args.dup_rate, rng)
        n = args.workers if kind == "sqlite" else args.pg_workers
        workers = start_workers(url, max(1, n), env={"YKT_RSA_BITS": "2048"})
        try:
            cpu0 = sum(w.cpu_s() for w in workers)
            db0 = _pg_cpu(eng) if kind == "postgresql" else 0.0
            conns = args.conns or args.devices
            c0 = time.process_time()
            wall, lat, st = asyncio.run(_load([w.url for w in workers], plans, conns))
            client_cpu = time.process_time() - c0
            cpu = sum(w.cpu_s() for w in workers) - cpu0
            db_cpu = (_pg_cpu(eng) - db0) if kind == "postgresql" else 0.0
        finally:
            for w in workers:
                w.stop()
        with eng.connect() as c:
            stored = c.execute(select(func.count()).select_from(S.taps)).scalar_one()
        eng.dispose()
    expected = args.devices * args.taps
    return {"taps_per_s": round(st["new"] / wall), "duplicates_dropped": st["dup"],
            "p50_ms": round(_pct(lat, 50) * 1000, 2), "p99_ms": round(_pct(lat, 99) * 1000, 2),
            "cpu_s_per_100k": round(cpu * 100000.0 / max(1, st["new"]), 3),
            "batches": len(lat), "errors": st["errors"], "wall_s": round(wall, 2),
            "taps_committed": st["new"], "taps_stored": stored, "taps_expected": expected,
            "lossless": stored == expected == st["new"], "workers": len(workers), "connections": conns,
            "server_cpu_s": round(cpu, 2), "client_cpu_s": round(client_cpu, 2),
            "db_server_cpu_s_per_100k": round(db_cpu * 100000.0 / max(1, st["new"]), 3),
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def run(args):
    out = {"devices": args.devices, "taps_per_device": args.taps, "batch": args.batch,
           "dup_rate": args.dup_rate, "cores": os.cpu_count(), "goal_taps_per_s": 100000, "backends": {}}
    for kind in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if kind == "postgresql" and not testing.pg_available():
            out["backends"][kind] = {"skipped": "PostgreSQL not reachable at 127.0.0.1:5432"}
            continue
        out["backends"][kind] = run_backend(kind, args)
    from ykt_tools.backoffice.server import options
    o = options()
    out["http"], out["loop"] = o["http"], o["loop"]
    return out
