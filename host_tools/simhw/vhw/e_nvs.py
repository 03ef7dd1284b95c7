# Part of the host's fake `esp32` module (see esp32.py): NVS. Portable.
from vhw import chip as _chip
from esp32 import _err


# --- NVS ---------------------------------------------------------------------

_NVS_CAP = 3 * 126 * 32  # entries of 32 bytes in a 16 KiB partition, one page spare


def _nvs_used(c):
    used = 0
    seen = {}
    for src in (c.nvs, c.nvs_pending):
        for ns, kv in src.items():
            for k, v in kv.items():
                seen[(ns, k)] = v
    for v in seen.values():
        if v is None:
            continue
        used += 32 if type(v) is int else 32 + ((len(v) + 31) // 32) * 32
    return used


class NVS:
    def __init__(self, namespace):
        if not namespace or len(namespace) > 15:
            _err(0x1108)
        self._ns = namespace

    def _key(self, key):
        if len(key) > 15:
            _err(0x1109)
        return key

    def _get(self, key):
        c = _chip.get()
        pend = c.nvs_pending.get(self._ns)
        if pend is not None and key in pend:
            return pend[key]
        return c.nvs.get(self._ns, {}).get(key)

    def _set(self, key, v):
        c = _chip.get()
        pend = c.nvs_pending.setdefault(self._ns, {})
        old = pend.get(key, c.nvs.get(self._ns, {}).get(key))
        pend[key] = v
        if v is not None and _nvs_used(c) > _NVS_CAP:
            pend[key] = old
            _err(0x1105)

    def set_i32(self, key, value):
        self._key(key)
        if not (-0x80000000 <= value <= 0x7FFFFFFF):
            raise OverflowError("overflow converting long int to machine word")
        self._set(key, int(value))

    def get_i32(self, key):
        v = self._get(self._key(key))
        if type(v) is not int:
            _err(0x1102)
        return v

    def set_blob(self, key, value):
        self._key(key)
        if isinstance(value, str):
            value = value.encode()
        self._set(key, bytes(value))

    def get_blob(self, key, buffer):
        v = self._get(self._key(key))
        if v is None or type(v) is int:
            _err(0x1102)
        if len(buffer) < len(v):
            _err(0x110C)
        buffer[:len(v)] = v
        return len(v)

    def erase_key(self, key):
        if self._get(self._key(key)) is None:
            _err(0x1102)
        _chip.get().nvs_pending.setdefault(self._ns, {})[key] = None

    def commit(self):
        c = _chip.get()
        pend = c.nvs_pending.pop(self._ns, None)
        if pend:
            ns = c.nvs.setdefault(self._ns, {})
            for k, v in pend.items():
                if v is None:
                    ns.pop(k, None)
                else:
                    ns[k] = v
