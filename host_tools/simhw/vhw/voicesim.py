# Simulated UART MP3 voice module: the DFPlayer Mini family or the JQ8900
# family, as the firmware's UART TX line reaches it (bytes arrive through the
# fake UART at the line's baud rate, vhw/m_uart.py). It parses the byte
# stream as the module does (start byte, length, checksum, end byte), plays
# what a valid frame asks for, and keeps what happened for tests and the
# scenario log:
#   played  [(time_us, track, volume)]  prompts started
#   frames  [(time_us, bytes)]          valid frames, byte for byte
#   errors  [(time_us, reason, bytes)]  frames refused, with why
# (the last vhw.LOG_CAP of each: they share the firmware's heap budget)
# Modeled behaviour (the modules' manuals): after power-up the module mounts
# its storage for init_us and a DFPlayer answers any command then with its
# "busy" error frame (7E FF 06 40 00 00 00 ..); a new play cuts the prompt
# playing short; volume 0..30; a DFPlayer acknowledges a frame whose feedback
# byte is 1 (cmd 0x41) and reports a bad checksum (0x40 .. 02). Replies go to
# the ESP32's RX through the port (lost when the board does not wire RX).
# Portable (CPython and MicroPython).
import vclock
from vhw import bus, keep

DFPLAYER = "dfplayer"
JQ8900 = "jq8900"
DEFAULT_INIT_US = 1500000      # storage mount after power-up
DEFAULT_TRACK_US = 900000      # a short prompt ("老年卡")


def df_frame(cmd, param=0, feedback=0):
    """A DFPlayer frame (the module's replies, and tests' expected bytes)."""
    b = bytearray((0x7E, 0xFF, 0x06, cmd, feedback, (param >> 8) & 0xFF, param & 0xFF, 0, 0, 0xEF))
    c = (0 - sum(b[1:7])) & 0xFFFF
    b[7] = c >> 8
    b[8] = c & 0xFF
    return bytes(b)


def jq_frame(cmd, data=b""):
    """A JQ8900 frame: AA cmd len data.. sum."""
    b = bytearray((0xAA, cmd, len(data))) + bytes(data)
    b.append(sum(b) & 0xFF)
    return bytes(b)


class VoiceModuleSim:
    def __init__(self, kind=DFPLAYER, init_us=DEFAULT_INIT_US, track_us=None, tracks=255):
        if kind not in (DFPLAYER, JQ8900):
            raise ValueError("voice module kind %r" % (kind,))
        self.kind = kind
        self.init_us = init_us
        self.track_us = track_us or {}     # track -> duration; default DEFAULT_TRACK_US
        self.tracks = tracks               # files on the module's storage: 1..tracks
        self.t0 = vclock.now_us()          # power-up
        self.volume = 30 if kind == DFPLAYER else 20   # the modules' power-up volumes
        self.port = None
        self.uart_id = None
        self.buf = bytearray()
        self.played = []
        self.frames = []
        self.errors = []
        self.replies = []
        self.cut = 0                       # prompts cut short by the next one
        self._track = 0
        self._until = 0

    # --- wiring -----------------------------------------------------------
    def attach(self, uart_id):
        self.uart_id = uart_id
        bus.attach_uart(uart_id, self)
        p = bus.uart_port(uart_id)
        if p is not None:
            self.port = p

    def uart_attached(self, port):
        self.port = port

    # --- state --------------------------------------------------------------
    def playing(self):
        """The track playing now, 0 when silent (the module's BUSY line)."""
        return self._track if vclock.now_us() < self._until else 0

    def ready(self):
        return vclock.now_us() - self.t0 >= self.init_us

    # --- the line -----------------------------------------------------------
    def uart_rx(self, data):
        self.buf += bytes(data)
        while self.buf:
            n = self._frame_len()
            if n is None:
                return                      # wait for more bytes
            if n:
                fr = bytes(self.buf[:n])
                self.buf = self.buf[n:]
                self._frame(fr)

    def _junk(self, n, why):
        keep(self.errors, (vclock.now_us(), why, bytes(self.buf[:n])))
        self.buf = self.buf[n:]

    def _frame_len(self):
        """Length of the complete frame at the head of buf, 0 when bytes were
        dropped (resync), None when more bytes are needed."""
        b = self.buf
        if self.kind == DFPLAYER:
            if b[0] != 0x7E:
                i = b.find(b"\x7e")
                self._junk(i if i > 0 else len(b), "no start byte")
                return 0
            if len(b) < 10:
                return None
            if b[1] != 0xFF or b[2] != 0x06:
                self._junk(1, "bad version or length")
                return 0
            if b[9] != 0xEF:
                self._junk(1, "no end byte")
                return 0
            return 10
        if b[0] != 0xAA:
            i = b.find(b"\xaa")
            self._junk(i if i > 0 else len(b), "no start byte")
            return 0
        if len(b) < 3:
            return None
        if b[2] > 32:
            self._junk(1, "bad length")
            return 0
        if len(b) < 4 + b[2]:
            return None
        return 4 + b[2]

    def _frame(self, fr):
        now = vclock.now_us()
        if self.kind == DFPLAYER:
            c = (0 - sum(fr[1:7])) & 0xFFFF
            if fr[7] != c >> 8 or fr[8] != c & 0xFF:
                keep(self.errors, (now, "checksum", fr))
                self._reply(df_frame(0x40, 2))
                return
            keep(self.frames, (now, fr))
            if not self.ready():
                keep(self.errors, (now, "busy", fr))
                self._reply(df_frame(0x40, 0))
                return
            cmd, param = fr[3], (fr[5] << 8) | fr[6]
            if fr[4]:
                self._reply(df_frame(0x41))
            if cmd == 0x12 or cmd == 0x03:
                self._play(param)
            elif cmd == 0x06:
                self._set_volume(param)
            elif cmd == 0x16:
                self._until = now
            else:
                keep(self.errors, (now, "unmodeled command 0x%02x" % cmd, fr))
            return
        if sum(fr[:-1]) & 0xFF != fr[-1]:
            keep(self.errors, (now, "checksum", fr))
            return
        keep(self.frames, (now, fr))
        if not self.ready():
            keep(self.errors, (now, "busy", fr))
            return
        cmd, data = fr[1], fr[3:-1]
        if cmd == 0x07 and len(data) == 2:
            self._play((data[0] << 8) | data[1])
        elif cmd == 0x13 and len(data) == 1:
            self._set_volume(data[0])
        elif cmd == 0x01 and not data:
            self._reply(jq_frame(0x01, bytes((1 if self.playing() else 0,))))
        elif cmd == 0x04 and not data:
            self._until = now
        else:
            keep(self.errors, (now, "unmodeled command 0x%02x" % cmd, fr))

    def _play(self, track):
        now = vclock.now_us()
        if not 1 <= track <= self.tracks:
            keep(self.errors, (now, "no file %d" % track, b""))
            if self.kind == DFPLAYER:
                self._reply(df_frame(0x40, 6))     # file not found
            return
        if self.playing():
            self.cut += 1
        self._track = track
        self._until = now + self.track_us.get(track, DEFAULT_TRACK_US)
        keep(self.played, (now, track, self.volume))

    def _set_volume(self, v):
        if v > 30:
            keep(self.errors, (vclock.now_us(), "volume %d" % v, b""))
            return
        self.volume = v

    def _reply(self, data):
        keep(self.replies, (vclock.now_us(), data))
        p = self.port
        if p is None and self.uart_id is not None:
            p = self.port = bus.uart_port(self.uart_id)
        if p is not None and p.open:
            p.deliver(data)
