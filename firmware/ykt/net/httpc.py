# A minimal, bounded HTTP/1.1 client run as a non-blocking state machine:
# the main loop calls step(), which does at most one connect check, one send
# or one receive of <= CHUNK bytes, and returns. Nothing here ever waits, so
# a tap is never behind the network. One request per connection
# ("Connection: close"); the reply must carry Content-Length or end at close
# (chunked transfer coding is refused: the back office never uses it).
#
# TLS: an https URL wraps the socket with ssl (SSLContext where present,
# ssl.wrap_socket otherwise) in non-blocking mode; the handshake advances in
# the same steps. Pass cadata (DER CA certificate) to verify the server.
# Replies are authenticated by HMAC and downloads by signature anyway, so TLS
# adds confidentiality, not trust.
#
# Name resolution: getaddrinfo blocks on every port; the result is cached per
# client (RESOLVE_TTL) and skipped for literal IPv4 addresses, which is what
# provisioning should configure for the back office.
#
# Retry-After: a reply carrying it (429, 503) holds every request of this
# client until it has passed; start() then fails at once without touching
# the network, and each service backs off as after any failure.
#
# socket, select and ssl are module globals so that the simulator can give
# the client its simulated network (host_tools/simhw/vhw/ipnet.py).
import socket
import select

try:
    import ssl
except ImportError:     # a build without TLS: https URLs fail to connect
    ssl = None

from ykt.compat import const, ticks_ms, ticks_diff, ticks_add

CHUNK = const(512)
MAX_HEAD = const(1024)
RESOLVE_TTL = const(3600000)
MAX_RETRY_AFTER = const(3600)   # seconds honoured at most (a bogus header cannot park the device)

IDLE = const(0)
CONNECTING = const(1)
SENDING = const(2)
HEAD = const(3)
BODY = const(4)
DONE = const(5)
FAILED = const(6)

_EAGAIN = (11, 115, 114, 119, 120, 35, 36, 37)   # EAGAIN/EINPROGRESS/EALREADY (linux, lwIP, bsd)


def _would_block(e):
    if type(e).__name__.startswith("SSLWant"):
        return True
    return bool(e.args) and e.args[0] in _EAGAIN


def parse_url(url):
    """-> (tls, host, port, base path)."""
    if url.startswith("https://"):
        tls, rest, port = True, url[8:], 443
    elif url.startswith("http://"):
        tls, rest, port = False, url[7:], 80
    else:
        raise ValueError("url scheme")
    i = rest.find("/")
    hostport, base = (rest, "") if i < 0 else (rest[:i], rest[i:].rstrip("/"))
    j = hostport.rfind(":")
    if j >= 0:
        port = int(hostport[j + 1:])
        hostport = hostport[:j]
    return tls, hostport, port, base


def _is_ip(h):
    p = h.split(".")
    if len(p) != 4:
        return False
    for x in p:
        if not x.isdigit() or int(x) > 255:
            return False
    return True


