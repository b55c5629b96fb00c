"""The exporter's web server on loopback: lifecycle gate, bounded connections, quiet disconnects,
TLS and basic auth from an exporter-toolkit web config file."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
import socket
import ssl
import threading
import time
from pathlib import Path

import bcrypt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from exporter.web import WebServer
from exporter.webconfig import WebConfigError, load_web_config, loads_web_config
from tests.exporter.test_web import get


class StubExporter:
    """What the web thread reads from the exporter, without probing."""

    def __init__(self):
        self.log = logging.getLogger("test.web")
        self.reloads = 0
        self.source = None

    def reload(self):
        self.reloads += 1
        return True, "reloaded"

    def ready(self):
        return True

    @property
    def exposition(self):
        from exporter.exposition import Exposition
        return Exposition()


@pytest.fixture
def stub():
    return StubExporter()


def serve(stub, **kw) -> WebServer:
    return WebServer(stub, "127.0.0.1", 0, **kw).start()


def test_reload_needs_the_lifecycle_flag(stub):
    web = serve(stub)
    try:
        status, body = get(f"http://127.0.0.1:{web.port}/-/reload", "POST")
        assert status == 403 and "Lifecycle API is not enabled" in body and stub.reloads == 0
    finally:
        web.stop()
    web = serve(stub, lifecycle=True)
    try:
        assert get(f"http://127.0.0.1:{web.port}/-/reload", "POST") == (200, "reloaded\n") and stub.reloads == 1
    finally:
        web.stop()


def test_idle_connections_are_bounded_and_closed(stub):
    web = serve(stub, max_connections=4, idle_timeout=0.5)
    before = threading.active_count()
    clients = []
    try:
        for _ in range(40):
            clients.append(socket.create_connection(("127.0.0.1", web.port), timeout=10))
        time.sleep(0.3)
        assert threading.active_count() - before <= 4  # 40 idle clients, at most 4 serving threads
        # each idle connection is closed by the server after 0.5 s without a request
        clients[0].settimeout(5)
        started = time.monotonic()
        assert clients[0].recv(1) == b"" and time.monotonic() - started < 3
        assert get(f"http://127.0.0.1:{web.port}/-/healthy")[0] == 200  # served once slots free up
    finally:
        for c in clients:
            c.close()
        web.stop()


def test_keep_alive_stops_at_half_the_slots_so_a_new_scraper_is_served(stub):
    """Kept-alive idle connections must not take every slot: with 4 slots, the third client on
    gets `Connection: close`, and a fifth client is answered although the first four never close
    (the idle timeout here is 60 s, longer than the client's 10 s)."""
    import http.client

    web = serve(stub, max_connections=4, idle_timeout=60)
    held = []
    try:
        closes = []
        for _ in range(4):
            conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
            conn.request("GET", "/-/healthy")
            resp = conn.getresponse()
            assert resp.read() == b"Healthy\n"
            closes.append(resp.getheader("Connection"))
            held.append(conn)
        assert closes == [None, None, "close", "close"]
        assert get(f"http://127.0.0.1:{web.port}/-/healthy")[0] == 200
    finally:
        for conn in held:
            conn.close()
        web.stop()


def test_connects_queue_in_the_backlog_while_every_slot_is_busy(stub):
    """One slot, held by a client that sends nothing: 40 more clients must still connect (the
    kernel completes their handshakes from the listen backlog) instead of seeing their SYNs
    dropped, which a backlog of 5 does from the sixth on (a 1 s, 3 s, 7 s... retry per client)."""
    web = serve(stub, max_connections=1, idle_timeout=60)
    clients = []
    try:
        clients.append(socket.create_connection(("127.0.0.1", web.port), timeout=10))
        time.sleep(0.2)  # the server accepts it and the only slot is taken
        for _ in range(40):
            clients.append(socket.create_connection(("127.0.0.1", web.port), timeout=5))
        assert len(clients) == 41
    finally:
        for c in clients:
            c.close()
        web.stop()


def test_a_client_that_goes_away_is_one_log_line_without_traceback(stub, caplog, capsys):
    caplog.set_level(logging.INFO, logger="test.web")
    web = serve(stub)
    try:
        try:
            raise BrokenPipeError(32, "Broken pipe")
        except BrokenPipeError:
            web.httpd.handle_error(None, ("127.0.0.1", 40000))
        lines = [r.getMessage() for r in caplog.records]
        assert lines == ['msg="client went away" client=127.0.0.1:40000 phase="request" err=BrokenPipeError']
        assert "Traceback" not in capsys.readouterr().err  # socketserver's default prints one
    finally:
        web.stop()


class BigExposition:
    gzip_wanted = False

    def render(self, role=None, exclude_role=None, gzip=False):
        return [b"# filler\n" * 100_000] * 20  # ~18 MB: more than socket buffers hold


def test_a_real_early_disconnect_is_logged_once_quietly(stub, caplog, capsys):
    caplog.set_level(logging.INFO, logger="test.web")
    stub.__class__ = type("BigStub", (StubExporter,), {"exposition": BigExposition()})
    web = serve(stub)
    try:
        with socket.create_connection(("127.0.0.1", web.port), timeout=10) as c:
            c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            c.recv(1024)  # the answer started
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        deadline = time.monotonic() + 5
        while not any("client went away" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
            time.sleep(0.05)
        gone = [r.getMessage() for r in caplog.records if "client went away" in r.getMessage()]
        assert len(gone) == 1 and 'phase="request"' in gone[0], gone
        assert "Traceback" not in capsys.readouterr().err
    finally:
        web.stop()


# -- TLS and basic auth --------------------------------------------------------------------------


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, issuer, key, signer, *, ca=False, ip=None):
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return builder.sign(signer, hashes.SHA256())


def _write(path: Path, cert, key=None) -> str:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("wardops test ca", "wardops test ca", ca_key, ca_key, ca=True)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    return {"ca": _write(d / "ca.crt", ca),
            "server": _write(d / "server.crt", _cert("exporter", "wardops test ca", server_key, ca_key,
                                                     ip="127.0.0.1"), server_key),
            "client": _write(d / "client.crt", _cert("prometheus", "wardops test ca", client_key, ca_key), client_key),
            "dir": d}


def test_tls_and_basic_auth_from_a_web_config_file(stub, pki, tmp_path):
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    cfg = tmp_path / "web.yml"
    cfg.write_text(f"tls_server_config:\n  cert_file: {pki['server']}\n  key_file: {pki['server'][:-4]}.key\n"
                   f"  min_version: TLS12\nbasic_auth_users:\n  prometheus: '{hashed}'\n"
                   "http_server_config:\n  headers: {X-Content-Type-Options: nosniff}\n")
    web = serve(stub, web_config=load_web_config(str(cfg)))
    url = f"https://127.0.0.1:{web.port}/-/healthy"
    try:
        refused = requests.get(url, verify=pki["ca"], timeout=10)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
        assert requests.get(url, verify=pki["ca"], auth=("prometheus", "wrong"), timeout=10).status_code == 401
        ok = requests.get(url, verify=pki["ca"], auth=("prometheus", "s3cret"), timeout=10)
        assert ok.status_code == 200 and ok.text == "Healthy\n"
        assert ok.headers["X-Content-Type-Options"] == "nosniff"
        with pytest.raises(requests.ConnectionError):  # plain HTTP to the TLS port
            requests.get(url.replace("https", "http"), timeout=10)
        assert requests.get(url, verify=pki["ca"], auth=("prometheus", "s3cret"), timeout=10).status_code == 200
    finally:
        web.stop()


def test_client_certificates_are_required_when_configured(stub, pki):
    cfg = loads_web_config(f"tls_server_config:\n  cert_file: {pki['server']}\n  key_file: {pki['server'][:-4]}.key\n"
                           f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki['ca']}\n")
    web = serve(stub, web_config=cfg)
    url = f"https://127.0.0.1:{web.port}/-/healthy"
    try:
        with pytest.raises((requests.ConnectionError, requests.exceptions.SSLError)):
            requests.get(url, verify=pki["ca"], timeout=10)
        cert = (pki["client"], pki["client"][:-4] + ".key")
        assert requests.get(url, verify=pki["ca"], cert=cert, timeout=10).status_code == 200
    finally:
        web.stop()


def test_basic_auth_header_forms(stub):
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    cfg = loads_web_config(f"basic_auth_users: {{u: '{hashed}'}}\n")
    good = "Basic " + base64.b64encode(b"u:pw").decode()
    assert cfg.authorized(good) and cfg.authorized(good)  # the second from the cache
    for header in (None, "Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"u").decode(),
                   "Basic " + base64.b64encode(b"nobody:pw").decode(), "Basic " + base64.b64encode(b"u:PW").decode()):
        assert not cfg.authorized(header), header
    assert loads_web_config("").authorized(None)  # no users: open


INVALID_WEB = [
    ("tls_server_config: {cert_file: /a}\n", "1: tls_server_config: key_file is required for TLS"),
    ("tls_server_config: {cert_file: /a, key_file: /b, client_auth_type: RequireAnyClientCert}\n",
     "1: tls_server_config.client_auth_type: RequireAnyClientCert is not supported"),
    ("tls_server_config: {cert_file: /a, key_file: /b, client_auth_type: RequireAndVerifyClientCert}\n",
     "1: tls_server_config.client_auth_type: RequireAndVerifyClientCert needs client_ca_file"),
    ("tls_server_config: {cert_file: /a, key_file: /b, min_version: TLS9}\n",
     "1: tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, got string 'TLS9'"),
    ("basic_auth_users: {u: plaintext}\n", "1: basic_auth_users.u: must be a bcrypt hash"),
    ("http_server_config: {headers: {Content-Type: text/html}}\n",
     "1: http_server_config.headers.Content-Type: is set by the exporter itself"),
    ("http_server_config: {headers: {X-A: \"a\\r\\nSet-Cookie: x\"}}\n",
     "1: http_server_config.headers.X-A: must be a string without line breaks"),
    ("tls_config: {}\n", "1: tls_config: unknown key (allowed: tls_server_config, basic_auth_users, http_server_config)"),
]


@pytest.mark.parametrize("text, message", INVALID_WEB)
def test_invalid_web_config_names_file_line_and_key(text, message):
    with pytest.raises(WebConfigError) as err:
        loads_web_config(text, "web.yml")
    assert any(str(p).startswith(f"web.yml:{message}") for p in err.value.problems), err.value.problems


def test_toolkit_keys_without_effect_still_load():
    cfg = loads_web_config("tls_server_config: {cert_file: /a, key_file: /b, cipher_suites: [TLS_AES_128_GCM_SHA256]}\n"
                           "http_server_config: {http2: true}\n")
    assert cfg.ignored == ("tls_server_config.cipher_suites", "http_server_config.http2")


def test_the_cli_refuses_a_bad_web_config(tmp_path):
    import subprocess
    import sys

    inv = tmp_path / "inv.yml"
    inv.write_text("devices: []\n")
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users: {u: nope}\n")
    run = subprocess.run([sys.executable, "-m", "wardops.cli", "exporter", "--inventory", str(inv),
                          "--web.config.file", str(web), "--web.listen-address", "127.0.0.1:0"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and f"{web}:1: basic_auth_users.u: must be a bcrypt hash" in run.stderr


def test_ssl_context_refuses_tls_below_the_minimum(stub, pki):
    cfg = loads_web_config(f"tls_server_config:\n  cert_file: {pki['server']}\n  key_file: {pki['server'][:-4]}.key\n"
                           "  min_version: TLS13\n")
    web = serve(stub, web_config=cfg)
    try:
        ctx = ssl.create_default_context(cafile=pki["ca"])
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", web.port), timeout=10) as raw, \
                pytest.raises(ssl.SSLError):
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    finally:
        web.stop()
