"""Deterministic synthetic inventories for tests, benchmarks and the lab (198.18.0.0/15 only)."""

from __future__ import annotations

import ipaddress
import math
import random
from types import MappingProxyType

from inventory.model import Device, Inventory, SnmpProfile, Topology, Upstream, frozen_labels
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


# -- bank shape ------------------------------------------------------------------------------
# A bank's branch network as the field sees it: regions of very different sizes, 92 branches of
# 6-13 devices (a hub per region larger, with the region core router), most branches reached over
# one ISP uplink on .5 and a quarter over a second one on .6, and a head-office data centre. One
# /24 per branch (198.18.N.0 for Branch N, the data centre on 198.18.200.0) like
# examples/inventory.yml, so a device's address says its branch.
BANK_REGIONS = (("Tbilisi", 30), ("Batumi", 14), ("Kutaisi", 12), ("Rustavi", 10), ("Zugdidi", 9),
                ("Gori", 7), ("Telavi", 6), ("Poti", 4))
BANK_DC = ("HQ", "Head Office DC")  # (region, branch): a region of its own, above every region core
BANK_DC_NET = 200  # third octet of the data centre's /24
BANK_SECOND_UPLINK_SHARE = 0.25


def synth_bank_inventory(devices: int = 875, seed: int = 1, snmp_share: float = 0.0,
                         topology: bool = False,
                         regions: tuple[tuple[str, int], ...] = BANK_REGIONS) -> Inventory:
    """A bank-shaped inventory of exactly `devices` devices (default 875) in 93 branches (92 in
    `regions`, (name, branch count) pairs, plus the data centre; a smaller `regions` gives a small
    bank for quick runs). `topology=True` adds the upstream nodes: `dc` (the data
    centre's core routers, directly behind the probe site) and one `core-REGION` per region behind
    it, holding that region's core router (which sits in the region's hub, its first branch).
    Deterministic by `seed`; ATMs absorb the difference to `devices` (ATM counts move first)."""
    if not 0 <= snmp_share <= 1:
        raise ValueError("snmp_share must be between 0 and 1")
    rng = random.Random(seed)
    plans = []  # (region, branch number, hub?, second uplink?, ATM count, servers)
    number = 0
    for region, count in regions:
        for i in range(count):
            number += 1
            plans.append([region, number, i == 0, rng.random() < BANK_SECOND_UPLINK_SHARE or i == 0,
                          rng.randint(2, 6), 2 if i == 0 else rng.choice((0, 0, 1))])
    dc_size = 16
    fixed = sum(3 + 1 + second + hub + servers for _, _, hub, second, _, servers in plans)
    atm_total = devices - dc_size - fixed
    low, high = 1, 12
    if not low * len(plans) <= atm_total <= high * len(plans):
        raise ValueError(f"a bank shape needs {dc_size + fixed + low * len(plans)}-"
                         f"{dc_size + fixed + high * len(plans)} devices, got {devices}")
    i = 0
    while (have := sum(p[4] for p in plans)) != atm_total:  # bounded: each step moves one ATM closer
        p = plans[i % len(plans)]
        if have < atm_total and p[4] < high:
            p[4] += 1
        elif have > atm_total and p[4] > low:
            p[4] -= 1
        i += 1
    profiles = {}
    if snmp_share > 0:
        profiles["synth-v2c"] = SnmpProfile(name="synth-v2c", version="2c",
                                            community=Secret("env", "WARDOPS_SNMP_COMMUNITY"))
    out: list[Device] = []

    def add(name, net, host, region, branch, role, isp=None):
        snmp = "synth-v2c" if profiles and role in ("router", "switch", "firewall") \
            and rng.random() < snmp_share else None
        out.append(Device(name=name, ip=f"198.18.{net}.{host}", region=region, branch=branch, role=role,
                          isp=isp, snmp=snmp,
                          labels=frozen_labels({"vendor": rng.choice(("cisco", "mikrotik", "fortinet"))})))

    for region, n, hub, second, atms, servers in plans:
        prefix, branch = f"{region.lower()}-br{n}", f"Branch {n}"
        providers = rng.sample(ISPS, 2)
        add(f"{prefix}-rtr1", n, 1, region, branch, "router")
        add(f"{prefix}-sw1", n, 2, region, branch, "switch")
        add(f"{prefix}-fw1", n, 3, region, branch, "firewall")
        add(f"{prefix}-isp1", n, 5, region, branch, "isp", providers[0])
        if second:
            add(f"{prefix}-isp2", n, 6, region, branch, "isp", providers[1])
        if hub:
            add(f"{region.lower()}-core1", n, 10, region, branch, "router")
        for k in range(atms):
            add(f"{prefix}-atm{k + 1}", n, 21 + k, region, branch, "atm")
        for k in range(servers):
            add(f"{prefix}-srv{k + 1}", n, 40 + k, region, branch, "server")
    dc_region, dc_branch = BANK_DC
    for host, name, role in ((1, "hq-core1", "router"), (2, "hq-core2", "router"), (3, "hq-sw1", "switch"),
                             (4, "hq-sw2", "switch"), (7, "hq-fw1", "firewall"), (8, "hq-fw2", "firewall")):
        add(name, BANK_DC_NET, host, dc_region, dc_branch, role)
    for k, provider in enumerate(ISPS[:2]):
        add(f"hq-isp{k + 1}", BANK_DC_NET, 5 + k, dc_region, dc_branch, "isp", provider)
    for k in range(dc_size - 8):
        add(f"hq-srv{k + 1}", BANK_DC_NET, 40 + k, dc_region, dc_branch, "server")
    out.sort(key=lambda d: ipaddress.ip_address(d.ip))
    topo = Topology()
    if topology:
        cores = tuple(Upstream(name=f"core-{region.lower()}", devices=(f"{region.lower()}-core1",),
                               upstream="dc", regions=(region,)) for region, _ in regions)
        dc = Upstream(name="dc", devices=("hq-core1", "hq-core2"), branches=(dc_branch,))
        topo = Topology(upstreams=tuple(sorted((dc, *cores), key=lambda u: u.name)))  # as the loader orders them
    return Inventory(devices=tuple(out), snmp_profiles=MappingProxyType(profiles), topology=topo,
                     source=f"synth-bank:{seed}")


def topology_data(topology: Topology) -> dict:
    """The inventory YAML `topology:` section for a Topology (what `topology:` in a file holds)."""
    nodes = {}
    for u in topology.upstreams:
        node: dict = {}
        for key in ("devices", "regions", "branches"):
            if getattr(u, key):
                node[key] = list(getattr(u, key))
        if u.upstream:
            node["upstream"] = u.upstream
        nodes[u.name] = node
    out: dict = {"region_upstreams": topology.region_upstreams}
    if nodes:
        out["upstreams"] = nodes
    return out
