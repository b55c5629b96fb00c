"""A webhook receiver that records Alertmanager notifications with their UTC receive time.

Each POST body is stored as one JSON line: {"received_at": ISO-8601 UTC, "received_ts": epoch
seconds, "notification": <Alertmanager payload>}. In-process use (tests, demo, benchmark):

    with WebhookReceiver(port=0) as rx:       # rx.url -> "http://127.0.0.1:PORT/alerts"
        ...
        rx.wait_for(lambda a: a.name == "IspLinkDown" and a.status == "firing", timeout=30)

`python -m wardops.stack.webhook --listen HOST:PORT --output FILE` runs it as the stack's daemon.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_BODY = 16 * 1024 * 1024


@dataclass(frozen=True)
class Received:
    """One alert as delivered in one notification (a notification carries a group of alerts)."""

    name: str
    status: str  # firing | resolved (of this alert, not of the group)
    labels: dict
    annotations: dict
    starts_at: str
    ends_at: str
    received_ts: float  # epoch seconds, when the notification arrived
    receiver: str
    # The notification's externalURL: which Alertmanager sent it (tells the members of a cluster apart).
    sender: str = ""

    @property
    def received_at(self) -> datetime:
        return datetime.fromtimestamp(self.received_ts, tz=UTC)


def alerts_of(record: dict) -> Iterator[Received]:
    n = record["notification"]
    for a in n.get("alerts", []):
        labels = a.get("labels", {})
        yield Received(name=labels.get("alertname", ""), status=a.get("status", ""), labels=labels,
                       annotations=a.get("annotations", {}), starts_at=a.get("startsAt", ""),
                       ends_at=a.get("endsAt", ""), received_ts=record["received_ts"],
                       receiver=n.get("receiver", ""), sender=n.get("externalURL", ""))


class WebhookReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, output: Path | None = None):
        self._records: list[dict] = []
        self._cond = threading.Condition()
        self._output = output
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}/alerts"

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- recording ---------------------------------------------------------------------------

    def record(self, notification: dict) -> dict:
        now = time.time()
        record = {"received_at": datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="milliseconds"),
                  "received_ts": now, "notification": notification}
        with self._cond:
            self._records.append(record)
            if self._output is not None:
                with open(self._output, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, sort_keys=True) + "\n")
            self._cond.notify_all()
        return record

    def records(self) -> list[dict]:
        with self._cond:
            return list(self._records)

    def alerts(self, since: float = 0.0) -> list[Received]:
        """Every alert of every notification received at or after `since` (epoch seconds)."""
        return [a for r in self.records() if r["received_ts"] >= since for a in alerts_of(r)]

    def clear(self) -> None:
        with self._cond:
            self._records.clear()

    def wait_for(self, predicate: Callable[[Received], bool], timeout: float,
                 since: float = 0.0) -> Received | None:
        """The first alert (received at/after `since`) matching `predicate`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for r in self._records:
                    if r["received_ts"] < since:
                        continue
                    for a in alerts_of(r):
                        if predicate(a):
                            return a
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 1.0))

    # -- HTTP --------------------------------------------------------------------------------

    def _handler_class(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                if length <= 0 or length > MAX_BODY:
                    return self._reply(400, {"error": "a JSON body of 1 byte to 16 MiB is required"})
                try:
                    payload = json.loads(self.rfile.read(length))
                except ValueError as exc:
                    return self._reply(400, {"error": f"invalid JSON: {exc}"})
                if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
                    return self._reply(400, {"error": "not an Alertmanager notification (no alerts list)"})
                receiver.record(payload)
                return self._reply(200, {"status": "recorded"})

            def do_GET(self):  # noqa: N802
                if self.path in ("/-/healthy", "/-/ready"):
                    return self._reply(200, {"status": "ok"})
                if self.path.split("?")[0] == "/alerts":
                    return self._reply(200, receiver.records())
                return self._reply(404, {"error": "not found"})

            def _reply(self, code: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args):  # noqa: A002 - quiet; records are the log
                return

        return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wardops.stack.webhook",
                                     description="record Alertmanager notifications as JSON lines")
    parser.add_argument("--listen", default="127.0.0.1:9095", help="HOST:PORT (default %(default)s)")
    parser.add_argument("--output", type=Path, required=True, help="JSON lines file to append to")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    rx = WebhookReceiver(host or "127.0.0.1", int(port), output=args.output)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    rx.start()
    print(f"webhook: recording notifications from {rx.url} to {args.output}", flush=True)
    stop.wait()
    rx.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def distinct(alerts, name: str, status: str = "firing", **labels) -> set[tuple]:
    """Distinct alerts (label set + start time) among received ones: Alertmanager repeats a firing
    alert in every later notification of its group, and a repeat is not a new alert."""
    return {(tuple(sorted(a.labels.items())), a.starts_at) for a in alerts
            if a.name == name and a.status == status and all(a.labels.get(k) == v for k, v in labels.items())}
