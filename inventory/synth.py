"""Deterministic synthetic inventories for tests, benchmarks and the lab (198.18.0.0/15 only)."""

from __future__ import annotations

import ipaddress
import math
import random
from types import MappingProxyType

from inventory.model import Device, Inventory, SnmpProfile, frozen_labels
from inventory.secrets import Secret

SYNTH_NETWORK = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544 benchmarking range
BLOCK = 64  # addresses per branch: 2,048 branches fit in the /15
REGIONS = ("Tbilisi", "Batumi", "Kutaisi", "Rustavi", "Zugdidi", "Gori", "Telavi", "Poti")
ISPS = ("Magti", "Silknet", "Beeline", "Cellfie")
# Offsets inside a branch block, by role; ISP uplinks sit at .5/.6 like the example inventory.
ISP_OFFSETS = (5, 6, 7, 8)
OTHER_ROLES = ("router", "switch", "firewall", "atm", "atm", "atm", "server")


def synth_inventory(devices: int, isp_share: float = 0.1, seed: int = 1, snmp_share: float = 0.0,
                    per_branch: int | None = None) -> Inventory:
    """`devices` devices spread over branches of `per_branch` devices (default: 10, more if needed)."""
    if devices < 0 or not 0 <= isp_share <= 1 or not 0 <= snmp_share <= 1:
        raise ValueError("devices must be >= 0 and shares between 0 and 1")
    max_branches = SYNTH_NETWORK.num_addresses // BLOCK
    per_branch = per_branch or max(10, math.ceil(devices / max_branches))
    if per_branch > BLOCK - 10:
        raise ValueError(f"{devices} devices do not fit in {SYNTH_NETWORK} ({max_branches} branches)")
    rng = random.Random(seed)
    n_branches = max(1, math.ceil(devices / per_branch))
    n_isp = round(devices * isp_share)
    profiles = {}
    if snmp_share > 0:
        profiles["synth-v2c"] = SnmpProfile(name="synth-v2c", version="2c",
                                            community=Secret("env", "WARDOPS_SNMP_COMMUNITY"))
    out: list[Device] = []
    base = int(SYNTH_NETWORK.network_address)
    for i in range(devices):
        b, k = i % n_branches, i // n_branches  # round-robin so ISP uplinks spread over branches
        region = REGIONS[b % len(REGIONS)]
        branch = f"Branch {b + 1}"
        is_isp = i < n_isp and k < len(ISP_OFFSETS)
        if is_isp:
            role, offset = "isp", ISP_OFFSETS[k]
        else:
            role = OTHER_ROLES[(b + k) % len(OTHER_ROLES)]
            offset = 10 + k
        ip = ipaddress.ip_address(base + b * BLOCK + offset)
        name = f"{region.lower()}-br{b + 1}-{role}{k + 1}"
        snmp = "synth-v2c" if profiles and role != "atm" and rng.random() < snmp_share else None
        out.append(Device(name=name, ip=ip.compressed, region=region, branch=branch, role=role,
                          isp=ISPS[(b + k) % len(ISPS)] if role == "isp" else None, snmp=snmp,
                          labels=frozen_labels({"vendor": rng.choice(("cisco", "mikrotik", "juniper"))})))
    out.sort(key=lambda d: ipaddress.ip_address(d.ip))
    return Inventory(devices=tuple(out), snmp_profiles=MappingProxyType(profiles), source=f"synth:{seed}")
