"""A throwaway PostgreSQL cluster on a private unix socket, for tests and benchmarks.

Uses the Debian server binaries (/usr/lib/postgresql/<ver>/bin). Runs as user `postgres` when
started by root (initdb refuses root). No TCP listener; everything is removed by stop().
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid


class PgStartError(RuntimeError):
    pass


def _bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise PgStartError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    return os.path.dirname(found[-1])


class ThrowawayPostgres:
    def __init__(self):
        self.bindir = _bindir()
        self.dir: str | None = None
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.running = False

    def _run(self, argv: list[str], timeout: float = 60) -> str:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise PgStartError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def start(self) -> ThrowawayPostgres:
        self.dir = tempfile.mkdtemp(prefix="wardops-pg-")
        try:
            if os.geteuid() == 0:
                pw = pwd.getpwnam("postgres")
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            data = os.path.join(self.dir, "data")
            self._run([f"{self.bindir}/initdb", "-D", data, "-U", self.user, "--auth=trust", "-E", "UTF8",
                       "--no-sync", "--locale=C"])
            opts = (f"-k {self.dir} -c listen_addresses='' -c fsync=off -c full_page_writes=off "
                    "-c synchronous_commit=off -c max_connections=200")
            self._run([f"{self.bindir}/pg_ctl", "-D", data, "-o", opts, "-l", os.path.join(self.dir, "log"),
                       "-w", "-t", "60", "start"], timeout=90)
            self.running = True
        except (PgStartError, OSError, subprocess.TimeoutExpired) as exc:
            log = self._log_tail()
            self.stop()
            raise PgStartError(f"{exc}\n{log}") from None
        return self

    def _log_tail(self) -> str:
        try:
            with open(os.path.join(self.dir or "", "log"), encoding="utf-8") as fh:
                return fh.read()[-2000:]
        except OSError:
            return ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.dir}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = name or f"wardops_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host=self.dir, user=self.user, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.running:
            try:
                self._run([f"{self.bindir}/pg_ctl", "-D", os.path.join(self.dir, "data"), "-m", "immediate",
                           "-w", "stop"])
            except (PgStartError, subprocess.TimeoutExpired):
                pass
            self.running = False
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
