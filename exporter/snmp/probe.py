"""`/probe?module=snmp`: one live poll of an inventory device that has an SNMP profile.

The poll uses a throw-away cache, so the rounds' counter state is untouched; counters in the answer
are the device's raw values. Targets that are not SNMP devices of the inventory are refused (403).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from exporter.component import Runtime
from exporter.contract import PROBE_SNMP_FAMILIES
from exporter.exposition import label_text, samples_section
from exporter.probing import Prober, ProbeRefused, ProbeResult, ProbeTarget, Refuse
from exporter.snmp.component import SnmpComponent
from exporter.snmp.poller import DeviceSample
from exporter.snmp.render import device_row, families, render_rows
from inventory.model import Device, SnmpProfile


class SnmpProbing(Protocol):
    """What the prober needs: SnmpComponent provides it (and a bare SnmpPoller, for the CLI)."""

    profiles: Mapping[str, SnmpProfile | None]

    def refusal(self, ip: str, device: Device | None) -> str | None:
        """Why target `ip` (an inventory device or not) must not be polled: the 403 text; or None."""

    async def probe(self, device: Device, deadline: float | None = None) -> DeviceSample: ...


@dataclass(frozen=True, slots=True)
class SnmpProber:
    source: SnmpProbing

    async def __call__(self, target: ProbeTarget, params: Mapping[str, str], deadline: float) -> ProbeResult:
        device = target.device
        why = self.source.refusal(target.ip, device)
        if why is not None or device is None:
            raise ProbeRefused(why or f"target {target.ip!r} is not an inventory device")
        sample = await self.source.probe(device, deadline)
        return result(device, sample, self.source.profiles)


def result(device: Device, sample: DeviceSample, profiles: Mapping[str, SnmpProfile | None]) -> ProbeResult:
    """The answer for one live poll: probe_snmp_error on failure, then the device's SNMP series
    (rendered like /metrics, without the rounds' poll error counter)."""
    error = samples_section([("probe_snmp_error", label_text({"error": sample.error}), 1)] if sample.error else [])
    series = render_rows([device_row(device, sample)])
    return ProbeResult(sample.up, (*PROBE_SNMP_FAMILIES, *families(profiles)), {**error, **series})


def bind(runtime: Runtime) -> Prober:
    """The prober over the running SNMP component."""
    component = runtime.components.get("snmp")
    if not isinstance(component, SnmpComponent):
        return Refuse("SNMP polling is disabled (snmp.enabled)")
    return SnmpProber(component)
