# Simulated UART 4G modem (SIM7600/EC20 class) as the firmware's UART
# reaches it: bytes arrive through the fake UART at the line's baud rate
# (vhw/m_uart.py), commands end at CR, and every reply goes back byte for
# byte as the modems send them ("\r\n<line>\r\n", echo on until ATE0).
# After "ATD*99#" answers CONNECT the line is in data mode: the fake
# network.PPP (simhw/network.py) may bring its link up only then.
# Faults (set on the instance, or fault(name)):
#   no_sim          AT+CPIN? -> +CME ERROR: 10
#   no_registration +CREG/+CEREG stat 2 (searching), forever
#   weak_signal     +CSQ: 5,99
#   drop            the carrier goes: NO CARRIER, back to command mode
# What happened is kept for tests: commands [(time_us, bytes)], the last 256.
# Portable (CPython and MicroPython).
import vclock
from vhw import bus, keep

BOOT_US = 0               # time from power to the first answer (tests may set it)
REPLY_US = 2000           # the modem's own think time per command


class ModemSim(bus.UartDevice):
    def __init__(self, apn="cmnet", csq=23, reg_after=2):
        self.apn = apn
        self.csq = csq
        self.reg_after = reg_after     # +CREG? polls answering "searching" before registered
        self.buf = bytearray()
        self.echo = True
        self.data = False              # in data mode (after CONNECT)
        self.no_sim = False
        self.no_registration = False
        self.weak = False
        self.polls = 0
        self.cid = None                # the PDP context AT+CGDCONT defined: (cid, type, apn)
        self.commands = []
        self.dials = 0
        self.drops = 0

    # --- faults -----------------------------------------------------------
    def fault(self, name, on=True):
        if name == "no_sim":
            self.no_sim = on
        elif name == "no_registration":
            self.no_registration = on
        elif name == "weak_signal":
            self.weak = on
        elif name == "drop":
            self.drop()
        else:
            raise ValueError("modem fault %r" % (name,))

    def drop(self):
        """The carrier goes (a tunnel, a cell edge): PPP ends, NO CARRIER."""
        if self.data:
            self.data = False
            self.drops += 1
            self._send(b"\r\nNO CARRIER\r\n")

    # --- the line ---------------------------------------------------------
    def _send(self, b):
        if self.port is not None:
            vclock.schedule(REPLY_US, lambda: self.port.deliver(b))

    def uart_rx(self, data):
        if self.data:
            return                     # PPP frames: the fake PPP carries the traffic
        for c in data:
            if c == 13:
                line = bytes(self.buf)
                self.buf = bytearray()
                if self.echo:
                    self._send(line + b"\r")
                self._command(line)
            elif c != 10:
                if len(self.buf) < 256:
                    self.buf.append(c)

    def _ok(self, *lines):
        out = b""
        for ln in lines:
            out += b"\r\n" + ln + b"\r\n"
        self._send(out + b"\r\nOK\r\n")

    def _command(self, line):
        keep(self.commands, (vclock.now_us(), line), 256)
        u = line.upper()
        if u == b"AT":
            self._ok()
        elif u == b"ATE0":
            self.echo = False
            self._ok()
        elif u == b"ATE1":
            self.echo = True
            self._ok()
        elif u == b"AT+CPIN?":
            if self.no_sim:
                self._send(b"\r\n+CME ERROR: 10\r\n")
            else:
                self._ok(b"+CPIN: READY")
        elif u == b"AT+CSQ":
            v = 5 if self.weak else self.csq
            self._ok(b"+CSQ: %d,99" % v)
        elif u in (b"AT+CREG?", b"AT+CEREG?"):
            self.polls += 1
            stat = 2 if (self.no_registration or self.no_sim or self.polls <= self.reg_after) else 1
            self._ok(b"+%s: 0,%d" % (u[3:-1], stat))
        elif u.startswith(b"AT+CGDCONT="):
            parts = line[11:].split(b",")
            if len(parts) != 3 or parts[1] != b'"IP"' or len(parts[2]) < 3:
                self._send(b"\r\nERROR\r\n")
            else:
                self.cid = (int(parts[0]), "IP", parts[2][1:-1].decode())
                self._ok()
        elif u == b"ATD*99#" or u == b"ATD*99***1#":
            if self.cid is None or self.no_sim or self.no_registration or not self.registered():
                self._send(b"\r\nNO CARRIER\r\n")
            else:
                self.dials += 1
                self.data = True
                self._send(b"\r\nCONNECT 150000000\r\n")
        else:
            self._send(b"\r\nERROR\r\n")

    def registered(self):
        return not (self.no_registration or self.no_sim) and self.polls > self.reg_after

    def carrier(self):
        """True while in data mode on an APN the network knows."""
        return self.data and self.cid is not None and self.cid[2] == self.apn
