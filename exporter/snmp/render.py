"""SNMP samples -> Prometheus text lines: the one renderer behind /metrics, /probe?module=snmp and
`wardops snmp poll` (families, names and labels from exporter/contract.py).

Why lines instead of prometheus_client families: building ~240k Metric samples per round for 1,000
devices cost several times the text itself (measured by bench/exporter_mixed.py --render-only,
docs/snmp.md) and its per-sample objects trigger full GC passes that stall the shared loop; plain
f-strings over the immutable snapshot allocate short-lived strings only, in the render thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from exporter.contract import ROUND, SELF_FAMILIES, SNMP_FAMILIES, SNMP_IF_COUNTERS, Family, snmp_extra_family
from exporter.exposition import Section, escape, label_text, number, render_text, samples_section
from exporter.snmp.poller import DeviceSample, SnmpSnapshot
from inventory.model import Device, SnmpProfile

POLICY = "snmp"  # the `policy` label of the SNMP self-metrics (one round loop for all SNMP devices)
SELF_LABELS = label_text(dict(zip(ROUND, ("snmp", POLICY), strict=True)))

_COUNTERS = tuple((family.name, column) for family, column in SNMP_IF_COUNTERS)

# One row per device: (label text, is_isp, sample, ((error kind, polls failed that way), ...)).
Row = tuple


def device_row(device: Device, sample: DeviceSample, errors: Iterable[tuple[str, int]] = ()) -> Row:
    """The row of `sample` under `device`'s current labels."""
    return label_text(device.target_labels()), device.role == "isp", sample, tuple(errors)


def snapshot_rows(snapshot: SnmpSnapshot, devices: Iterable[Device]) -> tuple[Row, ...]:
    """The snapshot restricted to `devices` (current labels): a device removed or readdressed since
    the round has no row, so its series vanish at once."""
    current = {d.name: d for d in devices}
    errors: dict[str, list[tuple[str, int]]] = {}
    for (name, kind), count in sorted(snapshot.errors.items()):
        errors.setdefault(name, []).append((kind, count))
    rows = []
    for s in snapshot.devices:
        device = current.get(s.device.name)
        if device is not None and device.ip == s.device.ip:
            rows.append(device_row(device, s, errors.get(device.name, ())))
    return tuple(rows)


def render_rows(rows: Iterable[Row]) -> Section:
    """Rows -> section {family: (ISP lines, other lines)}. Runs in the render thread."""
    parts: dict[str, tuple[list[str], list[str]]] = {}

    def out(name: str, isp: bool) -> list[str]:
        pair = parts.get(name)
        if pair is None:
            pair = parts[name] = ([], [])
        return pair[0] if isp else pair[1]

    for labels, isp, s, errors in rows:
        out("wardops_snmp_up", isp).append(f"wardops_snmp_up{labels} {int(s.up)}\n")
        out("wardops_snmp_poll_duration_seconds", isp).append(
            f"wardops_snmp_poll_duration_seconds{labels} {round(s.duration, 6)!r}\n")
        for kind, count in errors:
            out("wardops_snmp_poll_errors_total", isp).append(
                f'wardops_snmp_poll_errors_total{labels[:-1]},error="{kind}"}} {count}\n')
        if not s.up:
            continue
        if s.uptime_seconds is not None:
            out("wardops_snmp_uptime_seconds", isp).append(
                f"wardops_snmp_uptime_seconds{labels} {number(s.uptime_seconds)}\n")
        head = labels[:-1]
        oper, admin, speed, change = (out(n, isp) for n in (
            "wardops_snmp_if_oper_up", "wardops_snmp_if_admin_up", "wardops_snmp_if_speed_bytes",
            "wardops_snmp_if_last_change_timestamp_seconds"))
        counters = [(name, column, out(name, isp)) for name, column in _COUNTERS]
        for i in s.interfaces:
            il = f'{head},ifName="{escape(i.name)}",ifAlias="{escape(i.alias)}"}}'
            if i.oper_up is not None:
                oper.append(f"wardops_snmp_if_oper_up{il} {int(i.oper_up)}\n")
            if i.admin_up is not None:
                admin.append(f"wardops_snmp_if_admin_up{il} {int(i.admin_up)}\n")
            if i.speed_bps is not None:
                # Prometheus base unit: bytes (a 1 Gbit/s port is 125000000); the poller keeps bits
                speed.append(f"wardops_snmp_if_speed_bytes{il} {number(i.speed_bps / 8)}\n")
            if i.last_change is not None:
                change.append(f"wardops_snmp_if_last_change_timestamp_seconds{il} {round(i.last_change, 2)!r}\n")
            values = i.counters
            for name, column, lines in counters:
                value = values.get(column)
                if value is not None:
                    lines.append(f"{name}{il} {value}\n")
        for e in s.extras:
            name = f"{e.metric}_total" if e.kind == "counter" else e.metric
            el = f'{head},index="{escape(e.index)}"}}' if e.index else labels
            out(name, isp).append(f"{name}{el} {number(e.value)}\n")
    return {name: ("".join(a).encode(), "".join(b).encode()) for name, (a, b) in parts.items() if a or b}


def extra_families(profiles: Mapping[str, SnmpProfile | None]) -> list[Family]:
    """Families for the profiles' extra OIDs (`wardops_snmp_<metric>`, counters with `_total`)."""
    out = {}
    for profile in profiles.values():
        for extra in getattr(profile, "extra_oids", ()) or ():
            family = snmp_extra_family(extra.metric, extra.type, extra.table)
            out[family.name] = family
    return [out[n] for n in sorted(out)]


def families(profiles: Mapping[str, SnmpProfile | None]) -> tuple[Family, ...]:
    """Every SNMP family devices polled with `profiles` may carry, in exposition order."""
    return (*SNMP_FAMILIES, *extra_families(profiles))


def round_samples(snapshot: SnmpSnapshot, targets: int) -> list[tuple[str, str, float]]:
    """The round's self-metric samples (the exporter adds rounds and overruns of its loop)."""
    out = [("wardops_exporter_round_duration_seconds", SELF_LABELS, snapshot.duration),
           ("wardops_exporter_targets", SELF_LABELS, targets)]
    if snapshot.timestamp:
        out.append(("wardops_exporter_last_round_timestamp_seconds", SELF_LABELS, snapshot.timestamp))
    return out


def round_text(snapshot: SnmpSnapshot, devices: Iterable[Device],
               profiles: Mapping[str, SnmpProfile | None]) -> bytes:
    """One round as /metrics would serve it: the devices' SNMP series, then the round's duration,
    device count and end time (`wardops snmp poll` without a single --device)."""
    devices = tuple(devices)
    return render_text((*families(profiles), *SELF_FAMILIES), render_rows(snapshot_rows(snapshot, devices)),
                       samples_section(round_samples(snapshot, len(devices))))
