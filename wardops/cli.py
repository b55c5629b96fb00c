"""`wardops` entry point. Subcommands live in their own modules, imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys

from wardops import __version__

# name -> (module with configure(parser), one-line help). Adding a command is one entry here.
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("wardops.check", "validate an inventory file and print a summary"),
    "inventory": ("inventory.cli", "synthetic inventories, import/export, the inventory service"),
    "snmp": ("exporter.snmp.cli", "poll SNMP devices of an inventory once and print their metrics"),
    "generate": ("generators.cli", "vmalert rules, Alertmanager config, Grafana dashboards, vmagent config"),
    "exporter": ("exporter.cli", "probe inventory devices (ICMP) and serve Prometheus metrics on :10118"),
    "demo": ("wardops.demo", "run lab + stack + inventory service + exporter and show an ISP outage paging"),
    "lab": ("wardops.lab.cli", "a simulated network from namespaces: create, down/up, flap, loss, branch-down"),
    "stack": ("wardops.stack.cli", "start/stop the local VictoriaMetrics/vmagent/vmalert/Alertmanager stack"),
}

# Modules that only an extra installs (setup.cfg extras_require): a missing one names the extra.
EXTRA_OF = {"flask": "service", "flask_limiter": "service", "limits": "service", "werkzeug": "service",
            "sqlalchemy": "service", "waitress": "service", "psycopg": "service",
            "jinja2": "generate", "grafana_foundation_sdk": "generate"}


def _usage() -> str:
    lines = [f"usage: wardops COMMAND [ARGS...]   (wardops {__version__})", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `wardops COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"wardops {__version__}")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"wardops: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        return _run(name, argv[1:])
    except ModuleNotFoundError as exc:
        extra = EXTRA_OF.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        print(f"wardops {name}: needs the '{extra}' extra (no module {exc.name!r}): "
              f"pip install 'wardops[{extra}]'", file=sys.stderr)
        return 1


def _run(name: str, argv: list[str]) -> int:
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"wardops {name}", description=help_)
    module.configure(parser)
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
