"""Correlated failures in a real lab (root, network namespaces, 198.18.0.0/15 only): what answers
from the prober namespace during a probe-site blackout, a regional outage and a silent uplink."""

from __future__ import annotations

import subprocess

import pytest

from inventory.synth import synth_bank_inventory
from wardops.lab.netns import CANARIES
from wardops.lab.targets import ips, region_devices, upstream_devices

pytestmark = pytest.mark.lab


def alive(lab, addresses: list[str]) -> set[str]:
    proc = subprocess.run(lab.probe_argv(["fping", "-a", "-r", "1", "-t", "300", *addresses]),
                          capture_output=True, text=True, timeout=60)
    return set(proc.stdout.split())


@pytest.fixture(scope="module")
def bank():
    return synth_bank_inventory(seed=5, topology=True)


def sample(inv, region: str | None = None) -> list[str]:
    """Two devices of every branch (of `region`): enough to see a branch, cheap to ping."""
    out: dict[str, list[str]] = {}
    for d in inv.enabled_devices():
        if region is None or d.region == region:
            out.setdefault(d.branch, []).append(d.ip)
    return sorted(ip for branch_ips in out.values() for ip in branch_ips[:2])


def test_canaries_answer_like_any_lab_address(lab):
    assert alive(lab, list(lab.canaries)) == set(CANARIES) == set(lab.canaries)
    assert not lab.site_is_down()


def test_site_blackout_silences_everything_including_canaries_and_restores(lab, bank):
    everyone = sample(bank) + list(lab.canaries) + ["2001:2::7"]
    lab.down(["198.18.3.1"])  # an unrelated fault, which the blackout must leave as it was
    try:
        lab.site_down()
        assert lab.site_is_down()
        assert alive(lab, everyone) == set()
    finally:
        lab.site_up()
    try:
        assert not lab.site_is_down()
        assert alive(lab, everyone) == set(everyone) - {"198.18.3.1"}
        assert lab.down_ips() == {"198.18.3.1"}
    finally:
        lab.up(["198.18.3.1"])


def test_region_outage_darkens_exactly_its_region_canaries_answer(lab, bank):
    dark = ips(region_devices(bank, ["Batumi"]))
    lab.down(dark)
    try:
        probe = sample(bank, "Batumi") + sample(bank, "Kutaisi") + list(lab.canaries)
        assert alive(lab, probe) == set(sample(bank, "Kutaisi")) | set(lab.canaries)
        assert lab.down_ips() == set(dark)
    finally:
        lab.up(dark)
    assert lab.down_ips() == set()
    assert alive(lab, sample(bank, "Batumi")) == set(sample(bank, "Batumi"))


def test_upstream_outage_takes_its_core_and_branches(lab, bank):
    dark = upstream_devices(bank, "core-poti")
    lab.down(ips(dark))
    try:
        assert "poti-core1" in {d.name for d in dark}
        gone = alive(lab, ips(dark) + sample(bank, "Telavi"))
        assert gone == set(sample(bank, "Telavi"))
    finally:
        lab.up(ips(dark))


def test_silent_uplink_while_the_branch_answers(lab, bank):
    branch = [d for d in bank.enabled_devices() if d.branch == "Branch 7"]
    uplink = next(d for d in branch if d.role == "isp")
    lab.down([uplink.ip])
    try:
        assert alive(lab, ips(branch)) == set(ips(branch)) - {uplink.ip}
    finally:
        lab.up([uplink.ip])
