"""The back office in this process as a server of the simulated network
(host_tools/simhw/vhw/ipnet.py): a device's HTTP request, once its last
byte is sent, goes through the ASGI app (Starlette's TestClient drives it)
and the response comes back as HTTP/1.1 bytes. No socket, no server thread
racing virtual time: a test that steps firmware on the virtual clock sees
the back office answer one modeled round trip later, however loaded the
machine is.

    base = asgipeer.attach(app, monkeypatch)   # -> "http://bo.ykt.test" (+ httpc modules of a booted slot)
    http = httpc.HttpClient(base)              # the firmware's client, on the simulated network
"""
from http import HTTPStatus

HOST = "bo.ykt.test"
ADDR = "10.77.0.2"


class AsgiPeer:
    """One connection: collects the request, answers it through the app."""

    def __init__(self, client):
        self.client = client
        self.req = bytearray()
        self.out = b""
        self.pos = 0
        self.done = False

    def send(self, mv):
        self.req += bytes(mv)
        i = self.req.find(b"\r\n\r\n")
        if i < 0 or self.done:
            return
        head = bytes(self.req[:i]).decode("latin-1").split("\r\n")
        method, target = head[0].split(" ")[:2]
        headers = {}
        for ln in head[1:]:
            k, v = ln.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        if len(self.req) < i + 4 + n:
            return
        self.done = True
        body = bytes(self.req[i + 4:i + 4 + n])
        for k in ("host", "content-length", "connection"):
            headers.pop(k, None)
        r = self.client.request(method, target, headers=headers, content=body)
        try:
            phrase = HTTPStatus(r.status_code).phrase
        except ValueError:
            phrase = "Status"
        lines = ["HTTP/1.1 %d %s" % (r.status_code, phrase)]
        for k, v in r.headers.multi_items():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                lines.append("%s: %s" % (k, v))
        lines += ["Content-Length: %d" % len(r.content), "Connection: close", "", ""]
        self.out = "\r\n".join(lines).encode("latin-1") + r.content

    def recv_into(self, mv, wait_s):
        if not self.done:
            return None
        n = min(len(mv), len(self.out) - self.pos)
        mv[:n] = self.out[self.pos:self.pos + n]
        self.pos += n
        return n

    def close(self):
        pass


def attach(app, monkeypatch, *clients, link="wifi"):
    """Put the firmware's HTTP client (ykt.net.httpc, and the given httpc
    module objects: a device that booted an application slot has its own
    copy) on the simulated network for this test, with `app` reachable as
    http://bo.ykt.test over `link` (always up). Returns the base URL."""
    import sys

    from fastapi.testclient import TestClient
    from vhw import ipnet

    client = TestClient(app, raise_server_exceptions=False)
    ipnet.reset()
    ipnet.install()
    ipnet.add_host(HOST, ADDR)
    ipnet.add_route(ADDR, 80, lambda: AsgiPeer(client))
    mods = [sys.modules["ykt.net.httpc"]] + [m for m in clients if m is not sys.modules["ykt.net.httpc"]]
    for httpc in mods:
        for name in ("socket", "select", "ssl"):
            monkeypatch.setattr(httpc, name, ipnet)
    monkeypatch.setattr(ipnet, "forced_link", link)
    return "http://" + HOST
