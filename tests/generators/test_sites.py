"""Several probe sites: settings, the generated vmagent config, and promtool runs of the consensus
rules (a site's path cut is one ProbeSiteDegraded; a device dark for every site is one DeviceDown
without `site`). One site generates exactly today's rules (tests/generators/test_golden.py)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from generators.settings import DEFAULT_SETTINGS, SettingsError, loads_settings
from generators.vmagent import build_scrape_config
from tests.generators.helpers import need

TWO_SITES = """\
sites:
  - name: dc1
    targets: ["127.0.0.1:9118", "127.0.0.1:9128"]
  - name: dc2
    targets: ["127.0.0.1:9138"]
"""


def test_one_site_is_todays_settings():
    s = loads_settings("site: tbilisi-dc\nexporter: {targets: ['127.0.0.1:9118']}\n")
    assert [(x.name, x.targets) for x in s.probe_sites] == [("tbilisi-dc", ("127.0.0.1:9118",))]
    assert not s.multi_site and not DEFAULT_SETTINGS.multi_site
    assert DEFAULT_SETTINGS.consensus.quorum == "all"


def test_sites_give_one_target_group_each_with_shards_inside():
    s = loads_settings(TWO_SITES + "consensus: {quorum: majority, disagreement_share: 0.3}\n")
    assert s.multi_site and (s.consensus.quorum, s.consensus.disagreement_share) == ("majority", 0.3)
    jobs = build_scrape_config(s)["scrape_configs"]
    assert [j["job_name"] for j in jobs] == ["wardops_icmp", "wardops_snmp"]
    for job in jobs:
        assert job["static_configs"] == [
            {"targets": ["127.0.0.1:9118", "127.0.0.1:9128"], "labels": {"site": "dc1"}},
            {"targets": ["127.0.0.1:9138"], "labels": {"site": "dc2"}}]


BAD = [
    ("site: x\nexporter: {targets: ['a:1']}\n" + TWO_SITES, [
        "s.yml:1: site: give either sites or site (each site has its name in sites)",
        "s.yml:2: exporter.targets: give either sites or exporter.targets (each site has its targets in sites)"]),
    ("sites:\n  - {name: dc1, targets: ['a:1']}\n  - {name: dc1, targets: ['b:1']}\n"
     "  - {name: Dc3, targets: ['a:1']}\n  - {name: dc4}\n  - {name: dc5, targets: ['c:1'], canaries: []}\n", [
        "s.yml:3: sites[1].name: duplicate site 'dc1' (first at sites[0])",
        "s.yml:4: sites[2].name: a site name must match [a-z0-9][a-z0-9._-]* (at most 128 characters), "
        "got string 'Dc3'",
        "s.yml:4: sites[2].targets[0]: target 'a:1' already belongs to site 'dc1'",
        "s.yml:5: sites[3].targets: must be a non-empty list of host:port, got nothing",
        "s.yml:6: sites[4].canaries: unknown key (allowed: name, targets)"]),
    ("sites: []\nconsensus: {quorum: most, disagreement_share: 2, share: 1}\n", [
        "s.yml:1: sites: must be a non-empty list of {name, targets}, got a list",
        "s.yml:2: consensus.share: unknown key (allowed: quorum, disagreement_share)",
        "s.yml:2: consensus.quorum: must be one of all, majority, any, got string 'most'",
        "s.yml:2: consensus.disagreement_share: must be a number from 0.01 to 1, got number 2"]),
]


@pytest.mark.parametrize("text, problems", BAD, ids=["sites-and-site", "bad-sites", "bad-consensus"])
def test_bad_sites_are_every_error_at_once_with_file_and_line(text, problems):
    with pytest.raises(SettingsError) as info:
        loads_settings(text, "s.yml")
    assert [str(p) for p in info.value.problems] == problems


def test_vmagent_accepts_the_two_site_scrape_config(tmp_path):
    path = tmp_path / "scrape.yml"
    path.write_text(yaml.safe_dump(build_scrape_config(loads_settings(TWO_SITES))))
    result = subprocess.run([need("vmagent"), "-promscrape.config.dryRun", f"-promscrape.config={path}",
                             f"-remoteWrite.tmpDataPath={tmp_path}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- consensus rules under promtool ----------------------------------------------------------------

from generators.settings import load_settings  # noqa: E402
from tests.generators.helpers import DEVICES, TEST_INVENTORY, device_labels, generate_into, series  # noqa: E402
from tests.generators.test_rules_promtool import A_UPLINKS, expect, run_promtool, timeline  # noqa: E402

INSTANCES = {"dc1": "127.0.0.1:9118", "dc2": "127.0.0.1:9138"}
N = 90  # steps of 10 s
ROOT = ["ProbeSiteBlind", "RegionDown", "BranchDown", "IspLinkDown", "DeviceDown", "DeviceFlapping"]
BRANCHES = {"Branch A": ("R1", A_UPLINKS), "Branch B": ("R1", {}),
            "Branch C": ("R2", {"uplinks": "c-isp1", "providers": "Magti"})}


def site_device(name: str, site: str, states: str) -> list[dict]:
    up, changes, since = timeline(states)
    labels = device_labels(name, site=site, instance=INSTANCES[site])
    return [{"series": series("wardops_icmp_up", labels), "values": up},
            {"series": series("wardops_icmp_status_changes_total", labels), "values": changes},
            {"series": series("wardops_icmp_last_change_timestamp_seconds", labels), "values": since}]


def site_branch(branch: str, site: str, verdicts: str) -> list[dict]:
    region, names = BRANCHES[branch]
    labels = {"region": region, "branch": branch, "job": "wardops_icmp", "instance": INSTANCES[site], "site": site}
    since, last = [], 0
    for i, v in enumerate(verdicts):
        if i and v != verdicts[i - 1]:
            last = i * 10
        since.append(str(last))
    value = {"A": "1", "D": "0", "?": "-1"}
    return [{"series": series("wardops_icmp_branch_up", {**labels, "uplinks": names.get("uplinks", ""),
                                                         "providers": names.get("providers", "")}),
             "values": " ".join(value[v] for v in verdicts)},
            {"series": series("wardops_icmp_branch_last_change_timestamp_seconds", labels),
             "values": " ".join(since)}]


def network(site: str, dark: dict[str, str], verdicts: dict[str, str]) -> list[dict]:
    """Every enabled device of the test inventory as `site` sees it: `dark` gives a timeline per
    device (default up throughout), `verdicts` one per branch (default answers)."""
    out = []
    for name in DEVICES:
        if name != "a-atm1":
            out += site_device(name, site, dark.get(name, "U" * N))
    for branch in BRANCHES:
        out += site_branch(branch, site, verdicts.get(branch, "A" * N))
    return out


def generate_sites(out, extra: str = ""):
    path = out / "settings.yml"
    path.write_text(TWO_SITES.replace("127.0.0.1:9128", "127.0.0.1:9148") + extra)
    generate_into(out, TEST_INVENTORY, load_settings(path))
    return out


@pytest.fixture(scope="module")
def sites_dir(tmp_path_factory):
    return generate_sites(tmp_path_factory.mktemp("sites"))


@pytest.fixture(scope="module")
def site_rules(sites_dir):
    groups = yaml.safe_load((sites_dir / "rules" / "alerts.yml").read_text())["groups"]
    return {(r["alert"], r["labels"].get("threshold"), r["labels"]["severity"]): r
            for g in groups for r in g["rules"] if "alert" in r}


def none_of(alerts: list[str], at: str) -> list[dict]:
    return [{"eval_time": at, "alertname": a, "exp_alerts": []} for a in alerts]


def degraded(site_rules, site: str) -> dict:
    return expect(site_rules, "ProbeSiteDegraded", {"site": site}, 1, "critical")


def test_two_sites_generate_probe_site_degraded_instead_of_blind(site_rules):
    names = {name for name, _, _ in site_rules}
    assert "ProbeSiteDegraded" in names and "ProbeSiteBlind" not in names


def test_two_site_rules_load_in_promtool_and_vmalert(sites_dir):
    files = [str(sites_dir / "rules" / "alerts.yml"), str(sites_dir / "rules" / "recording.yml")]
    for argv in (["promtool", "check", "rules", *files], ["vmalert", "-dryRun", *(f"-rule={f}" for f in files)]):
        result = subprocess.run([need(argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{argv[0]}:\n{result.stdout}\n{result.stderr}"


def test_one_sites_path_to_a_branch_cut_is_one_site_page_and_no_branch_page(sites_dir, site_rules):
    # dc1 loses its path to Branch A (4 of its 8 devices) 300-590 s; dc2 sees everything answer.
    cut = "U" * 30 + "D" * 30 + "U" * 30
    a = {"a-isp1": cut, "a-isp2": cut, "a-rtr1": cut, "a-atm2": cut}
    inputs = (network("dc1", a, {"Branch A": "A" * 30 + "?" + "D" * 29 + "A" * 30}) + network("dc2", {}, {}))
    alerts = (none_of(["ProbeSiteDegraded", *ROOT], "290s") + none_of(ROOT, "300s") + none_of(ROOT, "350s")
              + [{"eval_time": "350s", "alertname": "ProbeSiteDegraded", "exp_alerts": [degraded(site_rules, "dc1")]}]
              # recovered at 600 s: rejoins the consensus without a page
              + none_of(["ProbeSiteDegraded", *ROOT], "610s") + none_of(["ProbeSiteDegraded", *ROOT], "700s"))
    run_promtool(sites_dir, "site_path_cut", inputs, alerts)


def test_one_site_blind_is_one_site_page(sites_dir, site_rules):
    # dc1 loses its whole network 300-590 s (every device and verdict dark).
    cut = "U" * 30 + "D" * 30 + "U" * 30
    inputs = (network("dc1", {d: cut for d in DEVICES}, {b: "A" * 30 + "D" * 30 + "A" * 30 for b in BRANCHES})
              + network("dc2", {}, {}))
    alerts = (none_of(ROOT + ["UpstreamDown"], "300s") + none_of(ROOT, "450s")
              + [{"eval_time": "450s", "alertname": "ProbeSiteDegraded", "exp_alerts": [degraded(site_rules, "dc1")]}]
              + none_of(["ProbeSiteDegraded", *ROOT], "700s"))
    run_promtool(sites_dir, "site_blind", inputs, alerts)


def test_a_device_dark_for_both_sites_is_one_device_down_without_site(sites_dir, site_rules):
    # a-atm2 stops answering at 300 s for dc1 and one step later for dc2; back at 600 s.
    inputs = (network("dc1", {"a-atm2": "U" * 30 + "D" * 30 + "U" * 30}, {})
              + network("dc2", {"a-atm2": "U" * 31 + "D" * 29 + "U" * 30}, {}))
    labels = {k: v for k, v in device_labels("a-atm2").items() if k != "instance"}
    alerts = (none_of(["DeviceDown", "ProbeSiteDegraded"], "300s")  # dc2 still sees it up
              + [{"eval_time": "310s", "alertname": "DeviceDown",
                  "exp_alerts": [expect(site_rules, "DeviceDown", labels, 300, "warning")]}]
              + none_of(["ProbeSiteDegraded", "BranchDown", "IspLinkDown", "RegionDown"], "310s")
              + none_of(["DeviceDown"], "600s"))
    run_promtool(sites_dir, "device_both_sites", inputs, alerts)


def test_an_uplink_dark_for_both_sites_is_one_isp_page(sites_dir, site_rules):
    inputs = (network("dc1", {"c-isp1": "U" * 30 + "D" * 60}, {})
              + network("dc2", {"c-isp1": "U" * 30 + "D" * 60}, {}))
    labels = {k: v for k, v in device_labels("c-isp1").items() if k != "instance"}
    alerts = [{"eval_time": "300s", "alertname": "IspLinkDown",
               "exp_alerts": [expect(site_rules, "IspLinkDown", labels, 300, "critical")]}]
    run_promtool(sites_dir, "isp_both_sites", inputs, alerts)


def test_a_device_dark_for_one_site_only_pages_nobody(sites_dir, site_rules):
    inputs = network("dc1", {"b-sw1": "U" * 30 + "D" * 60}, {}) + network("dc2", {}, {})
    run_promtool(sites_dir, "device_one_site", inputs, none_of(["DeviceDown", "ProbeSiteDegraded"], "300s")
                 + none_of(["DeviceDown", "ProbeSiteDegraded"], "800s"))


def test_quorum_any_pages_what_one_site_sees(tmp_path):
    out = generate_sites(tmp_path, "consensus: {quorum: any}\n")
    rules = {(r["alert"], r["labels"].get("threshold"), r["labels"]["severity"]): r
             for g in yaml.safe_load((out / "rules" / "alerts.yml").read_text())["groups"]
             for r in g["rules"] if "alert" in r}
    inputs = network("dc1", {"b-sw1": "U" * 30 + "D" * 60}, {}) + network("dc2", {}, {})
    labels = {k: v for k, v in device_labels("b-sw1").items() if k != "instance"}
    run_promtool(out, "device_one_site_any", inputs,
                 [{"eval_time": "300s", "alertname": "DeviceDown",
                   "exp_alerts": [expect(rules, "DeviceDown", labels, 300, "warning")]}])


def test_one_site_in_sites_generates_exactly_todays_files(tmp_path):
    one = tmp_path / "one.yml"
    one.write_text(f"sites: [{{name: default, targets: {list(DEFAULT_SETTINGS.exporter_targets)}}}]\n")
    assert generate_into(tmp_path / "a", TEST_INVENTORY, load_settings(one)) == generate_into(tmp_path / "b")


def test_majority_of_three_sites_pages_on_two_not_on_one(tmp_path):
    path = tmp_path / "settings.yml"
    path.write_text(TWO_SITES.replace("127.0.0.1:9128", "127.0.0.1:9148")
                    + "  - name: dc3\n    targets: ['127.0.0.1:9158']\nconsensus: {quorum: majority}\n")
    out = tmp_path / "out"
    generate_into(out, TEST_INVENTORY, load_settings(path))
    rules = {(r["alert"], r["labels"].get("threshold"), r["labels"]["severity"]): r
             for g in yaml.safe_load((out / "rules" / "alerts.yml").read_text())["groups"]
             for r in g["rules"] if "alert" in r}
    INSTANCES["dc3"] = "127.0.0.1:9158"
    try:
        dark = "U" * 30 + "D" * 60
        # b-sw1 dark for dc1 and dc2, b-rtr1 for dc1 only.
        inputs = (network("dc1", {"b-sw1": dark, "b-rtr1": dark}, {}) + network("dc2", {"b-sw1": dark}, {})
                  + network("dc3", {}, {}))
    finally:
        del INSTANCES["dc3"]
    labels = {k: v for k, v in device_labels("b-sw1").items() if k != "instance"}
    run_promtool(out, "majority_of_three", inputs,
                 [{"eval_time": "300s", "alertname": "DeviceDown",
                   "exp_alerts": [expect(rules, "DeviceDown", labels, 300, "warning")]}]
                 + none_of(["ProbeSiteDegraded", "BranchDown"], "300s"))


# --- inventory `sites:`: targets probed by some sites only ------------------------------------------

# Branch B and region R2 (Branch C) are probed from dc1 only; dc2 probes Branch A alone.
RESTRICTED = ("classify:\n  - match: {branch: Branch B}\n    set: {sites: [dc1]}\n"
              "  - match: {region: R2}\n    set: {sites: [dc1]}\n")
DC1_ONLY = {"b-rtr1", "b-sw1", "c-rtr1", "c-isp1"}


def restricted_network(site: str, dark: dict[str, str], verdicts: dict[str, str]) -> list[dict]:
    """What `site` exports under RESTRICTED: dc2 has no series for dc1's devices and branches."""
    out = []
    for name in DEVICES:
        if name != "a-atm1" and (site == "dc1" or name not in DC1_ONLY):
            out += site_device(name, site, dark.get(name, "U" * N))
    for branch in BRANCHES:
        if site == "dc1" or branch == "Branch A":
            out += site_branch(branch, site, verdicts.get(branch, "A" * N))
    return out


