"""TLS is possible: ykt.net.httpc speaks https to a loopback TLS server (a
self-signed certificate made with `cryptography`), non-blocking handshake
included, on CPython in process and on the real MicroPython unix port."""
import datetime
import ipaddress
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import conftest
import vclock
from ykt.net import httpc
from ykt_tools.sim import mp


def _cert(tmp):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ykt-test")])
    now = datetime.datetime(2026, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cp, kp = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
    with open(cp, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kp, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cp, kp, cert.public_bytes(serialization.Encoding.DER)


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = b"tls-ok:" + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


@pytest.fixture
def tls_server(tmp_path):
    cp, kp, der = _cert(str(tmp_path))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cp, kp)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv.server_address[1], der
    srv.shutdown()
    srv.server_close()


def _run(c):
    import select

    for _ in range(5000):
        if not c.busy():
            break
        c.step()
        if c.sock is not None:
            try:
                select.select([c.sock], [], [], 0.01)
            except (TypeError, ValueError, OSError):
                pass
        vclock.advance_us(1000)
    return c.state


@pytest.mark.parametrize("verify", [False, True])
def test_https_cpython(tls_server, verify):
    port, der = tls_server
    vclock.reset()
    c = httpc.HttpClient("https://127.0.0.1:%d" % port, timeout_ms=4000, cadata=der if verify else None)
    c.start("GET", "/v1/time")
    assert _run(c) == httpc.DONE, c.error
    assert c.status == 200 and bytes(c.body) == b"tls-ok:/v1/time"


def test_https_micropython(tls_server):
    port, der = tls_server
    conftest.need_runtime("micropython")
    # no simulated chip: real sockets and TLS on the interpreter's own clock
    r = mp.run("micropython", os.path.join(conftest.WORKERS, "https_get.py"),
               ["https://127.0.0.1:%d" % port, "/v1/sync/fares?have=1"], heap="256K", sim=False, timeout=60)
    assert r.require("HTTPS GET") == {"state": httpc.DONE, "status": 200, "body": "tls-ok:/v1/sync/fares?have=1",
                                      "error": None}, r.out
