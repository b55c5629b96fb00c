"""PromQL for "one page per root cause": which level is dark, and what each lower alert must be
suppressed by. Every expression is self-contained (no recording rule feeds another rule): vmalert
writes recording results back through VictoriaMetrics, where they become visible only after the
storage's latency offset, so a chained rule would see the cause a second or more after its
symptom and page the symptom first.

Series used (docs/root-cause.md): wardops_icmp_up / wardops_icmp_last_change_timestamp_seconds per
device, wardops_icmp_branch_up (1 answers, 0 dark, -1 deciding) per branch,
wardops_probe_site_canary_up per canary; `site` comes from vmagent's target label.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from generators.output import regex_escape
from generators.topology import BranchInfo, BranchKey, Model, Node, build_model
from inventory.model import Inventory

UP = "wardops_icmp_up"
SINCE = "wardops_icmp_last_change_timestamp_seconds"
BRANCH_UP = "wardops_icmp_branch_up"
BRANCH_SINCE = "wardops_icmp_branch_last_change_timestamp_seconds"
CANARY_UP = "wardops_probe_site_canary_up"
# With two or more probe sites: 1 per site while it is out of the consensus (blind or disagreeing).
# Recorded once per evaluation instead of repeated inside every rule: with the recovery hold as a
# 60-step subquery in each of them, promtool needed minutes for a 15-minute test. Rules read it
# one evaluation late at most, which only delays when a sick site leaves the consensus; its page
# (ProbeSiteDegraded) uses the expression itself.
SITE_UNHEALTHY = "site:wardops_probe_site:unhealthy"
# A share of the site dark counts as "the probe site is blind" only with at least this many dark
# units: one or two devices of a tiny inventory are not a site outage.
BLIND_MIN_UNITS = 3


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def regex(values: Iterable[str]) -> str:
    # PromQL string: escape RE2 metacharacters first, then the backslashes for the string literal.
    return quote("|".join(regex_escape(v) for v in sorted(set(values))))


def covered(model: Model) -> list[BranchKey]:
    return sorted({k for n in model.nodes for k in n.branches})


def outside_nodes(model: Model, metric: str, extra: Iterable[str] = ()) -> str:
    """`metric` for every branch no node covers (including ones unknown at generation time)."""
    extra = list(extra)
    base = metric + ("{" + ", ".join(extra) + "}" if extra else "")
    keys = covered(model)
    if not keys:
        return base
    return f"({base} unless on(site, region, branch) {union(metric, selectors(model, keys, extra))})"


def selectors(model: Model, keys: Iterable[BranchKey], extra: Iterable[str] = ()) -> list[str]:
    """Label matchers covering exactly `keys`, one selector per region (a whole region by name)."""
    by_region: dict[str, set[str]] = defaultdict(set)
    for region, branch in keys:
        by_region[region].add(branch)
    all_of: dict[str, set[str]] = defaultdict(set)
    for region, branch in model.branches:
        all_of[region].add(branch)
    out = []
    for region, branches in sorted(by_region.items()):
        matchers = [*extra, f"region={quote(region)}"]
        if branches != all_of[region]:
            matchers.append(f"branch=~{regex(branches)}")
        out.append("{" + ", ".join(matchers) + "}")
    return out


def union(metric: str, sels: list[str], cond: str = "") -> str:
    parts = [f"{metric}{s}{cond}" for s in sels]
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


@dataclass(frozen=True, slots=True)
class SitedModel(Model):
    """The model plus what each probe site sees of it, when the inventory's `sites:` keep some
    devices from some sites: an exporter exports series (and computes branch verdicts) only for
    the devices its site probes, so "every branch behind a node is dark" has a count per site."""

    # (site, its branches: only the devices it probes), in settings order; sites probing nothing omitted
    per_site: tuple[tuple[str, Mapping[BranchKey, BranchInfo]], ...] = ()


def with_sites(model: Model, inv: Inventory, sites: tuple[str, ...]) -> Model:
    """`model` itself unless two or more sites probe different devices (then a SitedModel)."""
    if len(sites) < 2 or not any(d.sites for d in inv.devices if d.enabled):
        return model
    per_site = []
    for site in sites:
        seen = Inventory(devices=tuple(d for d in inv.devices if d.enabled and d.probed_from(site)))
        branches = build_model(seen).branches
        if branches:
            per_site.append((site, branches))
    return SitedModel(**{f.name: getattr(model, f.name) for f in dataclasses.fields(Model)},
                      per_site=tuple(per_site))


def _dark_terms(model: Model, branches: Mapping[BranchKey, BranchInfo], keys: list[BranchKey], deciding: bool,
                extra: list[str]) -> str:
    verdict = [k for k in keys if branches[k].has_verdict]
    plain = [k for k in keys if not branches[k].has_verdict]
    terms = []
    if verdict:
        cond = " <= 0" if deciding else " == 0"
        terms.append(f"count by (site) ({union(BRANCH_UP, selectors(model, verdict, extra), cond)}) >= {len(verdict)}")
    if plain:
        n = sum(len(branches[k].devices) for k in plain)
        terms.append(f"count by (site) ({union(UP, selectors(model, plain, extra), ' == 0')}) >= {n}")
    return " and on(site) ".join(f"({t})" for t in terms)


def node_dark(model: Model, node: Node, deciding: bool = False) -> str:
    """{site} series present while every branch behind `node` is dark: branches with a verdict by
    wardops_icmp_branch_up == 0, branches without one (a lone device, uplinks only) by all their
    devices DOWN. With `deciding`, a verdict still being decided (-1) counts as dark: what the
    lower levels are held back by, so a branch decided half a second before its neighbours behind
    the same core does not page on its own.

    With a SitedModel each site is judged by what it probes behind the node (its own counts and
    verdicts), one `site="..."` term per site that probes anything there."""
    per_site = getattr(model, "per_site", ())
    if not per_site:
        return _dark_terms(model, model.branches, list(node.branches), deciding, [])
    parts = []
    for site, branches in per_site:
        keys = [k for k in node.branches if k in branches]
        if keys:
            parts.append(_dark_terms(model, branches, keys, deciding, [f"site={quote(site)}"]))
    return " or ".join(f"({p})" for p in parts)


def node_probing(model: Model, node: Node) -> str:
    """{site} series for every site with a device series behind `node`: the sites whose consensus
    an UpstreamDown / RegionDown needs (a site that probes nothing there has no say)."""
    return f"count by (site) ({union(UP, selectors(model, node.branches))})"


def held(expr: str, hold: str) -> str:
    """`expr` now, or at any second within the last `hold` (its latest step may be a second old,
    hence `expr` itself too). A recorded series (a bare name) needs no subquery: its own samples
    within `hold`."""
    if re.fullmatch(r"[a-z_:][a-z0-9_:]*", expr):
        return f"max_over_time({expr}[{hold}])"
    return f"({expr}) or max_over_time(({expr})[{hold}:1s])"


def share_term(metric: str, selector: str, share: float) -> str:
    dark = f"count by (site) ({metric}{selector} == 0)"
    total = f"count by (site) ({metric}{selector})"
    return f"({dark} >= {share:g} * {total}) >= {BLIND_MIN_UNITS}"


def blind_share(configured: float, largest_unit: int, total: int) -> float | None:
    """The share at which darkness means the probe site itself: never reachable by the largest
    single upstream/region (or branch) going dark on its own. None: no share can tell them apart
    (one region holds everything), so only the canaries can."""
    if total < BLIND_MIN_UNITS:
        return None
    share = max(configured, (largest_unit + 1) / total)
    return share if share <= 1 else None


def probe_site_blind(model: Model, configured_share: float) -> str:
    """{site} series while the probe site is blind: every canary DOWN, or a share of its ISP
    uplinks / branches / devices dark that no single upstream or region reaches. With a
    SitedModel the shares are each site's own (what it probes): a site that probes one region
    only cannot tell that region's outage from its own blindness by shares, only by canaries."""
    terms = [f"(count by (site) ({CANARY_UP} == 0) >= count by (site) ({CANARY_UP}))"]
    tops = model.top_nodes()
    covered = {k for n in tops for k in n.branches}
    for site, infos in getattr(model, "per_site", ()) or ((None, model.branches),):
        def largest(unit_count, infos=infos) -> int:
            sizes = [sum(unit_count(infos[k]) for k in n.branches if k in infos) for n in tops]
            sizes += [unit_count(infos[k]) for k in infos if k not in covered]
            return max(sizes, default=0)

        on_site = [f"site={quote(site)}"] if site is not None else []
        for metric, matchers, count in (
            (UP, [*on_site, 'role="isp"'], lambda b: len(b.uplinks)),
            (BRANCH_UP, on_site, lambda b: 1 if b.has_verdict else 0),
            (UP, on_site, lambda b: len(b.devices)),
        ):
            total = sum(count(b) for b in infos.values())
            share = blind_share(configured_share, largest(count), total)
            if share is not None:
                terms.append(share_term(metric, "{" + ", ".join(matchers) + "}" if matchers else "", share))
    return " or ".join(terms)


