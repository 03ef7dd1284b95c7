# What holds the firmware's heap: the census behind `ykt sim --heap-report`
# (docs/runtime.md, "Heap census").
#
# Taken by vhw.heapbudget right after a collection that found a new live
# high-water mark, so it describes the heap at its fullest. It walks the
# objects the firmware holds, from two kinds of roots:
# - each attribute of the App (reader, journal, decider, sync, ...): the
#   holder is that part;
# - each firmware module's globals (its "module RAM": the globals dict,
#   function and class objects a frozen module still makes on the heap).
# An object reached from two holders counts once, for the first one walked
# (the App's parts come first). The walk stops at objects of the simulator's
# own classes (fake machine, PN532, flash): they are not on the device.
#
# A firmware module's RAM is measured, not estimated, when the import meter
# ran (meter(), installed by vhw.heapbudget before any firmware import):
# gc.mem_alloc after minus before each first import, collected, less the
# modules that import pulled in.
# Other sizes are estimates on MicroPython (object layouts of py/obj*.h, rounded
# to the GC block: 16 bytes on a 32-bit port, 32 on 64-bit) and
# sys.getsizeof on CPython. The census also gives the measured figure
# (heapbudget's live bytes) and what the walk did not reach ("unwalked":
# closures' cells, bound methods' objects, allocator slack, code compiled
# on the heap), so the estimate can be checked against the truth.
import sys

W = 4 if sys.maxsize < 2 ** 32 else 8
CPY = sys.implementation.name != "micropython"
_BLOCK = 4 * W
KINDS = ("tables", "buffers", "download bodies", "strings", "code", "objects", "peripherals", "other")
_BODY_NAMES = ("body", "_body", "dl", "download", "_dl")   # attribute names that hold a download in flight
_PRIMES = (0, 2, 4, 6, 8, 10, 12, 17, 23, 29, 37, 47, 59, 73, 97, 127, 167, 223, 293, 389, 521, 691, 919,
           1223, 1627, 2161, 2873, 3821, 5087, 6779)

_byte_types = (bytes, bytearray, memoryview)
try:
    import array

    _byte_types += (array.array,)
except ImportError:
    pass


def _blk(n):
    return (n + _BLOCK - 1) // _BLOCK * _BLOCK


def _map(n):
    """A hash table of n entries: MicroPython sizes it at the next prime."""
    for p in _PRIMES:
        if p > n:
            return _blk(p * 2 * W)
    return _blk(n * 3 * W)


def _fw_type(t):
    m = getattr(t, "__module__", "") or ""
    return m == "ykt" or m.startswith("ykt.")


_heap = None
module_bytes = {}   # firmware module -> heap its import took (the meter)
_depth = [0]


def meter():
    """Measure the heap each firmware module's first import takes."""
    import builtins
    import gc

    if not hasattr(gc, "mem_alloc") or getattr(builtins.__import__, "_ykt_meter", False):
        return
    orig = builtins.__import__
    nested = [0]

    def imp(name, *a):
        new = (name == "ykt" or name.startswith("ykt.")) and name not in sys.modules
        if not new:
            return orig(name, *a)
        gc.collect()
        a0 = gc.mem_alloc()
        outer = nested[0]
        nested[0] = 0
        try:
            return orig(name, *a)
        finally:
            gc.collect()
            d = gc.mem_alloc() - a0
            module_bytes[name] = module_bytes.get(name, 0) + d - nested[0]
            nested[0] = outer + d

    imp._ykt_meter = True
    try:
        builtins.__import__ = imp
    except (AttributeError, TypeError):
        pass


def _heap_window():
    """(lo, hi) addresses the GC heap can span: an object outside is an
    immediate (small int, interned string) or lives in the image (a frozen
    module's constants), and takes no heap."""
    import gc

    probe = id(bytearray(1))
    n = gc.mem_alloc() + gc.mem_free()
    return probe - n, probe + n


def on_heap(o):
    if CPY:
        return True
    i = id(o)
    return not (i & 3) and _heap[0] <= i <= _heap[1]


