"""Property tests of the rule engine under CPython: any card read, time and
trust state gives a valid, bounded decision; refusals never charge; without
trusted time no fare is invented. The same code runs on MicroPython in
tests/fw/t_decide*.py."""
import os

import pytest
from hypothesis import given, settings, strategies as st

import t_decide_kit as K
from ykt import taprec as T
from ykt import cardread as CR
from ykt import outcome as O

FUZZ = int(os.environ.get("YKT_FUZZ_EXAMPLES", "300"))
REASONS = {v for k, v in vars(T).items() if k.startswith("R_")}
CONCS = {v for k, v in vars(T).items() if k.startswith("C_")}

card_st = st.fixed_dictionaries({
    "region": st.sampled_from([0, 450100, 451400, 440100, 530100, 999999]),
    "birth": st.one_of(st.just(0), st.integers(19000101, 20261231)),
    "expiry": st.one_of(st.just(0), st.integers(20200101, 20401231)),
    "issue": st.one_of(st.just(0), st.integers(20000101, 20301231)),
    "kind": st.sampled_from([CR.KIND_NONE, CR.KIND_SSC, CR.KIND_UID_ONLY, CR.KIND_QR]),
    "error": st.sampled_from([CR.OK] * 6 + list(range(1, 7))),
    "n": st.integers(0, 20),
})


@pytest.mark.fuzz
@settings(max_examples=FUZZ, deadline=None)
@given(st.sampled_from(K.BOARDS + ("museum",)), st.lists(st.tuples(card_st, st.integers(0, 90000), st.booleans()),
                                                          min_size=1, max_size=12),
       st.integers(0, 3))
def test_decisions_valid(board, taps, deny_n):
    r = K.Rig(board, transfer=3600, tact=1, companion=30, daily_free=2) if board != "museum" else K.Rig(board)
    for n in range(deny_n):
        r.deny.d[bytes(K.tok(K.card(n=n)))] = 1 + n
    now = K.NOW
    for kw, dt, trusted in taps:
        now += dt
        cr = K.card(**kw)
        t = r.tap_card(cr, now, trusted)
        assert 1 <= r.fb <= 7
        assert t.outcome in (T.OUT_ACCEPT, T.OUT_DENY, T.OUT_ERROR)
        assert t.reason in REASONS and t.concession in CONCS
        assert 0 <= t.fare <= 65535
        assert 0 <= r.msg < len(O.MESSAGES)
        if t.outcome != T.OUT_ACCEPT:
            assert t.fare == 0
        if not trusted:
            assert t.fare == 0 and t.flags & T.F_TIME_UNTRUSTED
        T.unpack_from(T.pack(t))  # always a packable record
