"""HTTP endpoints on a ThreadingHTTPServer in its own thread.

Why not an asyncio server on the probing loop: a scrape of 10k devices writes ~10 MB; doing that
on the loop would delay reply reads (and a slow scraper could stall probing). The scrape itself only
joins pre-rendered bytes, so a thread per connection is cheap, and the standard library suffices.

Bounds, because the default listen address is 0.0.0.0: at most `max_connections` (64) connections are
served at once (further ones wait in the kernel's accept backlog of `ACCEPT_BACKLOG`, costing no
thread), and a connection that sends nothing for `IDLE_TIMEOUT` seconds is closed, so 400 idle clients
hold at most 64 threads for at most 15 s each.

Keep-alive only while fewer than half the slots are taken. vmagent opens one connection per scrape
target, and the blackbox-style /probe job has one target per device: 130 devices scraped every 60 s
each left a connection idle for 15 s after its answer, about 35 at once on average and all 64 at
peaks. Then the 1 s /metrics scrape waited in the backlog, the standard library's backlog of 5
overflowed, connects were dropped, and a scrape took over 30 s. Past half, an answer carries
`Connection: close`, so idle connections never hold more than half the threads (an idle connection
to a 60 s scraper saves nothing anyway: the server closes it after 15 s). `POST /-/reload` needs --web.enable-lifecycle (as in Prometheus). TLS and basic
auth come from --web.config.file (exporter/webconfig.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from exporter.exposition import CONTENT_TYPE, MODULES
from exporter.probers import PROBERS, ProbeRefused, ProbeResult, get_prober, render_probe
from exporter.webconfig import WebConfig

IDLE_TIMEOUT = 15.0  # seconds without a byte from the client (Prometheus scrapes keep-alive; it reconnects)
MAX_CONNECTIONS = 64
ACCEPT_BACKLOG = 1024  # listen(2) queue while every slot is busy (the kernel caps it at somaxconn)
# A client closing early (scrape timeout, curl ^C, port scanner) is routine: one log line, no traceback.
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError, ssl.SSLError)

INDEX = b"""<html><head><title>wardops exporter</title></head><body><h1>wardops exporter</h1>
<p><a href="/metrics">/metrics</a> (?role=isp, ?exclude_role=isp, ?module=icmp|snmp) &middot;
/probe?target=IP|NAME&amp;module=icmp|snmp &middot; <a href="/-/healthy">/-/healthy</a> &middot;
<a href="/-/ready">/-/ready</a> &middot; POST /-/reload</p></body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    exporter = None  # set by WebServer
    web_config: WebConfig = WebConfig()
    lifecycle = False  # --web.enable-lifecycle
    server_version = "wardops-exporter"
    timeout = IDLE_TIMEOUT  # socket timeout of every read and write on the connection

    def log_message(self, fmt, *args):  # access logs would cost more than the scrape itself
        pass

    def _send(self, status: int, body: bytes | list[bytes], content_type: str = "text/plain; charset=utf-8",
              encoding: str | None = None):
        chunks = body if isinstance(body, list) else [body]
        self.send_response(status)
        for name, value in self.web_config.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(sum(len(c) for c in chunks)))
        if not self.server.keep_alive_allowed():
            self.send_header("Connection", "close")  # also sets close_connection
        self.end_headers()
        if self.command != "HEAD":
            for chunk in chunks:  # no join: a 10k-device exposition is ~14 MB, do not copy it
                self.wfile.write(chunk)

    def do_HEAD(self):
        self.do_GET()

    def _authorized(self) -> bool:
        """Basic auth from the web config (none configured: everyone); a 401 is sent when refused."""
        if self.web_config.authorized(self.headers.get("Authorization")):
            return True
        body = b"Unauthorized\n"
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="wardops exporter"')
        for name, value in self.web_config.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return False

    def do_GET(self):
        if not self._authorized():
            return None
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/metrics":
            role, exclude = query.get("role"), query.get("exclude_role")
            if (role not in (None, "isp")) or (exclude not in (None, "isp")) or (role and exclude):
                return self._send(400, b"only role=isp or exclude_role=isp is supported\n")
            module = query.get("module")
            if module not in (None, *MODULES):
                return self._send(400, f"module must be one of {', '.join(MODULES)}\n".encode())
            expo = self.exporter.exposition
            gzip = "gzip" in self.headers.get("Accept-Encoding", "")
            if gzip:
                expo.gzip_wanted = True  # from now on each round is compressed once, in the render thread
            try:
                chunks = expo.render(role, exclude, gzip=gzip, module=module)
            except Exception as exc:  # a broken self-metric source must not look like an empty target
                self.exporter.log.exception('msg="render failed"')
                return self._send(500, f"render failed: {exc.__class__.__name__}\n".encode())
            return self._send(200, chunks, CONTENT_TYPE, "gzip" if gzip else None)
        if url.path == "/probe":
            return self._probe(query)
        if url.path == "/-/healthy":
            return self._send(200, b"Healthy\n")
        if url.path == "/-/ready":
            ok = self.exporter.ready()
            return self._send(200 if ok else 503, b"Ready\n" if ok else b"Not ready\n")
        if url.path == "/":
            return self._send(200, INDEX, "text/html; charset=utf-8")
        return self._send(404, b"not found\n")

    def do_POST(self):
        if not self._authorized():
            return None
        url = urlsplit(self.path)
        if url.path != "/-/reload":
            return self._send(404, b"not found\n")
        if not self.lifecycle:
            return self._send(403, b"Lifecycle API is not enabled (start with --web.enable-lifecycle; "
                                   b"SIGHUP reloads too)\n")
        if parse_qs(url.query).get("force", [""])[-1] in ("1", "true"):
            accept = getattr(self.exporter.source, "accept_held", None)
            if accept is not None:  # apply an answer held for dropping too many devices
                accept()
        ok, message = self.exporter.reload()
        return self._send(200 if ok else 500, f"{message}\n".encode())

    def _probe(self, query: dict[str, str]):
        target, module = query.get("target"), query.get("module", "icmp")
        if not target:
            return self._send(400, b"target parameter is missing\n")
        prober = get_prober(self.exporter.runtime, module)
        if prober is None:
            return self._send(400, f"unknown module {module!r} (known: {', '.join(PROBERS)})\n".encode())
        resolved = self.exporter.resolve(target)
        if resolved is None:
            return self._send(403, f"target {target!r} is neither an inventory device nor inside "
                                   "probe.allowed_cidrs\n".encode())
        started = time.monotonic()
        timeout = self.exporter.config.probe.timeout
        with contextlib.suppress(TypeError, ValueError):  # like blackbox: stay inside the scraper's timeout
            timeout = min(timeout, max(0.1, float(self.headers.get("X-Prometheus-Scrape-Timeout-Seconds")) - 0.5))
        try:  # probers answer by the deadline; wait_for only catches one that does not (+0.2 s)
            result = self.exporter.run_on_loop(
                asyncio.wait_for(prober(resolved, query, started + timeout), timeout + 0.2), timeout + 5)
        except TimeoutError:
            result = ProbeResult(False)  # a probe that ran out of time failed; it is not a server error
        except ProbeRefused as exc:
            return self._send(403, f"{exc}\n".encode())
        except Exception as exc:
            return self._send(500, f"probe failed: {exc.__class__.__name__}: {exc}\n".encode())
        return self._send(200, render_probe(resolved, result, time.monotonic() - started), CONTENT_TYPE)


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` at once; TLS handshakes in that thread."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = ACCEPT_BACKLOG

    def __init__(self, address, handler, *, ssl_context: ssl.SSLContext | None, max_connections: int,
                 log: logging.Logger, idle_timeout: float):
        self.address_family = address_family(address[0])  # before the socket is created
        super().__init__(address, handler)
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout
        self.log = log
        self._slots = threading.BoundedSemaphore(max_connections)
        self._keep_alive_limit = max(1, max_connections // 2)
        self._open = 0  # connections holding a slot
        self._open_lock = threading.Lock()
        self._closing = False

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            # `[::]` means every address of both families, as Go exporters do: Linux defaults to
            # dual-stack (net.ipv6.bindv6only=0), but a host may have turned that off.
            with contextlib.suppress(OSError, AttributeError):
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def keep_alive_allowed(self) -> bool:
        """True while fewer than half the slots are taken (counting the asking connection)."""
        return self._open <= self._keep_alive_limit

    def process_request(self, request, client_address):
        # Waiting here (not accepting) leaves further clients in the kernel backlog, costing no thread.
        while not self._slots.acquire(timeout=0.5):
            if self._closing:
                self.shutdown_request(request)
                return
        with self._open_lock:
            self._open += 1
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: give the slot back
            self._release()
            raise

    def _release(self) -> None:
        with self._open_lock:
            self._open -= 1
        self._slots.release()

    def process_request_thread(self, request, client_address):
        try:
            request.settimeout(self.idle_timeout)  # bounds the TLS handshake too
            if self.ssl_context is not None:
                try:
                    request = self.ssl_context.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError) as exc:
                    self._client_gone(client_address, exc, "tls handshake")
                    with contextlib.suppress(OSError):
                        request.close()
                    return
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def handle_error(self, request, client_address):
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, CLIENT_GONE):  # socket.timeout is TimeoutError
            self._client_gone(client_address, exc, "request")
        else:  # a bug: one line with the cause; the traceback only at debug level
            self.log.error('msg="http request failed" client=%s err="%s: %s"', _peer(client_address),
                           exc.__class__.__name__, str(exc).replace('"', "'"))
            self.log.debug("http request failure", exc_info=exc)

    def _client_gone(self, client_address, exc: BaseException, phase: str) -> None:
        self.log.info('msg="client went away" client=%s phase="%s" err=%s', _peer(client_address), phase,
                      exc.__class__.__name__)


def _peer(address) -> str:
    try:
        return join_host_port(address[0], address[1])
    except (TypeError, IndexError):
        return str(address)


def join_host_port(host: str, port: int) -> str:
    """`1.2.3.4:80`, `[::1]:80`: the form --web.listen-address takes and logs show."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def address_family(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 literal, or for a name whose first passive address is IPv6; else AF_INET."""
    if ":" in host:
        return socket.AF_INET6
    try:
        return socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    except (OSError, IndexError):
        return socket.AF_INET  # binding then fails with the resolver's own message


class WebServer:
    def __init__(self, exporter, host: str, port: int, *, lifecycle: bool = False,
                 web_config: WebConfig | None = None, max_connections: int = MAX_CONNECTIONS,
                 idle_timeout: float = IDLE_TIMEOUT):
        web_config = web_config or WebConfig()
        handler = type("Handler", (_Handler,), {"exporter": exporter, "lifecycle": lifecycle,
                                                "web_config": web_config, "timeout": idle_timeout})
        self.httpd = _Server((host, port), handler, ssl_context=web_config.ssl_context(),
                             max_connections=max_connections, idle_timeout=idle_timeout,
                             log=getattr(exporter, "log", None) or logging.getLogger("wardops.exporter"))
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="web", daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> WebServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd._closing = True
        self.httpd.shutdown()
        self.httpd.server_close()


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or :PORT (every IPv4 address). An IPv6 address needs its brackets:
    in `::1:10118` the port could be the last group of the address."""
    bad = ValueError(f"--web.listen-address must be HOST:PORT or [IPv6]:PORT, got {text!r}")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise bad
    if host.startswith("[") or host.endswith("]"):
        if not (host.startswith("[") and host.endswith("]")) or ":" not in host:
            raise bad
        host = host[1:-1]
    elif ":" in host:
        raise bad
    return host or "0.0.0.0", int(port)