class HttpClient:
    """One request at a time. start() then step() until DONE or FAILED."""

    def __init__(self, url, timeout_ms=10000, cadata=None):
        self.tls, self.host, self.port, self.base = parse_url(url)
        self.timeout_ms = timeout_ms
        self.cadata = cadata
        self._addr = None
        self._addr_at = 0
        self._rx = bytearray(CHUNK)
        self._rxmv = memoryview(self._rx)
        self._head = bytearray()
        self._out = b""
        self._body = b""
        self.sock = None
        self.state = IDLE
        self._poll = None
        self.owner = None       # the service whose request this is (sharing)
        self._hold = None       # ticks before which no request starts (Retry-After)
        self.reset_result()

    def acquire(self, owner):
        """Services share one client (one socket, one buffer): take it only
        when no other service holds it; release() after reading the result."""
        if self.owner is None or self.owner is owner:
            self.owner = owner
            return True
        return False

    def release(self, owner):
        if self.owner is owner:
            self.owner = None
            self.close()
            if self.state != IDLE:
                self.state = IDLE

    def reset_result(self):
        self.status = 0
        self.error = None
        self.body = bytearray()
        self.date = None
        self.length = -1
        self.got = 0

    # --- request ------------------------------------------------------------

    def start(self, method, path, headers=(), body=b"", sink=None, max_body=512):
        """Begin a request; path is relative to the URL's base. sink(mv) gets
        body chunks when given (downloads); otherwise up to max_body bytes
        are kept in .body."""
        self.close()
        self.reset_result()
        self.sink = sink
        self.max_body = max_body
        self.deadline = ticks_add(ticks_ms(), self.timeout_ms)
        # The head is built; the body is sent from the caller's buffer (an
        # upload's batch), not copied after the head: no second copy of it.
        n = len(body) if body or method == "POST" else -1
        self._out = request_head(method, self.host, self.base + path, headers, n)
        self._body = body
        self._sent = 0
        self._head = bytearray()
        if self._hold is not None:
            if ticks_diff(self._hold, ticks_ms()) > 0:
                self._fail("retry-after")
                return
            self._hold = None
        try:
            self._open()
        except OSError as e:
            self._fail("connect: %s" % (e.args[0] if e.args else e))

    def _open(self):
        now = ticks_ms()
        if self._addr is None or ticks_diff(now, self._addr_at) > RESOLVE_TTL:
            if _is_ip(self.host):
                self._addr = socket.getaddrinfo(self.host, self.port)[0][-1]
            else:
                self._addr = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)[0][-1]
            self._addr_at = now
        s = socket.socket()
        self.sock = s
        s.setblocking(False)
        try:
            s.connect(self._addr)
        except OSError as e:
            if not _would_block(e):
                raise
        self._poll = select.poll()
        self._poll.register(s, select.POLLOUT)
        self.state = CONNECTING

    def _wrap_tls(self):
        if ssl is None:
            raise OSError(95)   # EOPNOTSUPP: no TLS in this build
        if hasattr(ssl, "SSLContext"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if self.cadata:
                ctx.load_verify_locations(cadata=self.cadata)
                ctx.verify_mode = ssl.CERT_REQUIRED
            else:
                if hasattr(ctx, "check_hostname"):
                    ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname=self.host,
                                        do_handshake_on_connect=False)
        else:
            self.sock = ssl.wrap_socket(self.sock, server_hostname=self.host)
        self.sock.setblocking(False)

    def _fail(self, why):
        self.error = why
        self.state = FAILED
        self.close()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        self._poll = None

    def busy(self):
        return CONNECTING <= self.state <= BODY

    # --- the bounded step ---------------------------------------------------

    def step(self):
        st = self.state
        if not CONNECTING <= st <= BODY:
            return st
        if ticks_diff(ticks_ms(), self.deadline) > 0:
            self._fail("timeout")
            return self.state
        try:
            if st == CONNECTING:
                self._step_connect()
            elif st == SENDING:
                self._step_send()
            else:
                self._step_recv()
        except OSError as e:
            if not _would_block(e):
                self._fail("socket: %s" % (e.args[0] if e.args else e))
        return self.state

    def _step_connect(self):
        ev = self._poll.poll(0)
        if not ev:
            return
        flags = ev[0][1]
        if flags & (select.POLLERR | select.POLLHUP):
            self._fail("connect refused")
            return
        if flags & select.POLLOUT:
            self._poll = None
            if self.tls:
                self._wrap_tls()
            self.state = SENDING

    def _step_send(self):
        s = self.sock
        h = len(self._out)
        if self._sent < h:
            mv = memoryview(self._out)[self._sent:self._sent + CHUNK]
        else:
            o = self._sent - h
            mv = memoryview(self._body)[o:o + CHUNK]
        n = s.send(mv) if hasattr(s, "send") else s.write(mv)
        if n:
            self._sent += n
        if self._sent >= h + len(self._body):
            self._body = b""
            self.state = HEAD

    def _recv(self):
        s = self.sock
        if hasattr(s, "readinto"):
            return s.readinto(self._rx)
        return s.recv_into(self._rx)

    def _step_recv(self):
        n = self._recv()
        if n is None:
            return                   # MicroPython non-blocking: no data yet
        if n == 0:
            self._eof()
            return
        data = self._rxmv[:n]
        if self.state == HEAD:
            self._head.extend(data)
            i = self._head.find(b"\r\n\r\n")
            if i < 0:
                if len(self._head) > MAX_HEAD:
                    self._fail("header too long")
                return
            rest = bytes(self._head[i + 4:])
            self._parse_head(bytes(self._head[:i]))
            self._head = bytearray()
            if self.state == BODY and rest:
                self._take(rest)
        else:
            self._take(data)

    def _parse_head(self, h):
        lines = h.split(b"\r\n")
        p = lines[0].split(b" ")
        if len(p) < 2 or not p[0].startswith(b"HTTP/1.") or not p[1].isdigit():
            self._fail("bad status line")
            return
        self.status = int(p[1])
        for ln in lines[1:]:
            j = ln.find(b":")
            if j < 0:
                continue
            k = ln[:j].strip().lower()
            v = ln[j + 1:].strip()
            if k == b"content-length":
                if not v.isdigit():
                    self._fail("bad content-length")
                    return
                self.length = int(v)
            elif k == b"transfer-encoding" and v.lower() != b"identity":
                self._fail("transfer-encoding unsupported")
                return
            elif k == b"date":
                self.date = v.decode()
            elif k == b"retry-after" and v.isdigit():
                n = int(v)
                self._hold = ticks_add(ticks_ms(), (n if n < MAX_RETRY_AFTER else MAX_RETRY_AFTER) * 1000)
        if self.sink is None and self.length > self.max_body:
            self._fail("reply too large")
            return
        self.state = BODY
        if self.length == 0:
            self._done()

    def _take(self, data):
        if self.length >= 0 and self.got + len(data) > self.length:
            data = data[:self.length - self.got]   # ignore bytes beyond the reply
        self.got += len(data)
        if self.sink is not None:
            if self.sink(data) is False:
                self._fail("refused by receiver")
                return
        else:
            if self.got > self.max_body:
                self._fail("reply too large")
                return
            self.body.extend(data)
        if self.length >= 0 and self.got >= self.length:
            self._done()

    def _eof(self):
        if self.state == HEAD:
            self._fail("connection closed before reply")
        elif self.length >= 0 and self.got < self.length:
            self._fail("reply truncated (%d/%d)" % (self.got, self.length))
        else:
            self._done()

    def _done(self):
        self.state = DONE
        self.close()

    def run(self, max_steps=100000):
        """Step to completion (host tools and tests only; the device steps)."""
        i = 0
        while self.busy() and i < max_steps:
            self.step()
            i += 1
        return self.state


def request_head(method, host, path, headers=(), length=-1):
    """A request's head; Content-Length when length >= 0."""
    lines = ["%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (method, path, host)]
    for k, v in headers:
        lines.append("%s: %s\r\n" % (k, v))
    if length >= 0:
        lines.append("Content-Length: %d\r\n" % length)
    lines.append("\r\n")
    return "".join(lines).encode()


def request_bytes(method, host, path, headers=(), body=b""):
    """The exact bytes of a request (the wire benchmark; the client sends the
    same bytes as head, then body)."""
    return request_head(method, host, path, headers, len(body) if body or method == "POST" else -1) + bytes(body)


def http_date_to_unix(s):
    """RFC 7231 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") -> unix seconds,
    or None when malformed."""
    try:
        p = s.split()
        d = int(p[1])
        m = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
             "Dec").index(p[2]) + 1
        y = int(p[3])
        hh, mm, ss = [int(x) for x in p[4].split(":")]
    except (ValueError, IndexError):
        return None
    from ykt.ds3231 import days_from_civil   # no time module: the ports disagree on their epoch

    return days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss
