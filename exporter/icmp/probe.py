"""`/probe?module=icmp`: one round of the device's policy (packets, spacing, timeout) to one target."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.icmp.state import round_stats
from exporter.probers import ProbeResult, ProbeTarget


async def probe(runtime, target: ProbeTarget, params: Mapping[str, str]) -> ProbeResult:
    cfg = runtime.config
    if target.device is not None:
        policy = cfg.policy_for(target.device.role, target.device.labels)
    else:
        policy = cfg.policies[cfg.default_policy]
    engine = runtime.components["icmp"].engine
    result = await engine.ping([target.ip], policy.packets, policy.spacing, policy.timeout)
    stats = round_stats(result.sent[0], result.rtts[0])
    samples = [("probe_icmp_duration_seconds", "gauge", '{phase="resolve"}', 0.0),
               ("probe_icmp_duration_seconds", "gauge", '{phase="setup"}', 0.0)]
    if stats.ok:
        samples.append(("probe_icmp_duration_seconds", "gauge", '{phase="rtt"}', stats.rtt_avg))
    samples += [("probe_icmp_packets_sent", "gauge", "", stats.sent),
                ("probe_icmp_packets_received", "gauge", "", stats.received),
                ("probe_icmp_loss_ratio", "gauge", "", stats.loss)]
    if stats.ok:
        samples += [("probe_icmp_rtt_min_seconds", "gauge", "", stats.rtt_min),
                    ("probe_icmp_rtt_max_seconds", "gauge", "", stats.rtt_max),
                    ("probe_icmp_jitter_seconds", "gauge", "", stats.jitter)]
    return ProbeResult(stats.ok, samples)
