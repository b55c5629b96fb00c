"""Root-cause chaos run: one page per root cause, on the real chain, under correlated failures.

    sudo .venv/bin/python -m bench.root_cause [--minutes 30] [--seed 11] [--topology] [--json FILE]
    sudo .venv/bin/python -m bench.root_cause --smoke        # ~3 minutes in all, a small bank (CI)

A bank-shaped inventory (875 devices, 93 branches in 8 regions of 4-30 branches, most branches on
one ISP uplink) is simulated in a namespace lab and probed by the real exporter; vmagent,
VictoriaMetrics, vmalert and Alertmanager run with the generated configs and deliver to an
in-process webhook receiver. After a 1 % loss phase on every device (nothing else wrong), a seeded
scheduler injects root causes, several at once on disjoint scopes, each restored after a while:

    kind     what is dark                                   the one page expected
    device   one non-uplink device                          DeviceDown{device}
    isp      one ISP uplink; the rest of its branch answers IspLinkDown{device}
    branch   every device of a branch                       BranchDown{region, branch}
    region   every device of a region                       RegionDown{region}, or with --topology
                                                            UpstreamDown{upstream: core-REGION}
    flap     one device, down/up every 20 s                 DeviceFlapping{device}
    site     the probe site's own network (canaries too)    ProbeSiteBlind (alone, near the end)

Every firing alert received is attributed to one root cause whose devices it covers (device label:
that device; branch: the branch; region or upstream: everything behind it; ProbeSiteBlind:
everything) and that was active, or ended less than COOLDOWN before; distinct alerts (label set +
start time) are counted, so Alertmanager's repeats of a firing alert are not pages. Per kind it prints
pages per root cause (target 1.00), pages that overstate the scope (a higher level than the root
cause: BranchDown while the branch answers, RegionDown for one dark branch, ...), misses and the
latency from "taken dark" to "expected page received" (p50/p95/max; targets p95: ISP <= 5 s,
device <= 8 s, branch <= 8 s, probe-site blind <= 10 s), and the pages during the loss phase
(target 0). --json writes it all. The exit code is 0 when every target is met; with --smoke, when
the run completed and the lab ended clean (the targets are printed, not enforced: CI runs it against
whatever rules are generated).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.common import stop_on_sigterm
from inventory.dump import inventory_data
from inventory.errors import InventoryError
from inventory.loader import load_inventory
from inventory.model import Inventory
from inventory.synth import synth_bank_inventory, topology_data
from wardops.lab.targets import upstream_devices
from wardops.stack.stack import ephemeral_ports, free_ports
from wardops.stack.testbed import Testbed, TestbedSettings
from wardops.stack.webhook import Received

KINDS = ("device", "isp", "branch", "region", "flap", "site")
EXPECTED = {"device": "DeviceDown", "isp": "IspLinkDown", "branch": "BranchDown", "region": "RegionDown",
            "flap": "DeviceFlapping", "site": "ProbeSiteBlind"}
LEVEL = {"device": 0, "isp": 0, "flap": 0, "branch": 1, "region": 2, "site": 3}  # scope height
LATENCY_TARGETS = {"isp": 5.0, "device": 8.0, "branch": 8.0, "site": 10.0}  # p95, seconds
IGNORED = {"Watchdog"}  # always firing by design: not a page about the lab
# A device that went down and up twice within the flap rules' window (5 min; 10 min for ISP
# uplinks) is flapping: a device takes part in no new fault (the site blackout included) for its
# window after its fault ends. A page about a fault up to COOLDOWN after its end still belongs to it.
FLAP_WINDOW = {"isp": 600.0, "other": 300.0}
COOLDOWN = 600.0
FLAP_PERIOD = 20.0
SMOKE_REGIONS = (("Tbilisi", 3), ("Batumi", 2), ("Kutaisi", 2))


@dataclass
class Cause:
    kind: str
    scope: str  # device name, "region/branch", region, or "site"
    devices: frozenset[str]  # what is dark (names); the site: every device
    ips: tuple[str, ...]
    start: float
    end: float  # planned until restored, then actual
    expected: dict  # alertname + labels of the one page expected
    restored: bool = False
    flap_down: bool = False
    flap_next: float = 0.0
    until: float = math.inf  # pages received up to here can belong to it
    pages: list[Received] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"kind": self.kind, "scope": self.scope, "devices": len(self.devices),
                "start": iso(self.start), "end": iso(self.end), "expected": self.expected,
                "pages": [{"alert": a.name, **scope_labels(a), "after_s": round(a.received_ts - self.start, 1)}
                          for a in self.pages]}


def iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")


def scope_labels(a: Received) -> dict:
    return {k: a.labels[k] for k in ("device", "branch", "region", "upstream") if a.labels.get(k)}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (an observed value, no interpolation)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class Chaos:
    """Seeded scheduler of root causes on disjoint scopes; single-threaded, so lab changes never race."""

    def __init__(self, tb: Testbed, inv: Inventory, rng: random.Random, topology: bool, log=print):
        self.tb, self.inv, self.rng, self.topology, self.log = tb, inv, rng, topology, log
        self.enabled = [d for d in inv.enabled_devices()]
        self.by_name = {d.name: d for d in self.enabled}
        self.busy_until: dict[str, float] = {}  # device name -> when it may take part in a new fault
        self.active: list[Cause] = []
        self.causes: list[Cause] = []
        self.branches: dict[tuple[str, str], list] = {}
        for d in self.enabled:
            self.branches.setdefault((d.region, d.branch), []).append(d)
        core_devices = {n for u in inv.topology.upstreams for n in u.devices}
        self.dc_region = next((d.region for d in self.enabled if d.name == "hq-core1"), None)
        # Faults stay off the data centre and the region core routers: their outage is a node of
        # the topology (not one of the kinds measured here) and would darken more than its scope.
        self.eligible = [d for d in self.enabled if d.region != self.dc_region and d.name not in core_devices
                         and not d.name.endswith("-core1")]

    # -- scopes ------------------------------------------------------------------------------

    def free(self, names, now: float) -> bool:
        return all(self.busy_until.get(n, 0.0) <= now for n in names)

    def pick(self, kind: str, now: float):
        """(scope, device names, expected page) for a new fault of `kind`, or None when no free
        scope exists right now."""
        rng = self.rng
        if kind in ("device", "flap", "isp"):
            role_ok = (lambda d: d.role == "isp") if kind == "isp" else (lambda d: d.role != "isp")
            pool = [d for d in self.eligible if role_ok(d) and self.free([d.name], now)]
            if kind == "isp":  # most faults on single-uplink branches, the bank's common case
                single = [d for d in pool if len([x for x in self.branches[(d.region, d.branch)]
                                                  if x.role == "isp"]) == 1]
                pool = single if single and rng.random() < 0.75 else pool
            if kind == "device":  # a share in branches that already have an open fault (busy branches)
                busy_branches = {(self.by_name[n].region, self.by_name[n].branch) for c in self.active
                                 if c.kind in ("device", "flap", "isp") for n in c.devices}
                in_busy = [d for d in pool if (d.region, d.branch) in busy_branches]
                pool = in_busy if in_busy and rng.random() < 0.4 else pool
            if not pool:
                return None
            d = rng.choice(sorted(pool, key=lambda x: x.name))
            return d.name, {d.name}, {"alertname": EXPECTED[kind], "device": d.name}
        if kind == "branch":
            keys = [k for k, devs in sorted(self.branches.items()) if k[0] != self.dc_region
                    and self.free([d.name for d in devs], now)]
            if not keys:
                return None
            region, branch = rng.choice(keys)
            return (f"{region}/{branch}", {d.name for d in self.branches[(region, branch)]},
                    {"alertname": "BranchDown", "region": region, "branch": branch})
        if kind == "region":
            regions = sorted({r for r, _ in self.branches if r != self.dc_region
                              and sum(1 for rr, _ in self.branches if rr == r) >= 2})
            free = [r for r in regions if self.free([d.name for d in self.enabled if d.region == r], now)]
            if not free:
                return None
            region = rng.choice(free)
            if self.topology:
                node = f"core-{region.lower()}"
                names = {d.name for d in upstream_devices(self.inv, node)}
                return region, names, {"alertname": "UpstreamDown", "upstream": node}
            names = {d.name for d in self.enabled if d.region == region}
            return region, names, {"alertname": "RegionDown", "region": region}
        raise ValueError(f"unknown kind {kind!r}")

    # -- faults ------------------------------------------------------------------------------

    def start(self, kind: str, duration: float) -> Cause | None:
        now = time.time()
        if kind == "site":
            names = set(self.by_name)
            cause = Cause("site", "site", frozenset(names), (), now, now + duration,
                          {"alertname": "ProbeSiteBlind"})
            self.tb.lab.site_down()
        else:
            picked = self.pick(kind, now)
            if picked is None:
                return None
            scope, names, expected = picked
            ips = tuple(sorted(self.by_name[n].ip for n in names))
            cause = Cause(kind, scope, frozenset(names), ips, now, now + duration, expected)
            self.tb.lab.down(ips)  # one nft batch, however many devices
            if kind == "flap":
                cause.flap_down, cause.flap_next = True, now + FLAP_PERIOD
        for n in cause.devices:
            self.busy_until[n] = math.inf
        self.active.append(cause)
        self.causes.append(cause)
        self.log(f"  {iso(now)[11:19]} + {kind:<6} {cause.scope} ({len(cause.devices)} devices, {duration:.0f} s)")
        return cause

    def tick(self) -> None:
        """Flap toggles and restores that are due."""
        now = time.time()
        for cause in list(self.active):
            if now >= cause.end:
                self.restore(cause)
            elif cause.kind == "flap" and now >= cause.flap_next:
                (self.tb.lab.up if cause.flap_down else self.tb.lab.down)(cause.ips)
                cause.flap_down = not cause.flap_down
                cause.flap_next += FLAP_PERIOD

    def restore(self, cause: Cause) -> None:
        if cause.kind == "site":
            self.tb.lab.site_up()
        else:
            self.tb.lab.up(cause.ips)
        cause.end, cause.restored = time.time(), True
        for n in cause.devices:
            role = "isp" if n in self.by_name and self.by_name[n].role == "isp" else "other"
            self.busy_until[n] = cause.end + FLAP_WINDOW[role]
        self.active.remove(cause)
        self.log(f"  {iso(cause.end)[11:19]} - {cause.kind:<6} {cause.scope}")

    def restore_all(self) -> None:
        """Bring everything back (the `finally` of a run): active faults, the site, any loss."""
        for cause in list(self.active):
            try:
                self.restore(cause)
            except Exception as exc:  # noqa: BLE001 - keep restoring the others
                self.log(f"restore {cause.kind} {cause.scope} failed: {exc}")
        lab = self.tb.lab
        if lab is not None:
            lab.site_up()
            lab.set_loss(0)
            lab.up(sorted(lab.down_ips()))


# -- attribution -----------------------------------------------------------------------------

def alert_level(a: Received) -> int | None:
    """Scope height of an alert (as LEVEL), None for alerts about no place in the network."""
    if a.name == "ProbeSiteBlind":
        return 3
    if a.labels.get("upstream") or a.name in ("RegionDown", "UpstreamDown"):
        return 2
    if a.labels.get("device"):
        return 0
    if a.labels.get("branch"):
        return 1
    if a.labels.get("region"):
        return 2
    return None


def alert_devices(a: Received, inv: Inventory) -> set[str]:
    """The device names an alert speaks for."""
    devices = inv.enabled_devices()
    if a.name == "ProbeSiteBlind":
        return {d.name for d in devices}
    if a.labels.get("device"):
        return {a.labels["device"]}
    if a.labels.get("upstream"):
        try:
            return {d.name for d in upstream_devices(inv, a.labels["upstream"])}
        except ValueError:
            pass
    if a.labels.get("branch"):
        return {d.name for d in devices if d.branch == a.labels["branch"]
                and a.labels.get("region", d.region) == d.region}
    if a.labels.get("region"):
        return {d.name for d in devices if d.region == a.labels["region"]}
    return set()


def distinct_firing(alerts: list[Received]) -> list[Received]:
    """First receipt of each distinct firing alert (label set + start time), in receive order."""
    seen: set = set()
    out = []
    for a in sorted(alerts, key=lambda x: x.received_ts):
        key = (tuple(sorted(a.labels.items())), a.starts_at)
        if a.status == "firing" and a.name not in IGNORED and key not in seen:
            seen.add(key)
            out.append(a)
    return out


def matches(a: Received, expected: dict) -> bool:
    return all(a.labels.get(k) == v for k, v in expected.items())


def attribute(causes: list[Cause], alerts: list[Received], inv: Inventory) -> list[Received]:
    """Give each alert to one cause whose devices it covers and whose window (start to `until`)
    holds its arrival: the one it was expected from, else the one that began last (a wrong page
    reacts to the latest change, e.g. BranchDown to the uplink that just went dark in a branch
    where another device was already down). Returns the alerts no cause explains."""
    unexplained = []
    for a in alerts:
        covered = alert_devices(a, inv)
        owners = [c for c in causes if c.start <= a.received_ts <= c.until and covered & c.devices]
        if not owners:
            unexplained.append(a)
            continue
        expected = [c for c in owners if matches(a, c.expected)]
        max(expected or owners, key=lambda c: c.start).pages.append(a)
    return unexplained


def summarize(causes: list[Cause]) -> dict:
    out = {}
    for kind in KINDS:
        mine = [c for c in causes if c.kind == kind]
        if not mine:
            continue
        latencies, missed, overstated, by_alert = [], [], [], {}
        pages = 0
        for c in mine:
            pages += len(c.pages)
            for a in c.pages:
                by_alert[a.name] = by_alert.get(a.name, 0) + 1
                level = alert_level(a)
                if level is not None and level > LEVEL[kind]:
                    overstated.append({"cause": c.scope, "alert": a.name, **scope_labels(a)})
            hit = next((a for a in c.pages if matches(a, c.expected)), None)
            if hit is None:
                missed.append(c.scope)
            else:
                latencies.append(hit.received_ts - c.start)
        entry = {"causes": len(mine), "pages": pages, "pages_per_cause": round(pages / len(mine), 2),
                 "overstated": overstated, "missed": missed, "by_alert": dict(sorted(by_alert.items()))}
        if latencies:
            entry["latency_s"] = {"n": len(latencies), "p50": round(percentile(latencies, 50), 1),
                                  "p95": round(percentile(latencies, 95), 1), "max": round(max(latencies), 1)}
        out[kind] = entry
    return out


def verdict(kinds: dict, loss_pages: int, unexplained: int) -> dict[str, bool]:
    checks = {"loss_pages_0": loss_pages == 0, "unexplained_pages_0": unexplained == 0}
    for kind, e in kinds.items():
        checks[f"{kind}_pages_per_cause_1"] = e["pages_per_cause"] == 1.0 and not e["missed"]
        checks[f"{kind}_overstated_0"] = not e["overstated"]
        if kind in LATENCY_TARGETS:
            checks[f"{kind}_p95_le_{LATENCY_TARGETS[kind]:g}s"] = bool(
                e.get("latency_s") and e["latency_s"]["p95"] <= LATENCY_TARGETS[kind])
    return checks


# -- the run ---------------------------------------------------------------------------------

def write_inventory(inv: Inventory, path: Path, topology: bool) -> None:
    data = inventory_data(inv)
    if topology:
        data["topology"] = topology_data(inv.topology)
    path.write_text("# bank-shaped synthetic inventory written by bench/root_cause.py\n"
                    + yaml.safe_dump(data, sort_keys=True, allow_unicode=True, width=120))
    try:
        loaded = load_inventory(path)
    except InventoryError as exc:
        raise SystemExit(f"root_cause: the inventory loader rejects the bank inventory"
                         f"{' (does it parse topology: yet?)' if topology else ''}:\n{exc}") from None
    if topology and loaded.topology.upstreams != inv.topology.upstreams:
        raise SystemExit("root_cause: the loaded topology differs from the written one")


def plan_durations(rng: random.Random, kind: str, smoke: bool) -> float:
    if smoke:
        return {"flap": 50.0, "site": 25.0}.get(kind, rng.uniform(20, 30))
    return {"device": rng.uniform(40, 90), "isp": rng.uniform(30, 60), "branch": rng.uniform(40, 90),
            "region": rng.uniform(45, 90), "flap": rng.uniform(120, 150), "site": 60.0}[kind]


def run(tb: Testbed, inv: Inventory, args, log) -> dict:
    rng = random.Random(args.seed)
    chaos = Chaos(tb, inv, rng, args.topology, log)
    loss_seconds = 20.0 if args.smoke else max(120.0, args.minutes * 6)
    site_seconds = plan_durations(rng, "site", args.smoke)
    quiet = 20.0 if args.smoke else 90.0  # after the loss phase: its late pages still count as its own
    # The blackout darkens every device, so it waits until no device is inside its flap window
    # (a device dark 2 minutes earlier and dark again with the site changed state 4 times in 5
    # minutes); faults with ISP uplinks (10 min window) end this much earlier than the others, so
    # the wait is the 5 min one. The smoke run cannot afford the wait (it enforces no target).
    isp_early = FLAP_WINDOW["isp"] - FLAP_WINDOW["other"]
    before_site = 20.0 if args.smoke else FLAP_WINDOW["other"]
    grace = 20.0 if args.smoke else 60.0  # late notifications of the last faults
    total = 170.0 if args.smoke else args.minutes * 60
    chaos_seconds = total - loss_seconds - quiet - site_seconds - before_site - grace
    if chaos_seconds < 30:
        raise SystemExit(f"root_cause: --minutes {args.minutes:g} leaves no time for faults")
    weights = {"device": 3, "isp": 3, "branch": 2, "region": 1, "flap": 1}
    phases: dict = {}
    try:
        log(f"loss: 1 % on every device for {loss_seconds:.0f} s")
        phases["loss"] = {"start": time.time()}
        tb.lab.set_loss(1)
        time.sleep(loss_seconds)
        tb.lab.set_loss(0)
        phases["loss"]["end"] = time.time()
        time.sleep(quiet)  # pages the loss caused are still counted (loss window + quiet)
        log(f"chaos: {chaos_seconds:.0f} s of root causes, up to {args.concurrency} at once")
        phases["chaos"] = {"start": time.time()}
        chaos_end = time.monotonic() + chaos_seconds
        # Smoke: each kind once, the flap first (it needs three changes, 40 s) and the region
        # before the smaller scopes take a piece of every region of the small bank.
        forced = ["flap", "region", "branch", "isp", "device"] if args.smoke else []
        next_start = time.monotonic()
        while time.monotonic() < chaos_end or chaos.active:
            chaos.tick()
            now = time.monotonic()
            # New faults only while they can end inside the chaos phase (see before_site).
            if now >= next_start and len(chaos.active) < args.concurrency:
                kind = forced.pop(0) if forced else rng.choices(list(weights), list(weights.values()))[0]
                limit = chaos_end - (isp_early if kind in ("isp", "branch", "region") and not args.smoke else 0)
                duration = min(plan_durations(rng, kind, args.smoke), limit - now)
                if duration >= 20 and chaos.start(kind, duration) is None and args.smoke:
                    log(f"  no free scope for {kind}")
                next_start = now + (3.0 if args.smoke else rng.uniform(8, 30))
            time.sleep(0.2)
        phases["chaos"]["end"] = time.time()
        settled = max(chaos.busy_until.values(), default=0.0)
        time.sleep(before_site if args.smoke else min(max(settled - time.time(), 0.0), before_site))
        log(f"site: probe-site blackout for {site_seconds:.0f} s")
        cause = chaos.start("site", site_seconds)
        while chaos.active:
            chaos.tick()
            time.sleep(0.2)
        phases["site"] = {"start": cause.start, "end": cause.end}
        time.sleep(grace)
    finally:
        chaos.restore_all()
    alerts = distinct_firing(tb.alerts(phases["loss"]["start"]))
    loss_end = phases["loss"]["end"] + quiet
    loss_pages = [a for a in alerts if a.received_ts <= loss_end]
    for c in chaos.causes:  # the blackout's pages belong to it alone, not to faults just before it
        c.until = c.end + COOLDOWN if c.kind == "site" else min(c.end + COOLDOWN, phases["site"]["start"])
    unexplained = attribute(chaos.causes, [a for a in alerts if a.received_ts > loss_end], inv)
    kinds = summarize(chaos.causes)
    checks = verdict(kinds, len(loss_pages), len(unexplained))
    clean = not tb.lab.down_ips() and not tb.lab.site_is_down()
    return {
        "kinds": kinds,
        "loss_1pct": {"seconds": round(loss_seconds), "pages": len(loss_pages),
                      "alerts": [{"alert": a.name, **scope_labels(a)} for a in loss_pages]},
        "unexplained": [{"alert": a.name, **scope_labels(a), "at": iso(a.received_ts)} for a in unexplained],
        "checks": checks, "targets_met": all(checks.values()), "lab_clean_after": clean,
        "phases": {k: {kk: iso(v) for kk, v in p.items()} for k, p in phases.items()},
        "causes": [c.as_json() for c in chaos.causes],
    }


def settle(tb: Testbed, quiet_for: float, limit: float, log) -> None:
    """Wait until no page has arrived for `quiet_for` seconds (at most `limit`): alerts of the
    stack's start (e.g. ExporterDown before the first scrape) must not land in the loss phase."""
    start = time.time()
    while time.time() - start < limit:
        last = max((a.received_ts for a in tb.alerts(start) if a.name not in IGNORED), default=start)
        if time.time() - last >= quiet_for:
            return
        time.sleep(1)
    log(f"start-up pages still arriving after {limit:.0f} s; going on")


