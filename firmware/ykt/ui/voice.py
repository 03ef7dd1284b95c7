# Voice prompts on a UART MP3 module of the common kinds: the DFPlayer Mini
# family and the JQ8900 family (both 9600 baud, 8N1). Each tap plays ONE
# prompt file that says the card type of an accepted tap ("老年卡") or the
# outcome ("卡已挂失"), so a rider who cannot see the display and a driver
# watching for concession misuse hear it. Loaded only on boards whose board
# file declares "voice" (ykt.app imports this module lazily).
#
# Frames (byte protocol of the modules; docs/decisions.md, "Voice prompts"):
#   DFPlayer: 7E FF 06 cmd fb p_hi p_lo sum_hi sum_lo EF, sum = 0 - (FF + 06 +
#             cmd + fb + p_hi + p_lo) as 16 bits; cmd 0x12 plays /MP3/NNNN.mp3,
#             0x06 sets the volume 0..30; fb 0 = no acknowledgement asked.
#   JQ8900:   AA cmd len data.. sum, sum = low byte of the sum of every byte
#             before it; cmd 0x07 plays file number (2 bytes, high first),
#             0x13 sets the volume 0..30 (1 byte).
#
# On the tap path: say() runs after the LED, buzzer and relay have switched
# (the first feedback is never delayed) and costs one UART write of a buffer
# allocated at boot, which the UART driver copies to its transmit ring and
# returns: no allocation, no wait. Volume follows the device profile
# ("voice": day volume, quiet-hours volume and times) and is set between taps.
from ykt.compat import const, ticks_ms, ticks_diff, ticks_add
from ykt.outcome import M_CONCESSION

DFPLAYER = const(1)
JQ8900 = const(2)
DRIVERS = ("", "dfplayer", "jq8900")
_INIT_MS = const(2000)     # a module answers "busy" while it mounts its storage after power-up

# Track n = prompt file n (DFPlayer: /MP3/000n.mp3; JQ8900: the n-th file).
# (key, what the file says). The host reads this table for logs and the
# list of files to record (docs/decisions.md).
PROMPTS = (
    ("", ""),
    ("ordinary", "普通卡"),
    ("elderly", "老年卡"),
    ("disabled", "残疾人卡"),
    ("companion", "陪同人员"),
    ("military_care", "优抚卡"),
    ("soldier", "军人卡"),
    ("fire_rescue", "消防救援"),
    ("child", "儿童卡"),
    ("transfer", "换乘优惠"),
    ("already_paid", "已刷卡"),
    ("green", "绿色通道"),
    ("identity", "请通行"),
    ("exit", "行程结束"),
    ("lost", "卡已挂失"),
    ("suspended", "卡已挂起"),
    ("cancelled", "卡已注销"),
    ("replaced", "卡已补换"),
    ("expired", "卡已过期"),
    ("not_yet_valid", "卡未启用"),
    ("region", "不受理此地区卡"),
    ("unsupported", "无效卡"),
    ("passback", "请勿重复进入"),
    ("daily_limit", "今日优惠已用完"),
    ("no_time", "时间未校准"),
    ("not_configured", "设备未配置"),
    ("tap_again", "请重新刷卡"),
    ("reader_fault", "读卡器故障"),
    ("unpaid", "账户欠费"),
    ("shift_on", "司机签到"),
    ("shift_off", "司机签退"),
)
# ykt.outcome message id -> track (tests/fw/t_voice.py checks every message
# has one, by key).
# The three refusals of issue 16 (no transport function, locked, blocked)
# say "invalid card" until prompts of their own are recorded; the display
# shows their own text.
MSG_TRACK = b"\x00\x01\x01\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1a\x1c\x1d\x1e\x15\x15\x15"
# taprec C_* concession -> track: an accepted concession says the card type
CONC_TRACK = b"\x00\x02\x02\x03\x04\x05\x06\x07\x08"


