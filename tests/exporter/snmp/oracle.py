"""The test oracle for the SNMP exposition: the same snapshot built as prometheus_client metric
families, written independently of exporter/snmp/render.py (only the metric contract is shared).
Tests parse both texts with prometheus_client's parser and compare samples; bench/exporter_mixed.py
times it against the product's direct lines."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from exporter import contract
from exporter.snmp.poller import DeviceSample, SnmpSnapshot


def _family(family: contract.Family) -> Metric:
    if family.type == "counter":  # prometheus_client names counter families without the suffix
        return CounterMetricFamily(family.name.removesuffix("_total"), family.help, labels=None)
    return GaugeMetricFamily(family.name, family.help, labels=None)


def families(snapshot: SnmpSnapshot, with_errors: bool = True) -> list[Metric]:
    """Every wardops_snmp_* family of a round (the poll error counter too unless `with_errors` is False)."""
    fams = {f.name: _family(f) for f in contract.SNMP_FAMILIES}
    columns = {column: family.name for family, column in contract.SNMP_IF_COUNTERS}

    def add(name: str, labels: dict[str, str], value: float) -> None:
        fams[name].add_sample(name, labels, float(value))

    for s in snapshot.devices:
        labels = s.device.target_labels()
        add("wardops_snmp_up", labels, s.up)
        add("wardops_snmp_poll_duration_seconds", labels, round(s.duration, 6))  # to the microsecond
        if not s.up:
            continue
        if s.uptime_seconds is not None:
            add("wardops_snmp_uptime_seconds", labels, s.uptime_seconds)
        for i in s.interfaces:
            il = {**labels, "ifName": i.name, "ifAlias": i.alias}
            for name, value in (("wardops_snmp_if_oper_up", i.oper_up), ("wardops_snmp_if_admin_up", i.admin_up),
                                ("wardops_snmp_if_speed_bytes", None if i.speed_bps is None else i.speed_bps / 8),
                                # ifLastChange counts hundredths of a second
                                ("wardops_snmp_if_last_change_timestamp_seconds",
                                 None if i.last_change is None else round(i.last_change, 2))):
                if value is not None:
                    add(name, il, value)
            for column, value in i.counters.items():
                if column in columns:
                    add(columns[column], il, value)
        for e in s.extras:
            family = contract.snmp_extra_family(e.metric.removeprefix(contract.SNMP_EXTRA_PREFIX), e.kind,
                                                bool(e.index))
            fams.setdefault(family.name, _family(family))
            add(family.name, {**labels, "index": e.index} if e.index else labels, e.value)
    if with_errors:
        by_name = {s.device.name: s.device for s in snapshot.devices}
        for (name, kind), count in sorted(snapshot.errors.items()):
            if name in by_name:
                add("wardops_snmp_poll_errors_total", {**by_name[name].target_labels(), "error": kind}, count)
    return list(fams.values())


def text(fams: Iterable[Metric]) -> str:
    """prometheus_client's exposition of already built families."""
    class _Once:
        def collect(self):
            return fams

    registry = CollectorRegistry()
    registry.register(_Once())
    return generate_latest(registry).decode()


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, as prometheus_client's parser reads `exposition`."""
    return {(s.name, tuple(sorted(s.labels.items()))): float(s.value)
            for fam in text_string_to_metric_families(exposition) for s in fam.samples}


def probe_sample(sample: DeviceSample) -> SnmpSnapshot:
    """A one-device snapshot (no error counters) for comparing a /probe answer."""
    return SnmpSnapshot(timestamp=sample.timestamp, duration=sample.duration, devices=(sample,))
