"""Inventory -> plain data in the file format (sorted, deterministic); load(dump(x)) == x."""

from __future__ import annotations

from inventory.model import (
    DEFAULT_ROLE,
    ClassifyRule,
    Device,
    Inventory,
    MaintenanceWindow,
    SnmpProfile,
    Topology,
)


def device_data(d: Device, ruled: frozenset[str] = frozenset()) -> dict:
    """`ruled`: fields some classify rule sets; they are written even at their default (None as
    null), so loading the dump never lets a rule change a device: load(dump(x)) == x."""
    out: dict = {"name": d.name, "ip": d.ip, "region": d.region, "branch": d.branch}
    if d.role != DEFAULT_ROLE or "role" in ruled:
        out["role"] = d.role
    if d.isp is not None or "isp" in ruled:
        out["isp"] = d.isp
    if d.snmp is not None or "snmp" in ruled:
        out["snmp"] = d.snmp
    if not d.enabled or "enabled" in ruled:
        out["enabled"] = d.enabled
    if d.labels:
        out["labels"] = dict(d.labels)
    if d.sites:
        out["sites"] = list(d.sites)
    return out


def profile_data(p: SnmpProfile) -> dict:
    """References only: a Secret dumps as its env/file reference, never a value."""
    out: dict = {"version": p.version}
    for field_name, secret in p.secrets().items():
        out[f"{field_name}_{secret.kind}"] = secret.ref
    for key in ("username", "auth_protocol", "priv_protocol"):
        if getattr(p, key) is not None:
            out[key] = getattr(p, key)
    defaults = SnmpProfile(name="", version="2c")
    for key in ("port", "timeout", "retries", "max_repetitions"):
        if getattr(p, key) != getattr(defaults, key):
            out[key] = getattr(p, key)
    if p.extra_oids:
        out["extra_oids"] = [{"metric": e.metric, "oid": ".".join(map(str, e.oid)), "type": e.type,
                              "table": e.table} for e in p.extra_oids]
    return out


def rule_data(r: ClassifyRule) -> dict:
    m = r.match
    match: dict = {}
    if m.ip_last_octet is not None:
        match["ip_last_octet"] = m.ip_last_octet
    if m.ip_in:
        match["ip_in"] = [str(n) for n in m.ip_in]
    if m.name_regex is not None:
        match["name_regex"] = m.name_regex.pattern
    if m.labels:
        match["labels"] = dict(m.labels)
    for key in ("region", "branch"):
        if getattr(m, key) is not None:
            match[key] = getattr(m, key)
    return {"match": match, "set": {k: (dict(v) if k == "labels" else list(v) if k == "sites" else v)
                                    for k, v in r.set.items()}}


def window_data(w: MaintenanceWindow) -> dict:
    out: dict = {"name": w.name, "timezone": w.timezone}
    for key in ("branches", "regions", "devices", "weekdays"):
        if getattr(w, key):
            out[key] = list(getattr(w, key))
    if w.times:
        out["times"] = [f"{a}-{b}" for a, b in w.times]
    return out


def topology_data(t: Topology) -> dict:
    """Only what differs from an empty topology; lists keep their order (the loader keeps it too)."""
    out: dict = {}
    if t.region_upstreams != Topology().region_upstreams:
        out["region_upstreams"] = t.region_upstreams
    if t.upstreams:
        nodes: dict = {}
        for node in t.upstreams:
            data: dict = {}
            for key in ("devices", "regions", "branches"):
                if getattr(node, key):
                    data[key] = list(getattr(node, key))
            if node.upstream is not None:
                data["upstream"] = node.upstream
            nodes[node.name] = data
        out["upstreams"] = nodes
    return out


def inventory_data(inv: Inventory) -> dict:
    out: dict = {}
    if inv.classify:
        out["classify"] = [rule_data(r) for r in inv.classify]
    if inv.snmp_profiles:
        out["snmp_profiles"] = {n: profile_data(p) for n, p in sorted(inv.snmp_profiles.items())}
    if inv.maintenance:
        out["maintenance"] = [window_data(w) for w in inv.maintenance]
    ruled = frozenset(k for r in inv.classify for k in r.set)
    out["devices"] = [device_data(d, ruled) for d in inv.devices]
    topology = topology_data(inv.topology)
    if topology:
        out["topology"] = topology
    return out


def dump_yaml(inv: Inventory) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(inventory_data(inv), Dumper=dumper, sort_keys=True, allow_unicode=True,
                     default_flow_style=False, width=120)
