"""/probe modules: one prober per protocol (exporter/<protocol>/probe.py), dispatched by a table.

Each entry binds its module's prober to the running component it probes with (`bind(runtime)`),
so a prober sees only the small interface it needs (ICMP: a Pinger; SNMP: SnmpProbing). Adding a
protocol is one new module and one line here. Types and the answer's text: exporter/probing.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from exporter.component import Runtime
from exporter.icmp import probe as icmp
from exporter.probing import Prober, ProbeRefused, ProbeResult, ProbeTarget, render_probe
from exporter.snmp import probe as snmp

__all__ = ["PROBERS", "Prober", "ProbeRefused", "ProbeResult", "ProbeTarget", "get_prober", "render_probe"]

PROBERS: Mapping[str, Callable[[Runtime], Prober]] = MappingProxyType({
    "icmp": icmp.bind,
    "snmp": snmp.bind,
})


def get_prober(runtime: Runtime, module: str) -> Prober | None:
    """The module's prober over `runtime`'s components; None for an unknown module."""
    bind = PROBERS.get(module)
    return None if bind is None else bind(runtime)
