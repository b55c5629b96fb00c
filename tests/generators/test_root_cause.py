"""One page per root cause: promtool runs of the generated rules for correlated failures, and the
static model (nodes, chains, blind shares) behind them. Series as the exporter exports them
(docs/root-cause.md); the exporter's own behaviour is tested in tests/exporter."""

from __future__ import annotations

import dataclasses

import yaml

from generators.generate import generate_files, write_files
from generators.rootcause import blind_share
from generators.settings import DEFAULT_SETTINGS
from generators.topology import build_model
from inventory import load_inventory
from inventory.model import Topology, Upstream
from tests.generators.helpers import TEST_INVENTORY, device_labels, series
from tests.generators.test_rules_promtool import (
    A_UPLINKS,
    branch_series,
    device_series,
    rule_index,  # noqa: F401  (fixture)
    rules_dir,  # noqa: F401  (fixture)
    run_promtool,
)

N = 60  # steps of 10 s


def quiet(alerts: list[str], at: str) -> list[dict]:
    return [{"eval_time": at, "alertname": a, "exp_alerts": []} for a in alerts]


LOWER = ["BranchDown", "IspLinkDown", "DeviceDown", "DeviceFlapping"]


def region_r1_dark(a_verdict: str, b_verdict: str) -> list[dict]:
    dark = "U" * 30 + "D" * 30
    return (device_series("a-isp1", dark) + device_series("a-isp2", dark) + device_series("a-rtr1", dark)
            + device_series("a-atm2", dark) + device_series("b-rtr1", dark) + device_series("b-sw1", dark)
            + device_series("c-isp1", "U" * N) + device_series("c-rtr1", "U" * N)
            + branch_series("R1", "Branch A", a_verdict, **A_UPLINKS) + branch_series("R1", "Branch B", b_verdict))


def test_a_region_going_dark_is_one_region_page(rules_dir, rule_index):  # noqa: F811
    # Branch A is decided dark a step before Branch B (still deciding): no branch pages meanwhile.
    inputs = region_r1_dark("A" * 30 + "D" * 30, "A" * 30 + "?" + "D" * 29)
    region = [r for g in yaml.safe_load((rules_dir / "rules" / "alerts.yml").read_text())["groups"]
              for r in g["rules"] if r["alert"] == "RegionDown"]
    assert [r["labels"]["region"] for r in region] == ["R1"]  # R2 has one branch: no region node
    alerts = quiet(LOWER + ["RegionDown"], "300s") + quiet(LOWER, "350s") + [
        {"eval_time": "350s", "alertname": "RegionDown",
         "exp_alerts": [{"exp_labels": {"alertname": "RegionDown", "region": "R1", "scope": "upstream",
                                        "severity": "critical"},
                         "exp_annotations": region[0]["annotations"]}]},
        {"eval_time": "350s", "alertname": "ProbeSiteBlind", "exp_alerts": []},
    ]
    assert region[0]["annotations"]["summary"] == "Region R1: 2 branches, 7 devices unreachable"
    run_promtool(rules_dir, "region_dark", inputs, alerts)


def test_a_blind_probe_site_is_one_page_and_holds_the_rest(rules_dir, rule_index):  # noqa: F811
    canary = {"job": "wardops_icmp", "instance": "127.0.0.1:9118"}
    dark = "U" * 30 + "D" * 20 + "U" * 30  # the site's own path fails 300-490 s
    late = "U" * 30 + "D" * 22 + "U" * 28  # a router comes back two steps after the site
    inputs = (device_series("a-isp1", dark) + device_series("a-isp2", dark) + device_series("a-rtr1", late)
              + device_series("a-atm2", dark) + device_series("b-rtr1", dark) + device_series("b-sw1", dark)
              + device_series("c-isp1", dark) + device_series("c-rtr1", dark)
              + branch_series("R1", "Branch A", "A" * 30 + "D" * 20 + "A" * 30, **A_UPLINKS)
              + branch_series("R1", "Branch B", "A" * 30 + "D" * 20 + "A" * 30)
              + [{"series": series("wardops_probe_site_canary_up", {**canary, "canary": ip}),
                  "values": " ".join("1" if c == "U" else "0" for c in dark)}
                 for ip in ("198.19.255.1", "198.19.255.2")])
    rule = next(r for g in yaml.safe_load((rules_dir / "rules" / "alerts.yml").read_text())["groups"]
                for r in g["rules"] if r["alert"] == "ProbeSiteBlind")
    blind = {"exp_labels": {"alertname": "ProbeSiteBlind", "scope": "site", "severity": "critical"},
             "exp_annotations": {k: v.replace("{{ $labels.site }}", "") for k, v in rule["annotations"].items()}}
    alerts = ([{"eval_time": "300s", "alertname": "ProbeSiteBlind", "exp_alerts": [blind]}]
              + quiet(LOWER + ["RegionDown"], "300s") + quiet(LOWER + ["RegionDown"], "450s")
              + quiet(["ProbeSiteBlind"], "510s")
              # a-rtr1 is still down at 510 s, within the hold after the site recovered: quiet.
              + quiet(LOWER + ["RegionDown"], "510s"))
    run_promtool(rules_dir, "site_blind", inputs, alerts)


