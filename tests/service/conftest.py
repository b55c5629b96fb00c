"""Fixtures: the app on a temporary SQLite file and, with the same tests, on a real PostgreSQL.

The PostgreSQL cluster is started once per session (throwaway, unix socket only) and each test
gets its own new database. If it cannot start, the PostgreSQL tests fail with the reason.
"""

from __future__ import annotations

import io
import socket
import threading
from contextlib import redirect_stderr, redirect_stdout

import pytest

from inventory.service.app import create_app
from tests.service.throwaway_pg import ThrowawayPostgres

ADMIN = "admin-token-0123456789abcdef"
READER = "read-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
READ_AUTH = {"Authorization": f"Bearer {READER}"}

_pg_state: dict = {}


@pytest.fixture(scope="session")
def postgres():
    pg = ThrowawayPostgres()
    try:
        pg.start()  # PgStartError propagates: the PostgreSQL tests error out with the reason
        yield pg
    finally:
        pg.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/inventory.db"
    return request.getfixturevalue("postgres").create_database()


def make_app(db_url, **config):
    cfg = {"DB_URL": db_url, "ADMIN_TOKENS": [ADMIN], "READ_TOKENS": [READER], "TESTING": True,
           "RATELIMIT_ENABLED": False}
    cfg.update(config)
    return create_app(cfg, environ={})


@pytest.fixture
def app(db_url):
    app = make_app(db_url)
    yield app
    app.extensions["wardops_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


class CliRunner:
    """Runs `wardops ...` in-process and captures its output."""

    def invoke(self, *argv: str) -> tuple[int, str, str]:
        from wardops.cli import main

        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(argv))
        return code, out.getvalue(), err.getvalue()


@pytest.fixture
def runner():
    return CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The app under waitress on 127.0.0.1:<free port>, in a thread; closed after the test."""

    def __init__(self, app, threads: int = 8):
        from waitress.server import create_server

        self.server = create_server(app, host="127.0.0.1", port=free_port(), threads=threads)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.server.run()
        except (OSError, ValueError):  # the listener was closed under select(): normal shutdown
            pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.close()
        self.thread.join(timeout=10)
        return False


def device(i: int, **fields) -> dict:
    """A valid device spec in 198.18.0.0/15 (lab range)."""
    out = {"name": f"dev{i}", "ip": f"198.18.{i // 250}.{i % 250 + 1}", "region": "Tbilisi",
           "branch": f"Branch {i % 7}"}
    out.update(fields)
    return out
