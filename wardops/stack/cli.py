"""`wardops stack up|down|status|webhook`: the local VictoriaMetrics/vmagent/vmalert/Alertmanager stack."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from wardops.stack.process import StackError
from wardops.stack.stack import Ports, Stack, StackSettings

DEFAULT_DIR = os.environ.get("WARDOPS_STACK_DIR", ".wardops/stack")
PORT_FLAGS = {  # flag -> Ports field
    "--vm-port": "victoria_metrics", "--vmagent-port": "vmagent", "--vmalert-port": "vmalert",
    "--alertmanager-port": "alertmanager", "--webhook-port": "webhook",
    "--inventory-service-port": "inventory_service",
}
HA_PORT_FIELDS = ("victoria_metrics_2", "vmagent_2", "vmalert_2", "alertmanager_2", "alertmanager_cluster",
                  "alertmanager_cluster_2", "inventory_service_2")


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    up = sub.add_parser("up", help="start (or reload) the stack and wait until it is healthy")
    _common(up)
    up.add_argument("--config-dir", type=Path, help="`wardops generate` output dir (rules/, alertmanager/, "
                                                    "vmagent/); default: minimal built-in configs")
    defaults = Ports()
    for flag, field_name in PORT_FLAGS.items():
        up.add_argument(flag, type=int, default=getattr(defaults, field_name), dest=field_name,
                        help=f"(default {getattr(defaults, field_name)})")
    up.add_argument("--retention", default="7d", help="VictoriaMetrics -retentionPeriod (default 7d)")
    up.add_argument("--evaluation-interval", default="5s", help="vmalert default group interval")
    up.add_argument("--exporter", action="append", metavar="HOST:PORT",
                    help=f"exporter address scraped by the built-in config (default {StackSettings.exporter}); "
                         "with --ha, a second --exporter (a second probe site) is scraped by both chains")
    up.add_argument("--ha", action="store_true",
                    help="two of every daemon: two vmagents scraping every exporter and writing both "
                         "VictoriaMetrics, a vmalert on each, both notifying an Alertmanager cluster of two")
    for field_name in HA_PORT_FIELDS:
        up.add_argument(f"--{field_name.replace('_', '-')}-port", type=int, dest=field_name,
                        default=getattr(defaults, field_name), help=f"--ha (default {getattr(defaults, field_name)})")
    up.add_argument("--inventory-db", metavar="URL", default="",
                    help="run the inventory service on this database (SQLAlchemy URL, e.g. "
                         "postgresql+psycopg://wardops@db.example/wardops): members inventory-service and, "
                         "with --ha, inventory-service-2 on the same PostgreSQL; the vmagents' /probe job "
                         "reads the HTTP SD of each. The URL reaches the services by environment, never "
                         "their argv; leave the password to ~/.pgpass or PGPASSFILE to keep it out of this "
                         "command line too")
    up.add_argument("--no-webhook", action="store_true", help="do not run the local webhook receiver")
    up.set_defaults(func=run_up)
    down = sub.add_parser("down", help="stop every daemon of the stack (SIGTERM, then SIGKILL)")
    _common(down)
    down.set_defaults(func=run_down)
    status = sub.add_parser("status", help="show each daemon's pid, health, URL and log")
    _common(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=run_status)


def _common(p) -> None:
    p.add_argument("--dir", type=Path, default=Path(DEFAULT_DIR),
                   help="working directory for data, logs, pid files (default %(default)s)")


def run_up(args) -> int:
    ports = Ports(**{name: getattr(args, name) for name in (*PORT_FLAGS.values(), *HA_PORT_FIELDS)})
    exporters = args.exporter or [StackSettings.exporter]
    if len(exporters) > (2 if args.ha else 1):
        print(f"wardops stack up: --exporter given {len(exporters)} times; at most "
              f"{'two (one per chain) with --ha' if args.ha else 'once without --ha'}", file=sys.stderr)
        return 2
    problem = inventory_db_problem(args.inventory_db, args.ha)
    if problem:
        print(f"wardops stack up: --inventory-db: {problem}", file=sys.stderr)
        return 2
    settings = StackSettings(dir=args.dir, config_dir=args.config_dir, ports=ports, retention=args.retention,
                             evaluation_interval=args.evaluation_interval, webhook=not args.no_webhook,
                             exporter=exporters[0], ha=args.ha, exporter_2=exporters[1] if len(exporters) > 1 else "",
                             inventory_db=args.inventory_db)
    stack = Stack(settings)
    try:
        actions = stack.up()
    except StackError as exc:
        print(f"wardops stack up: {exc}", file=sys.stderr)
        return 1
    for name, action in actions.items():
        if action in ("running", "reloaded"):
            print(f"stack: {name} already running ({action})")
    print_urls(stack)
    return 0


def inventory_db_problem(url: str, ha: bool) -> str:
    """Why `url` cannot serve the inventory services ("" if it can); never repeats the URL (it may
    hold a password)."""
    if not url:
        return ""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        return "not a SQLAlchemy database URL (e.g. postgresql+psycopg://user@host/db)"
    if ha and backend != "postgresql":
        return (f"--ha runs two services on one database, which must be PostgreSQL (got a {backend} URL)")
    return ""


def print_urls(stack: Stack, out=None) -> None:
    out = out or sys.stdout  # looked up per call: a default bound at import outlives a redirected stdout
    print("stack is up:", file=out)
    for name, url in stack.urls().items():
        print(f"  {name:<17} {url}", file=out)
    print(f"  {'logs':<17} {stack.dir / 'log'}", file=out)


def run_down(args) -> int:
    stopped = Stack.from_dir(args.dir).down()
    print(f"stack: {len(stopped)} daemon(s) stopped" if stopped else "stack: nothing was running")
    return 0


def run_status(args) -> int:
    status = Stack.from_dir(args.dir).status()
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        for name, st in status.items():
            state = "down" if st["pid"] is None else ("healthy" if st["healthy"] else "UNHEALTHY")
            print(f"{name:<17} {state:<9} pid={st['pid'] or '-':<8} {st['url']}  log {st['log']}")
    running = [s for s in status.values() if s["pid"] is not None]
    return 0 if running and all(s["healthy"] for s in running) and len(running) == len(status) else 3
