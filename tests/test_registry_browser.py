"""Issue 16's end-to-end check, as a counter clerk works: in the dashboard
(headless chromium) an operator reports one card lost by the card number
printed on it, another by its holder's citizen ID, and a third replaced by
a new card. A simulated validator -- the real firmware on the MicroPython
unix port, synced from this back office -- refuses all three after its next
sync, and the new card carries the holder's concession from its first tap
after that sync. The cards are the simulator's profiles; the registry is
fed the way the SSC centre's system would feed it (an import file)."""
import conftest
from test_dashboard_to_validator import bus_and_dashboard


def _registry_csv(names):
    from vhw import rfcards
    from ykt_tools.backoffice import registry

    lines = [",".join(registry.COLUMNS)]
    for n in names:
        c = rfcards.load(n)
        lines.append(",".join([bytes(c.card_id).hex(), c.card_no.decode(), c.citizen, str(c.generation),
                               "%08d" % c.issue, "%08d" % c.expiry, "active", ""]))
    return "\n".join(lines) + "\n"


def test_clerk_reports_by_card_number_and_citizen_id_and_a_replacement(browser, tmp_path):
    from vhw import rfcards
    from ykt import taprec as T
    from ykt_tools.backoffice import api, ops

    lost_no, lost_cit = rfcards.load("ssc_nanning"), rfcards.load("ssc_transit")
    old, new = rfcards.load("ssc_liuzhou_replaced_old"), rfcards.load("ssc_liuzhou_replaced_new")
    assert old.citizen == new.citizen
    url = "sqlite:///" + str(tmp_path / "bo.db")
    base, stop = api.start(url)
    dev = None
    tok_old = []

    def before(eng):
        # the centre's export: the new card is not in it yet (issued today)
        r = api.import_registry(url, _registry_csv(["ssc_nanning", "ssc_transit", "ssc_liuzhou_replaced_old"]))
        assert r["rows"] == 3
        tok_old.append(ops.tokenize(eng, card_id=bytes(old.card_id).hex()))
        ops.set_entitlement(eng, tok_old[0].hex(), T.C_MILITARY_CARE)
        ops.publish_entitlements(eng)

    try:
        dev, t, page = bus_and_dashboard(url, base, browser, before)
        eng = api.engine(url)
        r = dev.call({"cmd": "run", "until": t, "events": [
            {"at": t - 60000, "card": "ssc_nanning"}, {"at": t - 50000, "card": "ssc_transit"},
            {"at": t - 40000, "card": "ssc_liuzhou_replaced_new"}]})
        got = [(x["outcome"], x["reason"], x["concession"]) for x in r["taps"]]
        assert [g[0] for g in got] == [T.OUT_ACCEPT] * 3, r["taps"]
        assert got[2][2] == T.C_NONE                 # the new card: no concession yet

        def report(status, by, value, replaced_by="", ver=None, refused=False):
            page.select_option("#card-status", status)
            page.select_option("#card-by", by)
            page.fill("#card-value", value)
            page.fill("#card-replaced-by", replaced_by)
            page.evaluate("document.getElementById('card-result').dataset.dlVer = 'pending'")
            page.click("#card-submit")
            if refused:
                conftest.wait_js(page, "document.getElementById('card-result').dataset.dlVer === ''")
                return page.inner_text("#card-result")
            conftest.wait_js(page, "document.getElementById('card-result').dataset.dlVer === '%d'" % ver)
            assert page.input_value("#card-value") == ""            # the identity is not kept in the page
            return page.get_attribute("#card-result", "data-cards")

        # a card number nobody registered: a clear refusal, nothing changes
        msg = report("lost", "card_no", "Z99999999", refused=True)
        assert "no registered card has this card number" in msg
        cards = report("lost", "card_no", lost_no.card_no.decode(), ver=1)
        assert cards == ops.tokenize(eng, card_id=bytes(lost_no.card_id).hex()).hex()
        cards = report("lost", "citizen_id", lost_cit.citizen, ver=2)
        assert cards == ops.tokenize(eng, card_id=bytes(lost_cit.card_id).hex()).hex()
        cards = report("replaced", "card_no", old.card_no.decode(), replaced_by=bytes(new.card_id).hex(), ver=3)
        assert cards == tok_old[0].hex()

        # one sync interval later, the same cards on the same validator
        r = dev.call({"cmd": "run", "until": t + 130000, "events": [
            {"at": t + 90000, "card": "ssc_nanning"}, {"at": t + 100000, "card": "ssc_transit"},
            {"at": t + 110000, "card": "ssc_liuzhou_replaced_old"},
            {"at": t + 120000, "card": "ssc_liuzhou_replaced_new"}]})
        got = [(x["outcome"], x["reason"], x["concession"]) for x in r["taps"]]
        assert got == [(T.OUT_DENY, T.R_DENY_LOST, 0), (T.OUT_DENY, T.R_DENY_LOST, 0),
                       (T.OUT_DENY, T.R_DENY_REPLACED, 0),
                       (T.OUT_ACCEPT, T.R_CONCESSION, T.C_MILITARY_CARE)], r["taps"]
        st = dev.call({"cmd": "status"})
        assert st["versions"]["denylist"] == 3 and st["memory_errors"] == 0
    finally:
        if dev is not None:
            dev.close()
        stop()
