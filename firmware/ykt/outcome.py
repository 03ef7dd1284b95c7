# What a tap's outcome means to the rider, defined once: the feedback kinds
# FB_* (LED colour, buzzer pattern, relay, assist call) and the message ids M_*
# with their bilingual texts. ykt.rules.decide chooses a (kind, message id)
# pair, ykt.app may override it (journal full, not configured), ykt.ui.feedback
# renders it by id, and the glyph builder (ykt_tools.build.glyphs) takes every
# Chinese character the device can show from here.
#
# Why a module of its own at the package top (like taprec.py, the record the
# same parts share) and not in rules/ or ui/: it is the contract BETWEEN the
# rule engine and the user interface. Neither package imports the other, and
# the host's glyph builder needs the texts without the rule engine or the
# display driver. Nothing on the tap path handles a string: decide returns
# small ints and feedback indexes prepared glyph runs by id.
from ykt.compat import const

# Feedback kinds. Accept-style kinds are <= FB_ALREADY (feedback relies on it).
FB_ACCEPT = const(1)
FB_CONCESSION = const(2)   # also transfer
FB_GREEN = const(3)
FB_ALREADY = const(4)      # accept-style "already paid": no second fare, no relay
FB_DENY = const(5)
FB_ERROR = const(6)        # read failed: tap again
FB_FAULT = const(7)        # reader fault, not configured, journal full: call staff
FB_NAMES = ("", "accept", "concession", "green", "already", "deny", "error", "fault")

# A decision is ONE small int: kind | message id << KIND_BITS (decide's
# return value; a small int never allocates).
KIND_BITS = const(3)
KIND_MASK = const(7)

# Message display flags. An accept-style kind other than FB_ALREADY shows the
# provisional fare unless its message has HIDE_FARE.
HIDE_FARE = const(1)       # free identity entry, or priced later by the back office
SHOW_CONC = const(2)       # the tap's concession label replaces the text when it has one

# Message ids: index into MESSAGES (tests/fw/t_outcome.py checks each M_X
# names the row whose key is "x").
M_IDLE = const(0)
M_OK = const(1)
M_CONCESSION = const(2)
M_TRANSFER = const(3)
M_ALREADY_PAID = const(4)
M_GREEN = const(5)
M_IDENTITY = const(6)
M_EXIT = const(7)
M_DENY_LOST = const(8)
M_DENY_SUSPENDED = const(9)
M_DENY_CANCELLED = const(10)
M_DENY_REPLACED = const(11)
M_EXPIRED = const(12)
M_NOT_YET_VALID = const(13)
M_REGION = const(14)
M_UNSUPPORTED = const(15)
M_PASSBACK = const(16)
M_DAILY_LIMIT = const(17)
M_NO_TIME = const(18)
M_NOT_CONFIGURED = const(19)
M_READ_FAILED = const(20)
M_READER_FAULT = const(21)
M_JOURNAL_FULL = const(22)
M_DENY_UNPAID = const(23)
M_SHIFT_ON = const(24)
M_SHIFT_OFF = const(25)
M_NO_TRANSIT = const(26)
M_CARD_LOCKED = const(27)
M_CARD_BLOCKED = const(28)

# id -> (key, Chinese, English, display flags). The key names the message in
# logs (the simulator's tap lines, the scenario report).
MESSAGES = (
    ("idle", "请刷卡", "Tap card", 0),
    ("ok", "刷卡成功", "Accepted", 0),
    ("concession", "优惠", "Concession", SHOW_CONC),
    ("transfer", "换乘优惠", "Transfer", 0),
    ("already_paid", "已付款", "Already paid", 0),
    ("green", "绿色通道", "Green channel", 0),
    ("identity", "身份核验通过", "ID checked", HIDE_FARE),
    ("exit", "行程结束", "Exit OK", SHOW_CONC),
    ("deny_lost", "卡已挂失", "Card lost", 0),
    ("deny_suspended", "卡已挂起", "Card suspended", 0),
    ("deny_cancelled", "卡已注销", "Card cancelled", 0),
    ("deny_replaced", "卡已补换", "Card replaced", 0),
    ("expired", "卡已过期", "Card expired", 0),
    ("not_yet_valid", "卡未启用", "Not yet valid", 0),
    ("region", "不受理此地区卡", "Region refused", 0),
    ("unsupported", "不支持此卡", "Card unsupported", 0),
    ("passback", "请勿重复进入", "Already inside", 0),
    ("daily_limit", "今日优惠已用完", "Daily limit", 0),
    ("no_time", "时间未校准", "Fare later", HIDE_FARE),
    ("not_configured", "设备未配置", "Not configured", 0),
    ("read_failed", "请重新刷卡", "Tap again", 0),
    ("reader_fault", "读卡器故障", "Reader fault", 0),
    # shown as "tap again" until a text of its own is chosen (it needs no new glyphs)
    ("journal_full", "请重新刷卡", "Tap again", 0),
    ("deny_unpaid", "账户欠费", "Fare unpaid", 0),
    ("shift_on", "司机签到", "Driver on", HIDE_FARE),
    ("shift_off", "司机签退", "Driver off", HIDE_FARE),
    ("no_transit", "未开通交通功能", "No transit app", 0),
    ("card_locked", "卡应用已锁定", "Card locked", 0),
    ("card_blocked", "卡已冻结", "Card blocked", 0),
)

# Concession labels by taprec C_* code, and the mark of a provisional fare.
CONCESSIONS = (("", ""), ("老年半价", "Senior half"), ("老年免费", "Senior free"),
               ("残疾人", "Disabled"), ("陪同人员", "Companion"), ("优抚对象", "Military care"),
               ("现役军人", "Soldier"), ("消防救援", "Fire rescue"), ("儿童", "Child"))
PROVISIONAL = ("暂定", "provisional")


def decision(kind, msg):
    return kind | msg << KIND_BITS


def kind_of(d):
    return d & KIND_MASK


def msg_of(d):
    return d >> KIND_BITS


def key(msg):
    """The message's name for logs (not for the tap path)."""
    return MESSAGES[msg][0]


def texts():
    """Every Chinese text the device can display (the glyph builder's input)."""
    out = [m[1] for m in MESSAGES]
    out += [c[0] for c in CONCESSIONS]
    out.append(PROVISIONAL[0])
    return out
