"""/probe modules: one prober per protocol, same signature, dispatched by a table.

A prober is `async def probe(runtime, target, params) -> ProbeResult`; it runs on the probing
event loop (the web thread submits it there). A prober raises ProbeRefused for a target its module must not probe (403).
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from exporter.exposition import number
from inventory.model import Device

PROBERS: dict[str, str] = {
    "icmp": "exporter.icmp.probe:probe",
    "snmp": "exporter.snmp.probe:probe",
}


class ProbeRefused(Exception):
    """A prober's 403: the target exists but this module may not probe it (e.g. no SNMP profile)."""


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    ip: str  # canonical
    device: Device | None  # None: an address allowed by probe.allowed_cidrs


@dataclass(slots=True)
class ProbeResult:
    success: bool
    # (metric name, type, label text like `{phase="rtt"}` or "", value)
    samples: list[tuple[str, str, str, float]] = field(default_factory=list)


Prober = Callable[[object, ProbeTarget, Mapping[str, str]], Awaitable[ProbeResult]]


def get_prober(module: str) -> Prober | None:
    spec = PROBERS.get(module)
    if spec is None:
        return None
    mod, _, attr = spec.partition(":")
    return getattr(importlib.import_module(mod), attr)


def render_probe(target: ProbeTarget, result: ProbeResult, duration: float) -> bytes:
    """Blackbox-compatible text: probe_success, probe_duration_seconds, then the module's samples."""
    lines = [
        "# HELP probe_success Displays whether or not the probe was a success",
        "# TYPE probe_success gauge",
        f"probe_success {int(result.success)}",
        "# HELP probe_duration_seconds Returns how long the probe took to complete in seconds",
        "# TYPE probe_duration_seconds gauge",
        f"probe_duration_seconds {number(duration)}",
        "# HELP probe_ip_protocol Specifies whether probe ip protocol is IP4 or IP6",
        "# TYPE probe_ip_protocol gauge",
        f"probe_ip_protocol {6 if ':' in target.ip else 4}",
        "# HELP probe_ip_addr_hash Specifies the hash of IP address. It's useful to detect if the IP address changes.",
        "# TYPE probe_ip_addr_hash gauge",
        f"probe_ip_addr_hash {zlib.crc32(target.ip.encode())}",
    ]
    seen = set()
    for name, kind, labels, value in result.samples:
        if name not in seen:
            seen.add(name)
            lines.append(f"# TYPE {name} {kind}")
        lines.append(f"{name}{labels} {number(value)}")
    return ("\n".join(lines) + "\n").encode()
