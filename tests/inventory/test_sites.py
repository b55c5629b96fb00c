"""`sites:` on devices and classify rules: which probe sites probe a device (default: every site);
names checked against the generator settings' probe sites (`wardops check --settings`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from inventory import InventoryError
from inventory.dump import dump_yaml
from inventory.loader import loads_inventory

INVENTORY = textwrap.dedent("""\
    classify:
      - match: {region: East}
        set: {sites: [dc2]}
      - match: {branch: Airport}
        set: {sites: [dc1, dc2]}
    devices:
      - {name: a1, ip: 198.18.0.1, region: West, branch: Centre}
      - {name: a2, ip: 198.18.0.2, region: West, branch: Centre, sites: [dc1]}
      - {name: b1, ip: 198.18.1.1, region: East, branch: Port}
      - {name: b2, ip: 198.18.1.2, region: East, branch: Port, sites: [dc1]}
      - {name: c1, ip: 198.18.2.1, region: West, branch: Airport}
    """)
TWO_SITES = "sites:\n  - {name: dc1, targets: ['127.0.0.1:10118']}\n  - {name: dc2, targets: ['127.0.0.1:10119']}\n"


def sites_of(inv) -> dict[str, tuple[str, ...]]:
    return {d.name: d.sites for d in inv.devices}


def test_sites_default_to_every_site_and_rules_set_them_per_region_and_branch():
    inv = loads_inventory(INVENTORY, "inv.yml")
    assert sites_of(inv) == {"a1": (), "a2": ("dc1",), "b1": ("dc2",), "b2": ("dc1",), "c1": ("dc1", "dc2")}
    by = inv.by_name()
    assert by["a1"].probed_from("dc2") and by["a1"].probed_from(None)
    assert not by["a2"].probed_from("dc2") and by["a2"].probed_from("dc1") and by["a2"].probed_from(None)
    assert "site" not in by["a2"].target_labels()  # the site label comes from the scraper, not the device


def test_dump_round_trip_keeps_sites():
    inv = loads_inventory(INVENTORY, "inv.yml")
    again = loads_inventory(dump_yaml(inv), "dump.yml")
    assert again == inv and sites_of(again) == sites_of(inv)


def test_bad_sites_every_error_at_once_with_file_and_line():
    text = textwrap.dedent("""\
        classify:
          - match: {region: East}
            set: {sites: dc2}
        devices:
          - {name: a1, ip: 198.18.0.1, region: West, branch: Centre, sites: []}
          - name: a2
            ip: 198.18.0.2
            region: West
            branch: Centre
            sites:
              - dc1
              - Not A Name
              - dc1
        """)
    with pytest.raises(InventoryError) as exc:
        loads_inventory(text, "inv.yml")
    assert [str(p) for p in exc.value.problems] == [
        "inv.yml:3: classify[0].set.sites: must be a non-empty list of probe site names, got string 'dc2'",
        "inv.yml:5: devices[0].sites: must be a non-empty list of probe site names, got a list",
        "inv.yml:12: devices[1].sites[1]: a probe site name must match [a-z0-9][a-z0-9._-]* (at most 128 "
        "characters), got string 'Not A Name'",
        "inv.yml:13: devices[1].sites[2]: duplicate site 'dc1'",
    ]


def test_unknown_site_names_against_the_settings():
    with pytest.raises(InventoryError) as exc:
        loads_inventory(INVENTORY.replace("sites: [dc1, dc2]", "sites: [dc1, dc3]")
                        .replace("Port, sites: [dc1]", "Port, sites: [dc-1]"), "inv.yml", ("dc1", "dc2"))
    assert [str(p) for p in exc.value.problems] == [
        "inv.yml:5: classify[1].set.sites[1]: unknown probe site 'dc3' (the settings define: dc1, dc2)",
        "inv.yml:10: devices[3].sites[0]: unknown probe site 'dc-1' (the settings define: dc1, dc2)",
    ]
    assert sites_of(loads_inventory(INVENTORY, "inv.yml", ("dc1", "dc2")))["c1"] == ("dc1", "dc2")


def wardops_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wardops.cli", "check", *args], capture_output=True, text=True,
                          timeout=60)


def test_wardops_check_with_settings_reports_unknown_sites(tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text(INVENTORY)
    two = tmp_path / "two.yml"
    two.write_text(TWO_SITES)
    assert wardops_check(str(inv)).returncode == 0  # alone: names are checked for form only
    proc = wardops_check(str(inv), "--settings", str(two))
    assert proc.returncode == 0, proc.stderr

    three = tmp_path / "other.yml"
    three.write_text(TWO_SITES.replace("dc2", "dc3"))
    proc = wardops_check(str(inv), "--settings", str(three))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"{inv}:3: classify[0].set.sites[0]: unknown probe site 'dc2' (the settings define: dc1, dc3)",
        f"{inv}:5: classify[1].set.sites[1]: unknown probe site 'dc2' (the settings define: dc1, dc3)",
        f"2 error(s) in {inv}",
    ]


def test_one_site_settings_accept_their_own_site_name_only(tmp_path):
    """With one probe site an inventory may already name it (prepared for a second site); any
    other name would leave its devices to an exporter that does not exist: an error at its line."""
    inv = tmp_path / "inv.yml"
    inv.write_text("devices:\n  - {name: a1, ip: 198.18.0.1, region: West, branch: Centre, sites: [dc1]}\n")
    one = tmp_path / "one.yml"
    one.write_text("site: dc1\n")
    assert wardops_check(str(inv), "--settings", str(one)).returncode == 0
    default = tmp_path / "default.yml"
    default.write_text("{}\n")  # the one site is named `default`
    proc = wardops_check(str(inv), "--settings", str(default))
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == (f"{inv}:2: devices[0].sites[0]: unknown probe site 'dc1' "
                                           "(the settings define: default)")


def test_wardops_check_reports_settings_errors(tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text(INVENTORY)
    bad = tmp_path / "bad.yml"
    bad.write_text("sites: 3\n")
    proc = wardops_check(str(inv), "--settings", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0].startswith(f"{bad}:1: sites: ")


BRANCH = textwrap.dedent("""\
    devices:
      - {name: isp1, ip: 198.18.3.1, region: West, branch: Mall, role: isp, sites: [dc1]}
      - {name: isp2, ip: 198.18.3.2, region: West, branch: Mall, role: isp, sites: [dc1, dc2]}
      - {name: rtr, ip: 198.18.3.3, region: West, branch: Mall, sites: [dc2]}
      - {name: atm, ip: 198.18.3.4, region: West, branch: Mall}
      - {name: sw, ip: 198.18.3.5, region: West, branch: Mall, sites: [dc1]}
      - {name: spare, ip: 198.18.3.6, region: West, branch: Mall, sites: [dc2], enabled: false}
    """)


def test_a_branchs_uplinks_share_their_sites_and_its_devices_stay_within_them():
    """Each site exports a branch verdict labelled with the uplinks it probes: uplinks probed from
    different sites, or a device probed from a site that probes no uplink, would split BranchDown
    per site. Every such device is named at its line; a device within the uplinks' sites is fine,
    and so is a disabled one."""
    with pytest.raises(InventoryError) as exc:
        loads_inventory(BRANCH, "inv.yml")
    assert [str(p) for p in exc.value.problems] == [
        "inv.yml:3: devices[1].sites: branch 'West'/'Mall': its ISP uplinks must be probed from the same sites "
        "('isp1': dc1; this one: dc1, dc2); set sites for the whole branch",
        "inv.yml:4: devices[2].sites: branch 'West'/'Mall': probed from dc2, but its ISP uplinks only from dc1; "
        "a site that does not probe the uplinks cannot judge the branch (set sites for the whole branch)",
        "inv.yml:5: devices[3].sites: branch 'West'/'Mall': probed from every site, but its ISP uplinks only "
        "from dc1; a site that does not probe the uplinks cannot judge the branch (set sites for the whole branch)",
    ]
    whole = BRANCH.replace(", sites: [dc1, dc2]}", ", sites: [dc1]}").replace("sites: [dc2]}", "sites: [dc1]}")
    assert {d.name: d.sites for d in loads_inventory(whole.replace("branch: Mall}", "branch: Mall, sites: [dc1]}"),
                                                     "inv.yml").devices}["atm"] == ("dc1",)
