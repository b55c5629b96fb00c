"""What every /probe module shares: the target, the result, the prober signature, the answer's text.

A prober is `async def __call__(target, params, deadline) -> ProbeResult`, run on the probing event
loop; it answers by `deadline` (time.monotonic()) and raises ProbeRefused for a target its module
must not probe (403). One module per protocol (exporter/icmp/probe.py, exporter/snmp/probe.py),
dispatched by the table in exporter/probers.py.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from exporter.contract import PROBE_FAMILIES, Family
from exporter.exposition import Section, render_text, samples_section
from inventory.model import Device


class ProbeRefused(Exception):
    """A prober's 403: the target exists but this module may not probe it (e.g. no SNMP profile)."""


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    ip: str  # canonical
    device: Device | None  # None: an address allowed by probe.allowed_cidrs


@dataclass(frozen=True, slots=True)
class ProbeResult:
    success: bool
    families: tuple[Family, ...] = ()  # the module's families, in answer order
    section: Section = field(default_factory=dict)  # their lines (rendered like /metrics)


class Prober(Protocol):
    async def __call__(self, target: ProbeTarget, params: Mapping[str, str], deadline: float) -> ProbeResult: ...


@dataclass(frozen=True, slots=True)
class Refuse:
    """The prober of a module whose component is not running: every target is refused."""

    reason: str

    async def __call__(self, target: ProbeTarget, params: Mapping[str, str], deadline: float) -> ProbeResult:
        raise ProbeRefused(self.reason)


def render_probe(target: ProbeTarget, result: ProbeResult, duration: float) -> bytes:
    """Blackbox-compatible answer: probe_success, probe_duration_seconds, probe_ip_*, then the module's
    families, every one with HELP and TYPE."""
    head = samples_section([
        ("probe_success", "", int(result.success)),
        ("probe_duration_seconds", "", duration),
        ("probe_ip_protocol", "", 6 if ":" in target.ip else 4),
        ("probe_ip_addr_hash", "", zlib.crc32(target.ip.encode())),
    ])
    return render_text((*PROBE_FAMILIES, *result.families), head, result.section)