def size_of(o):
    """Estimated heap bytes of o itself (not what it refers to)."""
    if CPY:
        try:
            return sys.getsizeof(o)
        except TypeError:
            return 0
    if not on_heap(o):
        return 0
    t = type(o)
    if t is bytearray:
        return _blk(4 * W) + _blk(len(o))
    if t is bytes or t is str:
        return _blk(4 * W) + _blk(len(o) + 1) if len(o) else 0
    if t is memoryview:
        return _blk(4 * W)
    if t is list:
        return _blk(4 * W) + _blk(len(o) * W)
    if t is tuple:
        return _blk((2 + len(o)) * W) if len(o) else 0
    if t is dict:
        return _blk(3 * W) + _map(len(o))
    if t is set or t is frozenset:
        return _blk(3 * W) + _map(len(o)) // 2
    if t is int:
        return _blk(4 * W) if not (-(1 << 30) <= o < (1 << 30)) else 0
    if t is float:
        return _blk(3 * W)
    if t is type:
        return _blk(12 * W) + _map(len(o.__dict__))
    n = t.__name__
    if n == "function":
        return _blk(4 * W)
    if n == "closure" or n == "bound_method":
        return _blk(4 * W)
    if n == "module":
        return _blk(2 * W) + _map(len(o.__dict__))
    if n == "generator":
        return _blk(12 * W)
    if t is getattr(sys.modules.get("array"), "array", None):
        return _blk(4 * W) + _blk(len(o) * 4)
    d = getattr(o, "__dict__", None)
    if d is not None:
        return _blk(3 * W) + _map(len(d))
    return _blk(2 * W)


def kind_of(o, name):
    t = type(o)
    if t in _byte_types:
        if name in _BODY_NAMES:
            return "download bodies"
        return "strings" if t is bytes else "buffers"
    if t is str:
        return "strings"
    if t in (dict, list, tuple, set, frozenset):
        return "tables"
    if t is type:
        return "code"
    n = t.__name__
    if n in ("function", "closure", "bound_method", "module", "generator", "builtin_function_or_method",
             "method"):
        return "code"
    if t is int or t is float:
        return "other"
    return "objects"


def _children(o):
    """(attribute name, child) pairs of o, or () for a leaf."""
    t = type(o)
    if t in _byte_types or t is str or t is int or t is float:
        return ()
    if t is dict:
        out = []
        for k, v in o.items():
            out.append((None, k))
            out.append((k if type(k) is str else None, v))
        return out
    if t in (list, tuple, set, frozenset):
        return [(None, v) for v in o]
    if t is type:
        if not _fw_type(o):
            return ()
        return [(k, v) for k, v in o.__dict__.items()]
    n = t.__name__
    if n == "module":
        return ()     # modules are roots of their own
    d = getattr(o, "__dict__", None)
    if d is not None and (_fw_type(t) or t.__name__ in ("function",)):
        if n == "function":
            return ()
        return list(d.items())   # its class is module RAM, walked from the module
    return ()


bursts = {}   # "part" or "part:kind" -> most one call allocated (garbage included)


def _label(part):
    n = type(part).__name__
    hs = getattr(part, "handlers", None)   # Sync: the kind it is downloading
    if hs is not None and getattr(part, "state", 0):
        try:
            n += ":" + hs[part._i].name
        except (AttributeError, IndexError):
            pass
    return n


def meter_parts(app):
    """What each loop part allocates within one call: the transients the live
    census cannot see (a download held in RAM, a parse). Wraps the steps of
    the network parts and the tap path once per App."""
    import gc

    if not hasattr(gc, "mem_alloc") or getattr(app, "_ykt_metered", False) or not app._net:
        return
    app._ykt_metered = True

    def wrap(obj, attr, fixed=None):
        orig = getattr(obj, attr)

        def f(*a):
            lab = fixed or _label(obj)
            a0 = gc.mem_alloc()
            r = orig(*a)
            d = gc.mem_alloc() - a0
            if d > bursts.get(lab, 0):
                bursts[lab] = d
            return r

        setattr(obj, attr, f)

    for part in app._net:
        wrap(part, "step")
    wrap(app, "on_card", "tap")


def _mark(stack, seen):
    while stack:
        _, o, _ = stack.pop()
        if id(o) in seen or type(o).__name__ == "module":
            continue
        t = type(o)
        if not (t in (dict, list, tuple, set, frozenset, type) or _fw_type(t)) or (t is type and not _fw_type(o)):
            seen[id(o)] = 1
            continue
        seen[id(o)] = 1
        stack.extend((None, c, None) for _, c in _children(o))


