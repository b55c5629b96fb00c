"""`wardops generate INVENTORY [--settings SETTINGS] -o DIR`."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from generators.generate import GenerateError, generate_files, tool_checks, write_files
from generators.settings import load_settings
from inventory import load_inventory
from inventory.errors import ConfigError


def configure(parser) -> None:
    parser.add_argument("inventory", help="inventory YAML file")
    parser.add_argument("--settings", help="settings YAML (receivers, intervals, thresholds, URLs); "
                                           "default: a local webhook receiver at http://127.0.0.1:9095/")
    parser.add_argument("-o", "--output", required=True, help="output directory")
    parser.add_argument("--no-tool-check", action="store_true",
                        help="skip promtool/vmalert/amtool/vmagent checks of the output (structural checks still run)")
    parser.set_defaults(func=run)


def source_name(path: str) -> str:
    """The inventory as named in the stamp: relative to the working directory when inside it, so
    `examples/inventory.yml` stamps the same however the path was typed (golden files stay stable)."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else Path(rel).as_posix()


def run(args) -> int:
    try:
        settings = load_settings(args.settings)
        inv = load_inventory(args.inventory, settings.site_names)
        files = generate_files(inv, settings, source_name(args.inventory))
    except ConfigError as exc:  # InventoryError, SettingsError
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    except GenerateError as exc:
        for problem in exc.problems:
            print(f"wardops generate: generated output is invalid: {problem}", file=sys.stderr)
        return 3
    if not args.no_tool_check:
        with tempfile.TemporaryDirectory(prefix="wardops-generate-") as tmp:
            write_files(files, Path(tmp))
            failed = [(argv, r) for argv, r in tool_checks(Path(tmp)) if r.returncode != 0]
        for argv, r in failed:
            print(f"wardops generate: {argv[0]} rejected the output:\n{r.stdout}{r.stderr}", file=sys.stderr)
        if failed:
            return 3
    write_files(files, Path(args.output))
    print(f"wrote {len(files)} files to {args.output}")
    return 0
