"""Several probe sites: settings, the generated vmagent config, and promtool runs of the consensus
rules (a site's path cut is one ProbeSiteDegraded; a device dark for every site is one DeviceDown
without `site`). One site generates exactly today's rules (tests/generators/test_golden.py)."""

from __future__ import annotations

import pytest
import yaml

from generators.settings import DEFAULT_SETTINGS, SettingsError, loads_settings
from generators.vmagent import build_scrape_config

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


def test_generated_scrape_config_reparses():
    assert yaml.safe_load(yaml.safe_dump(build_scrape_config(loads_settings(TWO_SITES))))["scrape_configs"]