@pytest.fixture(scope="module")
def restricted_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("restricted")
    inventory = out / "inventory.yml"
    inventory.write_text(RESTRICTED + TEST_INVENTORY.read_text())
    settings = out / "settings.yml"
    settings.write_text(TWO_SITES.replace("127.0.0.1:9128", "127.0.0.1:9148"))
    generate_into(out, inventory, load_settings(settings))
    return out


@pytest.fixture(scope="module")
def restricted_rules(restricted_dir):
    groups = yaml.safe_load((restricted_dir / "rules" / "alerts.yml").read_text())["groups"]
    return {(r["alert"], r["labels"].get("threshold"), r["labels"]["severity"]): r
            for g in groups for r in g["rules"] if "alert" in r}


def test_restricted_rules_load_in_promtool_and_vmalert(restricted_dir):
    files = [str(restricted_dir / "rules" / "alerts.yml"), str(restricted_dir / "rules" / "recording.yml")]
    for argv in (["promtool", "check", "rules", *files], ["vmalert", "-dryRun", *(f"-rule={f}" for f in files)]):
        result = subprocess.run([need(argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{argv[0]}:\n{result.stdout}\n{result.stderr}"


def test_a_target_probed_by_one_site_pages_when_that_site_sees_it_down(restricted_dir, restricted_rules):
    """Quorum all counts the healthy sites that probe the target: dc2 has no c-isp1 or b-sw1
    series, so dc1 alone decides them (and an unrestricted device still needs both sites)."""
    dark = "U" * 30 + "D" * 60
    inputs = (restricted_network("dc1", {"c-isp1": dark, "b-sw1": dark, "a-atm2": dark}, {})
              + restricted_network("dc2", {}, {}))
    isp = {k: v for k, v in device_labels("c-isp1").items() if k != "instance"}
    sw = {k: v for k, v in device_labels("b-sw1").items() if k != "instance"}
    alerts = [{"eval_time": "300s", "alertname": "IspLinkDown",
               "exp_alerts": [expect(restricted_rules, "IspLinkDown", isp, 300, "critical")]},
              {"eval_time": "300s", "alertname": "DeviceDown",  # a-atm2: dc2 sees it up, no page
               "exp_alerts": [expect(restricted_rules, "DeviceDown", sw, 300, "warning")]}]
    run_promtool(restricted_dir, "one_site_probes", inputs,
                 alerts + none_of(["ProbeSiteDegraded", "BranchDown", "RegionDown"], "300s"))


def test_a_region_dark_for_the_sites_probing_it_is_one_region_page(restricted_dir, restricted_rules):
    """R1 goes dark: dc1 sees Branches A and B dark, dc2 (which probes only Branch A) sees A dark.
    Each site judges the region by what it probes: one RegionDown, no branch or device page."""
    dark = "U" * 30 + "D" * 60
    verdict = "A" * 30 + "D" * 60
    r1 = {n: dark for n in ("a-isp1", "a-isp2", "a-rtr1", "a-atm2", "b-rtr1", "b-sw1")}
    inputs = (restricted_network("dc1", r1, {"Branch A": verdict, "Branch B": verdict})
              + restricted_network("dc2", r1, {"Branch A": verdict}))
    region = expect(restricted_rules, "RegionDown", {"region": "R1"}, 1, "critical")
    alerts = ([{"eval_time": "310s", "alertname": "RegionDown", "exp_alerts": [region]}]
              + none_of(["ProbeSiteDegraded", "BranchDown", "IspLinkDown", "DeviceDown", "UpstreamDown"], "310s"))
    run_promtool(restricted_dir, "region_restricted", inputs, alerts)


def test_a_region_only_one_site_probes_pages_on_that_sites_view(tmp_path):
    """Region R1 is probed from dc1 only: dc2 (which probes only R2) has no say in RegionDown."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("classify:\n  - match: {region: R1}\n    set: {sites: [dc1]}\n" + TEST_INVENTORY.read_text())
    settings = tmp_path / "settings.yml"
    settings.write_text(TWO_SITES.replace("127.0.0.1:9128", "127.0.0.1:9148"))
    out = tmp_path / "out"
    generate_into(out, inventory, load_settings(settings))
    rules = {(r["alert"], r["labels"].get("threshold"), r["labels"]["severity"]): r
             for g in yaml.safe_load((out / "rules" / "alerts.yml").read_text())["groups"]
             for r in g["rules"] if "alert" in r}
    dark = "U" * 30 + "D" * 60
    verdict = "A" * 30 + "D" * 60
    r1 = {n: dark for n in ("a-isp1", "a-isp2", "a-rtr1", "a-atm2", "b-rtr1", "b-sw1")}
    dc2 = [s for s in network("dc2", {}, {}) if 'region="R2"' in s["series"]]
    inputs = network("dc1", r1, {"Branch A": verdict, "Branch B": verdict}) + dc2
    region = expect(rules, "RegionDown", {"region": "R1"}, 2, "critical")
    run_promtool(out, "region_one_site", inputs,
                 [{"eval_time": "310s", "alertname": "RegionDown", "exp_alerts": [region]}]
                 + none_of(["ProbeSiteDegraded", "BranchDown", "IspLinkDown", "DeviceDown"], "310s"))


# --- exporters started for the wrong site, or for none -------------------------------------------


def site_info(site: str, instance: str, exporter_site: str) -> dict:
    labels = {"site": site, "instance": instance, "job": "wardops_icmp", "exporter_site": exporter_site}
    return {"series": series("wardops_exporter_site_info", labels), "values": " ".join(["1"] * N)}


def mismatch(site_rules, site: str, instance: str, exporter_site: str) -> dict:
    labels = {"site": site, "instance": instance, "job": "wardops_icmp"}
    if exporter_site:  # an empty label value is no label (Prometheus)
        labels["exporter_site"] = exporter_site
    return expect(site_rules, "ExporterSiteMismatch", labels, 1, "warning")


def test_an_exporter_without_its_site_or_with_another_is_one_warning_each(sites_dir, site_rules):
    inputs = [site_info("dc1", "127.0.0.1:9118", "dc1"),  # right
              site_info("dc1", "127.0.0.1:9148", ""),  # started without --site while others have one
              site_info("dc2", "127.0.0.1:9138", "dc1")]  # started with the other site's name
    alerts = [{"eval_time": "30s", "alertname": "ExporterSiteMismatch", "exp_alerts": []},  # for: 1m
              {"eval_time": "70s", "alertname": "ExporterSiteMismatch",
               "exp_alerts": [mismatch(site_rules, "dc1", "127.0.0.1:9148", ""),
                              mismatch(site_rules, "dc2", "127.0.0.1:9138", "dc1")]}]
    run_promtool(sites_dir, "exporter_site_mismatch", inputs, alerts)


def test_exporters_all_without_a_site_are_not_flagged(sites_dir):
    """Deployments from before `--site` (every exporter without one) page nothing new."""
    inputs = [site_info("dc1", "127.0.0.1:9118", ""), site_info("dc2", "127.0.0.1:9138", "")]
    run_promtool(sites_dir, "exporter_site_none", inputs, none_of(["ExporterSiteMismatch"], "300s"))


def test_one_site_has_no_site_mismatch_rule(tmp_path):
    files = generate_into(tmp_path)
    assert "ExporterSiteMismatch" not in files["rules/alerts.yml"]


def test_the_probe_job_of_several_sites_asks_for_the_first_sites_devices():
    """The /probe job goes through the first site's exporter, which resolves only the devices its
    site probes: the SD URL asks the inventory service for exactly those (`?site=`)."""
    with_service = "inventory_service: {url: 'http://127.0.0.1:9119'}\n"
    jobs = {j["job_name"]: j for j in build_scrape_config(loads_settings(TWO_SITES + with_service))["scrape_configs"]}
    assert jobs["wardops_probe"]["http_sd_configs"] == [{"url": "http://127.0.0.1:9119/api/v1/sd?site=dc1"}]
    one = {j["job_name"]: j for j in build_scrape_config(loads_settings(with_service))["scrape_configs"]}
    assert one["wardops_probe"]["http_sd_configs"] == [{"url": "http://127.0.0.1:9119/api/v1/sd"}]


# --- dashboards --------------------------------------------------------------------------------------


def test_the_sites_dashboard_puts_rtt_by_site_side_by_side():
    import json

    from generators.dashboards import UIDS, panels_of
    from tests.generators.helpers import REPO

    dash = json.loads((REPO / "dashboards" / "sites.json").read_text())
    assert dash["uid"] == UIDS["sites"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["site"]["query"] == "label_values(wardops_icmp_up, site)" and variables["site"]["multi"]
    assert {"region", "branch", "device"} <= set(variables)
    panels = {p["title"]: p for p in panels_of(dash)}
    rtt = panels["Round-trip time from $site"]
    assert (rtt["repeat"], rtt["repeatDirection"]) == ("site", "h")  # one panel per selected site, in a row
    assert 'site=~"$site"' in rtt["targets"][0]["expr"] and 'device=~"$device"' in rtt["targets"][0]["expr"]
    branch = panels["Branch round-trip time by site"]["targets"][0]
    assert branch["expr"].startswith("avg by (site, region, branch) (wardops_icmp_rtt_seconds{")
    assert branch["legendFormat"] == "{{branch}} from {{site}}"


def test_the_exporter_dashboard_shows_each_exporters_site_beside_its_scrape_site():
    import json

    from generators.dashboards import panels_of
    from tests.generators.helpers import REPO

    dash = json.loads((REPO / "dashboards" / "exporter.json").read_text())
    panels = {p["title"]: p for p in panels_of(dash)}
    table = panels["Probe site per exporter"]
    assert table["targets"][0]["expr"] == 'wardops_exporter_site_info{instance=~"$instance"}'
    organize = next(t for t in table["transformations"] if t["id"] == "organize")["options"]["renameByName"]
    assert organize == {"instance": "Exporter", "site": "Scraped as site", "exporter_site": "Started for site (--site)"}
    assert "ExporterSiteMismatch" in panels["Exporters with another or no site"]["targets"][0]["expr"]


def restarted(inputs: list[dict], steps: range) -> list[dict]:
    """The site's exporter restarted over `steps`: a staleness marker (vmagent writes one when a
    target stops answering), no samples, then counters from 0 again."""
    out = []
    for s in inputs:
        values = s["values"].split()
        is_counter = "_total" in s["series"]
        base = values[steps.start - 1]
        for i in range(steps.start, len(values)):
            if i == steps.start:
                values[i] = "stale"
            elif i < steps.stop:
                values[i] = "_"
            elif is_counter:
                values[i] = str(float(values[i]) - float(base))
        out.append({**s, "values": " ".join(values)})
    return out


def test_a_site_whose_exporter_restarts_does_not_outvote_the_others(sites_dir, site_rules):
    """dc2 alone saw c-isp1 change 4 times by 220 s (dc1: none): no DeviceFlapping. At 400 s dc2's
    exporter restarts (30 s without series): its 10-minute count of changes outlives its instant
    series, but a site votes only on targets it reports now, so dc1 alone does not make a quorum of
    dc2's old changes. Before that rule the alert fired for the restart (end-to-end sites module)."""
    flaps = "U" * 10 + ("D" * 3 + "U" * 3) * 2 + "U" * (N - 22)
    inputs = network("dc1", {}, {}) + restarted(network("dc2", {"c-isp1": flaps}, {}), range(40, 43))
    run_promtool(sites_dir, "site_restart_flap", inputs,
                 [a for t in ("300s", "400s", "410s", "420s", "430s", "500s") for a in none_of(["DeviceFlapping"], t)])
