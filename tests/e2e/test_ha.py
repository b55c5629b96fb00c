"""Lose any one component during an outage, still exactly one page: the HA stack (two probe sites,
two vmagent -> VictoriaMetrics -> vmalert chains that both scrape both sites and write both
storages, an Alertmanager cluster of two) on the network lab. Each scenario takes one ISP uplink of
its own branch dark, SIGKILLs one member right away, waits for the page, restarts the member,
checks that both chains see the outage again, brings the uplink back and waits for the resolve;
then exactly one firing and one resolved IspLinkDown notification for that uplink, and nothing else
about its branch."""

from __future__ import annotations

import time

import pytest

from inventory.dump import dump_yaml
from inventory.synth import synth_inventory
from tests.e2e.conftest import dev_trees, e2e_lab_name, quiet_after_start, require_parts
from wardops.stack.ha_testbed import HaTestbed
from wardops.stack.stack import ephemeral_ports, free_ports
from wardops.stack.testbed import TestbedSettings

pytestmark = [pytest.mark.stack, pytest.mark.lab, pytest.mark.slow]

# Single stack: ISP page p95 6.2 s (docs/stack.md). One member lost may add the second
# Alertmanager's peer timeout (5 s) or a chain's evaluation interval; 30 s leaves room for a loaded
# 2-core machine without hiding a lost page (the next chance would be a repeat 30 min later).
PAGE_WITHIN = 30.0
# A duplicate would come from the restarted member (re-sent firing) or the second Alertmanager
# (its peer timeout, 5 s) or the next group_interval tick (critical: 10 s): wait past all of them.
QUIET = 15.0
LATENCIES: dict[str, float] = {}
RESOLVES: dict[str, int] = {}
RESENDS: dict[str, int] = {}  # Alertmanager 0.25's re-send after a resolve (assert_one_page_then_resolved)


@pytest.fixture(scope="module")
def ha(tmp_path_factory):
    """60 devices, 6 branches with two ISP uplinks each (one branch per scenario), no SNMP."""
    trees = dev_trees()
    require_parts(trees)
    work = tmp_path_factory.mktemp("e2e-ha")
    inventory = work / "inventory.yml"
    inventory.write_text(dump_yaml(synth_inventory(60, isp_share=0.2, seed=7)))
    exporter_port, exporter_2_port, inventory_port = free_ports(3)
    tb = HaTestbed(TestbedSettings(workdir=work / "tb", inventory=inventory, lab_name=e2e_lab_name(),
                                   ports=ephemeral_ports(), exporter_port=exporter_port,
                                   site_exporter_ports=(exporter_2_port,), inventory_port=inventory_port,
                                   trees=trees, snmp=False), log=lambda _m: None)
    with tb:
        tb.wait_ingested_everywhere(timeout=120)
        quiet_after_start(tb)
        yield tb
    print("HA latencies (uplink dark -> IspLinkDown notification):", LATENCIES, "resolves:", RESOLVES, "re-sends after the resolve:", RESENDS)


def branches_with_two_uplinks(tb) -> list[str]:
    return sorted({d.branch for d in tb.devices(role="isp")
                   if len(tb.devices(branch=d.branch, role="isp")) >= 2})


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:.0f} s")
        time.sleep(0.5)


def outage_with_one_member_lost(tb: HaTestbed, branch: str, victim: str) -> None:
    isp = tb.devices(branch=branch, role="isp")[0]
    daemon = tb.daemons.get(victim) or tb.stack.daemon(victim)
    since = time.time()
    tb.lab.down([isp.ip])
    try:
        assert daemon.kill(), f"{victim} was not running"
        page = tb.wait_alert("IspLinkDown", PAGE_WITHIN, since=since, device=isp.name)
        assert page is not None, f"no IspLinkDown within {PAGE_WITHIN:.0f} s with {victim} killed"
        LATENCIES[victim] = round(page.received_ts - since, 1)
        print(f"{victim} killed: IspLinkDown after {LATENCIES[victim]} s")
        assert page.labels["severity"] == "critical" and page.labels["branch"] == branch
        # A consensus page: one alert for all sites, so both chains' copies carry the same labels.
        assert "site" not in page.labels and "instance" not in page.labels, page.labels
        daemon.start()
        daemon.wait_healthy(60)
        if victim.startswith("alertmanager"):
            wait(tb.cluster_ready, 60, "Alertmanager cluster ready again")
        # The restored chain sees the outage again (state restored or re-derived) ...
        for n in (1, 2):
            wait(lambda n=n: tb.vmalert_firing(n, "IspLinkDown", device=isp.name), 90,
                 f"vmalert {n} firing IspLinkDown again")
        time.sleep(QUIET)  # ... and a restarted member's copy is not sent again
    finally:
        tb.lab.up([isp.ip])
        if daemon.pid() is None:
            daemon.start()
            daemon.wait_healthy(60)
    restored = time.time()
    resolved = tb.wait_alert("IspLinkDown", 60, since=restored, status="resolved", device=isp.name)
    assert resolved is not None, f"no resolve within 60 s after the uplink came back ({victim} restarted)"
    time.sleep(QUIET)
    assert_one_page_then_resolved(tb, since, branch, isp, victim)


