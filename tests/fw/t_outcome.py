# The outcome contract (firmware/ykt/outcome.py): feedback kinds and message
# ids defined once, the decision packing, the message table the display and
# the glyph builder use, and the app reporting (kind, message) for the refusals
# it makes itself (not configured, journal full). Portable.
import vclock
from ykt import outcome as O
from ykt import taprec as T
from ykt.rules import dlformat as DF


def setup():
    vclock.reset()


def _ids():
    return [(n, getattr(O, n)) for n in dir(O) if n.startswith("M_")]


def test_every_message_id_names_its_row():
    ids = _ids()
    assert sorted(i for _n, i in ids) == list(range(len(O.MESSAGES)))     # each row has one id
    for name, i in ids:
        assert O.MESSAGES[i][0] == name[2:].lower(), (name, O.MESSAGES[i])
        assert O.key(i) == name[2:].lower()


def test_deny_messages_follow_the_deny_list_statuses():
    # decide picks M_DENY_LOST + status - 1 for deny-list statuses 1..4
    want = {DF.ST_LOST: "deny_lost", DF.ST_SUSPENDED: "deny_suspended",
            DF.ST_CANCELLED: "deny_cancelled", DF.ST_REPLACED: "deny_replaced"}
    for st, key in want.items():
        assert O.key(O.M_DENY_LOST + st - 1) == key


def test_decision_packs_every_kind_and_message():
    assert len(O.FB_NAMES) == O.FB_FAULT + 1 and O.FB_FAULT <= O.KIND_MASK
    assert O.KIND_MASK == (1 << O.KIND_BITS) - 1
    for kind in range(1, len(O.FB_NAMES)):
        for msg in range(len(O.MESSAGES)):
            d = O.decision(kind, msg)
            assert (O.kind_of(d), O.msg_of(d)) == (kind, msg)
            assert d & O.KIND_MASK == kind and d >> O.KIND_BITS == msg
    # accept-style kinds come first: feedback opens the relay for kind <= FB_ALREADY
    assert O.FB_ACCEPT < O.FB_CONCESSION < O.FB_GREEN < O.FB_ALREADY < O.FB_DENY


def test_texts_fit_the_display():
    for key, zh, en, flags in O.MESSAGES:
        assert zh and en and len(en) <= 16, key      # 16 columns of the 8x8 font
        assert len(zh) <= 8, key                      # 8 glyphs of 16 px
        assert flags & ~(O.HIDE_FARE | O.SHOW_CONC) == 0, key
    assert len(O.CONCESSIONS) == T.C_CHILD + 1
    t = O.texts()
    assert len(t) == len(O.MESSAGES) + len(O.CONCESSIONS) + 1 and O.PROVISIONAL[0] in t


def test_glyphs_cover_every_text():
    from ykt.ui import display

    g = display.load_glyphs()
    for s in O.texts():
        for ch in s:
            assert g.index(ord(ch)) >= 0, "glyph missing for %r (run `ykt glyphs build`)" % ch


def test_app_reports_its_own_refusals_by_id():
    # not configured (no tables) and journal full (a real journal too small
    # for one segment) come with their own message ids, never a decider's
    from vhw.world import World
    from ykt.journal import Journal

    w = World("bus_validator")
    app = w.boot()
    events = []
    app.on_event = lambda tap, kind, msg: events.append((tap.reason, kind, msg))
    w.field.present("ssc_nanning", after_us=300000, for_us=300000)
    app.run(1500)
    assert events == [(T.R_NOT_CONFIGURED, O.FB_FAULT, O.M_NOT_CONFIGURED)], events
    app.journal = Journal(w.root + "/jfull", b"k" * 16, capacity_bytes=1).open()
    w.field.present("ssc_nanning", after_us=300000, for_us=300000)
    app.run(1500)
    assert events[1:] == [(T.R_NOT_CONFIGURED, O.FB_FAULT, O.M_JOURNAL_FULL)], events
    assert app.errors[-1][0] == "journal"


def test_unpaid_cards_are_refused_with_their_own_message():
    import t_decide_kit as DK

    cr = DK.card(birth=19900101)
    r = DK.Rig("bus_validator", deny={DK.tok(cr): DF.ST_UNPAID})
    t = r.tap_card(cr)
    assert (t.outcome, t.reason, r.fb, r.key) == (T.OUT_DENY, T.R_DENY_UNPAID, O.FB_DENY, "deny_unpaid")
    assert DF.STATUS_NAMES[DF.ST_UNPAID] == "unpaid"
