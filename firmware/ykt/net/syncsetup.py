# Binds each downloadable kind to the module that owns it. The signature,
# kind, scope and version checks happen in ykt.net.sync/ykt.signed before commit();
# here each owner validates the payload with its own parser, switches
# atomically (ykt.fs.replace_file, or the deny list's two slots) and swaps the
# object the decider uses only after the new one loaded. Any exception leaves
# the last good copy in force; sync records the reason.
import json
import os

from ykt.sec import signed
from ykt.net import sync
from ykt.sec import sigverify
from ykt.compat import read_file
from ykt.fs import join, replace_file

_VERSIONS = "data/versions.json"
_DELTA = "data/dl_delta.bin"
_DELTA_MAX = 8192


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
    """A table that lives in one file: validate with load(bytes) -> object,
    then replace the file and hand the object to install(obj)."""

    def __init__(self, name, root, fname, parse, install, versions, max_len=32768):
        super().__init__(name, max_len)
        self.path = join(root, fname)
        self.parse = parse
        self.install = install
        self.versions = versions
        self.ver = versions.get(name)

    def commit(self, hdr, sink, payload):
        obj = self.parse(bytes(payload))    # raises on a bad table: nothing changes
        replace_file(self.path, payload)
        self.install(obj)
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
        self.held = None
        try:
            held = read_file(self.delta_path, _DELTA_MAX)
            dl.apply_delta(held)
            self.held = held
        except (OSError, ValueError):
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
            replace_file(self.delta_path, data)
            self.held = data


def load_keyring(root):
    return sigverify.parse_keys(read_file(join(root, "data/keys.bin"), 4200))


def make_sync(app, key):
    """The Sync service for an App, or None if the device has no trusted keys."""
    root = app.root
    try:
        ring = load_keyring(root)
    except (OSError, ValueError) as e:
        app._err("keys", e)
        return None
    vers = Versions(root)
    handlers = [sync.KeysHandler(ring, vers.get("keys"),
                                 lambda payload, ver: (replace_file(join(root, "data/keys.bin"), payload),
                                                       vers.set("keys", ver)))]
    if app.denylist is not None:
        handlers.append(DenyListHandler(app.denylist, root))
    from ykt.rules import catalog
    from ykt.rules import fares

    def _set(attr):
        def install(obj):
            if app.decider is not None:
                setattr(app.decider, attr, obj)
            else:
                app._load_tables()   # the first complete set makes the device able to decide
        return install

    handlers.append(FileHandler("fares", root, "data/fares.bin", fares.FareTable, _set("fares"), vers))
    handlers.append(FileHandler("catalog", root, "data/catalog.bin", catalog.Catalog, _set("catalog"), vers))
    handlers.append(FileHandler("entitlements", root, "data/ents.bin", fares.Entitlements,
                                _set("entitlements"), vers, max_len=1 << 18))
    return sync.Sync(app.http, app.device_id, key, ring, handlers, clock=app.clock,
                     interval_s=app.cfg.get("sync_interval_s", 60))
