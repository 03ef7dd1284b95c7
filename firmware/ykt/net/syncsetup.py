# The downloadable kinds as a table: for each, where it lives, the owner's
# parser that validates it, and how it goes live. The signature, kind, scope
# and version checks happen in ykt.net.sync/ykt.sec.signed before commit();
# here the owner's parser must accept the payload before anything is written,
# the switch is atomic (ykt.fs.replace_file, or the deny list's two slots),
# and the new object goes live only after it loaded. Any exception leaves the
# last good copy in force; sync records the reason.
#
# make_sync() takes what it needs, not the App: the http client and device
# credentials, the deny list, an error sink err(where, exc) and a swap
# callback swap(kind, obj) that puts a new table in force.
import json
import os

from ykt.sec import signed
from ykt.net import sync
from ykt.sec import sigverify
from ykt.compat import read_file
from ykt.fs import TMP, join, replace_file

_VERSIONS = "data/versions.json"
_DELTA = "data/dl_delta.bin"
_DELTA_MAX = 8192


def _fares(b):
    from ykt.rules import fares

    return fares.FareTable(b)


def _catalog(b):
    from ykt.rules import catalog

    return catalog.Catalog(b)


def _ents(b):
    from ykt.rules import fares

    return fares.Entitlements(b)


# Settings a signed config download may change (the rest of config.json -
# device id, back-office URL, Wi-Fi - stays with provisioning). They apply
# from the next boot (App.boot lays data/config.json over config.json).
SETTINGS = ("sync_interval_s", "heartbeat_s", "batch_max", "batch_age_s", "ota_check_s", "qr_tol_s")


def parse_config(b):
    d = json.loads(b)
    if type(d) is not dict:
        raise ValueError("config: not an object")
    for k in d:
        v = d[k]
        if k not in SETTINGS or type(v) is not int or not 0 < v <= 604800:
            raise ValueError("config: %s" % k)
    return d


# One row per kind that lives in a file:
#   (kind, file under the root, parse(bytes) -> the object that goes live, largest payload)
# How each goes live: "keys" replaces the shared keyring in place
# (sync.KeysHandler, which also refuses a ring that would lock the device
# out); the tables and the config are handed to swap(kind, obj). The deny list has no file:
# it streams into its free slot (DenyListHandler below).
FILES = (
    ("keys", "data/keys.bin", sigverify.parse_keys, sigverify.KEYS_MAX),
    ("fares", "data/fares.bin", _fares, 32768),
    ("catalog", "data/catalog.bin", _catalog, 32768),
    ("entitlements", "data/ents.bin", _ents, 1 << 18),
    ("config", "data/config.json", parse_config, 4096),
)
TABLES = ("fares", "catalog", "entitlements")
LIVE = TABLES + ("config",)    # kinds handed to swap() once on flash


def _row(kind):
    for r in FILES:
        if r[0] == kind:
            return r
    raise ValueError("no file kind %s" % kind)


def path(root, kind):
    return join(root, _row(kind)[1])


def load(root, kind):
    """The kind's object from its file, parsed as a download would be (boot).
    Raises OSError (no file) or ValueError (refused by its parser)."""
    r = _row(kind)
    return r[2](read_file(join(root, r[1]), r[3]))


class Versions:
    """Versions held per kind, persisted after each switch. A crash between
    the switch and this write costs one repeated download, never a rollback
    (the payload on flash is at least as new as what is recorded)."""

    def __init__(self, root):
        self.path = join(root, _VERSIONS)
        self.v = {}
        try:
            d = json.loads(read_file(self.path, 2048, False))
            for k in d:
                if type(d[k]) is int:
                    self.v[k] = d[k]
        except (OSError, ValueError):
            pass

    def get(self, k):
        return self.v.get(k, 0)

    def set(self, k, ver):
        self.v[k] = ver
        replace_file(self.path, json.dumps(self.v).encode())


class FileHandler(sync.Handler):
    """A kind that lives in one file (a FILES row): validate with its parser,
    replace the file, then live(kind, obj) puts the object in force."""

    def __init__(self, row, root, live, versions):
        kind, fname, parse, max_len = row
        super().__init__(kind, max_len)
        self.path = join(root, fname)
        self.parse = parse
        self.live = live
        self.versions = versions
        self.ver = versions.get(kind)

    def open(self):
        # Streamed to flash as it arrives, not held in RAM: read back once, at
        # its size, after the signature checked. A cut download leaves a .tmp
        # that boot removes (remove_leftovers).
        return open(self.path + TMP, "wb")

    def abort(self, sink):
        if sink is not None:
            sink.close()
        try:
            os.remove(self.path + TMP)
        except OSError:
            pass

    def commit(self, hdr, sink, payload):
        """sink: the file open() made; None: the payload is in RAM."""
        if sink is None:
            sink = self.open()
            sink.write(payload)
        sink.close()                      # MicroPython: close syncs the file
        tmp = self.path + TMP
        obj = self.parse(read_file(tmp, self.max_len))   # raises on a bad table: nothing changes
        os.rename(tmp, self.path)         # the switch, atomic as in replace_file
        self.live(self.name, obj)
        self.ver = hdr.version
        self.versions.set(self.name, hdr.version)