def assert_one_page_then_resolved(tb, since: float, branch: str, isp, victim: str) -> None:
    """Exactly one page, then its resolve. One thing more is tolerated and counted, not hidden:
    Alertmanager 0.25's re-send after the resolve (firing, then resolved again). When the two
    members' snapshots of the alert differ at a group tick (a member restarted; or a lagging chain,
    whose vmalert still sends "firing" for a moment after the other sent "resolved"), the member at
    the second position sends its older firing 5 s after its peer's resolve (docs/stack.md; seen
    once in 8 module runs, with VictoriaMetrics killed). The final state must be resolved."""
    fire, done = ("IspLinkDown", "firing", isp.name), ("IspLinkDown", "resolved", isp.name)

    def about_branch() -> list[tuple]:
        return [(a.name, a.status, a.labels.get("device")) for a in tb.alerts(since) if a.labels.get("branch") == branch]

    got = about_branch()
    if got[2:] == [fire]:  # the re-send's own resolve comes one group_interval (10 s) later
        resent = [a for a in tb.alerts(since) if a.name == "IspLinkDown" and a.labels.get("device") == isp.name][-1]
        tb.wait_alert("IspLinkDown", 30, since=resent.received_ts + 0.001, status="resolved", device=isp.name)
        got = about_branch()
    RESOLVES[victim] = got.count(done)
    RESENDS[victim] = len(got[2:]) // 2
    assert got[:2] == [fire, done], got
    assert got[2:] in ([], [fire, done]), got


@pytest.mark.parametrize("index,victim", [
    (0, "alertmanager-first"),  # the member at position 0, which would send
    (1, "vmalert"),
    (2, "victoria-metrics"),
    (3, "vmagent"),
    (4, "exporter"),  # site 1's: both chains lose site 1 alike (ExporterDown), site 2 alone pages the uplink
])
def test_one_member_killed_during_an_outage_still_pages_once(ha, index, victim):
    wait(ha.cluster_ready, 60, "Alertmanager cluster ready")
    for name, st in ha.stack.status().items():
        assert st["healthy"], f"{name} not healthy before the scenario"
    if victim == "alertmanager-first":
        victim = ha.first_alertmanager()
    outage_with_one_member_lost(ha, branches_with_two_uplinks(ha)[index], victim)


def test_vmagent_dead_through_the_recovery_resolves_once(ha):
    """vmagent 1 dies while the page fires and stays dead while the uplink comes back: vmagent 2
    writes both storages, so chain 1 is not left evaluating its last samples (which kept the alert
    firing there and made the Alertmanagers alternate firing/resolved when each chain had its own
    vmagent)."""
    wait(ha.cluster_ready, 60, "Alertmanager cluster ready")
    branch = branches_with_two_uplinks(ha)[0]
    isp = ha.devices(branch=branch, role="isp")[1]  # scenario 0 used the branch's first uplink
    agent = ha.stack.daemon("vmagent")
    since = time.time()
    ha.lab.down([isp.ip])
    try:
        assert ha.wait_alert("IspLinkDown", PAGE_WITHIN, since=since, device=isp.name) is not None
        assert agent.kill()
        time.sleep(10)
    finally:
        ha.lab.up([isp.ip])
    try:
        restored = time.time()
        assert ha.wait_alert("IspLinkDown", 60, since=restored, status="resolved", device=isp.name) is not None
        wait(lambda: not ha.vmalert_firing(1, "IspLinkDown", device=isp.name), 30, "vmalert 1 resolved")
        time.sleep(QUIET + 10)  # three group_interval ticks with vmagent 1 still dead
    finally:
        agent.start()
        agent.wait_healthy(60)
    assert_one_page_then_resolved(ha, since, branch, isp, "vmagent dead through the recovery")


def test_alertmanager_killed_while_alerts_fire_sends_nothing_again(ha):
    """The Alertmanager that sent the page dies while the page is firing and comes back: its peer
    holds the notification log (gossip) and sends nothing; the restarted member merges the log while
    it joins, before it takes alerts, and sends nothing either. Then one resolve."""
    wait(ha.cluster_ready, 60, "Alertmanager cluster ready")
    branch = branches_with_two_uplinks(ha)[5]
    isp = ha.devices(branch=branch, role="isp")[0]
    fire, done = ("IspLinkDown", "firing", isp.name), ("IspLinkDown", "resolved", isp.name)

    def about_branch(since: float) -> list[tuple]:
        return [(a.name, a.status, a.labels.get("device")) for a in ha.alerts(since) if a.labels.get("branch") == branch]

    since = time.time()
    ha.lab.down([isp.ip])
    try:
        assert ha.wait_alert("IspLinkDown", PAGE_WITHIN, since=since, device=isp.name) is not None
        time.sleep(3)  # the notification log entry reaches the peer by gossip (milliseconds on one host)
        victim = ha.stack.daemon(ha.first_alertmanager())
        killed = time.time()
        assert victim.kill()
        # The peer's own chance to send comes after its peer timeout (5 s), then group_interval
        # ticks (critical: 10 s): two ticks pass here.
        time.sleep(25)
        assert about_branch(killed) == [], f"the surviving Alertmanager re-sent: {about_branch(killed)}"
        victim.start()
        victim.wait_healthy(60)
        wait(ha.cluster_ready, 60, "Alertmanager cluster ready again")
        time.sleep(QUIET + 10)  # the restarted member's first group_wait and two group_interval ticks
        assert about_branch(killed) == [], f"re-sent after the Alertmanager came back: {about_branch(killed)}"
    finally:
        ha.lab.up([isp.ip])
    assert ha.wait_alert("IspLinkDown", 60, since=killed, status="resolved", device=isp.name) is not None
    time.sleep(QUIET)
    assert about_branch(since) == [fire, done], about_branch(since)