def take(app, measured):
    """The census: {"measured_bytes", "walked_bytes", "unwalked_bytes",
    "by_holder": {holder: bytes}, "by_kind": {kind: bytes},
    "top": [[holder, kind, bytes], ...] the ten largest (holder, kind) pairs,
    "big": [[path, kind, bytes], ...] the ten largest single objects,
    "transients": {part: most one call allocated} (meter_parts)}."""
    global _heap
    if not CPY:
        _heap = _heap_window()
    seen = {}
    by_holder = {}
    by_kind = {}
    pairs = {}
    big = []
    roots = []
    if app is not None:
        roots.append(("app", app, False))
        # named parts first; private lists of them (_net) after
        for k in sorted(app.__dict__, key=lambda k: (k[0] == "_", k)):
            roots.append(("app." + k, app.__dict__[k], True))
    for name in sorted(sys.modules):
        if name == "ykt" or name.startswith("ykt."):
            roots.append(("module " + name, sys.modules[name], True))
    seen[id(sys.modules)] = 1
    for holder, root, deep in roots:
        stack = [(None, root, holder)]
        if not deep:   # the App object itself; its parts are holders of their own
            s = size_of(root)
            seen[id(root)] = 1
            by_holder[holder] = by_holder.get(holder, 0) + s
            by_kind["objects"] = by_kind.get("objects", 0) + s
            continue
        if type(root).__name__ == "module":
            measured_m = module_bytes.get(holder[7:])
            s = measured_m if measured_m is not None else size_of(root)
            seen[id(root)] = 1
            by_holder[holder] = by_holder.get(holder, 0) + s
            by_kind["code"] = by_kind.get("code", 0) + s
            pk = holder + "\0code"
            pairs[pk] = pairs.get(pk, 0) + s
            stack = [(k, v, holder + "." + k) for k, v in root.__dict__.items()]
            if measured_m is not None:   # its globals are in the measured figure: mark them, count none
                _mark(stack, seen)
                continue
        while stack:
            name, o, path = stack.pop()
            i = id(o)
            if i in seen:
                continue
            t = type(o)
            if not (t in _byte_types or t in (str, dict, list, tuple, set, frozenset, int, float, type)
                    or _fw_type(t) or t.__name__ in ("function", "closure", "bound_method", "generator")):
                # A simulator object (a peripheral the board layer made: on
                # the device a native object of about this size), counted
                # itself but not walked: behind it is the simulated chip.
                seen[i] = 1
                s = size_of(o) if on_heap(o) and hasattr(o, "__dict__") else 0
                if s:
                    by_holder[holder] = by_holder.get(holder, 0) + s
                    by_kind["peripherals"] = by_kind.get("peripherals", 0) + s
                    pk = holder + "\0peripherals"
                    pairs[pk] = pairs.get(pk, 0) + s
                continue
            if t is type and not _fw_type(o):
                continue
            seen[i] = 1
            if not on_heap(o):
                continue   # in the image with everything it refers to
            s = size_of(o)
            if s:
                k = kind_of(o, name)
                by_holder[holder] = by_holder.get(holder, 0) + s
                by_kind[k] = by_kind.get(k, 0) + s
                pk = holder + "\0" + k
                pairs[pk] = pairs.get(pk, 0) + s
                if s >= 512:
                    big.append([path, k, s])
            for cn, c in _children(o):
                if id(c) not in seen:
                    stack.append((cn, c, path + "." + cn if cn else path))
    walked = sum(by_holder.values())
    top = sorted(([p.split("\0")[0], p.split("\0")[1], v] for p, v in pairs.items()), key=lambda r: -r[2])[:10]
    big.sort(key=lambda r: -r[2])
    return {"measured_bytes": measured, "walked_bytes": walked, "unwalked_bytes": measured - walked,
            "estimate": "sys.getsizeof" if CPY else "layout-%dbit" % (8 * W),
            "by_holder": dict(sorted(by_holder.items(), key=lambda kv: -kv[1])),
            "by_kind": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])),
            "top": top, "big": big[:10],
            "transients": dict(sorted(bursts.items(), key=lambda kv: -kv[1]))}

