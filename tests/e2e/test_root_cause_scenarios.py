"""One page per root cause, end to end: correlated failures on a bank-shaped lab (regions of
different sizes, hubs, branches with one or two ISP uplinks, ATMs), with the generated rules and
Alertmanager config unchanged, the real exporter, vmagent, VictoriaMetrics, vmalert, Alertmanager
and webhook receiver. Each scenario asserts the exact set of notifications it causes (names,
labels, count) and the latency of the page; the probe-site blackout runs last, since it darkens
everything.

The exporter reads the inventory file here (no inventory service), so the emptied-target-list
scenario can empty it.
"""

from __future__ import annotations

import json
import time

import pytest

from inventory.dump import dump_yaml
from inventory.synth import synth_bank_inventory
from tests.e2e.conftest import dev_trees, e2e_lab_name, require_parts
from wardops.stack.stack import ephemeral_ports, free_ports
from wardops.stack.testbed import Testbed, TestbedSettings
from wardops.stack.webhook import distinct

pytestmark = [pytest.mark.stack, pytest.mark.lab, pytest.mark.slow]

# Regions of 5, 3, 2 and 2 branches (the first branch of each is its hub) and the data centre: 130 devices.
REGIONS = (("Tbilisi", 5), ("Batumi", 3), ("Kutaisi", 2), ("Rustavi", 2))
HOLD = 60.0  # thresholds.recovery_hold: what stays down behind a recovered cause is quiet this long
LATENCIES: dict[str, float] = {}


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    trees = dev_trees()
    require_parts(trees)
    work = tmp_path_factory.mktemp("e2e-root-cause")
    inventory = work / "inventory.yml"
    inv = synth_bank_inventory(devices=130, seed=11, regions=REGIONS, topology=False)
    inventory.write_text(dump_yaml(inv))
    exporter_port, inventory_port = free_ports(2)
    tb = Testbed(TestbedSettings(workdir=work / "tb", inventory=inventory, lab_name=e2e_lab_name() + "r",
                                 ports=ephemeral_ports(), exporter_port=exporter_port,
                                 inventory_port=inventory_port, use_inventory_service=False, snmp=False,
                                 trees=trees), log=lambda _m: None)
    with tb:
        tb.wait_ingested(timeout=120)
        assert tb.canaries, "the exporter runs without the lab's canaries"
        yield tb


def pages(tb, since: float, until: float | None = None) -> list[tuple[str, tuple]]:
    """Distinct firing alerts delivered since `since`: (alertname, sorted scoping labels)."""
    scope = ("device", "branch", "region", "upstream", "site", "instance", "job")
    out = set()
    for a in tb.alerts(since):
        if a.status != "firing" or a.name == "Watchdog" or (until is not None and a.received_ts > until):
            continue
        out.add((a.name, tuple(sorted((k, v) for k, v in a.labels.items() if k in scope))))
    return sorted(out)


def branch_devices(tb, branch: str):
    return tb.devices(branch=branch)


def plan_branches(tb) -> dict:
    """Disjoint scopes: a single-uplink branch, a branch for the whole-branch outage, a branch for
    the busy-branch scenario, and a whole region (Kutaisi) for the region outage."""
    by_region = {}
    for d in tb.devices():
        by_region.setdefault(d.region, set()).add(d.branch)
    tbilisi = sorted(by_region["Tbilisi"], key=lambda b: int(b.split()[-1]))
    single = [b for b in tbilisi if len(tb.devices(branch=b, role="isp")) == 1]
    assert single, "the bank lab has no single-uplink branch in Tbilisi"
    rest = [b for b in tbilisi if b not in single[:1]]
    return {"single": single[0], "branch": rest[0], "busy": rest[1], "region": "Kutaisi"}


@pytest.fixture(scope="module")
def plan(bank):
    return plan_branches(bank)


def settle(tb, seconds: float) -> None:
    time.sleep(seconds)


def test_silent_isp_uplink_while_its_branch_answers_is_one_isp_link_down(bank, plan):
    uplink = bank.devices(branch=plan["single"], role="isp")[0]
    since = time.time()
    bank.lab.down([uplink.ip])
    try:
        page = bank.wait_alert("IspLinkDown", 60, since=since, device=uplink.name)
        assert page is not None, "no IspLinkDown within 60 s"
        LATENCIES["isp"] = round(page.received_ts - since, 1)
        settle(bank, 15)  # anything else this fault would cause has arrived by now
        got = pages(bank, since)
    finally:
        bank.lab.up([uplink.ip])
    print(f"silent uplink {uplink.name}: {LATENCIES['isp']} s, pages {got}")
    assert [n for n, _ in got] == ["IspLinkDown"], got
    assert page.labels["isp"] == uplink.isp and page.labels["severity"] == "critical"
    assert "call provider" in page.annotations["description"]
    assert bank.wait_alert("IspLinkDown", 60, since=page.received_ts, status="resolved", device=uplink.name)


