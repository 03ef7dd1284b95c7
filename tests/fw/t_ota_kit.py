# Helpers for the OTA tests (portable: CPython and MicroPython). No test_
# functions here. Builds signed application bundles on the device runtime
# itself (RSA signing is one pow() with C big integers), serves them through
# a stateful fake of ykt.net.httpc's interface (Range, cuts, offers), and boots
# virtual devices through otaboot exactly as firmware/main.py does.
import binascii
import hashlib
import json
import os
import struct
import sys

import vclock
import otaboot
from ykt.ota import updater as ota
from ykt.sec import sigverify
from ykt.sec import signed
from yktsrv import bundle

DEV = 77
KEY = b"\x5a" * 32
FW = "firmware/ykt"
# per process: CPython and MicroPython runs of these tests go in parallel
SCRATCH = "/tmp/ykt-ota-" + binascii.hexlify(os.urandom(4)).decode()
INTERP = ota.interp_int((1, 22, 0))

# Test-only RSA-2048 keys (never used outside tests): REL signs releases,
# DL signs downloads (deny lists, fares) and must NOT be able to sign a release.
REL_N = (
    "9b80c27a13136181603bc151a49441d2bf6b66fbd52c2ffe2bb4c766bea4abd567c7fb741f83ef99ed10047b4098945d"
    "f887baf74c2ccec990e25b8e8865dc4a23cbe6b685f5eebdf2f21c31c4745dd9026f635efd7f2d5f23bd09a8df152be0"
    "654032b186eb7e8ced77be93e9ec06906d8576fd4d1ffad0b278beafdacac7467509fb49a2e88c86fd3fd86dbd665b6c"
    "636f2ddfb5e32796f13214a2241fe3b88f84e48b8b17aa361f79777271ba0dfd610b7b4f5b654cc6967cbac7ec2f5001"
    "ff547f4c85d89fd42e2a1cc1bbf943b23f2e28e1a785aeb5beb70905c744d093d999a818b7e495dcacae58bbfe17bf55"
    "40d783311d5a28b6c7ecec3d575cdd6d")
REL_D = (
    "049bb8125d0eb07a35e0b4cb176e56005f05844b9c96cecf4b4ff40427f72cfe748663d31e51f9ca47d10c88f33247b1"
    "fc8e57d741f87bf7a8e5af0d40c93552347b08ef1f762e7e8e3cbd8d7e0318258e61c0574d7a34dd2d1674e5a9181c06"
    "4389e256b4d1b572360c06924f4186df9b2c9ede4528584afcac565e536f64a0b691357f52b60bd255a9c6242f2c10bc"
    "e80e2c73f58b651b2da92fd50840e66cc4d092e1649e83d028c33cf28c135a1756ad57697b5be341e85f2af76f568b81"
    "395d047bf3fd5a2acce721f23903513366855a013fff18007707cfbdde9914c3cf25364317e9c68498dcd4e4e3cd5c57"
    "c1b7cc0e163249a4d2ae89137308c583")
DL_N = (
    "b041b4562548a71f093936a10731676c4867f5dcb748e073b8534a90475272e47470b52f967bc5a7ff519ce045dde5f1"
    "4d26f394b850e9c57ef76e3d869d8d75c9be0e9274a95ce6cb7fc694809427ae25f8d3a88a53134bd41c982bca5c5498"
    "a35dd7eaac02aa92f8391286deef4d97342d1a494ae0c9519c0896d48f04c0ad7874f32cf2ae716897bec5a53521fb51"
    "a46b6fd36c97d07a18cb54272e2346055487f14e2cf1721d3749d6649658854b3e95ac8d0fdadf5a03eae381a7454cb4"
    "641e0d5ab37e699cdc199b35b35408325fe49feb3250f74472940e941646bfd9bd331397d85ebb71e660a21adf9a1b3a"
    "621dabff3d958733a91cfd1f47de2389")
