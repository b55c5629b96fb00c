"""Alertmanager config: maintenance mutes reach exactly the right alerts; inhibition is scoped.

The inhibition test runs the real Alertmanager 0.25 on a free loopback port with the generated
config and asks its API which alerts are inhibited, including alerts that lack their scoping
labels (Alertmanager treats `equal` labels missing on both sides as equal).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request

import pytest
import yaml

from generators.alertmanager import INHIBIT_RULES
from generators.settings import loads_settings
from tests.generators.helpers import REPO, generate_into, need, wait_http


def _matches(matcher: str, labels: dict) -> bool:
    m = re.fullmatch(r'(\w+)(=~|!~|!=|=)"(.*)"', matcher)
    name, op, value = m.group(1), m.group(2), m.group(3).replace('\\"', '"').replace("\\\\", "\\")
    have = labels.get(name, "")
    if op == "=":
        return have == value
    if op == "!=":
        return have != value
    hit = re.fullmatch(value, have) is not None
    return hit if op == "=~" else not hit


def route_for(route: dict, labels: dict) -> dict:
    """The leaf route an alert ends up on (first match, no `continue` in our configs)."""
    for child in route.get("routes", []):
        if all(_matches(m, labels) for m in child.get("matchers", [])):
            return route_for(child, labels)
    return route


@pytest.fixture(scope="module")
def am_config(tmp_path_factory):
    out = tmp_path_factory.mktemp("am")
    generate_into(out)
    return yaml.safe_load((out / "alertmanager" / "alertmanager.yml").read_text())


@pytest.mark.parametrize("labels,mute", [
    ({"alertname": "DeviceDown", "severity": "warning", "device": "a-rtr1", "region": "R1", "branch": "Branch A"},
     ["rtr-a-reboot"]),
    ({"alertname": "DeviceDown", "severity": "warning", "device": "a-atm1", "region": "R1", "branch": "Branch A"},
     []),
    ({"alertname": "DeviceDown", "severity": "warning", "device": "b-sw1", "region": "R1", "branch": "Branch B"},
     ["b-nightly"]),
    ({"alertname": "BranchDown", "severity": "critical", "region": "R1", "branch": "Branch B"}, ["b-nightly"]),
    ({"alertname": "IspLinkDown", "severity": "critical", "device": "c-isp1", "region": "R2", "branch": "Branch C"},
     ["r2-sunday"]),
    ({"alertname": "ExporterDown", "severity": "critical", "instance": "127.0.0.1:9118"}, []),
])
def test_maintenance_windows_mute_exactly_their_scope(am_config, labels, mute):
    leaf = route_for(am_config["route"], labels)
    assert leaf.get("mute_time_intervals", []) == mute
    assert leaf["matchers"] == [f'severity="{labels["severity"]}"']  # still routed by severity


def test_time_intervals_come_from_the_inventory(am_config):
    by_name = {ti["name"]: ti["time_intervals"] for ti in am_config["time_intervals"]}
    assert by_name["b-nightly"] == [{"location": "Asia/Tbilisi", "weekdays": ["monday:friday"],
                                     "times": [{"start_time": "01:00", "end_time": "03:00"}]}]
    assert by_name["r2-sunday"] == [{"location": "UTC", "weekdays": ["sunday"]}]


def test_every_alert_is_its_own_group_and_waits_at_most_a_second(am_config):
    # A new alert joining an existing group waits for group_interval; its own group only group_wait.
    for severity in ("critical", "warning"):
        leaf = route_for(am_config["route"], {"severity": severity, "region": "R1", "branch": "Branch A"})
        assert leaf["group_wait"] in ("0s", "1s")
        assert leaf["group_by"] == ["..."]


def test_watchdog_goes_to_the_dead_mans_switch_and_is_never_muted(am_config):
    leaf = route_for(am_config["route"], {"alertname": "Watchdog", "severity": "none", "branch": "Branch B",
                                          "region": "R1"})
    assert leaf["receiver"] == "wardops-null"  # no watchdog receiver in the default settings
    assert "mute_time_intervals" not in leaf and leaf["repeat_interval"] == "1m"


def test_every_inhibit_rule_requires_its_equal_labels(am_config):
    for rule in am_config["inhibit_rules"]:
        for label in rule["equal"]:
            assert f'{label}=~".+"' in rule["source_matchers"]
            assert f'{label}=~".+"' in rule["target_matchers"]
    # The fixed rules, then one per (node, region) of the topology: R1 is the only region node.
    assert len(am_config["inhibit_rules"]) == len(INHIBIT_RULES) + 1


# --- live Alertmanager ------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dev(name, region, branch, role="router", **extra):
    return {"device": name, "ip": "198.18.9.9", "role": role, "region": region, "branch": branch,
            "job": "wardops", "instance": "127.0.0.1:9118", **extra}


ALERTS = {
    # name -> (labels, inhibited?)
    "branch-a-down": ({"alertname": "BranchDown", "severity": "critical", "scope": "branch", "region": "R1",
                       "branch": "Branch A"}, False),
    "a-rtr1-down": ({"alertname": "DeviceDown", "severity": "warning", "scope": "device",
                     **_dev("a-rtr1", "R1", "Branch A")}, True),
    "b-rtr1-down": ({"alertname": "DeviceDown", "severity": "warning", "scope": "device",
                     **_dev("b-rtr1", "R1", "Branch B")}, False),
    "reload-failed": ({"alertname": "InventoryReloadFailed", "severity": "warning", "scope": "exporter",
                       "job": "wardops", "instance": "127.0.0.1:9118"}, False),
    "exporter-down": ({"alertname": "ExporterDown", "severity": "critical", "scope": "exporter",
                       "job": "wardops", "instance": "127.0.0.1:9118"}, False),
    "b-sw1-snmp": ({"alertname": "SnmpUnreachable", "severity": "warning", "scope": "device",
                    **_dev("b-sw1", "R1", "Branch B")}, True),
    "other-exporter-snmp": ({"alertname": "SnmpUnreachable", "severity": "warning", "scope": "device",
                             **_dev("c-sw9", "R2", "Branch C", instance="127.0.0.1:9128")}, False),
    "c-rtr1-flapping": ({"alertname": "DeviceFlapping", "severity": "warning", "scope": "device",
                         **_dev("c-rtr1", "R2", "Branch C")}, False),
    "c-rtr1-down": ({"alertname": "DeviceDown", "severity": "warning", "scope": "device",
                     **_dev("c-rtr1", "R2", "Branch C")}, True),
    "c-isp1-down": ({"alertname": "IspLinkDown", "severity": "critical", "scope": "device",
                     **_dev("c-isp1", "R2", "Branch C", role="isp", isp="Magti")}, False),
    "c-isp1-loss": ({"alertname": "HighPacketLoss", "severity": "warning", "scope": "device",
                     **_dev("c-isp1", "R2", "Branch C", role="isp", isp="Magti")}, True),
    # Several probe sites: dc2 is degraded; its own per-site loss alert is a symptom, dc1's is not,
    # and a consensus page (no `site`) is never muted by a site.
    "dc2-degraded": ({"alertname": "ProbeSiteDegraded", "severity": "critical", "scope": "site",
                      "site": "dc2"}, False),
    "d-sw1-loss-dc2": ({"alertname": "HighPacketLoss", "severity": "warning", "scope": "device",
                        **_dev("d-sw1", "R3", "Branch D", site="dc2")}, True),
    "d-sw1-loss-dc1": ({"alertname": "HighPacketLoss", "severity": "warning", "scope": "device",
                        **_dev("d-sw1", "R3", "Branch D", site="dc1")}, False),
    "d-rtr1-down-consensus": ({"alertname": "DeviceDown", "severity": "warning", "scope": "device",
                               "device": "d-rtr1", "region": "R3", "branch": "Branch D"}, False),
    # Alerts without their scoping labels: with equal-labels-missing-on-both-sides semantics, an
    # unguarded rule would let the first silence the second.
    "unscoped-flapping": ({"alertname": "DeviceFlapping", "severity": "warning"}, False),
    "unscoped-down": ({"alertname": "DeviceDown", "severity": "warning"}, False),
}


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    binary = need("prometheus-alertmanager")
    out = tmp_path_factory.mktemp("am-live")
    webhook = _free_port()  # nothing listens: notifications fail harmlessly on loopback
    settings = loads_settings(f"receivers: {{default: {{webhooks: [{{url: 'http://127.0.0.1:{webhook}/'}}]}}}}\n"
                              "routing: {warning_group_wait: 1s}\n", "test-settings")
    generate_into(out, settings=settings)
    port = _free_port()
    proc = subprocess.Popen([binary, f"--config.file={out / 'alertmanager' / 'alertmanager.yml'}",
                             f"--storage.path={out / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                             "--cluster.listen-address=", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(proc, f"{base}/-/ready", 20, "alertmanager")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _get_alerts(base: str) -> dict[str, list[str]]:
    with urllib.request.urlopen(f"{base}/api/v2/alerts", timeout=5) as resp:
        data = json.load(resp)
    return {a["labels"]["test"]: a["status"]["inhibitedBy"] for a in data}


def test_inhibition_silences_symptoms_and_nothing_else(alertmanager):
    body = json.dumps([{"labels": {**labels, "test": name}} for name, (labels, _) in ALERTS.items()]).encode()
    req = urllib.request.Request(f"{alertmanager}/api/v2/alerts", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=5).read()
    want = {name: inhibited for name, (_, inhibited) in ALERTS.items()}
    deadline = time.monotonic() + 15
    while True:  # the inhibitor picks sources up asynchronously: wait for the expected ones
        got = {name: bool(by) for name, by in _get_alerts(alertmanager).items()}
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got == want


def test_overlapping_windows_of_the_example_inventory_both_apply():
    # examples/inventory.yml: sunday-night covers Branch 12, batumi-upgrades its whole region.
    config = yaml.safe_load((REPO / "alertmanager" / "alertmanager.yml").read_text())
    leaf = route_for(config["route"], {"severity": "warning", "region": "Batumi", "branch": "Branch 12",
                                       "device": "batumi-br12-rtr1"})
    assert leaf["mute_time_intervals"] == ["sunday-night", "batumi-upgrades"]
    other = route_for(config["route"], {"severity": "critical", "region": "Batumi", "branch": "Branch 9"})
    assert other["mute_time_intervals"] == ["batumi-upgrades"]
    elsewhere = route_for(config["route"], {"severity": "critical", "region": "Tbilisi", "branch": "Branch 1"})
    assert "mute_time_intervals" not in elsewhere
