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
