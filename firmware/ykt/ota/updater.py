# Over-the-air updates, as a bounded non-blocking state machine stepped from
# the main loop (like ykt.net.sync): every step() does one HTTP step, or
# reads/writes at most _IO bytes of flash, and returns. The download is a
# signed envelope (ykt.sec.signed, version = ver_int(), key usage U_RELEASES)
# of one of two kinds, dispatched on the envelope's kind:
#   K_RELEASE   an application bundle: the ykt package, into an A/B slot
#               (otaboot), for boards that load the application from flash
#   K_FIRMWARE  a whole firmware image (interpreter + frozen application) into
#               the next ESP32 OTA app partition (ykt.ota.image), for boards
#               without PSRAM that run frozen code; needs the board layer's
#               esp32.Partition (part=), else it is refused as wrong_kind
#
#   IDLE -> OFFER     GET /v1/ota/offer?have=V&board=B&st=S[&rb=R]  (X-YKT-Auth)
#                     204: nothing; 200: {"version","size","url"} (<= 512 B JSON)
#   -> DOWNLOAD       GET url with "Range: bytes=<have>-" appended to ota/dl.part
#                     (206 resumes, 200 restarts); interrupted -> resumes later,
#                     even after a reboot (ota/dl.json says which download it is)
#   -> VERIFY         ota/dl.part streamed through ykt.sec.signed.Reader: version
#                     > running, size bound, signed by a release key; nothing is
#                     installed unless it verifies. An image is written into the
#                     partition in the same pass (ImageWriter: it never boots
#                     unless the signature verified)
#   -> INSTALL        bundle: manifest checks (board, minimum interpreter,
#                     version), then the files are written into the slot that is
#                     NOT active (otaboot.install_slot) and the slot is staged
#                     (one rename); an image skips it (set_boot is done)
#   -> READY          reboot_wanted: the app resets at an idle moment; otaboot
#                     runs the new version on trial (self-check, rollback; an
#                     image that fails it is rolled back by the bootloader)
#
# Bundle = signed envelope (ykt.sec.signed, kind K_RELEASE, version = ver_int())
# whose payload is (built on the host by yktsrv.bundle; the Installer below is
# the device's parser):
#  off size field (little-endian)
#   0   4   magic "YKTB"
#   4   1   format (1)
#   5   1   board count B (0 = any board)
#   6   2   file count F
#   8   4   minimum interpreter version, major*10000 + minor*100 + micro
#  12  16   version string, ASCII, NUL-padded ("1.4.2")
#  28   .   B x (u8 length, board name)
#   .   .   F x (u8 length, path relative to the slot, u32 size, size bytes)
import os
import struct

from ykt.sec import signed
from ykt.sec import sigverify
from ykt.net import wire
from ykt.compat import const, ticks_ms, ticks_diff, ticks_add
from ykt.fs import join as _join, replace_file

K_RELEASE = signed.K_RELEASE    # the two OTA envelope kinds (defined with the others in ykt.sec.signed)
K_FIRMWARE = signed.K_FIRMWARE
MAGIC = b"YKTB"
FORMAT = const(1)
MAN_SIZE = const(28)
MAX_BUNDLE = 1536 * 1024       # bounds a bundle's payload (and the flash it takes)
MAX_IMAGE = 0x1F0000           # an interpreter image: the boards' OTA app partitions (boards/*.json);
                               # the image writer also checks the partition it writes to
MAX_DOWNLOAD = MAX_IMAGE + 8192    # any download: the larger payload plus header and signature
_IO = const(1024)              # flash bytes per step
_FLUSH = const(8192)           # download persisted at least this often
U_RELEASES = sigverify.U_RELEASES

IDLE = const(0)
OFFER = const(1)
DOWNLOAD = const(2)
VERIFY = const(3)
INSTALL = const(4)
READY = const(5)
NAMES = ("idle", "offer", "download", "verify", "install", "ready")
MAX_ERRORS = const(6)
PATH_OFFER = "/v1/ota/offer"


