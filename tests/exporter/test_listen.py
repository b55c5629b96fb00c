"""--web.listen-address: IPv4, IPv6 and dual-stack listeners on loopback."""

from __future__ import annotations

import http.client
import socket

import pytest

from exporter.web import WebServer, join_host_port, parse_listen


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="the kernel has no IPv6 loopback (::1)")


class _Exporter:
    """Just enough for /-/healthy, which touches nothing of the exporter."""

    log = None


@pytest.mark.parametrize(("text", "want"), [
    ("127.0.0.1:10118", ("127.0.0.1", 10118)),
    (":10118", ("0.0.0.0", 10118)),
    ("[::1]:10118", ("::1", 10118)),
    ("[::]:0", ("::", 0)),
    ("localhost:80", ("localhost", 80)),
])
def test_parse_listen(text, want):
    assert parse_listen(text) == want


@pytest.mark.parametrize("text", ["::1:10118", "[::1:10118", "::1]:10118", "[]:80", "127.0.0.1", "h:x", "h:70000"])
def test_parse_listen_rejects(text):
    with pytest.raises(ValueError, match=r"must be HOST:PORT or \[IPv6\]:PORT, got"):
        parse_listen(text)


def test_join_host_port_brackets_ipv6():
    assert join_host_port("::1", 80) == "[::1]:80"
    assert join_host_port("10.0.0.5", 80) == "10.0.0.5:80"


def _healthy(connect_host: str, port: int) -> int:
    conn = http.client.HTTPConnection(connect_host, port, timeout=5)
    try:
        conn.request("GET", "/-/healthy")
        return conn.getresponse().status
    finally:
        conn.close()


def _serve(listen: str) -> WebServer:
    host, port = parse_listen(listen)
    return WebServer(_Exporter(), host, port).start()


@needs_ipv6
def test_listens_on_ipv6_loopback():
    web = _serve("[::1]:0")
    try:
        assert web.httpd.socket.family == socket.AF_INET6
        assert _healthy("::1", web.port) == 200
        with pytest.raises(OSError):  # ::1 only: nothing listens on 127.0.0.1 at that port
            _healthy("127.0.0.1", web.port)
    finally:
        web.stop()


@needs_ipv6
def test_ipv6_any_is_dual_stack():
    web = _serve("[::]:0")
    try:
        assert web.httpd.socket.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        assert _healthy("::1", web.port) == 200
        assert _healthy("127.0.0.1", web.port) == 200  # IPv4 over the same socket (v4-mapped)
    finally:
        web.stop()


def test_ipv4_still_ipv4():
    web = _serve("127.0.0.1:0")
    try:
        assert web.httpd.socket.family == socket.AF_INET
        assert _healthy("127.0.0.1", web.port) == 200
    finally:
        web.stop()
