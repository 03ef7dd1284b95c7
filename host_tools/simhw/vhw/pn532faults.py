# Faults on demand for the simulated PN532 (docs/pn532-simulator.md), loaded on
# the first sim.fault() call.
from vhw import pn532frames as F
from vhw import rfcards

FAULTS = ("silent", "stale_reply", "garbage", "nack_storm", "error_frame", "i2c_timeout",
          "card_removed", "two_cards", "slow_card", "rf_error", "hsu_gap",
          "hsu_max_baud")


def apply(sim, name, p):
    f = sim._f
    if name == "silent":
        sim._abort()
        sim._silent = True
        sim._update_irq()
    elif name == "stale_reply":
        fr = p.get("frame") or sim._last_reply or F.reply(0x4A, b"\x01\x01\x00\x04\x08\x04\xde\xad\xbe\xef")
        if sim.transport == "hsu":
            sim._emit(fr)
        else:
            sim._out.insert(0, fr)
            sim._update_irq()
    elif name == "garbage":
        f["garbage"] = bytes(p.get("before", b"\xff\x00\x55\xaa\x00"))
        f["garbage_n"] = p.get("count")
        f["inside"] = p.get("inside", 0)
    elif name == "nack_storm":
        f["nack"] = p.get("count", 3)
    elif name == "error_frame":
        f["errframe"] = p.get("count", 1)
    elif name == "i2c_timeout":
        f["i2c_r"] = p.get("reads", 1)
        f["i2c_w"] = p.get("writes", 0)
    elif name == "card_removed":
        f["remove_after"] = p.get("after", 0)
    elif name == "two_cards":
        c = p.get("card", "mifare_classic")
        sim.field.present(rfcards.load(c) if isinstance(c, str) else c)
    elif name == "slow_card":
        cards = [p["card"]] if p.get("card") is not None else sim.field.cards
        for c in cards:
            if not c.iso4:
                continue
            f.setdefault("slow_saved", []).append((c, c.slow_fraction, c.slow_exceed, c.wtx_count, c.fwi))
            c.slow_fraction = p.get("fraction", 0.95)
            c.slow_exceed = p.get("exceed", False)
            c.wtx_count = p.get("wtx", 0)
            if p.get("fwi") is not None:
                c.fwi = p["fwi"]
    elif name == "rf_error":
        f["rf_err"] = p.get("code", 0x02)
        f["rf_err_n"] = p.get("count", 1)
    elif name == "hsu_gap":
        f["gap"] = p.get("gap_us", 1000)
    elif name == "hsu_max_baud":
        # the wiring (length, level shifter, pull-ups) carries no faster line:
        # above it every byte, either way, arrives as framing garbage
        f["max_baud"] = p.get("baud", 115200)
    else:
        raise ValueError("unknown fault %r (known: %s)" % (name, ", ".join(FAULTS)))
