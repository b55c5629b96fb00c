"""SNMP for a whole lab: one net-snmp agent in the target namespace answering every SNMP device of
an inventory with the credentials of its profiles (wraps wardops.lab.snmpagents.start_lab_snmpd)."""

from __future__ import annotations

import os
from collections.abc import Callable

from inventory.model import Inventory
from inventory.secrets import Secret


class SnmpLabError(RuntimeError):
    pass


def snmp_devices(inv: Inventory):
    return [d for d in inv.enabled_devices() if d.snmp]


def lab_credentials(inv: Inventory, value_of: Callable[[Secret, str], str]):
    """(community or None, [V3User], number of v1/v2c profiles) for the profiles the devices use.

    `value_of(secret, lab_default)` supplies each secret's value (from the environment, or a
    lab-only default, or an error), so callers decide where secrets come from."""
    from wardops.lab.snmpagents import V3User

    communities, users = [], []
    for name in sorted({d.snmp for d in snmp_devices(inv)}):
        p = inv.snmp_profiles[name]
        if p.version == "3":
            users.append(V3User(p.username or "wardops", p.auth_protocol or "SHA",
                                value_of(p.auth_key, "wardops-lab-auth") if p.auth_key else "",
                                p.priv_protocol or "NONE",
                                value_of(p.priv_key, "wardops-lab-priv") if p.priv_key else ""))
        elif p.community is not None:
            communities.append(value_of(p.community, "wardops-lab"))
    return (communities[0] if communities else None), users, len(set(communities))


def start_inventory_snmpd(target_ns: str, inv: Inventory, value_of: Callable[[Secret, str], str]):
    """Start the lab agent for `inv`'s SNMP devices; returns (SnmpdAgent, summary text)."""
    from wardops.lab.snmpagents import start_lab_snmpd

    community, users, n_communities = lab_credentials(inv, value_of)
    devices = snmp_devices(inv)
    agent = start_lab_snmpd(target_ns, community=community, v3_users=users,
                            ipv6=[d.ip for d in devices if ":" in d.ip])
    note = " (several communities: the agent answers the first)" if n_communities > 1 else ""
    return agent, (f"one snmpd in {target_ns} answers {len(devices)} SNMP devices "
                   f"({n_communities} v1/v2c community, {len(users)} v3 user(s)){note}")


def env_value(secret: Secret, _lab_default: str) -> str:
    """Secrets strictly from the environment/files (the `wardops lab` CLI): a clear error if unset."""
    if secret.kind == "env":
        value = os.environ.get(secret.ref)
        if not value:
            raise SnmpLabError(f"SNMP secret ${secret.ref} is not set: export it (the exporter needs the same value)")
        return value
    return secret.resolve()