class Voice:
    def __init__(self, uart, driver, cfg, tz_min=480, clock=None):
        """uart: machine.UART wired to the module's RX; driver: "dfplayer" or
        "jq8900"; cfg: the profile's voice tuple (volume, quiet volume,
        quiet_from minute, quiet_to minute); clock: ykt.net.timesync.TimeSync."""
        if driver not in DRIVERS[1:]:
            raise ValueError("voice driver %r" % (driver,))
        self.uart = uart
        self.kind = DFPLAYER if driver == "dfplayer" else JQ8900
        self.cfg = cfg
        self.tz_s = tz_min * 60
        self.clock = clock
        self.volume = -1            # what the module was last told (-1: never)
        self.plays = 0
        self.last = 0               # last track played
        if self.kind == DFPLAYER:
            self._f = bytearray(b"\x7e\xff\x06\x00\x00\x00\x00\x00\x00\xef")
            self._v = bytearray(b"\x7e\xff\x06\x06\x00\x00\x00\x00\x00\xef")
        else:
            self._f = bytearray(b"\xaa\x07\x02\x00\x00\x00")
            self._v = bytearray(b"\xaa\x13\x01\x00\x00")
        now = ticks_ms()
        self._ready_at = ticks_add(now, _INIT_MS)
        self._due = self._ready_at
        self._due_on = True
        self._trusted = False

    # --- frames -----------------------------------------------------------
    def _df(self, f, cmd, param):
        f[3] = cmd
        f[5] = (param >> 8) & 0xFF
        f[6] = param & 0xFF
        c = (0 - (0xFF + 0x06 + cmd + f[4] + f[5] + f[6])) & 0xFFFF
        f[7] = c >> 8
        f[8] = c & 0xFF

    def play(self, track):
        """Start prompt `track` now (a prompt still playing is cut short)."""
        f = self._f
        if self.kind == DFPLAYER:
            self._df(f, 0x12, track)
        else:
            f[3] = (track >> 8) & 0xFF
            f[4] = track & 0xFF
            f[5] = (0xAA + 0x07 + 0x02 + f[3] + f[4]) & 0xFF
        self.uart.write(f)
        self.plays += 1
        self.last = track

    def set_volume(self, v):
        f = self._v
        if self.kind == DFPLAYER:
            self._df(f, 0x06, v)
        else:
            f[3] = v
            f[4] = (0xAA + 0x13 + 0x01 + v) & 0xFF
        self.uart.write(f)
        self.volume = v

    # --- the tap ----------------------------------------------------------
    def say(self, msg, concession):
        """The prompt of a decision (message id, the tap's concession); call
        after Feedback.show. Returns the track played, 0 for none."""
        t = MSG_TRACK[msg] if msg < len(MSG_TRACK) else 0
        if msg == M_CONCESSION and concession and concession < len(CONC_TRACK):
            t = CONC_TRACK[concession]
        if t:
            self.play(t)
        return t

    # --- volume and quiet hours, between taps -----------------------------
    def step(self, now_ms):
        """Call every loop iteration; allocates only when the volume plan
        changes (after the module's start-up, at quiet-hour edges, when the
        clock becomes trusted or stops being so)."""
        if ticks_diff(now_ms, self._ready_at) < 0:
            return
        t = self.clock is not None and self.clock.trusted()
        if t != self._trusted or (self._due_on and ticks_diff(now_ms, self._due) >= 0):
            self._plan(t, now_ms)

    def _plan(self, trusted, now_ms):
        self._trusted = trusted
        vol, qvol, qfrom, qto = self.cfg
        want = vol
        self._due_on = False
        if trusted and qfrom != qto:
            sod = (self.clock.now() + self.tz_s) % 86400
            m = sod // 60
            quiet = (qfrom <= m < qto) if qfrom < qto else (m >= qfrom or m < qto)
            if quiet:
                want = qvol
            edge = (qto if quiet else qfrom) * 60
            wait = (edge - sod) % 86400 or 86400
            self._due = ticks_add(now_ms, wait * 1000)
            self._due_on = True
        # Without trusted time the day volume holds: a rider who needs the
        # prompt must hear it; quiet hours start once the clock is known.
        if want != self.volume:
            self.set_volume(want)
