"""Start, find and stop one daemon under a working directory: pid file, log file, bounded waits.

A pid alone is not trusted (pids are reused): the pid file also holds the process start time
(from /proc/PID/stat), and a process counts as ours only while both still match.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Daemon:
    name: str
    argv: tuple[str, ...]
    url: str  # base URL, shown to the user
    health_url: str
    pid_file: Path
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None

    def pid(self) -> int | None:
        """The pid of our running copy, or None (stale pid files are removed)."""
        try:
            pid_text, started = self.pid_file.read_text().split()
            pid = int(pid_text)
        except (FileNotFoundError, ValueError):
            return None
        stat = _stat(pid)
        if stat is not None and stat[1] == started and stat[0] != "Z":
            return pid
        if stat is not None and stat[0] == "Z":
            _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return None

    @property
    def argv_file(self) -> Path:
        return self.pid_file.with_suffix(".argv")

    def started_with(self) -> tuple[str, ...] | None:
        """The argv the running copy was started with (None if unknown)."""
        try:
            return tuple(json.loads(self.argv_file.read_text()))
        except (FileNotFoundError, ValueError):
            return None

    def healthy(self, timeout: float = 1.0) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=timeout) as resp:
                return 200 <= resp.status < 300
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def start(self) -> int:
        """Start the daemon in its own session, output appended to its log file; returns the pid."""
        if self.healthy(timeout=0.5):
            # Someone else's process answers on our port: its health would be mistaken for ours.
            raise StackError(f"{self.name}: {self.url} already answers but is not ours "
                             f"(pid file {self.pid_file}); choose another port")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - argv built from resolved binary paths
                list(self.argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env={**os.environ, **self.env}, cwd=self.cwd,
            )
        stat = _stat(proc.pid)
        self.pid_file.write_text(f"{proc.pid} {stat[1] if stat else 0}\n")
        self.argv_file.write_text(json.dumps(list(self.argv)) + "\n")
        # Reap it when it ends while we are still around (no zombies in long-lived callers).
        _children[proc.pid] = proc
        return proc.pid

    def wait_healthy(self, timeout: float) -> None:
        """Block until the health endpoint answers; raise StackError with the log tail otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy(timeout=0.5):
                return
            if _exited(self.pid_file) or self.pid() is None:
                raise StackError(f"{self.name} exited during start-up; log {self.log_file}:\n"
                                 f"{tail(self.log_file)}")
            time.sleep(0.1)
        raise StackError(f"{self.name} not healthy at {self.health_url} after {timeout:.0f} s; "
                         f"log {self.log_file}:\n{tail(self.log_file)}")

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns True if a process was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        _signal(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            _signal(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)
        self.pid_file.unlink(missing_ok=True)
        self.argv_file.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """SIGKILL at once (failure scenarios: a crashed component)."""
        pid = self.pid()
        if pid is None:
            return False
        _signal(pid, signal.SIGKILL)
        _wait_gone(pid, 5.0)
        self.pid_file.unlink(missing_ok=True)
        self.argv_file.unlink(missing_ok=True)
        return True


class StackError(RuntimeError):
    """A component could not be started or configured; the message says which and why."""


_children: dict[int, subprocess.Popen] = {}


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a process, or None when there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return None
    return fields[0], fields[19]


def _exited(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return True
    proc = _children.get(pid)
    return proc is not None and proc.poll() is not None


def _reap(pid: int) -> None:
    proc = _children.pop(pid, None)
    if proc is not None:
        proc.poll()


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    proc = _children.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            _children.pop(pid, None)
            return False
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            _children.pop(pid, None)
            return True
        time.sleep(0.05)
    return not _alive(pid)


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
