# The IP network around the virtual device, on virtual time: name resolution,
# TCP connections to servers on the host, the link that carries them (Wi-Fi
# or cellular PPP, each with its round trip and bandwidth), TLS, and a fault
# hook (vhw/netfault.py). It stands in for the ESP32 port's `socket`,
# `select` and `ssl` modules (the firmware's ykt.net.httpc uses exactly
# these): install(httpc) points the client's module globals here.
#
# Why: a device on virtual time talking to a real server that answers in
# real time times out as soon as the host is loaded. Here the device's wait
# is modeled: a request reaches the server when its last byte has left, the
# device's interpreter then blocks in REAL time until the server answers
# (virtual time stands still meanwhile), and the answer arrives one round
# trip plus its transfer time later in VIRTUAL time. Load cannot change what
# the device sees; only a fault can.
#
# Behaviour follows the ESP32 port (lwIP + mbedtls): non-blocking connect
# raises OSError(EINPROGRESS) and completes one round trip later; readinto
# returns None when nothing has arrived, 0 at the end; a reset raises
# OSError(ECONNRESET); no route -> OSError(EHOSTUNREACH); a failed lookup ->
# OSError(-202); a failed TLS handshake -> OSError(-0x7780, mbedtls' fatal
# alert). TLS is modeled, not run: the handshake costs two round trips and
# can fail; the bytes are not encrypted (they never leave the host; real TLS
# over httpc is tested in tests/test_uplink_tls.py). HTTP/1.1 with one
# request per connection, as httpc speaks it, is what the request framing
# (Content-Length) understands. Portable: CPython and the MicroPython unix port.
import vclock

try:
    import socket as _real
except ImportError:  # pragma: no cover
    _real = None

AF_INET = 2
SOCK_STREAM = 1
SOCK_DGRAM = 2
IPPROTO_TCP = 6
SOL_SOCKET = 1
SO_REUSEADDR = 4
POLLIN = 1
POLLOUT = 4
POLLERR = 8
POLLHUP = 16
PROTOCOL_TLS_CLIENT = 0
PROTOCOL_TLS_SERVER = 1
CERT_NONE = 0
CERT_OPTIONAL = 1
CERT_REQUIRED = 2

_EAGAIN = 11
_ENFILE = 23
_ECONNRESET = 104
_ENOTCONN = 128
_EINPROGRESS = 115
_EHOSTUNREACH = 113
_EAI_FAIL = -202               # the ESP32 port's getaddrinfo failure
TLS_ALERT = -0x7780            # MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE
TLS_VERIFY = -0x2700           # MBEDTLS_ERR_X509_CERT_VERIFY_FAILED

# link: round trip ms, down and up kbit/s (Wi-Fi on a depot AP; LTE Cat-1
# in a moving bus, figures of the SIM7600/EC20 class)
LINKS = {"wifi": (20, 5000, 5000), "ppp": (120, 2000, 1000)}
DNS_MS = 30
RING = 4096                    # receive buffer per connection (lwIP's window)
HEAD = 1024                    # request head kept for framing
REAL_WAIT_S = 60               # real seconds a server may take before the link stalls

TRACE = False
_hosts = {}                    # name -> address
_routes = {}                   # (address, port) -> Route
_pool = []                     # free receive buffers, allocated once (install)
_open = []                     # sockets between connect and close
faults = None                  # a vhw.netfault.Plan, or None
forced_link = None             # a link that is always up (tests of network services without a World)
stats = {"connections": 0, "exchanges": 0, "stalled": 0}
used = {}                      # link name -> exchanges carried


class Route:
    """A server the device can reach: peer() opens a connection to it."""

    def __init__(self, peer, tls=False, cert=None):
        self.peer = peer       # callable -> object with send(mv), recv_into(mv, wait_s), close()
        self.tls = tls
        self.cert = cert       # DER the server presents (checked against cadata when given)


class RealPeer:
    """A real TCP connection to a server on the host (blocking, real time)."""

    def __init__(self, host, port):
        self.s = _real.socket()
        self.s.connect(_real.getaddrinfo(host, port)[0][-1])

    def send(self, mv):
        n = 0
        while n < len(mv):
            k = self.s.send(mv[n:])
            n += k if k else 0

    def recv_into(self, mv, wait_s):
        """-> bytes read, 0 at the server's end, None if nothing came in wait_s."""
        self.s.settimeout(wait_s)
        try:
            n = self.s.readinto(mv) if hasattr(self.s, "readinto") else self.s.recv_into(mv)
        except OSError as e:
            code = e.args[0] if e.args else None
            if code in (11, 110) or "timed out" in str(e):
                return None
            if code in (104, 32):
                return 0                # the server reset: the reply ends here
            raise
        return 0 if n is None else n

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def real(host, port):
    """Route target: a server listening on the host."""
    return lambda: RealPeer(host, port)