def chain_groups(model: Model) -> dict[tuple[str, ...], list[BranchKey]]:
    """Branches grouped by the nodes they sit behind (one rule per group, never per branch)."""
    out: dict[tuple[str, ...], list[BranchKey]] = defaultdict(list)
    for key in model.branches:
        out[tuple(n.name for n in model.chain(key))].append(key)
    return dict(sorted(out.items()))


def suppressed(model: Model, chain: tuple[str, ...], hold: str, branch_level: bool) -> str:
    """The `unless` suffix of an alert below the branch level (branch_level=False) or of
    BranchDown itself (True): a node above dark, the branch not answering. (The probe site
    being blind is applied once to the whole rule: `site_quiet`.)"""
    out = []
    if not branch_level:
        # -1 (deciding) and 0 (dark) both hold the alert back; no series (no verdict) does not.
        out.append(f"unless on(site, region, branch) ({BRANCH_UP} != 1)")
        out.append(f"unless on(site, region, branch) max_over_time(({BRANCH_UP} == 0)[{hold}:1s])")
    nodes = {n.name: n for n in model.nodes}
    for name in chain:
        out.append(f"unless on(site) ({held(node_dark(model, nodes[name], deciding=True), hold)})")
    return " ".join(out)


def site_quiet(expr: str, blind: str, hold: str) -> str:
    return f"({expr}) unless on(site) ({held(blind, hold)})"


