# A real loopback HTTP server stepped in the test's own loop (non-blocking
# sockets, no threads), so the uplink/sync tests run the real httpc client
# over real TCP on MicroPython and CPython alike. It implements the back-office
# side of the protocol with ykt.net.wire, plus per-request fault injection.
# Helper only: no tests here.
import socket

from ykt import taprec
from ykt.net import wire
from yktsrv import wiresrv


def _would_block(e):
    return bool(e.args) and e.args[0] in (11, 115, 114, 35, 36, 37)


class _Conn:
    def __init__(self, s):
        self.s = s
        self.inb = bytearray()
        self.out = None
        self.sent = 0
        self.close_after = True
        self.hold = False


class LoopServer:
    def __init__(self, app):
        self.app = app
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        except (OSError, AttributeError):
            pass
        import os

        seed = os.urandom(2)
        port = 20000 + ((seed[0] << 8 | seed[1]) % 30000)
        for i in range(200):
            try:
                s.bind(socket.getaddrinfo("127.0.0.1", port + i)[0][-1])
                self.port = port + i
                break
            except OSError:
                pass
        else:
            raise OSError("no free port")
        s.listen(4)
        s.setblocking(False)
        self.s = s
        self.conns = []

    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def step(self):
        try:
            c, a = self.s.accept()
            c.setblocking(False)
            self.conns.append(_Conn(c))
        except OSError as e:
            if not _would_block(e):
                raise
        for c in list(self.conns):
            self._serve(c)

    def _drop(self, c):
        try:
            c.s.close()
        except OSError:
            pass
        self.conns.remove(c)

    def _serve(self, c):
        if c.hold:
            return
        if c.out is None:
            try:
                d = c.s.recv(1024)
            except OSError as e:
                if _would_block(e):
                    return
                self._drop(c)
                return
            if d is None:
                return
            if not d:
                self._drop(c)
                return
            c.inb.extend(d)
            i = bytes(c.inb).find(b"\r\n\r\n")
            if i < 0:
                return
            head = bytes(c.inb[:i]).decode()
            lines = head.split("\r\n")
            method, path, _v = lines[0].split(" ")
            hdrs = {}
            for ln in lines[1:]:
                k, v = ln.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
            n = int(hdrs.get("content-length", "0"))
            if len(c.inb) - i - 4 < n:
                return
            body = bytes(c.inb[i + 4:i + 4 + n])
            r = self.app(method, path, hdrs, body)
            if r == "close":
                self._drop(c)
                return
            if r == "hold":
                c.hold = True
                return
            status, rbody, cut = r
            resp = ("HTTP/1.1 %d X\r\nContent-Length: %d\r\nDate: Wed, 18 Nov 2026 11:06:40 GMT\r\n"
                    "Connection: close\r\n\r\n" % (status, len(rbody))).encode() + rbody
            if cut:
                resp = resp[:len(resp) - cut]
            c.out = resp
        if c.sent < len(c.out):
            try:
                n = c.s.send(c.out[c.sent:])
                if n:
                    c.sent += n
            except OSError as e:
                if not _would_block(e):
                    self._drop(c)
                return
        if c.sent >= len(c.out):
            self._drop(c)

    def release_held(self):
        for c in list(self.conns):
            if c.hold:
                self._drop(c)

    def close(self):
        for c in list(self.conns):
            self._drop(c)
        self.s.close()


class Backoffice:
    """Protocol logic: taps dedup on (device, seq), signed downloads, time and
    heartbeat replies. faults: list consumed one per request."""

    def __init__(self, device_id, key, files=None, now=1795000000):
        self.dev = device_id
        self.key = key
        self.taps = {}
        self.deliveries = 0
        self.faults = []
        self.files = files or {}      # kind name -> (version, signed bytes)
        self.requests = []
        self.heartbeats = []
        self.now = now
        self.hb_flags = 0
        self.prev_nonce = b"\0" * 8

    def keys(self, d):
        return self.key if d == self.dev else None

    def __call__(self, method, path, hdrs, body):
        fault = self.faults.pop(0) if self.faults else None
        self.requests.append((method, path, fault))
        if fault in ("close", "hold"):
            return fault
        if fault == "503":
            return (503, b"busy", 0)
        if path == wire.PATH_TAPS and method == "POST":
            try:
                dev, taps = wiresrv.decode_batch(body, self.keys)
            except wire.WireError as e:
                return (401 if e.code == "bad_mac" else 400, e.code.encode(), 0)
            nonce = wiresrv.peek_header(body)[4]
            if fault == "partial":
                taps = taps[:len(taps) // 2]
            for t in taps:
                self.deliveries += 1
                if (dev, t.seq) not in self.taps:
                    self.taps[(dev, t.seq)] = taprec.pack(t)
            if fault == "close_after":
                return "close"
            if fault == "stale":
                nonce, self.prev_nonce = self.prev_nonce, nonce
            else:
                self.prev_nonce = nonce
            k = b"\x55" * 32 if fault == "forged" else self.key
            return (200, wiresrv.encode_ack(k, dev, taps[-1].seq, nonce, self.now),
                    20 if fault == "truncated" else 0)
        try:
            dev, ts, nonce = wiresrv.verify_request(hdrs.get("x-ykt-auth"), method, path, body, self.keys)
        except wire.WireError as e:
            return (401, e.code.encode(), 0)
        if path.startswith(wire.PATH_SYNC):
            name, q = path[len(wire.PATH_SYNC):].split("?")
            have = int(q.split("=")[1])
            if name not in self.files:
                return (404, b"", 0)
            ver, blob = self.files[name]
            if ver <= have and fault != "push_old":
                return (304, b"", 0)
            if fault == "tamper":
                blob = blob[:60] + bytes([blob[60] ^ 1]) + blob[61:]
            if fault == "short":              # a cut file with a matching length
                blob = blob[:-7]
            return (200, blob, 7 if fault == "truncated" else 0)
        if path == wire.PATH_TIME:
            return (200, wiresrv.encode_reply(self.key, wire.RK_TIME, dev, 0, nonce, self.now), 0)
        if path == wire.PATH_HEARTBEAT:
            self.heartbeats.append(body)
            return (200, wiresrv.encode_reply(self.key, wire.RK_HEARTBEAT, dev, self.hb_flags, nonce,
                                           self.now), 0)
        return (404, b"", 0)
