"""What several benchmarks measure and start the same way: CPU of a process, a free port, the real
exporter (in this process or as its own process in a lab namespace)."""

from __future__ import annotations

import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def stop_on_sigterm() -> None:
    """SIGTERM (`kill`, a timeout) ends a bench the way Ctrl-C does: through its `with` blocks and
    `finally`s, so its namespaces and daemons are removed. The default action ends the interpreter
    at once: a killed bench.ha left its lab's three namespaces and six daemons behind."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def cpu_self() -> float:
    """User + system CPU seconds of this process."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of another process, from /proc (fields 14 and 15 of stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quiet_logger(name: str = "bench") -> logging.Logger:
    log = logging.getLogger(name)
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return log


def inprocess_exporter(inventory: str, ready_within: float, config=None):
    """The real exporter started in this process on `inventory` (with `config`, default: built-in
    policies); returns it once ready, or raises after `ready_within` seconds."""
    from exporter.app import Exporter
    from exporter.config import ExporterConfig
    from exporter.targets import FileSource

    exp = Exporter(FileSource(inventory), config or ExporterConfig(), log=quiet_logger())
    exp.refresh(force=True)
    exp.start()
    deadline = time.monotonic() + ready_within
    while not exp.ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"exporter not ready within {ready_within:.0f} s")
        time.sleep(0.1)
    return exp


def spawn_exporter(inventory: Path, config: Path, netns: str, log_path: Path, env: dict[str, str],
                   ready_within: float = 120.0) -> tuple[subprocess.Popen, int]:
    """`wardops exporter` as its own process probing from `netns`, on a free loopback port; returns
    (process, port) once /-/ready answers 200, or raises (the process is then stopped)."""
    port = free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "wardops.cli", "exporter", "--inventory", str(inventory),
                                 "--config.file", str(config), "--netns", netns,
                                 "--web.listen-address", f"127.0.0.1:{port}"],
                                stderr=log, env={**os.environ, **env})
    deadline = time.monotonic() + ready_within
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise SystemExit(f"exporter did not become ready; log: {log_path}")
        time.sleep(0.5)
