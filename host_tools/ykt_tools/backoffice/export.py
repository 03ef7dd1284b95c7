"""Exports of taps and settlements as CSV or Parquet. Pseudonymous by
default: rows carry the keyed card token only (never an identity; the back
office never stores one). rekey=True replaces each token by
HMAC(export_key, token)[:8], so a recipient cannot join the export against
deny lists or other exports."""
import csv
import hashlib
import hmac
import io

from sqlalchemy import select

from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.db import readonly, setting

TAP_COLS = ("device", "seq", "day", "t", "token", "outcome", "reason", "fare", "concession", "flags",
            "entry", "stop", "direction", "stage", "dl_ver", "fare_ver", "cat_ver", "rx", "shift")
SET_COLS = ("day", "token", "taps", "provisional", "amount", "fare_ver", "settled_at")


def _rows(eng, what, day_from, day_to, rekey):
    tbl, cols = (S.taps, TAP_COLS) if what == "taps" else (S.settlements, SET_COLS)
    with readonly(eng).connect() as c:
        k = setting(c, "export_key") if rekey else None
        q = (select(*[tbl.c[n] for n in cols]).where(tbl.c.day >= day_from, tbl.c.day <= day_to)
             .order_by(*[tbl.c[n] for n in (("day", "device", "seq") if what == "taps" else ("day", "token"))]))
        for r in c.execution_options(yield_per=10000).execute(q):
            r = list(r)
            tok = bytes(r[cols.index("token")])
            if k is not None:
                tok = hmac.new(k, tok, hashlib.sha256).digest()[:8]
            r[cols.index("token")] = tok.hex()
            yield r


def export(eng, what, fmt, out, day_from=0, day_to=99991231, rekey=False):
    """Write to the binary file object `out`; returns the row count."""
    if what not in ("taps", "settlements") or fmt not in ("csv", "parquet"):
        raise ValueError("what: taps|settlements, fmt: csv|parquet")
    cols = TAP_COLS if what == "taps" else SET_COLS
    rows = _rows(eng, what, day_from, day_to, rekey)
    n = 0
    if fmt == "csv":
        txt = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        w = csv.writer(txt)
        w.writerow(cols)
        for r in rows:
            w.writerow(r)
            n += 1
        txt.flush()
        txt.detach()
        return n
    import pyarrow as pa
    import pyarrow.parquet as pq
    types = {c: (pa.string() if c == "token" else pa.int64()) for c in cols}
    schema = pa.schema([(c, types[c]) for c in cols])
    w = pq.ParquetWriter(out, schema)
    chunk = []
    for r in rows:
        chunk.append(r)
        n += 1
        if len(chunk) >= 50000:
            w.write_table(pa.Table.from_pylist([dict(zip(cols, x)) for x in chunk], schema=schema))
            chunk = []
    if chunk or n == 0:
        w.write_table(pa.Table.from_pylist([dict(zip(cols, x)) for x in chunk], schema=schema))
    w.close()
    return n
