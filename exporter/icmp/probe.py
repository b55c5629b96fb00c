"""`/probe?module=icmp`: one round of the device's policy (packets, spacing, timeout) to one target."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from exporter.component import Runtime
from exporter.config import ExporterConfig, Policy
from exporter.contract import PROBE_ICMP_FAMILIES
from exporter.exposition import samples_section
from exporter.icmp.component import IcmpComponent
from exporter.icmp.engine import PingResult
from exporter.icmp.state import round_stats
from exporter.probing import Prober, ProbeResult, ProbeTarget, Refuse


class Pinger(Protocol):
    """What the prober needs of the ICMP component: its engine's one-round ping (IcmpEngine)."""

    async def ping(self, addresses: list[str], packets: int, spacing: float, timeout: float) -> PingResult: ...


@dataclass(frozen=True, slots=True)
class IcmpProber:
    pinger: Pinger
    config: ExporterConfig

    def policy(self, target: ProbeTarget) -> Policy:
        cfg = self.config
        if target.device is not None:
            return cfg.policy_for(target.device.role, target.device.labels)
        return cfg.policies[cfg.default_policy]

    async def __call__(self, target: ProbeTarget, params: Mapping[str, str], deadline: float) -> ProbeResult:
        policy = self.policy(target)
        # Replies are awaited until the deadline at most, so a policy round longer than the scrape's
        # timeout still answers (with the packets still out counted as lost) instead of timing out.
        sends = policy.spacing * (policy.packets - 1)
        timeout = max(0.0, min(policy.timeout, deadline - time.monotonic() - sends))
        result = await self.pinger.ping([target.ip], policy.packets, policy.spacing, timeout)
        stats = round_stats(result.sent[0], result.rtts[0])
        samples = [("probe_icmp_duration_seconds", '{phase="resolve"}', 0.0),
                   ("probe_icmp_duration_seconds", '{phase="setup"}', 0.0)]
        if stats.ok:
            samples.append(("probe_icmp_duration_seconds", '{phase="rtt"}', stats.rtt_avg))
        samples += [("probe_icmp_packets_sent", "", stats.sent),
                    ("probe_icmp_packets_received", "", stats.received),
                    ("probe_icmp_loss_ratio", "", stats.loss)]
        if stats.ok:
            samples += [("probe_icmp_rtt_min_seconds", "", stats.rtt_min),
                        ("probe_icmp_rtt_max_seconds", "", stats.rtt_max),
                        ("probe_icmp_jitter_seconds", "", stats.jitter)]
        return ProbeResult(stats.ok, PROBE_ICMP_FAMILIES, samples_section(samples))


def bind(runtime: Runtime) -> Prober:
    """The prober over the running ICMP component's engine and the current config."""
    component = runtime.components.get("icmp")
    if not isinstance(component, IcmpComponent):
        return Refuse("ICMP probing is not running")
    return IcmpProber(component.engine, runtime.config)
