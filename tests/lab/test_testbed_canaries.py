"""The testbed hands the exporter the lab's canaries in its config file, guarded for exporters that
do not know `site:` yet (no namespaces: a stand-in lab object carries the canaries)."""

from __future__ import annotations

from pathlib import Path

import yaml

from exporter.config import TOP_KEYS
from wardops.lab.netns import CANARIES
from wardops.stack.testbed import Testbed, TestbedSettings


class CanaryLab:
    canaries = CANARIES


def make_testbed(tmp_path: Path, **settings) -> Testbed:
    tb = Testbed(TestbedSettings(workdir=tmp_path / "tb", inventory=Path("examples/inventory.yml"),
                                 lab_name="wdx", **settings), log=lambda _m: None)
    tb.workdir.mkdir(parents=True)
    tb.lab = CanaryLab()
    return tb


def test_canaries_go_into_the_exporter_config_when_the_exporter_accepts_them(tmp_path):
    given = tmp_path / "given.yml"
    given.write_text("policy_label: policy\n")
    tb = make_testbed(tmp_path, exporter_config=given)
    path = tb._exporter_config()
    written = yaml.safe_load((tb.workdir / "exporter.yml").read_text())
    assert written == {"policy_label": "policy", "site": {"canaries": list(CANARIES)}}
    if "site" in TOP_KEYS:  # the exporter parses site.canaries: the flag gets the merged file
        assert path == tb.workdir / "exporter.yml" and tb.canaries == CANARIES
        assert "site-canaries" not in tb.skipped
    else:  # an exporter without `site:` runs with the given file, and the testbed says why
        assert path == given and tb.canaries == ()
        assert "site" in tb.skipped["site-canaries"] and "without canaries" in tb.skipped["site-canaries"]


def test_no_canaries_when_turned_off_or_the_lab_has_none(tmp_path):
    tb = make_testbed(tmp_path, site_canaries=False)
    assert tb._exporter_config() is None and tb.canaries == ()
    tb = make_testbed(tmp_path / "b")
    tb.lab = object()
    assert tb._exporter_config() is None
    assert not (tb.workdir / "exporter.yml").exists()
