"""`wardops lab` correlated-failure commands (site blackout, region / upstream outages) against the
recording fake lab of test_lab_cli, and the scope helpers behind them."""

import dataclasses

import pytest

from inventory.loader import load_inventory
from inventory.model import Topology, Upstream
from inventory.synth import synth_bank_inventory
from tests.lab.test_lab_cli import INVENTORY, FakeLab, calls, fake  # noqa: F401 - fixture
from wardops.cli import main
from wardops.lab import cli as lab_cli
from wardops.lab.targets import TargetError, region_devices, upstream_branches, upstream_devices


def test_site_down_and_up_reach_the_lab_and_status_says_so(fake, capsys, monkeypatch):  # noqa: F811
    fake["value"] = True
    assert main(["lab", "--inventory", INVENTORY, "site-down"]) == 0
    assert "canaries 198.19.255.1, 198.19.255.2" in capsys.readouterr().out
    assert main(["lab", "--inventory", INVENTORY, "site-up"]) == 0
    assert calls() == [("site_down",), ("site_up",)]
    lab = FakeLab("wd")
    lab.site_dark = True
    monkeypatch.setattr(lab_cli, "lab_class", lambda: (lambda name: lab))
    assert main(["lab", "--inventory", INVENTORY, "status"]) == 0
    assert "probe site BLACKED OUT" in capsys.readouterr().out


def test_region_down_is_one_call_for_the_whole_region_plus_named_branches(fake):  # noqa: F811
    fake["value"] = True
    inv = load_inventory(INVENTORY)
    assert main(["lab", "--inventory", INVENTORY, "region-down", "Batumi", "--branch", "Branch 3"]) == 0
    (verb, addresses), = calls()
    want = sorted(d.ip for d in inv.enabled_devices() if d.region == "Batumi" or d.branch == "Branch 3")
    assert verb == "down" and addresses == want and len(want) > 30
    assert main(["lab", "--inventory", INVENTORY, "region-up", "Batumi", "--branch", "Branch 3"]) == 0
    assert calls()[-1] == ("up", want)


def test_region_down_names_every_unknown_region_and_changes_nothing(fake, capsys):  # noqa: F811
    fake["value"] = True
    assert main(["lab", "--inventory", INVENTORY, "region-down", "Batum", "Atlantis"]) == 1
    err = capsys.readouterr().err
    assert "'Batum' (did you mean 'Batumi'?)" in err and "'Atlantis'" in err
    assert main(["lab", "--inventory", INVENTORY, "region-down"]) == 1
    assert "name at least one REGION or --branch" in capsys.readouterr().err
    assert calls() == []


def test_upstream_without_topology_is_the_region(fake):  # noqa: F811
    fake["value"] = True
    inv = load_inventory(INVENTORY)
    assert main(["lab", "--inventory", INVENTORY, "upstream-down", "Kutaisi"]) == 0
    (_, addresses), = calls()
    assert addresses == sorted(d.ip for d in region_devices(inv, ["Kutaisi"]))


def test_upstream_devices_follow_the_topology_tree():
    inv = synth_bank_inventory(seed=3, topology=True)
    nodes = {u.name: u for u in inv.topology.upstreams}
    dc = next(u for u in nodes.values() if u.upstream is None)
    cores = [u for u in nodes.values() if u.upstream == dc.name]
    assert cores and all(u.regions for u in cores)
    # The DC is above every core: it hides every branch, and every node's own devices.
    assert set(upstream_branches(inv, dc.name)) == {(d.region, d.branch) for d in inv.devices}
    everything = {d.name for d in inv.enabled_devices()}
    assert {d.name for d in upstream_devices(inv, dc.name)} == everything
    core = cores[0]
    dark = {d.name for d in upstream_devices(inv, core.name)}
    assert dark == {d.name for d in inv.enabled_devices() if d.region in core.regions} | set(core.devices)
    with pytest.raises(TargetError, match="no upstream 'nope'"):
        upstream_devices(inv, "nope")


def test_region_names_are_not_upstreams_when_region_upstreams_is_off():
    inv = load_inventory(INVENTORY)
    inv = dataclasses.replace(inv, topology=Topology(
        upstreams=(Upstream(name="core-x", branches=("Branch 1",)),), region_upstreams=False))
    assert upstream_branches(inv, "core-x") == [("Tbilisi", "Branch 1")]
    with pytest.raises(TargetError, match=r"known: core-x"):
        upstream_branches(inv, "Batumi")
