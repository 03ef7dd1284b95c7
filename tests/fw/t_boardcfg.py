# Board files are validated with one clear line naming file, field and pin.
import json
from ykt import boardcfg


def _bus():
    with open("boards/bus_validator.json") as f:
        return json.loads(f.read())


def _err(b):
    try:
        boardcfg.validate(b, "boards/x.json")
    except boardcfg.BoardError as e:
        return str(e)
    raise AssertionError("accepted a bad board")


def test_shipped_boards_are_valid():
    for name in ("bus_validator", "turnstile", "ferry_validator"):
        b = boardcfg.load("boards/%s.json" % name)
        assert b["name"] == name


def test_pin_used_twice_one_line():
    b = _bus()
    b["pins"]["BUZZER"] = 22
    msg = _err(b)
    assert msg.startswith("boards/x.json: pins.")
    assert "pin 22 used twice" in msg
    assert "\n" not in msg


def test_unknown_pin():
    b = _bus()
    b["pins"]["BUZZER"] = 7  # a flash pin on the ESP32
    assert "pins.BUZZER: unknown pin 7" in _err(b)


def test_missing_role():
    b = _bus()
    del b["pins"]["PN532_SDA"]
    assert "pins.PN532_SDA: missing role" in _err(b)


def test_unknown_transport():
    b = _bus()
    b["reader"]["transport"] = "usb"
    assert "reader.transport: unknown transport" in _err(b)


def test_input_only_pin_cannot_drive():
    b = _bus()
    b["pins"]["BUZZER"] = 36
    assert "input-only" in _err(b)


def test_unknown_role_and_bad_json():
    b = _bus()
    b["pins"]["BUZER"] = 32
    assert "pins.BUZER: unknown role" in _err(b)
    try:
        boardcfg.loads("{", "boards/y.json")
        raise AssertionError("accepted bad JSON")
    except boardcfg.BoardError as e:
        assert str(e).startswith("boards/y.json: (json):")


def test_heap_declaration_missing_or_impossible():
    b = _bus()
    del b["heap_bytes"]
    msg = _err(b)
    assert msg.startswith("boards/x.json: heap_bytes: missing") and "\n" not in msg
    b = _bus()
    del b["psram"]
    assert _err(b).startswith("boards/x.json: psram: missing")
    b = _bus()
    b["psram"] = "no"
    assert _err(b).startswith("boards/x.json: psram:")
    b = _bus()
    b["heap_bytes"] = 131072          # more than a PSRAM-less ESP32 gives
    msg = _err(b)
    assert msg.startswith("boards/x.json: heap_bytes: 131072 is impossible without PSRAM"), msg
    b["heap_bytes"] = "112K"
    assert _err(b).startswith("boards/x.json: heap_bytes:")
    b["psram"] = True
    b["heap_bytes"] = 2 * 1024 * 1024  # fine with PSRAM
    boardcfg.validate(b, "boards/x.json")
    b["features"]["psram"] = True       # the old place is refused, not ignored
    assert _err(b).startswith("boards/x.json: features.psram: moved")


def test_shipped_psramless_boards_fit_112k():
    for name in ("bus_validator", "turnstile"):
        b = boardcfg.load("boards/%s.json" % name)
        assert b["psram"] is False and b["heap_bytes"] <= boardcfg.SRAM_HEAP_MAX == 114688
    assert boardcfg.load("boards/ferry_validator.json")["psram"] is True


def test_voice_module_declaration():
    b = _bus()
    assert boardcfg.has(boardcfg.validate(b, "bus"), "voice") and b["voice"]["driver"] == "dfplayer"
    for change, want in (
            (lambda x: x["pins"].pop("VOICE_TX"), "pins.VOICE_TX: missing role, required by features.voice"),
            (lambda x: x.pop("voice"), "voice: missing, required by features.voice"),
            (lambda x: x["voice"].update(driver="isd1820"), "voice.driver: unknown driver 'isd1820'"),
            (lambda x: x["voice"].update(uart=0), "voice.uart: must be an integer in 1..2"),
            (lambda x: x["voice"].update(baud=300), "voice.baud: must be an integer in 2400..115200"),
            (lambda x: x["voice"].update(volume=20), "voice.volume: unknown setting"),
            (lambda x: x["pins"].update(VOICE_TX=36), "input-only")):
        b = _bus()
        change(b)
        assert want in _err(b), (want, _err(b))
    b = _bus()
    b["voice"]["driver"] = "jq8900"
    b["pins"]["VOICE_RX"] = 34          # optional, input-only is fine for a receive line
    assert boardcfg.validate(b, "bus")["voice"]["driver"] == "jq8900"
    with open("boards/turnstile.json") as f:
        t = json.loads(f.read())
    t["features"]["voice"] = True
    t["voice"] = {"driver": "dfplayer", "uart": 2}
    t["pins"]["VOICE_TX"] = 32
    assert "voice.uart: shares the QR scanner's UART" in _err(t)
    with open("boards/ferry_validator.json") as f:
        fy = json.loads(f.read())
    fy["features"]["voice"] = True
    fy["voice"] = {"driver": "jq8900", "uart": 1}
    fy["pins"]["VOICE_TX"] = 10
    assert "voice.uart: shares the reader's UART" in _err(fy)