def test_whole_branch_dark_is_one_branch_down_naming_uplinks_and_providers(bank, plan):
    devices = branch_devices(bank, plan["branch"])
    uplinks = sorted(d.name for d in devices if d.role == "isp")
    since = time.time()
    bank.lab.down([d.ip for d in devices])
    try:
        page = bank.wait_alert("BranchDown", 60, since=since, branch=plan["branch"])
        assert page is not None, "no BranchDown within 60 s"
        LATENCIES["branch"] = round(page.received_ts - since, 1)
        settle(bank, 20)
        got = pages(bank, since)
    finally:
        bank.lab.up([d.ip for d in devices])
    restored = time.time()
    print(f"branch {plan['branch']} dark: {LATENCIES['branch']} s, pages {got}")
    assert [n for n, _ in got] == ["BranchDown"], got
    assert page.labels["uplinks"] == ",".join(uplinks)
    assert page.labels["providers"] == ",".join(sorted({d.isp for d in devices if d.role == "isp"}))
    assert bank.wait_alert("BranchDown", 60, since=restored, status="resolved", branch=plan["branch"])
    settle(bank, 15)  # devices come back with their branch: no device page after the recovery
    assert [n for n, _ in pages(bank, restored)] == [], pages(bank, restored)


def test_new_page_in_a_branch_with_an_open_warning_is_not_held_by_grouping(bank, plan):
    branch = plan["busy"]
    atm = bank.devices(branch=branch, role="atm")[0]
    router = bank.devices(branch=branch, role="router")[0]
    since = time.time()
    bank.lab.down([atm.ip])
    try:
        first = bank.wait_alert("DeviceDown", 60, since=since, device=atm.name)
        assert first is not None, "no DeviceDown for the ATM"
        # The branch now has an open warning. A second device of it goes dark.
        second_since = time.time()
        bank.lab.down([router.ip])
        try:
            second = bank.wait_alert("DeviceDown", 60, since=second_since, device=router.name)
        finally:
            bank.lab.up([router.ip])
        assert second is not None, "no DeviceDown for the second device of a busy branch"
        LATENCIES["busy_branch_device"] = round(second.received_ts - second_since, 1)
        # Flapping joins the same branch: its page must not wait a group_interval either.
        from wardops.lab.flap import Flapper
        flap_since = time.time()
        flapper = Flapper(bank.lab, [router.ip], period=6.0, duration=40.0).start()
        try:
            flapping = bank.wait_alert("DeviceFlapping", 60, since=flap_since, device=router.name)
        finally:
            flapper.stop()
        assert flapping is not None, "no DeviceFlapping for a device flapping in a busy branch"
        third = flapper.transitions[2][0] if len(flapper.transitions) > 2 else None
        assert third is not None
        LATENCIES["busy_branch_flapping_after_3rd_change"] = round(flapping.received_ts - third, 1)
    finally:
        bank.lab.up([atm.ip, router.ip])
    print(f"busy branch: {LATENCIES}")
    # A device page and a flapping page within seconds of their cause, not a 2 min group_interval.
    assert LATENCIES["busy_branch_device"] <= 20
    assert LATENCIES["busy_branch_flapping_after_3rd_change"] <= 20
    assert len(distinct(bank.alerts(since), "DeviceDown", device=atm.name)) == 1


def test_a_region_going_dark_is_one_region_page(bank, plan):
    region = plan["region"]
    devices = bank.devices(region=region)
    since = time.time()
    bank.lab.down([d.ip for d in devices])
    try:
        page = bank.wait_alert("RegionDown", 60, since=since, region=region)
        assert page is not None, "no RegionDown within 60 s"
        LATENCIES["region"] = round(page.received_ts - since, 1)
        settle(bank, 20)
        got = pages(bank, since)
    finally:
        bank.lab.up([d.ip for d in devices])
    restored = time.time()
    print(f"region {region} dark: {LATENCIES['region']} s, pages {got}")
    assert got == [("RegionDown", (("region", region), ("site", "default")))], got
    branches = {d.branch for d in devices}
    assert page.annotations["summary"].startswith(f"Region {region}: {len(branches)} branches, {len(devices)} devices")
    assert bank.wait_alert("RegionDown", 60, since=restored, status="resolved", region=region)
    settle(bank, 20)
    assert pages(bank, restored) == []


def test_an_emptied_target_list_is_held_and_pages(bank):
    inventory = bank.s.inventory
    original = inventory.read_text()
    since = time.time()
    inventory.write_text("devices: []\n")
    try:
        page = bank.wait_alert("InventoryReloadHeld", 90, since=since)
        assert page is not None, "an emptied inventory did not page"
        # Held: the exporter keeps probing every device, so nothing else pages.
        got = pages(bank, since)
        assert [n for n, _ in got] == ["InventoryReloadHeld"], got
        assert bank.query("sum(wardops_exporter_targets)")[0]["value"][1] != "0"
    finally:
        inventory.write_text(original)
    assert bank.wait_alert("InventoryReloadHeld", 90, since=since, status="resolved")


def test_probe_site_blackout_is_one_page_and_nothing_else(bank):
    since = time.time()
    bank.lab.site_down()
    try:
        page = bank.wait_alert("ProbeSiteBlind", 60, since=since)
        assert page is not None, "no ProbeSiteBlind within 60 s"
        LATENCIES["site_blind"] = round(page.received_ts - since, 1)
        settle(bank, 30)
        got = pages(bank, since)
    finally:
        bank.lab.site_up()
    restored = time.time()
    print(f"probe site blackout: {LATENCIES['site_blind']} s, pages {got}")
    assert [n for n, _ in got] == ["ProbeSiteBlind"], got
    assert bank.wait_alert("ProbeSiteBlind", 60, since=restored, status="resolved")
    settle(bank, HOLD / 2)
    assert pages(bank, restored) == [], pages(bank, restored)
    (bank.workdir / "latencies.json").write_text(json.dumps(LATENCIES, indent=2))
    print(f"latencies: {LATENCIES}")
