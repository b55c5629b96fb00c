"""`wardops lab` command logic against a recording fake lab (no namespaces: the seam is lab_class)."""

import json
import time

import pytest

from wardops.cli import main
from wardops.lab import cli as lab_cli
from wardops.lab.flap import Flapper

INVENTORY = "examples/inventory.yml"


class FakeLab:
    instances: list["FakeLab"] = []

    def __init__(self, name, sites=None):
        self.name = name
        self.sites = sites or 1
        self.calls = []
        self.down_set = set()
        FakeLab.instances.append(self)

    def create(self):
        self.calls.append(("create",))

    def destroy(self):
        self.calls.append(("destroy",))

    def down(self, ips):
        self.calls.append(("down", sorted(ips)))
        self.down_set |= set(ips)

    def up(self, ips):
        self.calls.append(("up", sorted(ips)))
        self.down_set -= set(ips)

    def down_ips(self):
        return set(self.down_set)

    def set_loss(self, percent, ips=None):
        self.calls.append(("loss", percent, sorted(ips) if ips else None))

    def probe_argv(self, argv, site=1):
        self.calls.append(("probe_argv", site))
        return ["true", *argv]

    site_dark = False
    canaries = ("198.19.255.1", "198.19.255.2")

    def site_down(self, site=1):
        self.calls.append(("site_down",) if site == 1 else ("site_down", site))
        self.site_dark = True

    def site_up(self, site=1):
        self.calls.append(("site_up",) if site == 1 else ("site_up", site))
        self.site_dark = False

    def site_loss(self, percent, site=1):
        self.calls.append(("site_loss", percent, site))

    def site_is_down(self, site=1):
        return self.site_dark

    def site_state(self, site=1):
        return "down" if self.site_dark else "up"

    def probe_ns_of(self, site=1):
        return f"{self.name}-p" + ("" if site == 1 else str(site))

    @property
    def probe_namespaces(self):
        return tuple(self.probe_ns_of(k) for k in range(1, self.sites + 1))


@pytest.fixture
def fake(monkeypatch, tmp_path):
    FakeLab.instances = []
    monkeypatch.setattr(lab_cli, "STATE_DIR", tmp_path / "state")
    monkeypatch.setattr(lab_cli, "lab_class", lambda: FakeLab)
    exists = {"value": False}
    monkeypatch.setattr(lab_cli, "namespaces_exist", lambda name: exists["value"])
    monkeypatch.setattr(lab_cli.os, "geteuid", lambda: 0)
    return exists


def calls():
    return [c for lab in FakeLab.instances for c in lab.calls]


def test_create_records_inventory_and_later_commands_resolve_names(fake, capsys, tmp_path):
    assert main(["lab", "--name", "t1", "--inventory", INVENTORY, "create"]) == 0
    state = json.loads((tmp_path / "state" / "t1.json").read_text())
    assert state["inventory"].endswith("examples/inventory.yml")
    fake["value"] = True
    assert main(["lab", "--name", "t1", "down", "tbilisi-br1-isp1", "198.18.2.1"]) == 0
    assert calls() == [("create",), ("down", ["198.18.1.5", "198.18.2.1"])]
    assert "down: tbilisi-br1-isp1, tbilisi-br2-rtr1" in capsys.readouterr().out


def test_unknown_device_is_an_error_with_a_hint_and_changes_nothing(fake, capsys):
    fake["value"] = True
    assert main(["lab", "--inventory", INVENTORY, "down", "tbilisi-br1-isp9", "nope-xyz"]) == 1
    err = capsys.readouterr().err
    assert "'tbilisi-br1-isp9' (did you mean 'tbilisi-br1-isp" in err and "'nope-xyz'" in err
    assert calls() == []


def test_branch_down_takes_exactly_that_branch(fake):
    fake["value"] = True
    assert main(["lab", "--inventory", INVENTORY, "branch-down", "Branch 3"]) == 0
    (_, addresses), = calls()
    assert addresses == sorted(["198.18.3.1", "198.18.3.2", "198.18.3.5", "198.18.3.6", "198.18.3.21",
                                "198.18.3.22"])
    assert main(["lab", "--inventory", INVENTORY, "branch-down", "Branch 99"]) == 1