def explicit_inventory():
    inv = load_inventory(TEST_INVENTORY)
    return dataclasses.replace(inv, topology=Topology(upstreams=(
        Upstream("dc-core", devices=("c-rtr1",)),
        Upstream("core-r1", upstream="dc-core", regions=("R1",)),
        Upstream("core-r2", upstream="dc-core", branches=("Branch C",)),
    ), region_upstreams=False))


def test_model_of_an_explicit_topology():
    model = build_model(explicit_inventory())
    nodes = {n.name: n for n in model.nodes}
    # core-r2 has one branch behind it: BranchDown says it, no node.
    assert sorted(nodes) == ["core-r1", "dc-core"]
    assert nodes["dc-core"].branches == (("R1", "Branch A"), ("R1", "Branch B"), ("R2", "Branch C"))
    assert nodes["dc-core"].device_count == 9 and nodes["dc-core"].own_devices == ("c-rtr1",)
    assert [n.name for n in model.above(nodes["core-r1"])] == ["dc-core"]
    assert [n.name for n in model.top_nodes()] == ["dc-core"]
    # Implicit regions: R1 only (R2 has a single branch).
    assert [(n.name, n.kind) for n in build_model(load_inventory(TEST_INVENTORY)).nodes] == [("R1", "region")]


def test_blind_share_is_never_reached_by_one_region_alone():
    assert blind_share(0.8, 9, 20) == 0.8
    assert blind_share(0.5, 15, 20) == 0.8  # one region holds 15 of 20 branches: 16 needed
    assert blind_share(0.8, 20, 20) is None  # one region holds everything: canaries only
    assert blind_share(0.8, 1, 2) is None  # too few units to tell


def test_upstream_pages_once_at_the_highest_dark_node(tmp_path):
    files = generate_files(explicit_inventory(), DEFAULT_SETTINGS, "explicit")
    write_files(files, tmp_path)
    groups = yaml.safe_load((tmp_path / "rules" / "alerts.yml").read_text())["groups"]
    ups = {r["labels"]["upstream"]: r for g in groups for r in g["rules"] if r["alert"] == "UpstreamDown"}
    assert sorted(ups) == ["core-r1", "dc-core"]
    assert ups["core-r1"]["annotations"]["summary"] == "core-r1: 2 branches, 7 devices unreachable behind it"
    dark = "U" * 30 + "D" * 30
    r1_only = region_r1_dark("A" * 30 + "D" * 30, "A" * 30 + "D" * 30)
    everything = [s for s in r1_only if 'device="c-' not in s["series"]]
    everything += (device_series("c-isp1", dark) + device_series("c-rtr1", dark)
                   + branch_series("R2", "Branch C", "A" * 30 + "D" * 30, uplinks="c-isp1", providers="Magti"))

    def page(name):
        return {"exp_labels": {"alertname": "UpstreamDown", "upstream": name, "scope": "upstream",
                               "severity": "critical"}, "exp_annotations": ups[name]["annotations"]}

    run_promtool(tmp_path, "core_r1", r1_only,
                 [{"eval_time": "350s", "alertname": "UpstreamDown", "exp_alerts": [page("core-r1")]}]
                 + quiet(LOWER, "350s"))
    # Everything behind the DC dark: one page, at dc-core, not at core-r1 too.
    run_promtool(tmp_path, "dc_core", everything,
                 [{"eval_time": "350s", "alertname": "UpstreamDown", "exp_alerts": [page("dc-core")]}]
                 + quiet(LOWER, "350s"))


def test_device_down_in_a_busy_branch_still_pages_alone(rules_dir, rule_index):  # noqa: F811
    # Branch A has an uplink down (open critical page) when its router goes dark too.
    inputs = (device_series("a-isp1", "U" * 10 + "D" * 50) + device_series("a-isp2", "U" * N)
              + device_series("a-rtr1", "U" * 30 + "D" * 30) + device_series("a-atm2", "U" * N)
              + branch_series("R1", "Branch A", "A" * N, **A_UPLINKS))
    from tests.generators.test_rules_promtool import expect
    alerts = [
        {"eval_time": "310s", "alertname": "DeviceDown",
         "exp_alerts": [expect(rule_index, "DeviceDown", device_labels("a-rtr1"), 300, "warning")]},
        {"eval_time": "310s", "alertname": "IspLinkDown",
         "exp_alerts": [expect(rule_index, "IspLinkDown", device_labels("a-isp1"), 100, "critical")]},
        {"eval_time": "310s", "alertname": "BranchDown", "exp_alerts": []},
    ]
    run_promtool(rules_dir, "busy_branch", inputs, alerts)
