"""Scale-out: two back-office worker processes (two uvicorn processes on two
ports) share one database (PostgreSQL; SQLite, where their writers take
turns through a lock file); devices upload through both, with
every batch also retried through the other worker at the same time. Nothing
is stored twice, nothing is lost, and each tap is counted new exactly once."""
import asyncio
import os

import pytest

import conftest  # noqa: F401

from ykt_tools.backoffice import testing  # noqa: E402
from ykt.net import wire  # noqa: E402


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "postgresql":
        conftest.need_postgres()
    with testing.temp_db(request.param, tmp_path) as url:
        yield url


def test_two_workers_one_database_no_duplicates(db_url):
    import httpx
    from sqlalchemy import func, select
    from ykt_tools.backoffice import schema as S
    from ykt_tools.backoffice.db import open_db
    from ykt_tools.backoffice.procs import start_workers

    eng = open_db(db_url)
    devs = testing.bulk_devices(eng, 12)
    workers = start_workers(db_url, 2, env={"YKT_RSA_BITS": "2048"})
    assert workers[0].port != workers[1].port
    try:
        async def device(i, did, key, client):
            new = 0
            for b in range(5):
                seqs = range(1 + b * 40, 41 + b * 40)
                first = wire.encode_batch(did, key, testing.make_taps(seqs, t0=1795660000 + b * 5000))
                retry = wire.encode_batch(did, key, testing.make_taps(seqs, t0=1795660000 + b * 5000),
                                          flags=wire.BF_RETRY)
                # the same taps race through both workers
                ra, rb = await asyncio.gather(
                    client.post(workers[(i + b) % 2].url + "/v1/taps", content=first),
                    client.post(workers[(i + b + 1) % 2].url + "/v1/taps", content=retry))
                for r, body in ((ra, first), (rb, retry)):
                    assert r.status_code == 200, r.text
                    st, ack, _ = wire.decode_ack(r.content, key, did, body[20:28])
                    assert st == wire.RS_OK and ack == seqs[-1]
                    new += int(r.headers["x-ykt-new"])
            return new

        async def main():
            async with httpx.AsyncClient(timeout=30) as client:
                return await asyncio.gather(*(device(i, d, k, client) for i, (d, k) in enumerate(devs)))

        news = asyncio.run(main())
    finally:
        for w in workers:
            w.stop()
    assert news == [200] * len(devs)                    # each tap counted new exactly once
    with eng.connect() as c:
        assert c.execute(select(func.count()).select_from(S.taps)).scalar_one() == 200 * len(devs)
        dup = c.execute(select(S.taps.c.device, S.taps.c.seq, func.count()).group_by(S.taps.c.device, S.taps.c.seq)
                        .having(func.count() > 1)).all()
        assert dup == []
        acked = c.execute(select(S.devices.c.seq_contig)).scalars().all()
    assert acked == [200] * len(devs)
    eng.dispose()