def test_loss_all_or_named_and_status_maps_ips_to_names(fake, capsys):
    fake["value"] = True
    assert main(["lab", "--inventory", INVENTORY, "loss", "1%"]) == 0
    assert main(["lab", "--inventory", INVENTORY, "loss", "2.5", "hq-core1"]) == 0
    with pytest.raises(SystemExit):
        main(["lab", "--inventory", INVENTORY, "loss", "101%"])
    assert "must be between 0% and 100%" in capsys.readouterr().err
    assert calls() == [("loss", 1.0, None), ("loss", 2.5, ["198.18.200.1"])]


def test_status_lists_down_devices_by_name(fake, capsys, monkeypatch):
    fake["value"] = True
    lab = FakeLab("wd")
    lab.down_set = {"198.18.1.5"}
    monkeypatch.setattr(lab_cli, "lab_class", lambda: (lambda name: lab))
    assert main(["lab", "--inventory", INVENTORY, "status"]) == 0
    out = capsys.readouterr().out
    assert "1 down" in out and "198.18.1.5" in out and "tbilisi-br1-isp1" in out


def test_commands_on_a_missing_lab_say_how_to_create_it(fake, capsys):
    assert main(["lab", "--name", "zz", "--inventory", INVENTORY, "down", "hq-core1"]) == 1
    assert "wardops lab --name zz create" in capsys.readouterr().err


def test_not_root_is_a_clear_error(fake, monkeypatch, capsys):
    monkeypatch.setattr(lab_cli.os, "geteuid", lambda: 1000)
    assert main(["lab", "create"]) == 2
    assert "needs root" in capsys.readouterr().err
    assert calls() == []


@pytest.mark.parametrize("text, seconds", [("20s", 20), ("5m", 300), ("500ms", 0.5), ("1.5", 1.5), ("1h", 3600)])
def test_durations(text, seconds):
    assert lab_cli.parse_duration(text) == seconds


def test_bad_duration():
    with pytest.raises(ValueError, match="bad duration"):
        lab_cli.parse_duration("5 minutes")


def test_flapper_toggles_every_period_and_leaves_devices_up():
    lab = FakeLab("f")
    t0 = time.monotonic()
    transitions = Flapper(lab, ["198.18.1.1"], period=0.1, duration=0.45).run()
    elapsed = time.monotonic() - t0
    states = [s for _, s in transitions]
    assert states[0] == "down" and states[-1] == "up"
    assert all(a != b for a, b in zip(states, states[1:], strict=False))  # strictly alternating
    assert 4 <= len(states) <= 6 and 0.4 <= elapsed < 1.0
    assert lab.down_ips() == set()


def test_flapper_in_background_stops_early_and_restores():
    lab = FakeLab("g")
    flapper = Flapper(lab, ["198.18.1.1"], period=5, duration=60).start()
    time.sleep(0.1)
    flapper.stop()
    assert [s for _, s in flapper.transitions] == ["down", "up"]
    assert lab.down_ips() == set()


def test_site_commands_name_the_site_and_default_to_the_first(fake, capsys):
    assert main(["lab", "--name", "t2", "--inventory", INVENTORY, "create", "--sites", "2"]) == 0
    assert FakeLab.instances[0].sites == 2
    fake["value"] = True
    assert main(["lab", "--name", "t2", "site-down", "--site", "2"]) == 0
    assert main(["lab", "--name", "t2", "site-loss", "1%", "--site", "2"]) == 0
    assert main(["lab", "--name", "t2", "site-up", "--site", "2"]) == 0
    assert main(["lab", "--name", "t2", "site-down"]) == 0
    assert [c for c in calls() if c[0].startswith("site")] == [
        ("site_down", 2), ("site_loss", 1.0, 2), ("site_up", 2), ("site_down",)]
    with pytest.raises(SystemExit):
        main(["lab", "--name", "t2", "site-loss", "200%", "--site", "2"])
    assert main(["lab", "--name", "t2", "exec", "--site", "2", "--", "true"]) == 0
    assert calls()[-1] == ("probe_argv", 2)