def per_chain(model: Model, part) -> str | None:
    """One expression over every chain group, `part(chain, keys)` each (None: nothing there), so
    each alert stays one rule (promtool rejects two rules with the same name and labels).

    The group behind no node is called with keys=None: "every branch no node covers", so a branch
    or region that appears after the rules were generated (added through the inventory service)
    still pages, at its own level."""
    groups = chain_groups(model)
    groups.setdefault((), [])
    parts = [p for chain, keys in groups.items() if (p := part(chain, keys if chain else None))]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else " or ".join(f"({p})" for p in parts)


def node_rules(model: Model, blind: str, hold: str) -> list[tuple[Node, str]]:
    """(node, expr) for UpstreamDown / RegionDown: dark, unless a node above it is dark too."""
    out = []
    for node in model.nodes:
        expr = f"({node_dark(model, node)})"
        for upper in model.above(node):
            expr += f" unless on(site) ({held(node_dark(model, upper, deciding=True), hold)})"
        expr += f" unless on(site) ({held(blind, hold)})"
        out.append((node, expr))
    return out


# --- several probe sites -------------------------------------------------------------------------


def site_disagrees(share: float) -> str:
    """{site} series while the site sees at least `share` of the devices it probes DOWN that
    another site sees UP: its own path is at fault, not the network (a real outage looks the same
    from every site). At least BLIND_MIN_UNITS such devices, so one device seen differently by two
    sites for a round never counts."""
    down_here_up_there = f"{UP} == 0 and on(device) ({UP} == 1)"
    return (f"(count by (site) ({down_here_up_there}) >= {share:g} * count by (site) ({UP}))"
            f" >= {BLIND_MIN_UNITS}")


def site_unhealthy(blind: str, disagreement_share: float) -> str:
    """{site} series while a probe site must not take part in the consensus: blind (canaries,
    blind share) or disagreeing with the other sites."""
    return f"({blind}) or ({site_disagrees(disagreement_share)})"


def consensus(expr: str, probing: str, key: tuple[str, ...], quorum: str, unhealthy: str, hold: str) -> str:
    """One series per target (no `site`, no `instance`) from the per-site alert expression `expr`,
    when the healthy sites that probe the target (`probing`: a series per site and target) agree
    by `quorum`: all of them, more than half, or any. A site is out of the consensus while it is
    unhealthy and for `hold` after (its view of devices coming back lags). Value: the smallest of
    the sites' values (the earliest "since")."""
    out_ = f"unless on(site) ({held(unhealthy, hold)})"
    by = ", ".join(key)
    # A site votes only on targets it reports now: while its exporter restarts, its range-based
    # views (DeviceFlapping's increase over 10 min) outlive its instant series, and it would count
    # among the agreeing sites but not among the probing ones (a DeviceFlapping from one site's
    # changes alone, seen in the end-to-end sites module when site 2's exporter was restarted).
    agreeing = f"(({expr}) and on({', '.join(('site', *key))}) ({probing})) {out_}"
    healthy_probing = f"({probing}) {out_}"
    combined = f"min without (site, instance) ({agreeing})"
    if quorum == "any":
        return combined
    cond = ">=" if quorum == "all" else "> 0.5 *"
    return (f"{combined} and on({by}) "
            f"(count by ({by}) ({agreeing}) {cond} count by ({by}) ({healthy_probing}))")
