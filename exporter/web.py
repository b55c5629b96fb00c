"""HTTP endpoints on a ThreadingHTTPServer in its own thread.

Why not an asyncio server on the probing loop: a scrape of 10k devices writes ~10 MB; doing that
on the loop would delay reply reads (and a slow scraper could stall probing). The scrape itself only
joins pre-rendered bytes, so a thread per connection is cheap, and the standard library suffices.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from exporter.exposition import CONTENT_TYPE, MODULES
from exporter.probers import PROBERS, ProbeRefused, ProbeResult, get_prober, render_probe

INDEX = b"""<html><head><title>wardops exporter</title></head><body><h1>wardops exporter</h1>
<p><a href="/metrics">/metrics</a> (?role=isp, ?exclude_role=isp, ?module=icmp|snmp) &middot;
/probe?target=IP|NAME&amp;module=icmp|snmp &middot; <a href="/-/healthy">/-/healthy</a> &middot;
<a href="/-/ready">/-/ready</a> &middot; POST /-/reload</p></body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    exporter = None  # set by make_server
    server_version = "wardops-exporter"

    def log_message(self, fmt, *args):  # access logs would cost more than the scrape itself
        pass

    def _send(self, status: int, body: bytes | list[bytes], content_type: str = "text/plain; charset=utf-8",
              encoding: str | None = None):
        chunks = body if isinstance(body, list) else [body]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(sum(len(c) for c in chunks)))
        self.end_headers()
        if self.command != "HEAD":
            for chunk in chunks:  # no join: a 10k-device exposition is ~14 MB, do not copy it
                self.wfile.write(chunk)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
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
        if urlsplit(self.path).path != "/-/reload":
            return self._send(404, b"not found\n")
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


class WebServer:
    def __init__(self, exporter, host: str, port: int):
        handler = type("Handler", (_Handler,), {"exporter": exporter})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="web", daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> WebServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web.listen-address must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)
