"""The inventory contract: strict loading, exact errors with file:line, classification, round trips."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory import Inventory, InventoryError, inventory_from_data, load_inventory, loads_inventory
from inventory.dump import dump_yaml, inventory_data
from inventory.synth import SYNTH_NETWORK, synth_inventory

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
INVALID = sorted(TESTDATA.glob("invalid-*.yml"))


def problems_of(text: str, source: str = "inv.yml") -> list[str]:
    with pytest.raises(InventoryError) as info:
        loads_inventory(text, source)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_inventory_reports_exactly_the_expected_errors(path):
    text = path.read_text()
    expected = [line.removeprefix("# expect: ") for line in text.splitlines() if line.startswith("# expect: ")]
    assert expected, f"{path.name} has no '# expect:' lines"
    assert problems_of(text, path.name) == expected


def test_invalid_table_covers_every_error_class():
    names = {p.stem.removeprefix("invalid-") for p in INVALID}
    for error_class in ("unknown-device-key", "duplicate-name", "duplicate-ip", "bad-ip", "bad-role",
                        "unknown-profile", "bad-labels", "bad-classify", "bad-maintenance", "inline-secret",
                        "topology-unknown-reference", "topology-cycle", "topology-double-membership",
                        "topology-empty-node", "alias-bomb"):
        assert error_class in names


def test_example_inventory_loads_with_classification_applied():
    inv = load_inventory(ROOT / "examples" / "inventory.yml")
    by_name = inv.by_name()
    assert len(inv.devices) > 100 and len(inv.counts("branch")) >= 20 and len(inv.counts("region")) >= 4
    assert all(ipaddress.ip_address(d.ip) in SYNTH_NETWORK for d in inv.devices)
    # The .5/.6 rule made ISP uplinks; the provider came from the device itself.
    isp = [d for d in inv.devices if d.role == "isp"]
    assert isp and all(int(ipaddress.ip_address(d.ip)) & 0xFF in (5, 6) and d.isp for d in isp)
    # ip_in rule set region/branch/snmp for the data centre; explicit `snmp: null` beat it.
    assert by_name["hq-core1"].branch == "Head Office DC" and by_name["hq-core1"].snmp == "core-v3"
    assert by_name["hq-isp-magti"].snmp is None
    assert not by_name["hq-app-old"].enabled
    assert by_name["hq-app-old"] not in inv.enabled_devices()


def test_explicit_fields_win_and_the_first_rule_to_set_a_field_wins():
    inv = loads_inventory("""
classify:
  - match: {name_regex: "^edge"}
    set: {role: router, region: North, labels: {tier: edge, vendor: cisco}}
  - match: {region: North}
    set: {role: switch, branch: North-1}
devices:
  - {name: edge1, ip: 198.18.0.1, branch: B}
  - {name: edge2, ip: 198.18.0.2, region: South, branch: B, role: atm, labels: {vendor: juniper}}
  - {name: core1, ip: 198.18.0.3, region: North}
""")
    e1, e2, c1 = inv.devices
    assert (e1.role, e1.region, e1.branch) == ("router", "North", "B")
    assert dict(e1.labels) == {"tier": "edge", "vendor": "cisco"}
    assert (e2.role, e2.region) == ("atm", "South")  # explicit fields win
    assert dict(e2.labels) == {"tier": "edge", "vendor": "juniper"}  # explicit label wins, rule label added
    assert (c1.role, c1.branch) == ("switch", "North-1")  # second rule matched on region


def test_all_errors_are_reported_at_once_and_nothing_is_applied():
    problems = problems_of("""
devices:
  - {name: ok1, ip: 198.18.0.1, region: R, branch: B}
  - {name: bad1, ip: nope, region: R, branch: B}
  - {name: bad2, ip: 198.18.0.3, region: R, branch: B, role: toaster}
  - {name: ok1, ip: 198.18.0.4, region: R, branch: B}
