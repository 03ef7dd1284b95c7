"""The province-scale deny list (format 3, docs/denylist.md "Registry filter").

Guangxi cards are denied through a filter that is exact over the card
registry: records keep only k + rw bits of a token (k bucket bits, rw record
bits), and every registered card that shares an entry's bits gets that entry
"extension" bits (4, 16 or all remaining) that tell the two apart. Cards of
other provinces are not in the registry, so they go in an exact section.

Tokens are keyed hashes (uniform 64-bit values), so a token's top bits are
already its fingerprint: no second hash is needed, and the builder can work
on numpy arrays of 50M registry tokens.

plan()      which entries need which extension, given the registry;
build()     the image (yktsrv.dlbuild.encode_sections);
check()     decode the image and look up the WHOLE registry and every denied
            card against it: false refusals and false accepts, by content.
"""
import math

import numpy as np

from ykt.rules import dlformat as F
from yktsrv import dlbuild

SIDE_BITS_EST = 14  # Rice gap + kind + payload: the builder's estimate per side record


class FilterError(ValueError):
    pass


def as_u64(toks):
    return np.asarray(toks, dtype=np.uint64)


# Below this many Guangxi entries the section is exact (rw = 64 - k): the
# exact image is small (~6.1 B/entry: 1.2 MB at 200k, within a 3 MiB slot
# beside the foreign section) and a card the registry does not know yet is
# never refused. The filter pays off for province-scale lists.
FILTER_MIN_ENTRIES = 200000


def choose_rw(n, registry, min_entries=None):
    """Record bits minimising the image: rw bits per entry plus the side
    records the registry's collisions need (an entry collides with
    probability 1 - exp(-R / 2^(k+rw))); exact below FILTER_MIN_ENTRIES."""
    k = dlbuild.choose_k(n)
    if not n or registry <= n or n < (FILTER_MIN_ENTRIES if min_entries is None else min_entries):
        return 64 - k
    best = None
    for rw in range(1, 64 - k + 1):
        lam = registry / float(1 << (k + rw))
        cost = rw + (1.0 - math.exp(-lam)) * SIDE_BITS_EST
        if best is None or cost < best[0]:
            best = (cost, rw)
    return best[1]


def rice_param(n, side_records):
    """Rice parameter for the side gaps: ~log2(mean gap * ln 2)."""
    if not side_records:
        return 0
    mean = n / float(side_records)
    return max(0, min(15, int(round(math.log2(max(mean * 0.69, 1.0))))))


def plan(denied, registry, rw):
    """Extension kind per denied entry (None or a side kind), so that no
    registry card and no other denied card with the entry's k+rw bits
    matches it. denied: sorted unique uint64 array; registry: uint64 array
    (may include the denied cards)."""
    n = len(denied)
    k = dlbuild.choose_k(n)
    sh = np.uint64(64 - k - rw)
    dp = denied >> sh
    ext = [None] * n
    if not n:
        return ext
    rp = registry >> sh
    idx = np.searchsorted(dp, rp)
    idx[idx >= n] = n - 1
    hit = dp[idx] == rp
    cand = registry[hit]
    cand = cand[~np.isin(cand, denied)]
    # denied cards sharing their bits with another denied card
    dup = np.nonzero(dp[1:] == dp[:-1])[0]
    others = np.concatenate([cand, denied[dup], denied[dup + 1]])
    toks = denied.tolist()
    first = np.searchsorted(dp, others >> sh).tolist()
    for t, i in zip(others.tolist(), first):
        pre = t >> (64 - k - rw)
        while i < n and toks[i] >> (64 - k - rw) == pre:
            if toks[i] != t:
                ext[i] = dlbuild.ext_kind(ext[i], toks[i], t, k, rw)
            i += 1
    return ext


def build(denied, stats, foreign, fstats, registry, version, created=0, rw=None, min_entries=None):
    """A format-3 image as a list of 4096-byte blocks, and what was chosen."""
    denied = as_u64(denied)
    n = len(denied)
    if rw is None:
        rw = choose_rw(n, len(registry), min_entries)
    ext = plan(denied, as_u64(registry), rw)
    nside = sum(1 for x in ext if x is not None) + sum(1 for s in stats if s == F.ST_UNPAID)
    rp = rice_param(n, nside)
    blocks = dlbuild.encode_sections((denied.tolist(), list(stats), ext),
                                     (list(map(int, foreign)), list(fstats)), version, created, rw=rw, rp=rp)
    return blocks, {"k": dlbuild.choose_k(n), "rw": rw, "rp": rp,
                    "extensions": sum(1 for x in ext if x is not None)}


def decode(image):
    """The Guangxi section as arrays: prefix (top k+rw bits), status,
    extension kind (-1 none) and payload; and the foreign section as a dict."""
    pre, st, kind, pay = [], [], [], []
    bits = 64
    for v, bits, s, exts in dlbuild.iter_section(image, 0):
        pre.append(v)
        st.append(s)
        if len(exts) > 1:
            raise FilterError("entry %x has %d extensions" % (v, len(exts)))
        kind.append(exts[0][0] if exts else -1)
        pay.append(exts[0][1] if exts else 0)
    foreign = {v: s for v, _b, s, _x in dlbuild.iter_section(image, 1)}
    return (np.array(pre, dtype=np.uint64), np.array(st, dtype=np.uint8), kind, pay, bits), foreign


def check(image, registry, denied, stats, foreign=(), fstats=()):
    """Look up every registry card and every denied card in the image, by
    the device's rule: prefix match, then the extension if there is one.
    Returns {false_refusals, false_accepts, wrong_status, registry_checked}."""
    (pre, st, kind, pay, bits), fx = decode(image)
    hd = F.parse_header(image)
    k, rw = F.sections(hd)[0][0], F.sections(hd)[0][3]
    sh = np.uint64(64 - bits)
    registry = as_u64(registry)
    denied = as_u64(denied)
    dstat = dict(zip(denied.tolist(), [int(s) for s in stats]))
    n = len(pre)
    res = {"false_refusals": 0, "false_accepts": 0, "wrong_status": 0,
           "registry_checked": int(len(registry)), "denied_checked": int(len(denied))}
    if n:
        rp_ = registry >> sh
        idx = np.searchsorted(pre, rp_)
        idx[idx >= n] = n - 1
        hit = pre[idx] == rp_
        # registry cards whose bits match an entry: decide each by the rule
        todo = np.concatenate([registry[hit], denied])
        first = np.searchsorted(pre, todo >> sh).tolist()
        plist = pre.tolist()
        seen = set()
        for t, i in zip(todo.tolist(), first):
            if t in seen:
                continue
            seen.add(t)
            got = 0
            p = t >> (64 - bits)
            while i < n and plist[i] == p:
                kd = kind[i]
                if kd < 0 or dlbuild.ext_payload(t, kd, k, rw) == pay[i]:
                    got = int(st[i])
                    break
                i += 1
            want = dstat.get(t, 0)
            if got and not want:
                res["false_refusals"] += 1
            elif want and not got:
                res["false_accepts"] += 1
            elif got != want:
                res["wrong_status"] += 1
    else:
        res["false_accepts"] = len(denied)
    for t, s in zip(map(int, foreign), fstats):
        if fx.get(t) != s:
            res["false_accepts"] += 1
    return res