class _DLSink:
    """Streams a full image into the deny list's free slot; keeps a delta in
    RAM. The payload's magic decides which, so the first bytes are held until
    four have arrived (a network read may split them)."""

    def __init__(self, dl):
        self.dl = dl
        self.mode = None
        self.buf = bytearray()

    def write(self, mv):
        if self.mode is None:
            self.buf.extend(mv)
            if len(self.buf) < 4:
                return
            mv = self.buf
            if bytes(mv[0:4]) == b"YKDD":
                self.mode = "delta"
                return
            self.mode = "image"
            self.buf = None
            self._image(self.dl.begin_update)
        if self.mode == "delta":
            if len(self.buf) + len(mv) > _DELTA_MAX:
                raise OSError("delta too large")
            self.buf.extend(mv)
        else:
            self._image(self.dl.write, mv)

    def _image(self, fn, *a):
        from ykt.rules.dlformat import DenyListError

        try:
            fn(*a)
        except DenyListError as e:   # sync reports OSErrors from a sink as refusals
            raise OSError("denylist " + e.code)


def merge_delta(dl, held, data):
    """The back office sends changes since the version the device holds; the
    deny list keeps one cumulative delta since its image. Merge them (later
    statuses win; a restored card, status 0, stays listed as 0 so it
    overrides the image)."""
    from ykt.rules import dlformat as F

    base, ver, n, created = F.parse_delta(data)
    if base == dl.image_version or held is None:
        return data
    if base != dl.version:
        raise ValueError("delta base %d, held %d" % (base, dl.version))
    entries = {}
    for src in (held, data):
        _b, _v, cnt, _c = F.parse_delta(src)
        o = F.DELTA_HDR
        for i in range(cnt):
            entries[bytes(src[o:o + 8])] = src[o + 8]
            o += F.DELTA_REC
    return F.pack_delta(dl.image_version, ver, [(t, entries[t]) for t in sorted(entries)], created)


class DenyListHandler(sync.Handler):
    def __init__(self, dl, root):
        super().__init__("denylist", 1 << 22, (signed.K_DENYLIST, signed.K_DENYLIST_DELTA))
        self.dl = dl
        self.delta_path = join(root, _DELTA)
        # A delta survives reboots on flash and is applied again on top of the image.
        # One for another image (a cut between an image's commit and the old
        # delta's removal) is stale: the image in force already holds it.
        from ykt.rules.dlformat import DenyListError

        self.held = None
        try:
            held = read_file(self.delta_path, _DELTA_MAX)
        except OSError:
            return
        try:
            dl.apply_delta(held)
            self.held = dl.delta_bytes   # the deny list's own copy: one in RAM, not two
        except (ValueError, DenyListError):
            try:
                os.remove(self.delta_path)
            except OSError:
                pass

    def version(self):
        return self.dl.version

    def open(self):
        return _DLSink(self.dl)

    def abort(self, sink):
        if sink is not None and sink.mode == "image":
            self.dl.abort()

    def commit(self, hdr, sink, payload):
        if sink.mode == "image":
            self.dl.commit()
            self.held = None
            try:
                os.remove(self.delta_path)
            except OSError:
                pass
        else:
            data = merge_delta(self.dl, self.held, bytes(sink.buf))
            self.dl.apply_delta(data)
            data = self.dl.delta_bytes
            replace_file(self.delta_path, data)
            self.held = data


def make_sync(root, http, device_id, key, clock, denylist, swap, err, interval_s=60):
    """The Sync service, or None when the device has no trusted keys (err is
    told why). swap(kind, obj): a new table (a TABLES kind) is on flash and
    parsed; put it in force. err(where, exc): the error sink."""
    try:
        ring = load(root, "keys")
    except (OSError, ValueError) as e:
        err("keys", e)
        return None
    vers = Versions(root)
    kpath = path(root, "keys")

    def persist(payload, ver):
        replace_file(kpath, payload)
        vers.set("keys", ver)

    handlers = [sync.KeysHandler(ring, vers.get("keys"), persist)]
    if denylist is not None:
        handlers.append(DenyListHandler(denylist, root))
    for row in FILES:
        if row[0] in LIVE:
            handlers.append(FileHandler(row, root, swap, vers))
    return sync.Sync(http, device_id, key, ring, handlers, clock=clock, interval_s=interval_s)
