"""The root-cause model as the rule generator sees it: branches, their verdict series, and the
upstream nodes above them (explicit `topology.upstreams` and implicit per-region nodes).

Everything here is static data derived from the inventory; generators/rules.py turns it into
PromQL. docs/root-cause.md describes the levels and why lower ones are suppressed in the rules.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from inventory.model import Inventory

BranchKey = tuple[str, str]  # (region, branch)


@dataclass(frozen=True, slots=True)
class BranchInfo:
    key: BranchKey
    devices: tuple[str, ...]  # enabled devices, sorted
    uplinks: tuple[str, ...]  # enabled role isp devices, sorted
    providers: tuple[str, ...]  # their isp values, sorted, deduplicated

    @property
    def has_verdict(self) -> bool:
        """The exporter exports wardops_icmp_branch_up only for branches with at least two probed
        devices of which one is not an ISP uplink: a lone device is its own verdict, and uplinks
        alone cannot tell a dark branch from dark uplinks."""
        return len(self.devices) >= 2 and len(self.devices) > len(self.uplinks)


@dataclass(frozen=True, slots=True)
class Node:
    """An upstream that pages once for everything behind it."""

    name: str
    kind: str  # "upstream" (explicit) or "region" (implicit)
    branches: tuple[BranchKey, ...]  # behind it, transitively, sorted
    own_devices: tuple[str, ...]  # its own probed devices and those of nodes below it, sorted
    device_count: int  # enabled devices behind it, own devices included
    ancestors: tuple[str, ...] = ()  # explicit parent chain (names), nearest first

    @property
    def alert(self) -> str:
        return "UpstreamDown" if self.kind == "upstream" else "RegionDown"


@dataclass(frozen=True, slots=True)
class Model:
    branches: dict[BranchKey, BranchInfo]
    nodes: tuple[Node, ...]

    def chain(self, key: BranchKey) -> tuple[Node, ...]:
        """Every node the branch sits behind (its own, then the ones above), by name."""
        return tuple(n for n in self.nodes if key in n.branches)

    def device_chain(self, device: str, key: BranchKey) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if key in n.branches or device in n.own_devices)

    def above(self, node: Node) -> tuple[Node, ...]:
        """Nodes that contain `node`: a strict superset of its branches, or the same branches
        and an explicit ancestor of it (a parent with one child must not page twice)."""
        mine = set(node.branches)
        return tuple(o for o in self.nodes if o is not node and (
            mine < set(o.branches) or (mine == set(o.branches) and o.name in node.ancestors)))

    def top_nodes(self) -> tuple[Node, ...]:
        """Nodes no other node contains (the largest units a single fault can darken)."""
        return tuple(n for n in self.nodes if not self.above(n))


def build_model(inv: Inventory) -> Model:
    devices = [d for d in inv.devices if d.enabled]
    by_branch: dict[BranchKey, list] = defaultdict(list)
    for d in devices:
        by_branch[(d.region, d.branch)].append(d)
    branches = {
        key: BranchInfo(key, tuple(sorted(d.name for d in ds)),
                        tuple(sorted(d.name for d in ds if d.role == "isp")),
                        tuple(sorted({d.isp for d in ds if d.role == "isp" and d.isp})))
        for key, ds in sorted(by_branch.items())
    }
    region_of_branch: dict[str, set[str]] = defaultdict(set)
    for region, branch in branches:
        region_of_branch[branch].add(region)
    device_branch = {d.name: (d.region, d.branch) for d in devices}

    topo = inv.topology
    explicit: dict[str, set[BranchKey]] = {}
    own: dict[str, set[str]] = {}
    children: dict[str, list[str]] = defaultdict(list)
    for up in topo.upstreams:
        direct = {k for k in branches if k[0] in up.regions}
        direct |= {(r, b) for b in up.branches for r in region_of_branch.get(b, ())}
        explicit[up.name] = direct
        own[up.name] = {n for n in up.devices if n in device_branch}
        if up.upstream:
            children[up.upstream].append(up.name)

    def closure(name: str, seen: frozenset = frozenset()) -> tuple[set[BranchKey], set[str]]:
        if name in seen:  # the schema rejects cycles; stay finite on a model built by hand
            return set(), set()
        b, o = set(explicit.get(name, ())), set(own.get(name, ()))
        for child in children.get(name, ()):
            cb, co = closure(child, seen | {name})
            b |= cb
            o |= co
        return b, o

    parent = {up.name: up.upstream for up in topo.upstreams}

    def ancestors(name: str) -> tuple[str, ...]:
        out: list[str] = []
        while parent.get(name) and parent[name] not in out and len(out) < len(parent):
            name = parent[name]
            out.append(name)
        return tuple(out)

    nodes: list[Node] = []
    for up in topo.upstreams:
        b, o = closure(up.name)
        count = sum(len(branches[k].devices) for k in b) + len({n for n in o if device_branch[n] not in b})
        nodes.append(Node(up.name, "upstream", tuple(sorted(b)), tuple(sorted(o)), count, ancestors(up.name)))
    if topo.region_upstreams:
        taken = {n.branches for n in nodes}
        by_region: dict[str, list[BranchKey]] = defaultdict(list)
        for key in branches:
            by_region[key[0]].append(key)
        for region, keys in sorted(by_region.items()):
            keys = tuple(sorted(keys))
            if len(keys) >= 2 and keys not in taken:
                nodes.append(Node(region, "region", keys, (), sum(len(branches[k].devices) for k in keys)))
    # A node with fewer than two branches behind it is just its branch: BranchDown says it.
    nodes = [n for n in nodes if len(n.branches) >= 2]
    return Model(branches, tuple(sorted(nodes, key=lambda n: (n.kind, n.name))))
