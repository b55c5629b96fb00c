"""The bank-shaped synthetic inventory: size, shape, addressing, determinism, topology."""

from collections import Counter

import pytest

from inventory.dump import dump_yaml
from inventory.loader import loads_inventory
from inventory.synth import BANK_REGIONS, synth_bank_inventory, topology_data
from wardops.lab.netns import CANARY_V4


def test_default_is_875_devices_in_93_branches_of_unequal_regions():
    inv = synth_bank_inventory(seed=4)
    assert len(inv.devices) == 875
    assert len({d.name for d in inv.devices}) == len({d.ip for d in inv.devices}) == 875
    branches = {(d.region, d.branch) for d in inv.devices}
    assert len(branches) == 93
    per_region = Counter(r for r, _ in branches)
    assert per_region["Tbilisi"] == 30 and per_region["Poti"] == 4 and per_region["HQ"] == 1
    assert {r for r, _ in BANK_REGIONS} | {"HQ"} == set(per_region)


def test_uplinks_on_5_and_6_most_branches_single():
    inv = synth_bank_inventory(seed=4)
    uplinks = Counter(d.branch for d in inv.devices if d.role == "isp")
    assert set(uplinks.values()) == {1, 2} and len(uplinks) == 93
    assert sum(1 for n in uplinks.values() if n == 1) > 93 / 2
    assert {d.ip.rsplit(".", 1)[1] for d in inv.devices if d.role == "isp"} == {"5", "6"}
    assert all(d.isp for d in inv.devices if d.role == "isp")
    for branch in {d.branch for d in inv.devices}:  # two uplinks of a branch: two providers
        isps = [d.isp for d in inv.devices if d.branch == branch and d.role == "isp"]
        assert len(set(isps)) == len(isps)
    roles = Counter(d.role for d in inv.devices)
    assert {"router", "switch", "firewall", "atm", "isp"} <= set(roles) and roles["atm"] > 300


def test_deterministic_by_seed_and_sized_on_request():
    assert synth_bank_inventory(seed=9) == synth_bank_inventory(seed=9)
    assert synth_bank_inventory(seed=9) != synth_bank_inventory(seed=10)
    assert len(synth_bank_inventory(700, seed=2).devices) == 700
    with pytest.raises(ValueError, match="a bank shape needs"):
        synth_bank_inventory(100)


def test_addresses_stay_clear_of_the_lab_canaries_and_load_strictly():
    import ipaddress

    inv = synth_bank_inventory(seed=4, snmp_share=0.3)
    canaries = ipaddress.ip_network(CANARY_V4)
    assert not any(ipaddress.ip_address(d.ip) in canaries for d in inv.devices)
    again = loads_inventory(dump_yaml(inv), source="bank.yml")
    assert again.devices == inv.devices
    assert any(d.snmp for d in inv.devices) and not any(d.snmp for d in inv.devices if d.role == "atm")


def test_topology_one_core_per_region_under_the_dc():
    inv = synth_bank_inventory(seed=4, topology=True)
    nodes = {u.name: u for u in inv.topology.upstreams}
    assert nodes["dc"].upstream is None and nodes["dc"].branches == ("Head Office DC",)
    cores = [u for u in nodes.values() if u.name != "dc"]
    assert sorted(r for u in cores for r in u.regions) == sorted(r for r, _ in BANK_REGIONS)
    names = {d.name for d in inv.devices}
    assert all(u.upstream == "dc" and set(u.devices) <= names for u in cores)
    core = next(d for d in inv.devices if d.name == "batumi-core1")
    assert core.region == "Batumi"  # the core router sits in its region's hub branch
    assert synth_bank_inventory(seed=4).topology.upstreams == ()
    data = topology_data(inv.topology)
    assert data["upstreams"]["core-batumi"] == {"devices": ["batumi-core1"], "regions": ["Batumi"],
                                                "upstream": "dc"}
