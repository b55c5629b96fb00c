"""One testbed per module: a synthetic few-hundred-device lab probed by the real exporter, scraped by
the real vmagent into VictoriaMetrics, evaluated by vmalert, routed by Alertmanager to a webhook.

Parts not installed yet make the module skip with the reason. For development only,
WARDOPS_E2E_TREES="exporter=/src/a,generate=/src/b,inventory=/src/c" runs those commands from
other source trees.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from inventory.dump import dump_yaml
from inventory.synth import synth_inventory
from wardops.stack.stack import ephemeral_ports, free_ports
from wardops.stack.testbed import Testbed, TestbedSettings, command_available


def dev_trees() -> dict[str, Path]:
    raw = os.environ.get("WARDOPS_E2E_TREES", "")
    return {k: Path(v) for k, _, v in (item.partition("=") for item in raw.split(",") if item)}


def e2e_lab_name() -> str:
    return f"wd{os.getpid() % 1000000}"


def require_parts(trees: dict) -> None:
    if os.geteuid() != 0:
        pytest.fail("end-to-end tests need root (network namespaces); run the suite as root")
    missing = [c for c in ("exporter", "generate") if c not in trees and not command_available(c)]
    if missing:
        pytest.skip(f"wardops {' and '.join(missing)} not installed yet: no end-to-end chain to test")


# What holds pages back for the recovery hold (60 s): a branch verdict that was dark or still
# deciding (-1: at start every branch is; a region with 3-4 such branches holds its uplink pages as
# a regional outage), or a probe site that was out of the consensus. Daemons starting a few seconds
# apart can leave any of them behind.
HELD = ("max_over_time((wardops_icmp_branch_up <= 0)[60s:1s]) or "
        "max_over_time(site:wardops_probe_site:unhealthy[60s])")


def quiet_after_start(tb, timeout: float = 90.0, quiet_for: float = 15.0) -> None:
    """Nothing held for `quiet_for` s in a row before the first scenario. One empty answer right
    after start is not enough: runs that did not wait had their first page held for the whole
    recovery hold (IspLinkDown after 53.6 s and 38.7 s instead of ~5 s; DeviceDown after 53.9 s). 15 s covers a
    5 s scrape, a 5 s evaluation and VictoriaMetrics' latency offset."""
    start = time.monotonic()
    quiet_since = None
    held: list = []
    while time.monotonic() - start < timeout:
        now = time.monotonic()
        held = tb.query(HELD)
        if held:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= quiet_for:
            print(f"nothing held for {quiet_for:.0f} s, {now - start:.0f} s after start")
            return
        time.sleep(2)
    raise AssertionError(f"still held after {timeout:.0f} s: {held}")


@pytest.fixture
def e2e_trees() -> dict[str, Path]:
    """Source trees for commands (development override), after checking the parts are installed."""
    trees = dev_trees()
    require_parts(trees)
    return trees


@pytest.fixture(scope="module")
def testbed(tmp_path_factory):
    """A 300-device synthetic inventory (30 branches, 2 ISP uplinks each) on the full stack. SNMP
    only on branches 26-30, which no scenario uses: the lab snmpd serves real namespace interfaces,
    some oper-down by design, and their interface alerts must not mix with the scenarios' ones."""
    trees = dev_trees()
    require_parts(trees)
    work = tmp_path_factory.mktemp("e2e")
    inventory = work / "inventory.yml"
    inv = synth_inventory(300, isp_share=0.2, seed=7, snmp_share=0.3)
    snmp_branches = {f"Branch {n}" for n in range(26, 31)}
    inv = dataclasses.replace(inv, devices=tuple(
        d if d.branch in snmp_branches else dataclasses.replace(d, snmp=None) for d in inv.devices))
    inventory.write_text(dump_yaml(inv))
    exporter_port, inventory_port = free_ports(2)
    tb = Testbed(TestbedSettings(workdir=work / "tb", inventory=inventory, lab_name=e2e_lab_name(),
                                 ports=ephemeral_ports(), exporter_port=exporter_port,
                                 inventory_port=inventory_port, trees=trees), log=lambda _m: None)
    with tb:
        tb.wait_ingested(timeout=120)
        quiet_after_start(tb)
        yield tb