def print_table(result: dict) -> None:
    print(f"\n{'kind':<8}{'causes':>7}{'pages':>7}{'/cause':>8}{'overst.':>8}{'missed':>7}"
          f"{'p50 s':>8}{'p95 s':>8}{'max s':>8}  alerts")
    for kind, e in result["kinds"].items():
        lat = e.get("latency_s") or {}
        print(f"{kind:<8}{e['causes']:>7}{e['pages']:>7}{e['pages_per_cause']:>8.2f}{len(e['overstated']):>8}"
              f"{len(e['missed']):>7}{lat.get('p50', '-'):>8}{lat.get('p95', '-'):>8}{lat.get('max', '-'):>8}  "
              + ", ".join(f"{k} {v}" for k, v in e["by_alert"].items()))
    loss = result["loss_1pct"]
    print(f"1 % loss for {loss['seconds']} s: {loss['pages']} pages"
          + (f" ({', '.join(sorted({a['alert'] for a in loss['alerts']}))})" if loss["pages"] else ""))
    print(f"pages no root cause explains: {len(result['unexplained'])}")
    failed = [k for k, ok in result["checks"].items() if not ok]
    print("targets:", "all met" if not failed else "NOT met: " + ", ".join(failed))


def _terminated(signum, _frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the `finally` and `with` blocks


def main(argv: list[str] | None = None) -> int:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0, help="whole run after start-up (default 30)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--smoke", action="store_true",
                        help="a small bank (7 branches), each kind once, ~2.5 min after start-up (CI)")
    parser.add_argument("--topology", action=argparse.BooleanOptionalAction, default=False,
                        help="give the inventory explicit upstream nodes (dc, core-REGION): regional "
                             "outages then expect UpstreamDown instead of RegionDown (default: no)")
    parser.add_argument("--concurrency", type=int, default=3, help="root causes dark at once (max)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a `wardops generate` setting (default: the shipped settings)")
    parser.add_argument("--tree", action="append", default=[], metavar="COMMAND=DIR",
                        help="development: run a wardops command from another source tree")
    parser.add_argument("--json", type=Path, default=Path("root_cause.json"), help="result file (%(default)s)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("root_cause: needs root (network namespaces)", file=sys.stderr)
        return 2
    if args.smoke:
        args.concurrency = 5
        inv = synth_bank_inventory(72, seed=args.seed, topology=args.topology, regions=SMOKE_REGIONS)
    else:
        inv = synth_bank_inventory(seed=args.seed, topology=args.topology)
    overrides: dict = {}
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        overrides.setdefault(section, {})[name] = value
    trees = {k: Path(v) for k, _, v in (t.partition("=") for t in args.tree)}
    log = lambda m: print(m, flush=True)  # noqa: E731
    signal.signal(signal.SIGTERM, _terminated)  # a killed run still restores the lab and stops its daemons
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="wardops-rootcause-") as tmp:
        path = Path(tmp) / "inventory.yml"
        write_inventory(inv, path, args.topology)
        exporter_port, inventory_port = free_ports(2)
        tb = Testbed(TestbedSettings(workdir=Path(tmp) / "tb", inventory=path, lab_name=f"wr{os.getpid() % 100000}",
                                     ports=ephemeral_ports(), exporter_port=exporter_port, snmp=False,
                                     # The inventory service does not store `topology:`; the
                                     # exporter then reads the file, which has it.
                                     use_inventory_service=not args.topology,
                                     inventory_port=inventory_port, trees=trees, settings_overrides=overrides),
                     log=log)
        with tb:
            tb.wait_ingested(timeout=180)
            settle(tb, quiet_for=10 if args.smoke else 30, limit=180, log=log)
            result = run(tb, inv, args, log)
            result["skipped"] = dict(tb.skipped)
            result["canaries"] = list(tb.canaries)
    result = {"seed": args.seed, "smoke": args.smoke, "minutes": args.minutes, "topology": args.topology,
              "devices": len(inv.devices), "branches": len({(d.region, d.branch) for d in inv.devices}),
              "settings": args.set or "shipped defaults", "wall_seconds": round(time.time() - started),
              **result}
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"result: {args.json}")
    if args.smoke:
        return 0 if result["lab_clean_after"] and result["causes"] else 1
    return 0 if result["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
