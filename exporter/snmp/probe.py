"""`/probe?module=snmp`: one live poll of an inventory device that has an SNMP profile.

The poll uses a throw-away cache, so the rounds' counter state is untouched; counters in the answer
are the device's raw values. Targets that are not SNMP devices of the inventory are refused (403).
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.exposition import label_text
from exporter.probers import ProbeRefused, ProbeResult, ProbeTarget
from exporter.snmp.metrics import probe_families

_ADDED_BY_WEB = ("probe_success", "probe_duration_seconds")


async def probe(runtime, target: ProbeTarget, params: Mapping[str, str]) -> ProbeResult:
    component = runtime.components.get("snmp")
    device = target.device
    if component is None or not component.settings.enabled:
        raise ProbeRefused("SNMP polling is disabled (snmp.enabled)")
    if device is None or not device.snmp:
        raise ProbeRefused(f"target {target.ip!r} is not an inventory device with an snmp profile")
    if device.snmp not in component.poller.profiles:
        raise ProbeRefused(f"device {device.name!r} names an unknown snmp profile")
    sample = await component.probe(device)
    samples = []
    for family in probe_families(sample):
        if family.name in _ADDED_BY_WEB:
            continue
        for s in family.samples:
            samples.append((s.name, family.type, label_text(s.labels), s.value))
    return ProbeResult(sample.up, samples)
