"""Database schema, engine setup and versioned migrations (SQLite file or PostgreSQL).

Each device row keeps two things: `spec`, the device's explicit fields exactly as the user sent
them (JSON), and the resolved columns (region, branch, role, ...) after classify rules, which the
list filters query in SQL. The resolved columns are rewritten from the shared validator's output
on every change, so they never disagree with what the YAML loader would build.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeDecorator

UTC = dt.UTC


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in and out, also on SQLite (which stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


metadata = MetaData()

migrations_table = Table(
    "wardops_schema_migrations", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

# One row: the inventory generation, bumped by every committed write. Writers lock this row
# first (UPDATE ... RETURNING), which serialises them across threads and processes; readers
# compare it with their cached snapshot's generation.
state_table = Table(
    "wardops_state", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("generation", BigInteger, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
)

devices_table = Table(
    "wardops_devices", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # id order = inventory order
    Column("name", String(), nullable=False, unique=True),
    Column("ip", String(), nullable=False, unique=True),  # canonical (resolved) form
    Column("region", String(), nullable=False),
    Column("branch", String(), nullable=False),
    Column("role", String(16), nullable=False),
    Column("isp", String()),
    Column("snmp", String()),
    Column("enabled", Boolean, nullable=False),
    Column("labels", Text, nullable=False),  # resolved labels, JSON object
    Column("sites", Text, nullable=False, server_default="[]"),  # resolved probe sites, JSON list ([]: all)
    Column("spec", Text, nullable=False),  # explicit fields as sent, JSON object
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_wardops_devices_region", "region"),
    Index("ix_wardops_devices_branch", "branch"),
    Index("ix_wardops_devices_role", "role"),
    Index("ix_wardops_devices_snmp", "snmp"),
    Index("ix_wardops_devices_enabled", "enabled"),
)

profiles_table = Table(
    "wardops_snmp_profiles", metadata,
    Column("name", String(), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("spec", Text, nullable=False),
)

rules_table = Table(
    "wardops_classify_rules", metadata,
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("spec", Text, nullable=False),
)

windows_table = Table(
    "wardops_maintenance_windows", metadata,
    Column("name", String(), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("spec", Text, nullable=False),
)

SCHEMA_TABLES = (state_table, devices_table, profiles_table, rules_table, windows_table)


def _migrate_1(conn) -> None:
    for table in SCHEMA_TABLES:
        table.create(conn, checkfirst=True)
    conn.execute(insert(state_table).values(id=1, generation=1, changed_at=utcnow()))


def _migrate_2(conn) -> None:
    # A database created by this version already has the column (_migrate_1 creates the tables
    # as defined above); one created before it gets the column, every row "all sites" (the
    # loader refused `sites:` until then, so no stored spec can name one).
    columns = {c["name"] for c in inspect(conn).get_columns(devices_table.name)}
    if "sites" not in columns:
        conn.execute(text(f"ALTER TABLE {devices_table.name} ADD COLUMN sites TEXT NOT NULL DEFAULT '[]'"))


# version -> (description, function). Append new versions; never edit an applied one.
MIGRATIONS = {
    1: ("devices, snmp profiles, classify rules, maintenance windows, generation", _migrate_1),
    2: ("devices.sites: the probe sites of each device", _migrate_2),
}
SCHEMA_VERSION = max(MIGRATIONS)


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (SQLAlchemy's default would be psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("SQLite needs a file path (sqlite:///path/to/inventory.db); "
                             "an in-memory database is not shared between threads")
        engine = create_engine(url, connect_args={"timeout": 30})
        _sqlite_setup(engine)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"unsupported database {parsed.get_backend_name()!r} (use sqlite:/// or postgresql://)")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _sqlite_setup(engine: Engine) -> None:
    # pysqlite's own transaction handling cannot BEGIN IMMEDIATE; take it over (SQLAlchemy's
    # documented recipe) so a write transaction takes the write lock up front instead of
    # failing with "database is locked" when it upgrades from a read lock.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        write = conn.get_execution_options().get("wardops_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def migrate(engine: Engine) -> int:
    """Create or upgrade the schema; return the schema version. Safe with concurrent starters."""
    with engine.connect() as conn:
        conn = conn.execution_options(wardops_write=True)
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7734119)"))
            migrations_table.create(conn, checkfirst=True)
            done = set(conn.execute(select(migrations_table.c.version)).scalars())
            for version in sorted(MIGRATIONS):
                if version in done:
                    continue
                description, apply = MIGRATIONS[version]
                apply(conn)
                conn.execute(insert(migrations_table).values(
                    version=version, description=description, applied_at=utcnow()))
            newest = max(done | set(MIGRATIONS))
    if newest > SCHEMA_VERSION:
        raise RuntimeError(f"database schema version {newest} is newer than this wardops ({SCHEMA_VERSION})")
    return newest
