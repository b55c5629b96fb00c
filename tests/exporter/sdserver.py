"""A loopback HTTP SD server whose answers a test scripts: JSON, slow drips, huge or endless bodies."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SD = [{"targets": [f"198.18.1.{i}"], "labels": {"device": f"d{i}", "role": "router", "region": "r",
                                               "branch": "b"}} for i in range(1, 11)]


class SdServer:
    """`answers[path]` is bytes (sent with Content-Length) or a callable(handler) that writes itself."""

    def __init__(self):
        self.answers: dict[str, object] = {"/api/v1/sd": json.dumps(SD).encode(),
                                           "/api/v1/snmp-profiles": b'{"items": []}'}
        self.sent = 0  # body bytes written by callables (to check a reader stopped early)
        self.stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                answer = outer.answers.get(self.path.split("?")[0], b"[]")
                if callable(answer):
                    try:
                        answer(self, outer)
                    except OSError:  # the reader gave up: expected
                        pass
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/api/v1/sd"

    def __enter__(self) -> SdServer:
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def drip(every: float, length: int = 10_000):
    """Headers at once, then one byte every `every` seconds (until the client leaves or the test ends)."""
    def answer(handler, server):
        handler.send_response(200)
        handler.send_header("Content-Length", str(length))
        handler.end_headers()
        handler.wfile.flush()
        for _ in range(length):
            if server.stop.wait(every):
                return
            handler.wfile.write(b" ")
            handler.wfile.flush()
            server.sent += 1
    return answer


def endless(content_length: int | None = None, chunk: int = 1 << 20):
    """A body of `[` + spaces without end (close-delimited), or claiming `content_length`."""
    def answer(handler, server):
        handler.send_response(200)
        if content_length is not None:
            handler.send_header("Content-Length", str(content_length))
        else:
            handler.send_header("Connection", "close")
        handler.end_headers()
        block = b"[" + b" " * (chunk - 1)
        deadline = time.monotonic() + 30
        while not server.stop.is_set() and time.monotonic() < deadline:
            handler.wfile.write(block)
            server.sent += len(block)
            if content_length is not None and server.sent >= content_length:
                return
    return answer