""")
    assert problems == [
        "inv.yml:4: devices[1].ip: invalid ip 'nope' (want an IPv4 or IPv6 literal, no prefix or zone)",
        "inv.yml:5: devices[2].role: unknown role 'toaster' (one of isp, router, switch, firewall, atm, server, other)",
        "inv.yml:6: devices[3].name: duplicate device name 'ok1' (first defined at inv.yml:3)"]


def test_json_data_errors_name_the_json_path():
    with pytest.raises(InventoryError) as info:
        inventory_from_data({"devices": [{"name": "a", "ip": "198.18.0.1", "region": "R", "branch": "B",
                                          "role": "bogus"}]})
    (problem,) = info.value.problems
    assert problem.location == "$.devices[0].role" and problem.path == ("devices", 0, "role")


@pytest.mark.parametrize("inv", [
    pytest.param(lambda: load_inventory(ROOT / "examples" / "inventory.yml"), id="example"),
    pytest.param(lambda: synth_inventory(500, 0.2, seed=7, snmp_share=0.5), id="synth"),
])
def test_dump_then_load_gives_the_same_inventory(inv):
    original = inv()
    text = dump_yaml(original)
    again = loads_inventory(text)
    assert again == original
    assert dump_yaml(again) == text  # deterministic


TOPOLOGY = """
devices:
  - {name: dc-core1, ip: 198.18.0.1, region: DC, branch: Head Office}
  - {name: bat-core1, ip: 198.18.0.2, region: Batumi, branch: Batumi Hub}
  - {name: b1-r1, ip: 198.18.1.1, region: Batumi, branch: Branch 1}
  - {name: b2-r1, ip: 198.18.2.1, region: Batumi, branch: Branch 2}
  - {name: b40-r1, ip: 198.18.40.1, region: Kutaisi, branch: Branch 40}
topology:
  region_upstreams: false
  upstreams:
    dc-core:
      devices: [dc-core1]
      branches: [Head Office]
    core-batumi:
      upstream: dc-core
      devices: [bat-core1]
      regions: [Batumi]
      branches: [Branch 40]
"""


def test_topology_section_loads_into_upstream_nodes_sorted_by_name():
    inv = loads_inventory(TOPOLOGY, "topo.yml")
    topo = inv.topology
    assert topo.region_upstreams is False and topo.location == "topo.yml:8"
    assert [n.name for n in topo.upstreams] == ["core-batumi", "dc-core"]
    batumi, dc = topo.upstreams
    assert (batumi.upstream, batumi.devices, batumi.regions, batumi.branches) == (
        "dc-core", ("bat-core1",), ("Batumi",), ("Branch 40",))
    assert (dc.upstream, dc.regions, batumi.location) == (None, (), "topo.yml:14")
    # Without the section: no nodes, implicit region nodes on.
    plain = loads_inventory(TOPOLOGY.split("topology:")[0])
    assert plain.topology.upstreams == () and plain.topology.region_upstreams is True


def test_topology_round_trips_through_yaml_dump_and_json_data():
    inv = loads_inventory(TOPOLOGY)
    text = dump_yaml(inv)
    assert "region_upstreams: false" in text and "upstream: dc-core" in text
    assert loads_inventory(text) == inv and dump_yaml(loads_inventory(text)) == text
    assert inventory_from_data(inventory_data(inv)) == inv
    # The default (implicit region nodes, no explicit ones) dumps as nothing at all.
    assert "topology" not in dump_yaml(loads_inventory(TOPOLOGY.split("topology:")[0]))


def test_topology_errors_over_json_name_the_json_path():
    data = inventory_data(loads_inventory(TOPOLOGY))
    data["topology"]["upstreams"]["core-batumi"]["upstream"] = "core-batumi"
    data["topology"]["upstreams"]["x"] = {"regions": ["Nowhere"]}
    with pytest.raises(InventoryError) as info:
        inventory_from_data(data)
    assert [str(p) for p in info.value.problems] == [
        "$.topology.upstreams.core-batumi.upstream: a node cannot sit behind itself",
        "$.topology.upstreams.x.regions[0]: unknown region 'Nowhere' (no device has it)"]


def test_topology_cycle_of_three_lists_the_whole_cycle_once():
    problems = problems_of(TOPOLOGY.replace("      devices: [dc-core1]\n", "      upstream: c\n") + """
    a:
      upstream: core-batumi
    c:
      upstream: a
