"""Deny-list builder (CPython): card status export (CSV) -> image / delta.

The formats come from the firmware (ykt.rules.dlformat) and its portable host
half (yktsrv.dlbuild: the image encoder and decoder, and the read-only block
devices a host looks an image up through), tokens from ykt.sec.token, so the
back office and the device cannot disagree. This module adds what only a host
needs: CSV input, wall-clock defaults, size statistics.

CSV: a header row, then one row per card. Columns (case-insensitive):
  token    16 hex digits: the keyed card token, or
  card_id  32 hex digits (16-byte card identification code) and/or
  card_no  9-character card number; tokens are computed with the operator's
           token key (--key-file): card_token(key, card_id) and
           cardno_token(key, card_no) (--tokens picks which; default both)
  status   lost | suspended | cancelled | replaced (also canceled, 挂失, 挂起,
           注销, 补换); normal / active / 正常 means not denied
  since    optional: unix seconds or ISO 8601; when a token appears twice
           the row with the latest since wins (ties: the later row)
"""
import csv
import datetime
import hashlib
import sys

from ykt_tools import FIRMWARE, SIMHW

# ykt.compat takes its clock from the simulator's vclock on CPython, so both
# folders go on the path (as the other host tools that import firmware do).
for _p in (SIMHW, FIRMWARE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from yktsrv import dlbuild  # noqa: E402
from ykt.rules import dlformat as F
from ykt.sec import token as T

STATUS_WORDS = {
    "lost": F.ST_LOST, "挂失": F.ST_LOST,
    "suspended": F.ST_SUSPENDED, "挂起": F.ST_SUSPENDED,
    "cancelled": F.ST_CANCELLED, "canceled": F.ST_CANCELLED, "注销": F.ST_CANCELLED,
    "replaced": F.ST_REPLACED, "补换": F.ST_REPLACED,
    "unpaid": F.ST_UNPAID, "欠费": F.ST_UNPAID,
    "normal": 0, "active": 0, "ok": 0, "正常": 0,
}


class InputError(ValueError):
    pass


def read_key(path):
    """Operator token key: a file holding hex (>= 32 digits) or raw bytes."""
    with open(path, "rb") as f:
        raw = f.read()
    txt = raw.strip()
    try:
        if len(txt) >= 32 and len(txt) % 2 == 0:
            return bytes.fromhex(txt.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        pass
    if len(raw) < 16:
        raise InputError("%s: token key must be >= 16 bytes (raw) or >= 32 hex digits" % path)
    return raw


def _since(v, where):
    v = (v or "").strip()
    if not v:
        return 0
    if v.isdigit():
        return int(v)
    try:
        d = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise InputError("%s: bad since %r (unix seconds or ISO 8601)" % (where, v))
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return int(d.timestamp())


def load_status_csv(path, key=None, tokens="both"):
    """Returns (entries {token int: status 1..5}, summary dict)."""
    best = {}  # token -> (since, row number, status)
    summary = {"rows": 0, "normal": 0, "duplicates": 0, "identity_rows": 0}
    with open(path, newline="", encoding="utf-8-sig") as f:
        rd = csv.DictReader(f)
        if not rd.fieldnames:
            raise InputError("%s: empty file" % path)
        cols = {c.strip().lower(): c for c in rd.fieldnames}
        if "status" not in cols or not ({"token", "card_id", "card_no"} & set(cols)):
            raise InputError("%s: need a status column and token or card_id/card_no" % path)
        for n, row in enumerate(rd, start=2):
            where = "%s:%d" % (path, n)
            get = lambda c: (row.get(cols[c]) or "").strip() if c in cols else ""  # noqa: E731
            summary["rows"] += 1
            word = get("status").lower()
            if word not in STATUS_WORDS:
                raise InputError("%s: unknown status %r" % (where, get("status")))
            st = STATUS_WORDS[word]
            since = _since(get("since"), where)
            toks = []
            if get("token"):
                h = get("token")
                if len(h) != 16:
                    raise InputError("%s: token must be 16 hex digits" % where)
                try:
                    toks.append(int(h, 16))
                except ValueError:
                    raise InputError("%s: token is not hex" % where)
            cid, cno = get("card_id"), get("card_no")
            if cid or cno:
                if key is None:
                    raise InputError("%s: card identity given but no --key-file" % where)
                summary["identity_rows"] += 1
                if cid and tokens in ("both", "card"):
                    try:
                        b = bytes.fromhex(cid)
                    except ValueError:
                        raise InputError("%s: card_id is not hex" % where)
                    if len(b) != 16:
                        raise InputError("%s: card_id must be 16 bytes (32 hex digits)" % where)
                    toks.append(int.from_bytes(T.card_token(key, b), "big"))
                if cno and tokens in ("both", "cardno"):
                    b = cno.encode("ascii", "strict") if cno.isascii() else None
                    if b is None or len(b) != 9:
                        raise InputError("%s: card_no must be 9 ASCII characters" % where)
                    toks.append(int.from_bytes(T.cardno_token(key, b), "big"))
            if not toks:
                raise InputError("%s: row gives no token" % where)
            if st == 0:
                summary["normal"] += 1
            for t in toks:
                prev = best.get(t)
                if prev is not None:
                    summary["duplicates"] += 1
                    if prev[0] > since:
                        continue
                best[t] = (since, n, st)
    entries = {t: v[2] for t, v in best.items() if v[2]}
    summary["entries"] = len(entries)
    return entries, summary


def build_image(entries, version, created=None):
    """entries {token int: status} -> image bytes."""
    toks = sorted(entries)
    st = bytes(entries[t] for t in toks)
    if created is None:
        created = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    return dlbuild.encode_image(toks, st, version, created)


def load_registry(path):
    """Registry tokens, one per line: 16 hex digits (the keyed card token the
    devices compute); blank lines and # comments are skipped."""
    out = []
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            t = line.split("#", 1)[0].strip()
            if not t:
                continue
            if len(t) != 16:
                raise InputError("%s:%d: a token is 16 hex digits, got %r" % (path, no, t[:40]))
            try:
                out.append(int(t, 16))
            except ValueError:
                raise InputError("%s:%d: not hex: %r" % (path, no, t[:40]))
    return out


def build_filter_image(entries, registry, version, created=None, min_entries=None):
    """Format 3 over a registry (ykt_tools.build.denyfilter): denied cards the
    registry knows go in the Guangxi filter; the others in the exact section
    for other provinces AND in the filter, since a token alone does not say
    its region (a Guangxi card the registry has not heard of yet must still be
    refused). The whole registry is checked against the image: any false
    refusal or false accept is an error, and nothing is written."""
    from ykt_tools.build import denyfilter as DF

    if created is None:
        created = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    reg = set(registry)
    gx = sorted(entries)
    fx = sorted(t for t in entries if t not in reg)
    blocks, info = DF.build(gx, [entries[t] for t in gx], fx, [entries[t] for t in fx], sorted(reg | set(gx)),
                            version, created, min_entries=min_entries)
    img = b"".join(blocks)
    res = DF.check(img, sorted(reg | set(gx)), gx, [entries[t] for t in gx], fx, [entries[t] for t in fx])
    if res["false_refusals"] or res["false_accepts"] or res["wrong_status"]:
        raise InputError("the image fails the registry check: %r" % res)
    return img


def image_entries(image):
    if F.parse_header(image).fmt == F.FORMAT_SECTIONS:
        raise InputError("a format-3 image keeps only part of each Guangxi token: build deltas from the "
                         "status export (the back office does), not from the image")
    return dict(dlbuild.iter_entries(image))


def make_delta(base_image, new_entries, version, created=None):
    """Cumulative delta from the image's set to new_entries."""
    hd = F.parse_header(base_image)
    old = image_entries(base_image)
    ch = []
    for t, s in new_entries.items():
        if old.get(t) != s:
            ch.append((t, s))
    for t in old:
        if t not in new_entries:
            ch.append((t, 0))
    ch.sort()
    if len(ch) > F.DELTA_MAX:
        raise InputError("delta has %d changes > %d: build a new image instead" % (len(ch), F.DELTA_MAX))
    if version <= hd.version:
        raise InputError("delta version %d must be > image version %d" % (version, hd.version))
    if created is None:
        created = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    return F.pack_delta(hd.version, version, [(t.to_bytes(8, "big"), s) for t, s in ch], created)


def info_min_bits(n, status_bits):
    """log2 C(2^64, n) + status bits: the information-theoretic minimum."""
    import math

    if n == 0:
        return 0.0
    # log2(2^64 (2^64-1) ... (2^64-n+1) / n!); the falling-factorial term
    # sum log(1 - i/2^64) ~ -n^2/2^65 is ~1e-8 bits here but kept for form
    ln = -n * (n - 1) / 2.0 / 2.0 ** 64
    bits = (n * 64 * math.log(2) + ln - math.lgamma(n + 1)) / math.log(2)
    return bits + status_bits


def status_entropy_bits(counts):
    import math

    n = sum(counts)
    return -sum(c * math.log2(c / n) for c in counts if c) if n else 0.0


def describe(data):
    """Information about an image or delta file, verifying it in full."""
    if data[:4] == F.DELTA_MAGIC:
        base, ver, n, created = F.parse_delta(data)
        sc = [0] * 6
        for i in range(n):
            sc[data[F.DELTA_HDR + F.DELTA_REC * i + 8]] += 1
        return {"kind": "delta", "base_version": base, "version": ver, "entries": n, "created": created,
                "removes": sc[0], "sets": dict(zip(F.STATUS_NAMES[1:], sc[1:])), "bytes": len(data)}
    hd = F.parse_header(data)
    if hd.fmt == F.FORMAT_SECTIONS:
        return _describe3(data, hd)
    n = sum(1 for _ in dlbuild.iter_entries(data))  # full verification
    sb = status_entropy_bits(hd.status_counts)
    mn = info_min_bits(hd.count, sb)
    return {"kind": "image", "version": hd.version, "entries": hd.count, "created": hd.created,
            "statuses": dict(zip(F.STATUS_NAMES[1:], hd.status_counts)), "bytes": len(data),
            "blocks": hd.total_blocks(), "k": hd.k, "g": hd.g, "dir_blocks": hd.dir_blocks,
            "data_blocks": hd.data_blocks, "sha256": hd.sha256.hex(), "verified_entries": n,
            "bytes_per_entry": round(len(data) / n, 4) if n else None,
            "min_bytes_per_entry": round(mn / 8 / n, 4) if n else None,
            "ratio_to_min": round(len(data) * 8 / mn, 4) if n else None,
            "file_sha256": hashlib.sha256(data).hexdigest()}


def _describe3(data, hd):
    secs = F.sections(hd)
    n = [sum(1 for _ in dlbuild.iter_section(data, i)) for i in (0, 1)]  # full verification
    ext = sum(1 for _v, _b, _s, x in dlbuild.iter_section(data, 0) if x)
    gx = 4096 * (1 + secs[0][6] + secs[0][7])
    return {"kind": "image", "format": 3, "version": hd.version, "entries": hd.count, "created": hd.created,
            "statuses": dict(zip(F.STATUS_NAMES[1:], hd.status_counts)), "bytes": len(data),
            "blocks": hd.total_blocks(), "sha256": hd.sha256.hex(), "file_sha256": hashlib.sha256(data).hexdigest(),
            "guangxi": {"entries": n[0], "k": secs[0][0], "record_bits": secs[0][3], "extensions": ext,
                        "bytes": gx, "bytes_per_entry": round(gx / n[0], 4) if n[0] else None},
            "foreign": {"entries": n[1], "k": secs[1][0], "bytes": len(data) - gx}}