DL_D = (
    "14560862161c2b581bded38c41c1b3fe9cde0dd280fd321477f4783a6c5839745d70f19ec37c95621c45c4d5658a4431"
    "12a7475c65e5c40b2aea8e781fd386d24bcc176f5371850c05f7c0a83aab9d666cf0282f9e82164c5df54ca364ce415e"
    "791ee73e26c989f7ba170fa9ab082e4a1f5582de68fac58f9a72ad406a1df0c301a8f5df8f37a0e319250031c9af0172"
    "e6049bfe37dc14cd3caf2a9270de4860071d4b7ef079f98a4896dc38b6dd2f63d20397ee277e0200b008e904f168b39e"
    "a3d92b6391cc15de66454b8f7b8e99f993a44b14f512468263ad296a30870926b41d916f0b0c21a2d431ac37378932d8"
    "49b767f5941dc1894d8608a91a5eda87")

_DI = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"


def _int(h):
    return int(h, 16)


def _nbytes(n):
    return n.to_bytes(256, "big")


def keyring():
    from ykt.sec import sigverify as S

    ring = S.Keyring()
    ring.add(S.PublicKey(_nbytes(_int(REL_N)), 65537, ota.U_RELEASES))
    ring.add(S.PublicKey(_nbytes(_int(DL_N)), 65537, S.U_DOWNLOADS))
    return ring


def _sign(digest, which):
    n = _int(REL_N if which == "rel" else DL_N)
    d = _int(REL_D if which == "rel" else DL_D)
    em = bytearray(256)
    em[1] = 1
    pad_end = 256 - len(_DI) - 33
    for i in range(2, pad_end):
        em[i] = 0xFF
    em[pad_end + 1:pad_end + 1 + len(_DI)] = _DI
    em[256 - 32:] = digest
    return pow(int.from_bytes(bytes(em), "big"), d, n).to_bytes(256, "big")


def scratch(name):
    try:
        os.mkdir(SCRATCH)
    except OSError:
        pass
    return SCRATCH + "/" + name


def app_files(patch=None):
    """(slot path, source path or bytes) of the whole application package."""
    out = []
    _walk(FW, "ykt", patch, out)
    return out


def _walk(d, rel, patch, out):
    for n in sorted(os.listdir(d)):
        src = d + "/" + n
        if n.endswith(".py"):
            if patch is not None and rel + "/" + n == "ykt/app.py":
                with open(src) as f:
                    src = (f.read() + patch).encode()
            out.append((rel + "/" + n, src))
        elif n != "__pycache__" and os.stat(src)[0] & 0x4000:
            _walk(src, rel + "/" + n, patch, out)


def _size(src):
    return len(src) if isinstance(src, bytes) else os.stat(src)[6]


def build(path, version, files=None, boards=(), min_interp=INTERP, signer="rel",
          kind=ota.K_RELEASE, env_version=None, tamper=False):
    """Write a signed bundle to path, streaming (never all in RAM)."""
    if files is None:
        files = app_files()
    man = bundle.manifest(version, min_interp, boards, len(files))
    length = len(man)
    for p, src in files:
        length += len(bundle.file_entry(p, _size(src))) + _size(src)
    kid = sigverify.key_id(_nbytes(_int(REL_N if signer == "rel" else DL_N)))
    hdr = struct.pack("<4sBBBBII8sIII", signed.MAGIC, signed.FORMAT, kind, 1, 0,
                      env_version or ota.ver_int(version), 0, kid, 1795000000, 0, length)
    h = hashlib.sha256(hdr)
    with open(path, "wb") as f:
        h.update(man)
        f.write(hdr)
        f.write(man)
        buf = bytearray(1024)
        for p, src in files:
            e = bundle.file_entry(p, _size(src))
            h.update(e)
            f.write(e)
            bad = tamper and p.endswith("app.py")   # signed as it was, shipped one bit off
            if isinstance(src, bytes):
                h.update(src)
                f.write(_flip(src) if bad else src)
                continue
            with open(src, "rb") as g:     # streamed: bundles are bigger than the heap
                while True:
                    n = g.readinto(buf)
                    if not n:
                        break
                    mv = memoryview(buf)[:n]
                    h.update(mv)
                    if bad:
                        mv = _flip(mv)
                        bad = False
                    f.write(mv)
        f.write(_sign(h.digest(), signer))
    return os.stat(path)[6]


