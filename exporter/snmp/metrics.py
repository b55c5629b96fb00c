"""Metric families from an immutable SnmpSnapshot (metric contract names and labels).

Built per scrape (or once per round) by the exporter's snapshot collector; a device that left the
inventory simply is not in the next snapshot, so its series disappear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.snmp.poller import DeviceSample, SnmpSnapshot
from inventory.model import Device

IF_LABELS_EXTRA = ("ifName", "ifAlias")

# (metric, help, column) for the per-interface counters
IF_COUNTERS = (
    ("wardops_snmp_if_in_octets", "Octets received (ifHCInOctets; ifInOctets on agents without 64-bit "
     "counters), monotonic across wraps and reboots.", "ifHCInOctets"),
    ("wardops_snmp_if_out_octets", "Octets sent (ifHCOutOctets; ifOutOctets on agents without 64-bit "
     "counters), monotonic across wraps and reboots.", "ifHCOutOctets"),
    ("wardops_snmp_if_in_errors", "Inbound packets with errors (ifInErrors).", "ifInErrors"),
    ("wardops_snmp_if_out_errors", "Outbound packets with errors (ifOutErrors).", "ifOutErrors"),
    ("wardops_snmp_if_in_discards", "Inbound packets discarded (ifInDiscards).", "ifInDiscards"),
    ("wardops_snmp_if_out_discards", "Outbound packets discarded (ifOutDiscards).", "ifOutDiscards"),
)


def _label_names(sample: DeviceSample) -> list[str]:
    return list(sample.device.target_labels())


def device_families(samples: Iterable[DeviceSample], errors: dict | None = None) -> list[Metric]:
    samples = list(samples)
    # Devices with and without the isp label need separate label name lists per sample; the
    # families take label values per sample, so keep one family per name and pass labels as dicts.
    up = GaugeMetricFamily("wardops_snmp_up", "1 if the last SNMP poll of the device succeeded.",
                           labels=None)
    uptime = GaugeMetricFamily("wardops_snmp_uptime_seconds", "Device sysUpTime in seconds.", labels=None)
    duration = GaugeMetricFamily("wardops_snmp_poll_duration_seconds", "Duration of the last SNMP poll.",
                                 labels=None)
    oper = GaugeMetricFamily("wardops_snmp_if_oper_up", "1 if ifOperStatus is up(1).", labels=None)
    admin = GaugeMetricFamily("wardops_snmp_if_admin_up", "1 if ifAdminStatus is up(1).", labels=None)
    speed = GaugeMetricFamily("wardops_snmp_if_speed_bps", "Interface speed (ifHighSpeed) in bits/s.", labels=None)
    last_change = GaugeMetricFamily("wardops_snmp_if_last_change_seconds",
                                    "Unix time of the interface's last status change (from ifLastChange).",
                                    labels=None)
    counters = {col: CounterMetricFamily(name, help_text, labels=None) for name, help_text, col in IF_COUNTERS}
    extras: dict[str, Metric] = {}
    for s in samples:
        labels = s.device.target_labels()
        up.add_sample("wardops_snmp_up", labels, 1.0 if s.up else 0.0)
        duration.add_sample("wardops_snmp_poll_duration_seconds", labels, s.duration)
        if not s.up:
            continue
        if s.uptime_seconds is not None:
            uptime.add_sample("wardops_snmp_uptime_seconds", labels, s.uptime_seconds)
        for i in s.interfaces:
            il = {**labels, "ifName": i.name, "ifAlias": i.alias}
            if i.oper_up is not None:
                oper.add_sample("wardops_snmp_if_oper_up", il, 1.0 if i.oper_up else 0.0)
            if i.admin_up is not None:
                admin.add_sample("wardops_snmp_if_admin_up", il, 1.0 if i.admin_up else 0.0)
            if i.speed_bps is not None:
                speed.add_sample("wardops_snmp_if_speed_bps", il, i.speed_bps)
            if i.last_change is not None:
                last_change.add_sample("wardops_snmp_if_last_change_seconds", il, round(i.last_change, 2))
            for col, value in i.counters.items():
                fam = counters.get(col)
                if fam is not None:
                    fam.add_sample(fam.name + "_total", il, float(value))
        for e in s.extras:
            fam = extras.get(e.metric)
            if fam is None:
                cls = CounterMetricFamily if e.kind == "counter" else GaugeMetricFamily
                fam = extras[e.metric] = cls(e.metric, f"Extra SNMP OID ({e.kind}) from the device's profile.",
                                             labels=None)
            name = fam.name + "_total" if e.kind == "counter" else fam.name
            fam.add_sample(name, {**labels, "index": e.index} if e.index else labels, e.value)
    out: list[Metric] = [up, uptime, duration, oper, admin, speed, last_change, *counters.values(), *extras.values()]
    if errors is not None:
        by_name = {s.device.name: s.device for s in samples}
        err = CounterMetricFamily("wardops_snmp_poll_errors", "Failed SNMP polls by error kind "
                                  "(timeout, auth, agent, protocol, credentials, deadline, network).", labels=None)
        for (name, kind), count in sorted(errors.items()):
            device = by_name.get(name)
            if device is not None:
                err.add_sample("wardops_snmp_poll_errors_total", {**device.target_labels(), "error": kind},
                               float(count))
        out.append(err)
    return out


def families(snapshot: SnmpSnapshot, keep: Callable[[Device], bool] | None = None,
             self_metrics: bool = True) -> list[Metric]:
    """Every SNMP family of a round, plus (self_metrics) the round's own duration and timestamp.
    `keep` selects devices (e.g. `lambda d: d.role != "isp"` for /metrics?exclude_role=isp)."""
    devices = snapshot.devices if keep is None else tuple(s for s in snapshot.devices if keep(s.device))
    out = device_families(devices, dict(snapshot.errors))
    if snapshot.timestamp and self_metrics:
        rd = GaugeMetricFamily("wardops_snmp_round_duration_seconds", "Duration of the last SNMP round.")
        rd.add_metric([], snapshot.duration)
        ts = GaugeMetricFamily("wardops_snmp_last_round_timestamp_seconds", "When the last SNMP round ended.")
        ts.add_metric([], snapshot.timestamp)
        out += [rd, ts]
    return out


def probe_families(sample: DeviceSample) -> list[Metric]:
    """/probe?module=snmp answer: blackbox-style probe_success/probe_duration_seconds plus the
    device's SNMP families from one live poll."""
    success = GaugeMetricFamily("probe_success", "1 if the SNMP poll succeeded.")
    success.add_metric([], 1.0 if sample.up else 0.0)
    duration = GaugeMetricFamily("probe_duration_seconds", "Duration of the SNMP poll.")
    duration.add_metric([], sample.duration)
    out: list[Metric] = [success, duration]
    if sample.error:
        err = GaugeMetricFamily("probe_snmp_error", "1 for the kind of error of the failed poll.", labels=["error"])
        err.add_metric([sample.error], 1.0)
        out.append(err)
    return out + [f for f in device_families([sample]) if f.samples]


def exposition_text(fams: Iterable[Metric]) -> str:
    """Prometheus text for already-built families (the CLI's output; tests compare against it)."""
    class _Once:
        def collect(self):
            return fams

    registry = CollectorRegistry()
    registry.register(_Once())
    return generate_latest(registry).decode()
