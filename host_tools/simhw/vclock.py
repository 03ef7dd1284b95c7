# The simulator's single time source. Firmware reaches it through ykt.compat,
# simulated peripherals and the fake machine module call it directly, so a day
# of traffic runs in seconds and nothing depends on the wall clock.
# Portable: runs under CPython and the MicroPython unix port.

# MicroPython's ticks wrap at 2**30 on every port. On a 32-bit port 2**30 is
# already a big int (small ints are 31-bit signed), so the tick functions work
# with the mask and half period, which are small, and never build a big int
# from small-int arguments: firmware calls them with the heap locked, as on
# the device. True time (_now_us) may grow big; only the simulator uses it.
_TICKS_MASK = 0x3FFFFFFF
_TICKS_HALF = 0x20000000

_now_us = 0
_epoch0 = 1795000000  # 2026-11-17 UTC; tests may move it
_events = []  # sorted list of [due_us, seq, fn]
_seq = 0
_ticks_ms_offset = 0
_tms = 0   # ticks_ms() and ticks_us() now, wrapped; updated whenever time moves
_tus = 0


def _retick():
    global _tms, _tus
    _tms = (_now_us // 1000 + _ticks_ms_offset) & _TICKS_MASK
    _tus = (_now_us + _ticks_ms_offset * 1000) & _TICKS_MASK


class DeviceReset(BaseException):
    """Raised through firmware when the virtual device resets (WDT, power cut,
    machine.reset). BaseException so that firmware `except Exception` cannot
    swallow it, just as nothing survives a real reset."""

    def __init__(self, cause, detail=""):
        super().__init__(cause, detail)
        self.cause = cause
        self.detail = detail


def reset(start_us=0, epoch=1795000000, ticks_offset_ms=0):
    global _now_us, _epoch0, _events, _seq, _ticks_ms_offset
    _now_us = start_us
    _epoch0 = epoch
    _events = []
    _seq = 0
    _ticks_ms_offset = ticks_offset_ms
    _retick()


def now_us():
    return _now_us


def now_ms():
    return _now_us // 1000


def schedule(delay_us, fn):
    """Run fn() once the clock passes now+delay_us. Returns a handle for cancel()."""
    global _seq
    _seq += 1
    ev = [_now_us + delay_us, _seq, fn]
    _insert(ev)
    return ev


def _insert(ev):
    # in (due, seq) order; compared field by field: no tuples, no allocation
    i = len(_events)
    while i > 0:
        p = _events[i - 1]
        if p[0] < ev[0] or (p[0] == ev[0] and p[1] < ev[1]):
            break
        i -= 1
    _events.insert(i, ev)


def reschedule(ev, delay_us):
    """Move a scheduled (or already fired) event to now+delay_us, reusing its
    handle: a watchdog fed every loop iteration allocates nothing, so the
    firmware's loop can be checked for allocations with the heap locked."""
    global _seq
    cancel(ev)
    _seq += 1
    ev[0] = _now_us + delay_us
    ev[1] = _seq
    _insert(ev)
    return ev


def cancel(ev):
    try:
        _events.remove(ev)
    except ValueError:
        pass


_realtime = False


def realtime(on=True):
    """Pace virtual time by the wall clock (a virtual device a person or
    mpremote talks to); tests and the simulator leave this off."""
    global _realtime
    _realtime = on


def advance_us(us):
    """Move time forward, firing due events in order at their own instants."""
    global _now_us
    if us < 0:
        raise ValueError("time runs forward")
    if _realtime and us >= 1000:
        import time as _t

        _t.sleep_ms(us // 1000) if hasattr(_t, "sleep_ms") else _t.sleep(us / 1e6)
    end = _now_us + us
    while _events and _events[0][0] <= end:
        ev = _events.pop(0)
        if ev[0] > _now_us:
            _now_us = ev[0]
            _retick()
        ev[2]()
    _now_us = end
    _retick()


def advance_to_us(t_us):
    if t_us > _now_us:
        advance_us(t_us - _now_us)


def next_event_us():
    return _events[0][0] if _events else None


# --- the MicroPython time API, on virtual time -------------------------------


def ticks_ms():
    return _tms


def ticks_us():
    return _tus


def ticks_add(ticks, delta):
    # ticks < 2**30 and |delta| < 2**29 (MicroPython's own limit) keep every
    # intermediate inside the small-int range.
    return (ticks + delta) & _TICKS_MASK


def ticks_diff(a, b):
    d = a - b
    if d >= _TICKS_HALF:
        return (d - _TICKS_MASK) - 1
    if d < -_TICKS_HALF:
        return (d + _TICKS_MASK) + 1
    return d


def sleep_ms(ms):
    advance_us(int(ms) * 1000)


def sleep_us(us):
    advance_us(int(us))


def time():
    return _epoch0 + _now_us // 1000000


def set_epoch(seconds):
    """RTC.datetime / settime on the virtual device moves wall time, not ticks."""
    global _epoch0
    _epoch0 = seconds - _now_us // 1000000