def install(httpc=None, buffers=2):
    """Allocate the network's buffers (before the firmware's heap budget
    applies: they are the network stack's RAM, not the firmware's) and make
    the firmware's HTTP client use this network. Under MicroPython the
    modules are also registered as socket/select/ssl (sys.modules)."""
    import sys

    me = sys.modules[__name__]
    while len(_pool) < buffers:
        _pool.append((bytearray(RING), bytearray(HEAD)))
    if sys.implementation.name == "micropython":
        for name in ("socket", "select", "ssl"):
            sys.modules[name] = me
    if httpc is not None:
        httpc.socket = me
        httpc.select = me
        httpc.ssl = me
    return me


def reset():
    global faults, forced_link
    forced_link = None
    del _open[:]
    _hosts.clear()
    _routes.clear()
    faults = None
    for k in stats:
        stats[k] = 0
    used.clear()


def add_host(name, addr):
    _hosts[name] = addr


def add_route(addr, port, peer, tls=False, cert=None):
    _routes[(addr, port)] = Route(peer, tls, cert)


def link():
    """The link traffic goes over now: Wi-Fi when connected, else cellular."""
    if forced_link is not None:
        return forced_link
    import network

    if network.WLAN(0).isconnected():
        return "wifi"
    ppp = getattr(network, "_ppp_up", None)
    if ppp is not None and ppp():
        return "ppp"
    return None


def _now():
    return vclock.now_us()


# --- socket ---------------------------------------------------------------


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    if _is_ip(host):
        return [(AF_INET, SOCK_STREAM, 0, "", (host, port))]
    vclock.advance_us(DNS_MS * 1000)          # the lookup blocks, as on every port
    if link() is None or host not in _hosts or (faults is not None and faults.on_resolve(host)):
        raise OSError(_EAI_FAIL)
    return [(AF_INET, SOCK_STREAM, 0, "", (_hosts[host], port))]


def _is_ip(h):
    p = h.split(".")
    return len(p) == 4 and all(x.isdigit() for x in p)