def ver_int(v):
    """'1.4.2' -> 1004002 (the envelope's u32 version); raises ValueError."""
    p = v.split(".")
    if not 1 <= len(p) <= 3:
        raise ValueError("version %s" % v)
    n = 0
    for i in range(3):
        x = int(p[i]) if i < len(p) else 0
        if not 0 <= x < 1000:
            raise ValueError("version %s" % v)
        n = n * 1000 + x
    if n == 0:
        raise ValueError("version 0")
    return n


def interp_int(t):
    return t[0] * 10000 + t[1] * 100 + (t[2] if len(t) > 2 else 0)


class OtaError(Exception):
    """code: one of the signed.SignedError codes, or wrong_board,
    interpreter_too_old, bad_manifest, bad_path, version_mismatch, flash."""

    def __init__(self, code, msg=""):
        super().__init__(code, msg)
        self.code = code


class _Null:
    def write(self, b):
        pass


def _rm(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def rmtree(path):
    """Remove a slot directory (bounded depth: the package layout)."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    for n in names:
        p = path + "/" + n
        if os.stat(p)[0] & 0x4000:
            rmtree(p)
        else:
            os.remove(p)
    try:
        os.rmdir(path)
    except OSError:
        pass


def _listing(path, out=None, depth=0):
    """Every entry under path, parents before children (pop() removes the
    children first); bounded: the slot holds one package."""
    if out is None:
        out = []
    try:
        names = os.listdir(path)
    except OSError:
        return out
    for n in names:
        p = path + "/" + n
        out.append(p)
        if depth < 3 and len(out) < 512 and os.stat(p)[0] & 0x4000:
            _listing(p, out, depth + 1)
    return out


def _mkdirs(path):
    cur = "/" if path.startswith("/") else ""
    for part in path.split("/"):
        if not part:
            continue
        cur = part if not cur else (cur + part if cur == "/" else cur + "/" + part)
        try:
            os.mkdir(cur)
        except OSError:
            pass


def check_path(p):
    """A slot path: relative, no .., letters, digits and ._-/ only (the
    host's bundle builder applies the same rule)."""
    if not p or p[0] == "/" or ".." in p or "//" in p:
        raise OtaError("bad_path", p)
    for c in p:
        if not (c.isalpha() or c.isdigit() or c in "._-/"):
            raise OtaError("bad_path", p)


class Installer:
    """Writes a verified bundle (the payload starting at `off` in `src`) into
    slot_dir, a bounded piece per step(); done when step() returns True."""

    def __init__(self, src, off, length, slot_dir, board, interp, version):
        self.f = open(src, "rb")
        self.f.seek(off)
        self.left = length
        self.dir = slot_dir
        self.buf = bytearray(_IO)
        self.out = None
        self.rem = 0
        self.files = 0
        hdr = self._read(MAN_SIZE)
        if bytes(hdr[:4]) != MAGIC or hdr[4] != FORMAT:
            raise OtaError("bad_manifest", "not a bundle")
        nb = hdr[5]
        self.nfiles, mi = struct.unpack_from("<HI", hdr, 6)
        vs = bytes(hdr[12:28]).rstrip(b"\x00").decode()
        if ver_int(vs) != version:
            raise OtaError("version_mismatch", vs)
        self.version = vs
        ok = nb == 0
        for _ in range(nb):
            n = self._read(1)[0]
            if self._read(n).decode() == board:
                ok = True
        if not ok:
            raise OtaError("wrong_board", "not for %s" % board)
        if interp is not None and interp < mi:
            raise OtaError("interpreter_too_old", "needs %d, have %d" % (mi, interp))
        # the inactive slot holds the last-but-one version: cleared one file
        # per step (a step must stay short: taps go on meanwhile)
        self._old = _listing(slot_dir)
        if not self._old:
            _mkdirs(slot_dir)

    def _read(self, n):
        if n > self.left:
            raise OtaError("bad_manifest", "payload ends early")
        b = self.f.read(n)
        if len(b) != n:
            raise OtaError("truncated", "bundle file short")
        self.left -= n
        return b

    def step(self):
        if self._old:
            p = self._old.pop()
            try:
                if os.stat(p)[0] & 0x4000:
                    os.rmdir(p)         # listed children first, so it is empty now
                else:
                    os.remove(p)
            except OSError:
                pass
            if not self._old:
                _mkdirs(self.dir)
            return False
        if self.out is None:
            if self.files == self.nfiles:
                if self.left:
                    raise OtaError("bad_manifest", "bytes after the last file")
                self.close()
                return True
            n = self._read(1)[0]
            p = self._read(n).decode()
            check_path(p)
            self.rem = struct.unpack("<I", self._read(4))[0]
            if self.rem > self.left:
                raise OtaError("bad_manifest", "file beyond the payload")
            full = self.dir + "/" + p
            if "/" in p:
                _mkdirs(full.rsplit("/", 1)[0])
            self.out = open(full, "wb")
        take = min(self.rem, _IO)
        mv = memoryview(self.buf)[:take]
        if self.f.readinto(mv) != take:
            raise OtaError("truncated", "bundle file short")
        self.left -= take
        self.out.write(mv)
        self.rem -= take
        if self.rem == 0:
            self.out.close()
            self.out = None
            self.files += 1
        return False

    def close(self):
        for f in (self.out, self.f):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self.out = None


class Updater:
    """Background updater. running: version string now running (default:
    otaboot's record, else ykt.VERSION). interp: this interpreter's version
    as interp_int (None = not checked, e.g. CPython). board: the board name.
    part: the esp32.Partition class when firmware images can be installed
    (board layer: Board.ota_partitions()), else None."""

    def __init__(self, http, device_id, key, keyring, root="", board="", interp=None,
                 clock=None, interval_s=900, running=None, max_bytes=MAX_DOWNLOAD, part=None):
        self.http = http
        self.device_id = device_id
        self.key = key
        self.keyring = keyring
        self.keys = sigverify.UsageKeys(keyring, U_RELEASES)   # only release keys sign an update
        self.root = root
        self.board = board
        self.interp = interp
        self.clock = clock
        self.interval_ms = interval_s * 1000
        self.max_bytes = max_bytes
        self.part = part
        self.image = None           # label of the partition an image was written to
        self._img = False
        import otaboot

        self.boot = otaboot
        st = otaboot.status(root)
        if running is None:
            from ykt import VERSION

            running = st["pending"] or st["version"] or VERSION
        self.running = running
        self.rolled_back = st["rolled_back"]
        self.trial = bool(st["pending"])
        self.state = IDLE
        self._due = ticks_ms()
        self.errors = []
        self.refused = 0            # version refused once: not fetched again
        self.offer = None
        self.got = 0
        self._f = None
        self._unflushed = 0
        self._reader = None
        self._inst = None
        self._buf = None            # made for a verification only: an idle updater holds no 1 KB buffer
        self.reboot_wanted = False
        self.dl = _join(root, "ota/dl.part")
        self.meta = _join(root, "ota/dl.json")
        self._resume_meta()

    # --- persistence of the download across reboots --------------------------
    def _resume_meta(self):
        import json

        try:
            with open(self.meta) as f:
                m = json.loads(f.read(512))
            if ver_int(m["version"]) > ver_int(self.running):
                self.offer = m
                return
        except (OSError, ValueError, KeyError, TypeError):
            pass
        self._discard()

    def _discard(self):
        self._close()
        _rm(self.dl)
        _rm(self.meta)
        self.offer = None

    def _close(self):
        if self._f is not None:
            try:
                self._f.close()
            except OSError:
                pass
            self._f = None

    def _error(self, code):
        if len(self.errors) >= MAX_ERRORS:
            self.errors.pop(0)
        self.errors.append(code)

    def request_now(self):
        self._due = ticks_ms()

    def _auth(self, path):
        t = self.clock.now() if self.clock is not None else 0
        return wire.sign_request(self.device_id, self.key, "GET", self.http.base + path, b"", t)

    def _idle(self, code=None, after_ms=None):
        if code is not None:
            self._error(code)
        self._close()
        self._buf = None
        self.http.release(self)
        self._due = ticks_add(ticks_ms(), self.interval_ms if after_ms is None else after_ms)
        self.state = IDLE

    # --- the step -------------------------------------------------------------
    def step(self):
        s = self.state
        if s == IDLE:
            if ticks_diff(ticks_ms(), self._due) >= 0:
                if self.offer is not None:
                    self._start_download()
                else:
                    self._start_offer()
        elif s == OFFER:
            self._poll_offer()
        elif s == DOWNLOAD:
            self._poll_download()
        elif s == VERIFY:
            self._verify_step()
        elif s == INSTALL:
            self._install_step()
        return self.state

    def _start_offer(self):
        if not self.http.acquire(self):
            return
        path = "%s?have=%s&board=%s&st=%s" % (PATH_OFFER, self.running, self.board,
                                             "trial" if self.trial else "ok")
        if self.rolled_back:
            path += "&rb=%s" % self.rolled_back[0]
        self.http.start("GET", path, (("X-YKT-Auth", self._auth(path)),), b"", None, 512)
        self.state = OFFER

    def _poll_offer(self):
        from ykt.net import httpc

        hp = self.http
        st = hp.step()
        if st != httpc.DONE and st != httpc.FAILED:
            return
        if st == httpc.FAILED:
            return self._idle("offer net")
        if hp.status != 200:
            return self._idle(None if hp.status in (204, 304) else "offer http %d" % hp.status)
        import json

        try:
            o = json.loads(bytes(hp.body))
            v = ver_int(o["version"])
            size = int(o["size"])
            url = o["url"]
            if not url.startswith("/") or not 0 < size <= self.max_bytes:
                raise ValueError("offer")
        except (ValueError, KeyError, TypeError):
            return self._idle("offer bad")
        if v <= ver_int(self.running) or v == self.refused:
            return self._idle()
        if self.rolled_back and self.rolled_back[0] == o["version"]:
            return self._idle()     # rolled back here once: wait for a newer one
        self.offer = {"version": o["version"], "size": size, "url": url}
        _mkdirs(_join(self.root, "ota"))
        _rm(self.dl)
        replace_file(self.meta, json.dumps(self.offer).encode())
        hp.release(self)
        self._start_download()

    def _start_download(self):
        if not self.http.acquire(self):
            self.state = IDLE
            return
        o = self.offer
        have = _size(self.dl)
        if have < 0:
            have = 0
        if have >= o["size"]:
            return self._begin_verify()
        self.got = have
        self._f = open(self.dl, "ab")
        self._unflushed = 0
        self._err = None
        self._first = True
        path = o["url"]
        hdrs = (("X-YKT-Auth", self._auth(path)), ("Range", "bytes=%d-" % have))
        self.http.start("GET", path, hdrs, b"", self._chunk, 0)
        self.state = DOWNLOAD

    def _chunk(self, mv):
        st = self.http.status
        if self._first:
            self._first = False
            if st == 200 and self.got:
                self._f.close()     # the server ignored Range: start over
                self._f = open(self.dl, "wb")
                self.got = 0
        if st != 200 and st != 206:
            self._err = "http %d" % st
            return False
        if self.got + len(mv) > self.offer["size"]:
            self._err = "too_large"
            return False
        try:
            self._f.write(mv)
        except OSError as e:
            self._err = "flash %s" % (e.args[0] if e.args else "")
            return False
        self.got += len(mv)
        self._unflushed += len(mv)
        if self._unflushed >= _FLUSH:
            self._f.flush()         # bounds what a power cut loses
            self._unflushed = 0
        return None

    def _poll_download(self):
        from ykt.net import httpc

        st = self.http.step()
        if st != httpc.DONE and st != httpc.FAILED:
            return
        self._close()               # close = sync: the part survives a reset
        if self._err is not None:
            if self._err == "too_large" or self._err == "http 416":
                self._discard()
            return self._idle("download " + self._err)
        if self.got < self.offer["size"]:
            # interrupted: resume soon from what reached flash
            return self._idle("download cut at %d" % self.got, 5000)
        self._begin_verify()

    # --- verification and install ---------------------------------------------
    def _begin_verify(self):
        """Dispatch on the envelope's kind (byte 5 of its header): an image goes
        through ykt.ota.image's writer, anything else must be a release."""
        self.http.release(self)
        self._f = open(self.dl, "rb")
        if self._buf is None:
            self._buf = bytearray(_IO)
        hdr = self._f.read(signed.HDR_SIZE)
        self._f.seek(0)
        have = ver_int(self.running)
        self._img = len(hdr) == signed.HDR_SIZE and hdr[5] == K_FIRMWARE and self.part is not None
        if self._img:
            from ykt.ota import image

            try:
                self._reader = image.ImageWriter(self.part, self.keyring, have, self.device_id)
            except OSError:
                return self._refuse("no_partition")
        else:
            self._reader = signed.Reader(self.keys, (K_RELEASE,), have, MAX_BUNDLE,
                                         self.device_id, _Null())
        self.state = VERIFY

    def _refuse(self, code):
        try:
            self.refused = ver_int(self.offer["version"]) if self.offer else 0
        except ValueError:
            pass
        self._reader = None
        if self._inst is not None:
            self._inst.close()
            self._inst = None
        self._discard()
        self._idle("refused " + code)

    def _verify_step(self):
        n = self._f.readinto(self._buf)
        try:
            if n:
                self._reader.feed(memoryview(self._buf)[:n])
                return
            if self._img:
                return self._image_done()
            hdr = self._reader.finish()
        except signed.SignedError as e:
            return self._refuse(e.code)
        except OSError as e:        # the image's partition: not an app image, too large, empty, flash
            return self._refuse("image %s" % (e.args[-1] if e.args else "flash"))
        self._close()
        self._buf = None
        self._reader = None
        self._hdr = hdr
        self._inst = None
        self.state = INSTALL        # the installer starts at the next step

    def _begin_install(self):
        hdr = self._hdr
        try:
            slot = self.boot.install_slot(self.root)
            self.boot.unstage(self.root, slot)   # a staged, not yet booted version goes
            self._slot = slot
            self._inst = Installer(self.dl, signed.HDR_SIZE, hdr.length,
                                   self.boot.slot_dir(self.root, slot), self.board,
                                   self.interp, hdr.version)
        except OtaError as e:
            return self._refuse(e.code)
        except (OSError, ValueError):
            return self._refuse("bad_manifest")
        self.state = INSTALL

    def _image_done(self):
        """The image is in the partition: verify the signature, then set_boot
        and otaboot's record (ImageWriter.finish). The bootloader runs it once
        on trial at the next reset."""
        self._close()
        self.image = self._reader.finish(self.root)
        self._reader = None
        self._discard()
        self.reboot_wanted = True
        self.state = READY

    def _install_step(self):
        if self._inst is None:
            return self._begin_install()
        try:
            if not self._inst.step():
                return
        except OtaError as e:
            return self._refuse(e.code)
        except (OSError, ValueError) as e:
            return self._refuse("flash" if isinstance(e, OSError) else "bad_manifest")
        v = self._inst.version
        self._inst = None
        self.boot.stage(self.root, self._slot, v)   # the one atomic switch
        self._discard()
        self.reboot_wanted = True
        self.state = READY

    def status(self):
        return {"st": NAMES[self.state], "run": self.running, "got": self.got,
                "err": self.errors[-2:], "rb": self.rolled_back}


class _NoNet:
    base = ""

    def release(self, owner):
        pass


def install_file(path, keyring, root="", board="", interp=None, running=None, device_id=0):
    """Verify and install a bundle already on flash (USB install by a
    technician: `ykt deploy --bundle`), with exactly the checks of an OTA
    download. -> {"ok", "version", "err"}; on ok the slot is staged and the
    next boot runs it on trial. The file is removed either way."""
    u = Updater(_NoNet(), device_id, b"", keyring, root, board, interp, running=running)
    u.dl = path
    u.offer = {"version": "?", "size": _size(path), "url": "/"}
    u._begin_verify()
    n = 0
    while u.state == VERIFY or u.state == INSTALL:
        u.step()
        n += 1
    return {"ok": u.state == READY, "version": otaboot_version(root) if u.state == READY else "",
            "err": u.errors[-1:]}


def otaboot_version(root):
    import otaboot

    return otaboot.status(root)["pending"]
