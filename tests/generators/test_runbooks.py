"""Every alert the generator writes links an on-call runbook that exists, absolute when a base URL is set."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import yaml

from generators.generate import generate_files
from generators.rules import ALERT_NAMES
from generators.settings import DEFAULT_SETTINGS, loads_settings
from inventory import load_inventory
from tests.generators.helpers import REPO, TEST_INVENTORY
from tests.generators.test_root_cause import explicit_inventory

RUNBOOKS = REPO / "docs" / "runbooks"
SECTIONS = ("## What it means", "## First checks", "## Who to call", "## When to escalate")
BASE = "https://git.bank.example/wardops/-/blob/main/docs/runbooks/"


def alerts(inventory, settings=DEFAULT_SETTINGS) -> list[dict]:
    files = generate_files(inventory, settings, "inventory.yml")
    return [r for g in yaml.safe_load(files["rules/alerts.yml"])["groups"] for r in g["rules"] if "alert" in r]


INVENTORIES = {"example": lambda: load_inventory(REPO / "examples" / "inventory.yml"),
               "test": lambda: load_inventory(TEST_INVENTORY), "explicit-topology": explicit_inventory}
TWO_SITES = "sites: [{name: dc1, targets: ['127.0.0.1:10118']}, {name: dc2, targets: ['127.0.0.1:10128']}]\n"


@pytest.fixture(scope="module")
def generated() -> dict[str, list[dict]]:
    out = {name: alerts(make()) for name, make in INVENTORIES.items()}
    out["two-sites"] = alerts(load_inventory(TEST_INVENTORY), loads_settings(TWO_SITES))  # ProbeSiteDegraded
    return out


def test_every_alert_name_has_a_runbook_with_the_four_sections():
    for name in ALERT_NAMES:
        text = (RUNBOOKS / f"{name}.md").read_text(encoding="utf-8")
        assert text.startswith(f"# {name}\n"), name
        positions = [text.index(s) for s in SECTIONS]
        assert positions == sorted(positions), name
        for a, b in zip(SECTIONS, SECTIONS[1:] + ("",), strict=True):
            body = text.split(a, 1)[1].split(b, 1)[0] if b else text.split(a, 1)[1]
            assert len(body.strip()) > 40, (name, a)  # every section says something
    # No runbook for an alert that no longer exists.
    assert {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"} == set(ALERT_NAMES)


def test_every_generated_alert_links_its_existing_runbook(generated):
    seen = set()
    for inventory, rules in generated.items():
        for rule in rules:
            name = rule["alert"]
            url = rule["annotations"]["runbook_url"]
            assert url == f"docs/runbooks/{name}.md", (inventory, name)
            assert (REPO / url).is_file(), (inventory, name)
            seen.add(name)
    assert seen == set(ALERT_NAMES)  # the inventories and settings between them produce every alert


def test_runbook_urls_are_absolute_under_a_base_url():
    settings = loads_settings(f"urls: {{runbook: '{BASE}'}}\n")
    rules = alerts(explicit_inventory(), settings)
    assert rules
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        assert url == f"{BASE}{rule['alert']}.md"
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.netloc == "git.bank.example"
    # With or without a trailing slash: one separator.
    bare = alerts(explicit_inventory(), loads_settings(f"urls: {{runbook: '{BASE.rstrip('/')}'}}\n"))
    assert [r["annotations"]["runbook_url"] for r in bare] == [r["annotations"]["runbook_url"] for r in rules]
