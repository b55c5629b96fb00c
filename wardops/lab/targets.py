"""Which lab addresses a command acts on: devices by inventory name, whole branches, or everything."""

from __future__ import annotations

from difflib import get_close_matches

from inventory.model import Device, Inventory


class TargetError(ValueError):
    """A device or branch named on the command line is not in the inventory."""


def devices_named(inv: Inventory, names: list[str]) -> list[Device]:
    """Devices by name (an IP literal of an inventory device is accepted too), all errors at once."""
    by_name = inv.by_name()
    by_ip = {d.ip: d for d in inv.devices}
    found, unknown = [], []
    for name in names:
        device = by_name.get(name) or by_ip.get(name)
        if device is None:
            hint = get_close_matches(name, list(by_name), n=1)
            unknown.append(f"{name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        else:
            found.append(device)
    if unknown:
        raise TargetError(f"not in inventory {inv.source or ''}: {', '.join(unknown)}".replace("  ", " "))
    return found


def branch_devices(inv: Inventory, branch: str) -> list[Device]:
    devices = [d for d in inv.devices if d.branch == branch]
    if not devices:
        branches = sorted({d.branch for d in inv.devices})
        hint = get_close_matches(branch, branches, n=1)
        raise TargetError(f"no branch {branch!r} in inventory {inv.source}"
                          + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    return devices


def ips(devices: list[Device]) -> list[str]:
    return sorted({d.ip for d in devices})


def region_devices(inv: Inventory, regions: list[str]) -> list[Device]:
    """Every enabled device of these regions (a regional outage), all unknown names at once."""
    known = sorted({d.region for d in inv.devices})
    unknown = [r for r in regions if r not in known]
    if unknown:
        hints = [f"{r!r}" + (f" (did you mean {m[0]!r}?)" if (m := get_close_matches(r, known, n=1)) else "")
                 for r in unknown]
        raise TargetError(f"no region {', '.join(hints)} in inventory {inv.source}")
    return [d for d in inv.enabled_devices() if d.region in regions]


def branches_devices(inv: Inventory, branches: list[str]) -> list[Device]:
    """Every enabled device of these branches, all unknown names at once."""
    found, errors = [], []
    for branch in branches:
        try:
            found += [d for d in branch_devices(inv, branch) if d.enabled]
        except TargetError as exc:
            errors.append(str(exc))
    if errors:
        raise TargetError("; ".join(errors))
    return found


def _nodes_below(inv: Inventory, name: str) -> list:
    """Topology node `name` and every node under it (the loader rejects cycles; `seen` still
    bounds the walk)."""
    nodes = {u.name: u for u in inv.topology.upstreams}
    seen: dict[str, object] = {}
    todo = [name]
    while todo:
        node = todo.pop()
        if node in seen or node not in nodes:
            continue
        seen[node] = nodes[node]
        todo += [u.name for u in nodes.values() if u.upstream == node]
    return list(seen.values())


def upstream_branches(inv: Inventory, name: str) -> list[tuple[str, str]]:
    """(region, branch) of every branch behind topology node `name` (its regions, its branches and
    those of the nodes below it), sorted. Without explicit upstreams a region is the node."""
    all_branches = sorted({(d.region, d.branch) for d in inv.devices})
    below = _nodes_below(inv, name)
    if not below:
        if inv.topology.region_upstreams and any(r == name for r, _ in all_branches):
            return [(r, b) for r, b in all_branches if r == name]
        known = sorted(u.name for u in inv.topology.upstreams)
        raise TargetError(f"no upstream {name!r} in the topology of {inv.source}"
                          + (f" (known: {', '.join(known)})" if known else ""))
    regions = {r for n in below for r in n.regions}
    branches = {b for n in below for b in n.branches}
    return [(r, b) for r, b in all_branches if r in regions or b in branches]


def upstream_devices(inv: Inventory, name: str) -> list[Device]:
    """Everything dark when node `name` fails: every device of every branch behind it and the own
    devices of it and of the nodes below it."""
    behind = set(upstream_branches(inv, name))
    own = {dev for n in _nodes_below(inv, name) for dev in n.devices}
    return [d for d in inv.enabled_devices() if (d.region, d.branch) in behind or d.name in own]
