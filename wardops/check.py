"""`wardops check INVENTORY [--settings SETTINGS]`: every error with file:line (exit 1), or a
one-line summary (exit 0). With the generator settings, the inventory's `sites:` names are checked
against the probe sites the settings define, and the settings' own errors are listed too."""

from __future__ import annotations

import sys

from inventory import InventoryError, load_inventory
from inventory.errors import ConfigError, report_problems
from inventory.model import Inventory
from inventory.secrets import SecretError, value_problem


def configure(parser) -> None:
    parser.add_argument("inventory", help="inventory YAML file")
    parser.add_argument("--settings", help="generator settings YAML: also check it, and the inventory's "
                                           "`sites:` names against its probe sites")
    parser.add_argument("--secrets", action="store_true",
                        help="also resolve every SNMP secret reference and check its format (values never shown)")
    parser.set_defaults(func=run)


def summary(inv: Inventory) -> str:
    def fmt(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in counts.items())

    disabled = sum(1 for d in inv.devices if not d.enabled)
    return (f"ok: {len(inv.devices)} devices ({disabled} disabled); roles: {fmt(inv.counts('role'))}; "
            f"regions: {fmt(inv.counts('region'))}; {len(inv.counts('branch'))} branches; "
            f"{len(inv.snmp_profiles)} snmp profiles; {len(inv.maintenance)} maintenance windows; "
            f"{len(inv.topology.upstreams)} upstreams")


def secret_problems(inv: Inventory) -> list[str]:
    """Resolve each referenced secret once; messages name the profile and reference, never the value."""
    out = []
    used = {d.snmp for d in inv.devices if d.snmp}
    for name, profile in sorted(inv.snmp_profiles.items()):
        if name not in used:
            continue
        for purpose, secret in profile.secrets().items():
            try:
                problem = value_problem(purpose, secret.resolve())
            except SecretError as exc:
                problem = str(exc)
            if problem:
                out.append(f"snmp profile {name!r}: {purpose} ({secret.kind}:{secret.ref}): {problem}")
    return out


def run(args) -> int:
    known_sites = None
    if getattr(args, "settings", None):
        from generators.settings import load_settings

        try:
            known_sites = load_settings(args.settings).site_names
        except ConfigError as exc:
            report_problems(exc.problems, args.settings)
            return 1
    try:
        inv = load_inventory(args.inventory, known_sites)
    except InventoryError as exc:
        report_problems(exc.problems, args.inventory)
        return 1
    if args.secrets:
        problems = secret_problems(inv)
        for p in problems:
            print(f"{args.inventory}: {p}", file=sys.stderr)
        if problems:
            return 1
    print(summary(inv))
    return 0