def test_profile_voice_settings():
    from ykt.rules import catalog as C

    base = {"device": "B", "entry": 301, "board": "bus_validator"}
    assert C.profile_from(base).voice == (22, 10, 22 * 60, 6 * 60 + 30)
    p = C.profile_from(dict(base, voice={"volume": 30, "quiet_volume": 0, "quiet_from": "23:15", "quiet_to": "05:00"}))
    assert p.voice == (30, 0, 23 * 60 + 15, 5 * 60)
    for v, want in (({"volume": 31}, "voice.volume"), ({"quiet_from": "7:00"}, "voice.quiet_from"),
                    ({"quiet_to": "24:00"}, "no such time"), ({"loud": 1}, "voice.loud: unknown setting"),
                    ("20", "voice: must be an object")):
        try:
            C.profile_from(dict(base, voice=v))
            raise AssertionError("accepted %r" % (v,))
        except C.ProfileError as e:
            assert want in str(e), (want, str(e))


def test_modem_declaration():
    b = boardcfg.validate(_bus(), "bus")
    assert b["modem"] == {"driver": "sim7600", "uart": 2, "baud": 115200, "apn": "cmnet"}
    assert (b["pins"]["MODEM_TX"], b["pins"]["MODEM_RX"]) == (18, 19)
    for change, want in (
            (lambda x: x["modem"].update(driver="sim800"), "boards/x.json: modem.driver: unknown driver 'sim800' (known: sim7600, ec20)"),
            (lambda x: x["modem"].update(uart=0), "modem.uart: must be an integer in 1..2"),
            (lambda x: x["modem"].update(uart=1), "modem.uart: shares the voice module's UART"),
            (lambda x: x["modem"].update(baud=1200), "modem.baud: must be an integer in 9600..921600"),
            (lambda x: x["modem"].update(apn=""), "modem.apn: the carrier's APN"),
            (lambda x: x["modem"].update(apn='cm"net'), "modem.apn: the carrier's APN"),
            (lambda x: x["modem"].pop("apn"), "modem.apn: the carrier's APN"),
            (lambda x: x["modem"].update(pin="1234"), "modem.pin: unknown setting"),
            (lambda x: x.update(modem="sim7600"), "modem: must be an object"),
            (lambda x: x["pins"].pop("MODEM_RX"), "pins.MODEM_RX: missing role, required by modem"),
            (lambda x: x["pins"].update(MODEM_TX=17), "pin 17 used twice"),
            (lambda x: x["pins"].update(MODEM_TX=34), "input-only")):
        b = _bus()
        change(b)
        e = _err(b)
        assert want in e and "\n" not in e, (want, e)
    b = _bus()
    b["pins"]["MODEM_RX"] = 34          # a receive line may be input-only
    b["modem"]["driver"] = "ec20"
    assert boardcfg.validate(b, "bus")["modem"]["driver"] == "ec20"


def test_hsu_reader_rate_is_one_the_pn532_can_switch_to():
    with open("boards/ferry_validator.json") as f:
        b = json.loads(f.read())
    assert boardcfg.validate(b, "ferry")["reader"]["baud"] == 921600
    b["reader"]["baud"] = 500000               # in range for a UART, not a PN532 HSU rate
    assert "reader.baud: the PN532's HSU runs at 9600, 19200" in _err(b) and "got 500000" in _err(b)
    b["reader"]["baud"] = 460800
    boardcfg.validate(b, "ferry")
