"""Default ports: one number per program everywhere in the repository, none of them taken in the
Prometheus default-port allocation list (docs/integrate.md, "Default ports")."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

from exporter import cli as exporter_cli
from exporter.web import parse_listen
from generators.settings import Settings
from inventory import cli as inventory_cli
from wardops.stack.stack import StackSettings
from wardops.stack.testbed import TestbedSettings

ROOT = Path(__file__).resolve().parents[2]
EXPORTER_PORT, INVENTORY_PORT = 10118, 10119
# Allocated in the Prometheus wiki list: 9100-9999 entirely (9118 Jenkins, 9119 BIND exporter), and
# outside it near ours: 10001-10024, 10026, 10100, 10101, 10200, 10201.
ALLOCATED = {*range(9100, 10000), *range(10001, 10025), 10026, 10100, 10101, 10200, 10201}


def _exporter_default_listen() -> str:
    parser = argparse.ArgumentParser()
    exporter_cli.configure(parser)
    return parser.parse_args(["--inventory", "inv.yml"]).listen


def _default(cls, name: str):
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


def test_defaults_are_unallocated_and_agree():
    assert EXPORTER_PORT not in ALLOCATED and INVENTORY_PORT not in ALLOCATED
    assert parse_listen(_exporter_default_listen())[1] == EXPORTER_PORT
    assert parse_listen(inventory_cli.DEFAULT_LISTEN)[1] == INVENTORY_PORT
    assert Settings().exporter_targets == (f"127.0.0.1:{EXPORTER_PORT}",)
    assert _default(StackSettings, "exporter") == f"127.0.0.1:{EXPORTER_PORT}"
    assert _default(TestbedSettings, "exporter_port") == EXPORTER_PORT
    assert _default(TestbedSettings, "inventory_port") == INVENTORY_PORT


def test_no_old_default_port_left_in_code_or_docs():
    """9118/9119 as a port (":9118", "9118/"...) anywhere outside tests: a default that was missed."""
    old = re.compile(r"(?<![0-9])(9118|9119)(?![0-9])")
    hits = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if not path.is_file() or rel.parts[0] in (".git", ".venv", "tests") or rel.name == "CHANGELOG.md" \
                or rel.parts[0].endswith(".egg-info") or path.suffix not in (".py", ".md", ".yml", ".json", ".args", ".service", ".env", ".j2", ".tmpl"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if old.search(line) and "Jenkins" not in line:
                hits.append(f"{rel}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)
