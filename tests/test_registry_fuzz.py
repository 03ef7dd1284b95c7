"""Fuzzing the card-registry import parser (backoffice/registry.parse): any
bytes are refused with one line naming the file (and, for a row, its line
and field) or parse into rows that satisfy the format; valid rows survive a
round trip, and a one-character change either still parses or is refused
naming the changed line."""
import os

import pytest
from hypothesis import given, settings, strategies as st

import conftest  # noqa: F401

from ykt_tools.backoffice import registry

EXAMPLES = int(os.environ.get("YKT_FUZZ_EXAMPLES", "300"))
HDR = ",".join(registry.COLUMNS)
_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _check(rows):
    for r in rows:
        assert len(r["card_id"]) == 16 and len(r["card_no"]) == 9 and len(r["citizen_id"]) == 18
        assert r["generation"] in (1, 2, 3) and r["issued"] <= r["expires"]
        assert r["status"] in registry.STATES
        assert r["replaced_by"] is None or (r["status"] == "replaced" and r["replaced_by"] != r["card_id"])
    assert len({r["card_id"] for r in rows}) == len(rows)


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=800))
def test_arbitrary_bytes(data):
    try:
        rows = registry.parse(data, "f.csv")
    except ValueError as e:
        assert str(e).startswith("f.csv") and "\n" not in str(e)
        return
    _check(rows)


def _citizen(body):
    return body + "10X98765432"[sum(int(body[i]) * _W[i] for i in range(17)) % 11]


row = st.builds(
    lambda cid, no, cit, gen, iss, span, stt: [cid.hex(), no, _citizen(cit), str(gen), str(iss), str(iss + span),
                                               stt, ""],
    st.binary(min_size=16, max_size=16), st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=9, max_size=9),
    st.text("0123456789", min_size=17, max_size=17), st.integers(1, 3),
    st.integers(2000, 2030).map(lambda y: y * 10000 + 101), st.sampled_from([0, 100000, 50000]),
    st.sampled_from(registry.STATES))


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(row, max_size=8, unique_by=lambda r: r[0]), st.data())
def test_valid_file_and_one_changed_character(rows, data):
    text = HDR + "\n" + "".join(",".join(r) + "\n" for r in rows)
    got = registry.parse(text, "f.csv")
    _check(got)
    assert [(g["card_id"].hex(), g["card_no"].decode(), g["citizen_id"].decode(), g["status"]) for g in got] == \
        [(r[0], r[1], r[2], r[6]) for r in rows]
    if not text:
        return
    i = data.draw(st.integers(0, len(text) - 1))
    ch = data.draw(st.sampled_from(list(",X9a\n\r #\x00é")))
    bad = text[:i] + ch + text[i + 1:]
    try:
        _check(registry.parse(bad, "f.csv"))
    except ValueError as e:
        msg = str(e)
        assert msg.startswith("f.csv") and "\n" not in msg
