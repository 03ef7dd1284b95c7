# Host-side helpers for the PN532 simulator tests (no tests here). Frames are
# built and checked independently of vhw.pn532frames so a codec bug cannot
# hide behind itself. Portable.
import binascii

import vclock
from vhw import bus
from vhw.pn532sim import PN532Sim

ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERR = b"\x00\x00\xff\x01\xff\x7f\x81\x00"
SSC_DF = binascii.unhexlify("7378312E73682EC9E7BBE1B1A3D5CF")


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


def hx(b):
    return binascii.hexlify(bytes(b)).decode()


def fresh(timing=None):
    vclock.reset()
    bus.reset()
    return PN532Sim(timing=timing)


def cmd(code, data=b""):
    body = bytes((0xD4, code)) + bytes(data)
    s = 0
    for b in body:
        s += b
    n = len(body)
    if n < 256:
        head = bytes((0, 0, 0xFF, n, (256 - n) & 0xFF))
    else:
        head = bytes((0, 0, 0xFF, 0xFF, 0xFF, n >> 8, n & 0xFF, (256 - (n >> 8) - (n & 0xFF)) & 0xFF))
    return head + body + bytes(((256 - s) & 0xFF, 0))


def parse(buf):
    """One chip frame at the start of buf (after optional garbage) -> ('ack'|'nack'|'err'|'frame', body)."""
    i = 0
    while i + 1 < len(buf) and not (buf[i] == 0 and buf[i + 1] == 0xFF):
        i += 1
    buf = bytes(buf[i + 2:])
    assert len(buf) >= 2, "no start code"
    if buf[:3] == b"\x00\xff\x00":
        return "ack", b""
    if buf[:3] == b"\xff\x00\x00":
        return "nack", b""
    if buf[0] == 0xFF and buf[1] == 0xFF:
        n = (buf[2] << 8) | buf[3]
        assert (buf[2] + buf[3] + buf[4]) & 0xFF == 0, "lcs"
        body = buf[5:5 + n]
        dcs = buf[5 + n]
    else:
        n = buf[0]
        assert (buf[0] + buf[1]) & 0xFF == 0, "lcs"
        body = buf[2:2 + n]
        dcs = buf[2 + n]
    assert len(body) == n, "short frame"
    s = dcs
    for b in body:
        s += b
    assert s & 0xFF == 0, "dcs"
    if body == b"\x7f":
        return "err", body
    return "frame", body


def wait_ready(sim, limit_us=10000000, step=100):
    """Poll the I2C status byte like a driver does; returns the waited time."""
    t0 = vclock.now_us()
    while sim.i2c_read(1)[0] != 1:
        assert vclock.now_us() - t0 < limit_us, "PN532 never became ready"
        vclock.advance_us(step)
    return vclock.now_us() - t0


def i2c_cmd(sim, code, data=b"", n=300):
    """Command over I2C: write, read the ACK, read the answer -> data after D5 code+1."""
    sim.i2c_write(cmd(code, data))
    wait_ready(sim)
    assert sim.i2c_read(7) == b"\x01" + ACK
    wait_ready(sim)
    kind, body = parse(sim.i2c_read(n)[1:])
    assert kind == "frame", kind
    assert body[0] == 0xD5 and body[1] == code + 1, hx(body)
    return body[2:]


def i2c_sim(timing=None, card=None, retries=0x02):
    """A configured chip on I2C (no link time), optionally with a card in the field."""
    sim = fresh(timing)
    sim.attach_i2c(0, freq=0)
    i2c_cmd(sim, 0x14, b"\x01\x14\x01")                   # SAMConfiguration normal
    i2c_cmd(sim, 0x32, b"\x05\xff\x01" + bytes((retries,)))  # MaxRetries
    if card is not None:
        sim.field.present(card)
    return sim


class Port:
    """The host side of an HSU line: collects what the chip sends."""

    def __init__(self):
        self.rx = bytearray()

    def deliver(self, buf):
        self.rx += buf

    def take(self):
        b = bytes(self.rx)
        self.rx = bytearray()
        return b