class socket:
    """A TCP socket of the simulated network (stream only)."""

    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0):
        if type != SOCK_STREAM:
            raise OSError(_ENFILE)
        self.blocking = True
        self.route = None
        self.peer = None
        self.link = None
        self.state = 0          # 0 new, 1 connecting, 2 open, 3 closed
        self.up_at = 0          # virtual us the connection is established
        self.reset = False      # the peer reset the connection
        self.fault = None       # the fault this connection carries (netfault)
        self.buf = None         # (ring, head) from the pool while open
        self.hlen = 0           # request bytes kept in head
        self.sent = 0           # request bytes the device sent
        self.need = -1          # request length once the head is complete
        self.done_at = -1       # virtual us the request's last byte left
        self.rlen = 0           # bytes in ring
        self.rpos = 0           # next byte of ring to deliver
        self.r_at = 0           # virtual us the ring's bytes arrive
        self.got = 0            # reply bytes delivered so far
        self.eof_at = -1        # virtual us of the end of the reply (-1: not yet)
        self.limit = -1         # deliver at most this many reply bytes, then end
        self.end_rst = False    # ... with a reset instead of a clean end
        self.flip = -1          # reply offset whose byte arrives corrupted
        self.silent = False     # nothing will ever arrive (dropped)
        self.path = ""
        self.tls_at = 0         # virtual us a TLS handshake on it completes

    # the ESP32 port's socket API ----------------------------------------
    def setblocking(self, flag):
        self.blocking = bool(flag)

    def settimeout(self, t):
        self.blocking = t is None or t > 0

    def setsockopt(self, level, opt, val):
        pass

    def connect(self, addr):
        host, port = addr[0], addr[1]
        ln = link()
        if ln is None:
            raise OSError(_EHOSTUNREACH)
        if not _pool:
            raise OSError(_ENFILE)
        self.buf = _pool.pop()
        _open.append(self)
        self.link = ln
        self.route = _routes.get((host, port))
        rtt = LINKS[ln][0]
        self.up_at = _now() + rtt * 1000
        self.state = 1
        stats["connections"] += 1
        if self.route is not None and faults is not None:
            self.fault = faults.on_connect(self)
        if self.blocking:
            vclock.advance_to_us(self.up_at)
            self._check_open()
            return
        raise OSError(_EINPROGRESS)

    def _check_open(self):
        if self.route is None:
            self.reset = True           # refused: nothing listens there
            raise OSError(_ECONNRESET)

    def _flags(self):
        if self.state == 1 and _now() >= self.up_at:
            if self.route is None:
                self.reset = True
            self.state = 2
        if self.reset:
            return POLLERR | POLLHUP
        if self.state != 2:
            return 0
        f = POLLOUT
        if self._available() or self._at_eof():
            f |= POLLIN
        return f

    def send(self, buf):
        if self.reset:
            raise OSError(_ECONNRESET)
        if self._flags() & POLLOUT == 0:
            raise OSError(_EAGAIN if self.state == 1 else _ENOTCONN)
        n = len(buf)
        if self.need >= 0 and self.sent >= self.need:
            return n                    # beyond the request: nothing reads it
        self._frame(buf, n)
        if self.fault is None or self.fault.forward:
            if self.peer is None:
                self.peer = self.route.peer()
            self.peer.send(memoryview(buf)[:n])
        elif self.fault.hold is not None:
            self.fault.hold_bytes(buf, n)
        self.sent += n
        if self.need >= 0 and self.sent >= self.need:
            self._request_done()
        return n

    write = send

    def _frame(self, buf, n):
        """Keep the request head until its end is known: then the request's
        length is head + Content-Length."""
        if self.need >= 0:
            return
        head = self.buf[1]
        k = min(n, HEAD - self.hlen)
        head[self.hlen:self.hlen + k] = buf[:k]
        self.hlen += k
        mv = memoryview(head)[:self.hlen]
        i = bytes(mv).find(b"\r\n\r\n")
        if i < 0:
            return
        cl = 0
        for ln in bytes(mv[:i]).split(b"\r\n"):
            if ln[:15].lower() == b"content-length:":
                cl = int(ln[15:])
        self.need = i + 4 + cl
        line = bytes(mv[:min(i, 120)]).split(b" ")
        self.path = line[1].decode() if len(line) > 1 else ""

    def _request_done(self):
        t = _now()
        rtt, down, up = LINKS[self.link]
        self.done_at = t
        stats["exchanges"] += 1
        used[self.link] = used.get(self.link, 0) + 1
        arrive = t + rtt * 1000 + self.sent * 8000 // up
        f = self.fault
        if TRACE:
            print("NET %d %s %s" % (t // 1000000, self.path, f.kind if f is not None else "-"))
        if f is not None:
            f.request_done(self, arrive)
            if not f.forward:
                return
        self._read_first(arrive)

    def _read_first(self, arrive):
        """The server has the request: wait (real time) for its first bytes;
        they were sent after it committed."""
        n = self.peer.recv_into(memoryview(self.buf[0]), REAL_WAIT_S)
        if n is None:
            stats["stalled"] += 1
            self.silent = True
            return
        self.rlen, self.rpos, self.r_at = n, 0, arrive + n * 8000 // LINKS[self.link][1]
        if n == 0:
            self.eof_at = arrive
            self._close_peer()
        if self.fault is not None:
            self.fault.reply_first(self)

    def _close_peer(self):
        if self.peer is not None:
            self.peer.close()
            self.peer = None

    def _available(self):
        if self.silent or self.reset:
            return 0
        if self.rpos >= self.rlen and self.peer is not None and self.eof_at < 0 and self.done_at >= 0:
            self._read_more()
        if self.rpos < self.rlen and _now() >= self.r_at and link() is not None:
            return self.rlen - self.rpos
        return 0

    def _read_more(self):
        if self.limit >= 0 and self.got >= self.limit:
            return
        n = self.peer.recv_into(memoryview(self.buf[0]), REAL_WAIT_S)
        t = max(_now(), self.r_at)
        if n is None:
            stats["stalled"] += 1
            self.silent = True
        elif n == 0:
            self.eof_at = t
            self._close_peer()
        else:
            self.rlen, self.rpos, self.r_at = n, 0, t + n * 8000 // LINKS[self.link][1]

    def _at_eof(self):
        return (self.eof_at >= 0 and self.rpos >= self.rlen and _now() >= self.eof_at
                and not self.silent)

    def readinto(self, buf, nbytes=-1):
        if self.state == 1:
            self._flags()
        if self.reset:
            raise OSError(_ECONNRESET)
        a = self._available()
        if not a:
            if self._at_eof():
                return 0
            if not self.blocking:
                return None
            raise OSError(_EAGAIN)
        n = len(buf) if nbytes < 0 else min(nbytes, len(buf))
        if a < n:
            n = a
        if self.limit >= 0 and self.got + n >= self.limit:
            n = self.limit - self.got
        ring = self.buf[0]
        buf[:n] = memoryview(ring)[self.rpos:self.rpos + n]
        if 0 <= self.flip - self.got < n:
            buf[self.flip - self.got] ^= 0x01
        if self.fault is not None:
            self.fault.delivered(self, buf, n)
        self.rpos += n
        self.got += n
        if self.limit >= 0 and self.got >= self.limit:
            self._close_peer()
            self.rpos = self.rlen
            if self.end_rst:
                self.reset = True
            else:
                self.eof_at = _now()
        return n

    def recv(self, n):
        b = bytearray(n)
        k = self.readinto(b)
        return None if k is None else bytes(b[:k])

    def close(self):
        if self.state == 3:
            return
        self.state = 3
        self._close_peer()
        if self.fault is not None:
            self.fault.closed(self)
        if self.buf is not None:
            _pool.append(self.buf)
            self.buf = None
        if self in _open:
            _open.remove(self)

    def _next_us(self):
        """When this connection changes next without the device acting
        (None: never; now: the device has something to do)."""
        t = _now()
        if self.reset:
            return t
        if self.state == 1:
            return self.up_at
        if self.tls_at > t:
            return self.tls_at
        if self.done_at < 0:
            return t                    # the device is sending its request
        if self.silent:
            return None
        if self.rpos < self.rlen:
            return max(t, self.r_at)
        if self.eof_at >= 0:
            return max(t, self.eof_at)
        return t


def quiet_until_us():
    """The earliest virtual time an open connection changes by itself, or
    None: the simulator may step the device coarsely until then (a device
    waiting out a timeout has nothing to do in between)."""
    out = None
    for s in _open:
        t = s._next_us()
        if t is not None and (out is None or t < out):
            out = t
    return out


# --- select ---------------------------------------------------------------


class _Poll:
    def __init__(self):
        self.objs = []

    def register(self, obj, mask=POLLIN | POLLOUT):
        for e in self.objs:
            if e[0] is obj:
                e[1] = mask
                return
        self.objs.append([obj, mask])

    modify = register

    def unregister(self, obj):
        self.objs = [e for e in self.objs if e[0] is not obj]

    def poll(self, timeout=-1):
        out = []
        for obj, mask in self.objs:
            f = obj._flags() & (mask | POLLERR | POLLHUP)
            if f:
                out.append((obj, f))
        if not out and timeout and timeout > 0:
            vclock.advance_us(timeout * 1000)
            return self.poll(0)
        return out


def poll():
    return _Poll()


# --- ssl --------------------------------------------------------------------


class SSLContext:
    def __init__(self, protocol=PROTOCOL_TLS_CLIENT):
        self.protocol = protocol
        self.verify_mode = CERT_REQUIRED if protocol == PROTOCOL_TLS_CLIENT else CERT_NONE
        self.check_hostname = False
        self.cadata = None

    def load_verify_locations(self, cafile=None, cadata=None):
        self.cadata = bytes(cadata) if cadata is not None else None

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, server_hostname=None):
        return _Tls(sock, self)


def wrap_socket(sock, server_side=False, key=None, cert=None, cert_reqs=CERT_NONE, cadata=None,
                server_hostname=None, do_handshake=True):
    ctx = SSLContext()
    ctx.verify_mode = cert_reqs
    if cadata is not None:
        ctx.load_verify_locations(cadata=cadata)
    return _Tls(sock, ctx)


class _Tls:
    """TLS over a simulated socket: a handshake of two round trips (TLS 1.2
    full handshake) that fails like mbedtls when the peer aborts it or its
    certificate does not verify; after it, the stream passes through."""

    def __init__(self, sock, ctx):
        self.s = sock
        self.ctx = ctx
        self.ready_at = -1
        self.err = 0

    def _shake(self):
        if self.err:
            raise OSError(self.err)
        t = _now()
        if self.ready_at < 0:
            s = self.s
            self.ready_at = s.tls_at = t + 2 * LINKS[s.link][0] * 1000
            f = s.fault
            if f is not None and f.kind == "tls_failure":
                self.err = TLS_ALERT
                f.plan.applied(f.kind)
            elif (self.ctx.verify_mode == CERT_REQUIRED and self.ctx.cadata is not None
                  and s.route is not None and s.route.cert != self.ctx.cadata):
                self.err = TLS_VERIFY
        if t < self.ready_at:
            return False
        if self.err:
            raise OSError(self.err)
        return True

    def setblocking(self, flag):
        self.s.setblocking(flag)

    def send(self, buf):
        if not self._shake():
            raise OSError(_EAGAIN)
        return self.s.send(buf)

    write = send

    def readinto(self, buf, nbytes=-1):
        if not self._shake():
            return None
        return self.s.readinto(buf, nbytes)

    def _flags(self):
        return self.s._flags()

    def close(self):
        self.s.close()