def _flip(b):
    b = bytearray(b)
    b[len(b) // 2] ^= 0x20
    return b


class FileHttp:
    """ykt.net.httpc.HttpClient's interface over a bundle file: the offer endpoint
    and a Range-capable bundle endpoint. cut_at: drop the connection once the
    bundle has been sent up to this offset (a network cut)."""

    def __init__(self, bundle=None, version=None, size=0, url="/v1/ota/bundle/1"):
        self.base = "http://127.0.0.1:1"
        self.owner = None
        self.bundle = bundle
        self.version = version
        self.size = size if size else (os.stat(bundle)[6] if bundle else 0)
        self.url = url
        self.requests = []
        self.cut_at = None
        self.state = 0
        self.status = 0
        self.body = bytearray()
        self.sent = 0

    def acquire(self, owner):
        if self.owner is None or self.owner is owner:
            self.owner = owner
            return True
        return False

    def release(self, owner):
        if self.owner is owner:
            self.owner = None
            self._close()
            self.state = 0

    def _close(self):
        f = getattr(self, "_f", None)
        if f is not None:
            f.close()
        self._f = None

    def start(self, method, path, headers=(), body=b"", sink=None, max_body=512):
        hd = {}
        for k, v in headers:
            hd[k.lower()] = v
        assert "x-ykt-auth" in hd
        self.requests.append((path, hd.get("range")))
        self.sink = sink
        self.body = bytearray()
        self._close()
        self.state = 4
        if path.startswith(ota.PATH_OFFER):
            if self.bundle is None:
                self.status = 204
            else:
                self.status = 200
                self.body = bytearray(json.dumps({"version": self.version, "size": self.size,
                                                  "url": self.url}).encode())
            self.state = 5
            return
        if path != self.url:
            self.status = 404
            self.state = 5
            return
        start = 0
        r = hd.get("range")
        if r:
            start = int(r[6:].split("-")[0])
        self.status = 206 if start else 200
        self._f = open(self.bundle, "rb")
        self._f.seek(start)
        self.pos = start

    def step(self):
        if self.state != 4:
            return self.state
        n = min(512, self.size - self.pos)   # the server has `size` bytes
        if self.cut_at is not None and self.pos + n > self.cut_at:
            n = self.cut_at - self.pos
            if n <= 0:
                self.cut_at = None
                self._close()
                self.state = 6
                return 6
        b = self._f.read(n)
        if not b:
            self._close()
            self.state = 5
            return 5
        self.pos += len(b)
        self.sent += len(b)
        if self.sink(memoryview(b)) is False:
            self._close()
            self.state = 6
        return self.state


def _room_for_slot_code():
    # The simulator counts the firmware's code as frozen (vhw.heapbudget):
    # code from an A/B slot is loaded from littlefs into the heap instead, as
    # on a device running an OTA'd application (PSRAM board: ferry_validator).
    # Give back exactly the measured code size; the data budget stays as set.
    try:
        from vhw import heapbudget as hb
    except ImportError:
        return
    if getattr(hb, "_ballast", None) is None:
        return
    import gc

    # plus 64 KB: the slot's code lands in a heap already fragmented by the
    # simulator's own objects; the PSRAM board this stands for has megabytes.
    n = len(hb._ballast) - hb.code_bytes - 65536
    hb._ballast = None
    gc.collect()
    if n > 0:
        hb._ballast = bytearray(n)


class Device:
    """A virtual device booted through otaboot (firmware/main.py's path)."""

    def __init__(self, board="ferry_validator"):
        from vhw.world import World

        fp = None
        if sys.implementation.name == "micropython":
            fp = scratch("flash.img")
            try:
                os.remove(fp)
            except OSError:
                pass
        self.w = World(board, flash_path=fp)
        _room_for_slot_code()
        self.root = self.w.root
        self.log = []
        self.resets = []
        self.app = None

    def _log(self, m):
        if len(self.log) > 40:
            self.log.pop(0)
        self.log.append(m)

    def boot(self, cause="power", ms=0):
        """Boot (and reboot after every reset) until an app runs."""
        for _ in range(8):
            try:
                self.app = otaboot.run(self.root, self._log, cause=cause, until_ms=ms)
                return self.app
            except vclock.DeviceReset as e:
                cause = e.cause
                self.resets.append(cause)
                self.reboot_chip(cause)
        raise AssertionError("device never came up: %r" % (self.log,))

    def reboot_chip(self, cause):
        import gc

        w = self.w
        self.app = None          # the old boot's RAM is gone on a device
        w.chip.reboot(cause)
        gc.collect()             # after power_on: zombie files of that boot write nothing
        w.pn532.reset()
        if w.root == "/flash":
            w._mount()
        from vhw import heapbudget

        heapbudget.reset_ram()   # what the simulator still holds of the old boot is not the new one's

    def reboot(self, cause="hard"):
        self.reboot_chip(cause)
        return self.boot(cause)

    def updater(self, http, running_package=False, **kw):
        """An Updater for this device. running_package: from the ykt package
        the booted device runs (otaboot reloads it, as a device boot would),
        so modules it imports later (ykt.ota.image) are of the same set and
        raise the errors it catches; the default reuses this kit's import
        (on the small heap a second copy of the updater may not fit)."""
        kw.setdefault("interp", INTERP)
        kw.setdefault("board", self.w.board["name"])
        mod = __import__("ykt.ota.updater", None, None, ("Updater",)) if running_package else ota
        return mod.Updater(http, DEV, KEY, keyring(), root=self.root, **kw)

    def takes_taps(self):
        ev = []
        self.app.on_event = lambda tap, kind, msg: ev.append(kind)
        self.w.field.present("ssc_nanning", after_us=300000, for_us=300000)
        self.app.run(1500)
        return len(ev) == 1

    def version(self):
        return otaboot.status(self.root)["version"]

    def close(self):
        otaboot.leave(self.root)
        try:
            for n in os.listdir(SCRATCH):
                os.remove(SCRATCH + "/" + n)
            os.rmdir(SCRATCH)
        except OSError:
            pass


def drive(up, app=None, max_steps=20000):
    """Step the updater (and the app loop) until it rests."""
    for _ in range(max_steps):
        st = up.step()
        if app is not None:
            app.step()
        else:
            vclock.advance_us(1000)
        if st == ota.READY or (st == ota.IDLE and up.errors):
            return st
    return up.state


def esp_image(n=5000, chip=0):
    """Bytes shaped like an ESP32 app image (magic 0xE9, segment count, chip
    id at offset 12), the rest a pattern: what the simulated OTA partitions
    and the release tool check."""
    b = bytearray(n)
    for i in range(n):
        b[i] = (i * 7) & 0xFF
    b[0] = 0xE9
    b[1] = 3
    b[12] = chip & 0xFF
    b[13] = chip >> 8
    return bytes(b)


def envelope(kind, version, payload, signer="rel"):
    """A small signed file in RAM (interpreter-image tests)."""
    kid = sigverify.key_id(_nbytes(_int(REL_N if signer == "rel" else DL_N)))
    hdr = struct.pack("<4sBBBBII8sIII", signed.MAGIC, signed.FORMAT, kind, 1, 0,
                      version, 0, kid, 1795000000, 0, len(payload))
    h = hashlib.sha256(hdr)
    h.update(payload)
    return hdr + payload + _sign(h.digest(), signer)
