"""Make devices flap: down for PERIOD, up for PERIOD, ... for a bounded time; always ends up."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Flapper:
    """Toggle `ips` every `period` seconds for `duration` seconds, starting with down.

    Runs in the caller (`run()`, the CLI) or a background thread (`start()`, tests running several
    scenarios at once). `stop()` ends early; either way the addresses are left up.
    """

    lab: object  # anything with down(ips) and up(ips): wardops.lab.netns.Lab or a fake
    ips: list[str]
    period: float
    duration: float
    transitions: list[tuple[float, str]] = field(default_factory=list)  # (epoch, "down"|"up")
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        if self.period <= 0 or self.duration <= 0:
            raise ValueError("flap period and duration must be positive")

    def run(self) -> list[tuple[float, str]]:
        end = time.monotonic() + self.duration
        down = False
        try:
            while True:
                down = not down
                (self.lab.down if down else self.lab.up)(self.ips)
                self.transitions.append((time.time(), "down" if down else "up"))
                wait = min(self.period, end - time.monotonic())
                if wait <= 0 or self._stop.wait(wait):
                    break
        finally:
            if down:
                self.lab.up(self.ips)
                self.transitions.append((time.time(), "up"))
        return self.transitions

    def start(self) -> Flapper:
        self._thread = threading.Thread(target=self.run, name="flap", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
