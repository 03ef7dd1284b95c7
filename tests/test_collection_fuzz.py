"""Fuzzing the acquirer's return file parser (backoffice/collect.py): any
bytes are refused with OpError (a reason, 4xx) or parse into records that
satisfy the format; a valid file stays valid through parse, and a changed
byte in it is caught by the seal."""
import hashlib
import os

import pytest
from hypothesis import given, settings, strategies as st

import conftest  # noqa: F401

from ykt_tools.backoffice import collect
from ykt_tools.backoffice.errors import OpError

EXAMPLES = int(os.environ.get("YKT_FUZZ_EXAMPLES", "300"))


def _sealed(lines):
    body = "".join(x + "\n" for x in lines)
    return body + "S,%s\n" % hashlib.sha256(body.encode()).hexdigest()


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes(data):
    try:
        acq, cid, recs = collect.parse_return(data)
    except OpError as e:
        assert 400 <= e.status < 500 and str(e)
        return
    assert cid >= 0 and all(st_ in ("paid", "returned") for _i, st_, _a, _c in recs)


recs = st.lists(st.tuples(st.integers(0, 10 ** 9), st.sampled_from(["paid", "returned"]), st.integers(0, 10 ** 9),
                          st.sampled_from(["AM04", "AC04", "MD01", "MS03"])), max_size=20, unique_by=lambda r: r[0])


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None)
@given(recs, st.integers(0, 10 ** 6), st.integers(0, 400), st.integers(0, 255))
def test_valid_files_parse_and_any_changed_byte_is_caught(rs, cid, pos, val):
    lines = ["H,1,GXRCU,%d" % cid] + ["R,%d,%s,%d,%s" % (i, s, a, c if s == "returned" else "") for i, s, a, c in rs]
    lines.append("T,%d" % len(rs))
    text = _sealed(lines)
    acq, got_cid, got = collect.parse_return(text)
    assert acq == "GXRCU" and got_cid == cid
    assert got == [(i, s, a, c if s == "returned" else None) for i, s, a, c in rs]
    b = bytearray(text.encode())
    p = pos % len(b)
    if b[p] == val:
        return
    b[p] = val
    with pytest.raises(OpError):
        collect.parse_return(bytes(b))