""")
    assert problems == ["inv.yml:11: topology.upstreams.dc-core: upstream cycle dc-core -> c -> a -> core-batumi "
                        "-> dc-core"]


def test_synth_is_deterministic_and_stays_in_the_benchmark_range():
    a, b, c = synth_inventory(3000, 0.1, seed=3), synth_inventory(3000, 0.1, seed=3), synth_inventory(3000, 0.1, seed=4)
    assert dump_yaml(a) == dump_yaml(b) and dump_yaml(a) != dump_yaml(c)
    assert len({d.ip for d in a.devices}) == 3000 and len({d.name for d in a.devices}) == 3000
    assert all(ipaddress.ip_address(d.ip) in SYNTH_NETWORK for d in a.devices)
    assert a.counts("role")["isp"] == 300
    big = synth_inventory(50000, 0.1)
    assert len({d.ip for d in big.devices}) == 50000
    # A synth file passes the strict loader.
    assert loads_inventory(dump_yaml(synth_inventory(200, 0.1, snmp_share=1.0))) == synth_inventory(200, 0.1, snmp_share=1.0)


# --- fuzzing: any input gives an Inventory or InventoryError, never another exception ------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["198.18.0.1", "2001:2::1", "isp", "router", "2c", "3",
                                                           "sunday", "01:00-03:00", "UTC", "198.18.0.0/24"]))
keys = st.sampled_from(["devices", "classify", "snmp_profiles", "maintenance", "name", "ip", "region", "branch",
                        "role", "isp", "snmp", "enabled", "labels", "match", "set", "version", "community_env",
                        "username", "auth_protocol", "auth_key_file", "weekdays", "times", "timezone",
                        "branches", "ip_last_octet", "ip_in", "name_regex", "x", "topology", "upstreams",
                        "upstream", "regions", "region_upstreams", "timeout", "a"])
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(keys, inner, max_size=6)), max_leaves=30)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_fuzz_structured_documents_only_raise_inventory_error(doc):
    text = yaml.safe_dump(doc)
    try:
        result = loads_inventory(text, "fuzz.yml")
    except InventoryError as exc:
        assert exc.problems and all(str(p).startswith("fuzz.yml") for p in exc.problems)
    else:
        assert isinstance(result, Inventory)
        assert loads_inventory(dump_yaml(result)) == result


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_raw_text_only_raises_inventory_error(text):
    try:
        loads_inventory(text, "fuzz.yml")
    except InventoryError as exc:
        assert exc.problems


device_st = st.fixed_dictionaries(
    {"name": st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
     "ip": st.integers(0, 2**17 - 2).map(lambda n: str(ipaddress.ip_address(int(SYNTH_NETWORK[1]) + n))),
     "region": st.sampled_from(["Tbilisi", "Batumi"]), "branch": st.sampled_from(["B1", "B2", "B3"])},
    optional={"role": st.sampled_from(["isp", "router", "atm"]), "enabled": st.booleans(),
              "labels": st.dictionaries(st.sampled_from(["vendor", "tier"]), st.sampled_from(["a", "b"]), max_size=2)})


@settings(max_examples=200, deadline=None)
@given(st.lists(device_st, max_size=12), st.booleans())
def test_fuzz_valid_inventories_round_trip(devices, with_rules):
    data = {"devices": devices}
    if with_rules:
        data["classify"] = [{"match": {"ip_last_octet": 5}, "set": {"role": "isp", "labels": {"tier": "x"}}},
                            {"match": {"region": "Batumi"}, "set": {"enabled": False}}]
    try:
        inv = loads_inventory(yaml.safe_dump(data))
    except InventoryError as exc:  # only duplicate names/IPs can make these invalid
        assert all("duplicate" in p.message for p in exc.problems)
        return
    assert loads_inventory(dump_yaml(inv)) == inv
    assert inventory_from_data(inventory_data(inv)) == inv
