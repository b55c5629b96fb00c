"""The metric contract (exporter/contract.py) is well formed, cheap to import, and every generated rule
expression and dashboard query reads only its families (or recording rules the generator defines,
or series vmagent/vmalert write), with label names the families carry."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest

from exporter import contract
from generators.dashboards import STACK_METRICS, build_dashboards, panels_of, query_metrics
from generators.rules import RECORDING_RULES, build_rule_groups
from generators.settings import DEFAULT_SETTINGS
from inventory import load_inventory
from inventory.model import frozen_labels
from inventory.synth import synth_inventory
from tests.generators.helpers import REPO, TEST_INVENTORY

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
RECORDED = frozenset(name for name, _ in RECORDING_RULES)
SCRAPE_LABELS = frozenset({"job", "instance", "site"})  # added by vmagent (site: a target label)
# `name{matchers}`: the label names a selector matches on
_SELECTOR_RE = re.compile(r"(?<![\w:])([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
_MATCHER_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"')
_GROUPING_RE = re.compile(r"\b(?:by|on|ignoring|without)\s*\(([^)]*)\)")


def test_families_are_well_formed_and_unique():
    seen = {}
    for area, families in contract.AREAS.items():
        for f in families:
            where = f"{area}: {f.name}"
            assert f.name not in seen, f"{where} also in {seen.get(f.name)}"
            seen[f.name] = area
            assert NAME_RE.fullmatch(f.name), where
            assert f.type in ("gauge", "counter"), where
            assert f.name.endswith("_total") == (f.type == "counter"), f"{where}: counters, and only they, end _total"
            assert f.help and "\n" not in f.help and "\\" not in f.help, where
            assert len(set(f.labels)) == len(f.labels) and all(LABEL_RE.fullmatch(n) for n in f.labels), where
            assert not f.labels or not (set(f.labels) & SCRAPE_LABELS), f"{where}: job/instance belong to vmagent"
    assert contract.FAMILIES == {f.name: f for fs in contract.AREAS.values() for f in fs}
    assert contract.METRICS == {f.name for a in ("icmp", "site", "burst", "snmp", "self") for f in contract.AREAS[a]}


def test_both_metrics_the_old_dashboard_list_missed_are_in_the_contract():
    assert {"wardops_exporter_config_reload_success", "wardops_snmp_poll_errors_total"} <= contract.METRICS


def test_extra_oid_families_follow_the_naming_rule():
    counter = contract.snmp_extra_family("cpu_user_ticks", "counter", table=False)
    table = contract.snmp_extra_family("load_int", "gauge", table=True)
    assert (counter.name, counter.type, counter.labels) == ("wardops_snmp_cpu_user_ticks_total", "counter",
                                                            contract.DEVICE)
    assert (table.name, table.type, table.labels[-1]) == ("wardops_snmp_load_int", "gauge", "index")


def test_importing_the_contract_pulls_in_nothing_else():
    code = ("import sys; before = set(sys.modules); import exporter.contract; "
            "print(sorted(m for m in set(sys.modules) - before if not m.startswith('_')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    loaded = eval(out.stdout)  # a printed list of module names
    assert [m for m in loaded if m.split(".")[0] not in sys.stdlib_module_names] == ["exporter", "exporter.contract"]


def _synthetic_inventory():
    """500 devices, a third with SNMP, and per-device threshold overrides (the rules then select
    devices by name: more selectors to check)."""
    inv = synth_inventory(500, isp_share=0.1, seed=7, snmp_share=0.3)
    devices = list(inv.devices)
    for i in range(0, len(devices), 37):
        labels = {**devices[i].labels, "latency_threshold_ms": str(100 + i), "loss_threshold_percent": "20"}
        devices[i] = dataclasses.replace(devices[i], labels=frozen_labels(labels))
    return dataclasses.replace(inv, devices=tuple(devices))


INVENTORIES = {
    "examples/inventory.yml": lambda: load_inventory(REPO / "examples" / "inventory.yml"),
    "tests/testdata/generators/inventory.yml": lambda: load_inventory(TEST_INVENTORY),
    "synthetic": _synthetic_inventory,
}


def _rule_exprs(inv) -> list[tuple[str, str]]:
    out = []
    for groups in build_rule_groups(inv, DEFAULT_SETTINGS).values():
        for g in groups:
            out += [(f"{g['name']}/{r.get('alert') or r['record']}", r["expr"]) for r in g["rules"]]
    return out


def _panel_exprs() -> list[tuple[str, str]]:
    out = []
    for name, dash in build_dashboards("test", DEFAULT_SETTINGS).items():
        for p in panels_of(dash):
            out += [(f"{name}: {p['title']}", t["expr"]) for t in p.get("targets", [])]
        for v in dash.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                out.append((f"{name}: ${v['name']}", re.sub(r"^label_values\((.*), \w+\)$", r"\1", v["query"])))
    return out


def contract_problems(what: str, expr: str) -> list[str]:
    """Metric names outside the contract, and label names a contract family does not carry."""
    names = query_metrics(expr)
    problems = []
    # The Watchdog is the one rule that reads nothing: vector(1), always firing by design.
    if not names and expr != "vector(1)":
        problems.append(f"{what}: no metric in {expr!r}")
    unknown = names - contract.METRICS - RECORDED - STACK_METRICS
    if unknown:
        problems.append(f"{what}: {sorted(unknown)} are not contract metrics: {expr!r}")
    for metric, matchers in _SELECTOR_RE.findall(expr):
        family = contract.FAMILIES.get(metric)
        if family is not None:
            extra = {m for m in _MATCHER_RE.findall(matchers)} - set(family.labels) - SCRAPE_LABELS
            if extra:
                problems.append(f"{what}: {metric} has no label {sorted(extra)}: {expr!r}")
    if names and names <= contract.METRICS:  # grouping labels must exist on the families read
        carried = set().union(*(contract.FAMILIES[n].labels for n in names)) | SCRAPE_LABELS
        for group in _GROUPING_RE.findall(expr):
            extra = {g.strip() for g in group.split(",") if g.strip()} - carried
            if extra:
                problems.append(f"{what}: grouping by {sorted(extra)}, not labels of {sorted(names)}: {expr!r}")
    return problems


@pytest.mark.parametrize("source", sorted(INVENTORIES))
def test_every_generated_rule_reads_only_contract_metrics(source):
    exprs = _rule_exprs(INVENTORIES[source]())
    assert len(exprs) > 15
    problems = [p for what, expr in exprs for p in contract_problems(what, expr)]
    assert problems == []


def test_every_dashboard_query_reads_only_contract_metrics():
    exprs = _panel_exprs()
    assert len(exprs) > 40
    problems = [p for what, expr in exprs for p in contract_problems(what, expr)]
    assert problems == []


@pytest.mark.parametrize("expr,fragment", [
    ("wardops_icmp_rtt_avg_seconds > 1", "are not contract metrics"),
    ('wardops_icmp_up{vendor="x"} == 0', "has no label ['vendor']"),
    ("avg by (vendor) (wardops_icmp_up)", "grouping by ['vendor']"),
    ('max by (region) (wardops_snmp_if_oper_up{ifDescr="x"})', "has no label ['ifDescr']"),
])
def test_the_check_catches_names_and_labels_outside_the_contract(expr, fragment):
    problems = contract_problems("t", expr)
    assert len(problems) == 1 and fragment in problems[0], problems


def test_the_check_accepts_recording_rules_stack_series_and_scrape_labels():
    for expr in ('avg_over_time(branch:wardops_icmp_up:avg{region=~"$region"}[1h])', 'up{job=~"wardops.*"} == 0',
                 'rate(wardops_exporter_rounds_total{instance=~"$instance"}[5m])',
                 'wardops_snmp_poll_errors_total{error="timeout"}'):
        assert contract_problems("t", expr) == []
