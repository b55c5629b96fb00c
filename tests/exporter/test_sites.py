"""`wardops exporter --site NAME` / config `site.name`: the exporter probes only the devices whose
inventory `sites:` include its site (or name none), and says which site it stands in
(wardops_exporter_site_info), so an exporter started without one is visible."""

from __future__ import annotations

import json
import logging

import pytest

from exporter.app import Exporter
from exporter.cli import site_flag
from exporter.config import ExporterConfigError, loads_config
from exporter.targets import FileSource, HttpSdSource, TargetError, devices_from_sd
from tests.exporter.sdserver import SdServer

LOG = logging.getLogger("test.sites")
INVENTORY = """\
devices:
  - {name: both, ip: 198.18.0.1, region: r, branch: b}
  - {name: only1, ip: 198.18.0.2, region: r, branch: b, sites: [dc1]}
  - {name: only2, ip: 198.18.0.3, region: r, branch: b, sites: [dc2]}
  - {name: gone, ip: 198.18.0.4, region: r, branch: b, sites: [dc1], enabled: false}
"""


def exporter_for(tmp_path, config: str = "", site: str | None = None) -> Exporter:
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY)
    exp = Exporter(FileSource(str(path)), loads_config(config), site=site, log=LOG, components=())
    assert exp.refresh()[0]
    return exp


def site_info(exp: Exporter) -> list[str]:
    return [labels for name, labels, value in exp._self_samples() if name == "wardops_exporter_site_info" and value == 1]


def test_without_a_site_every_device_is_probed_and_the_site_is_empty(tmp_path):
    exp = exporter_for(tmp_path)
    assert [d.name for d in exp.devices] == ["both", "only1", "only2"]
    assert site_info(exp) == ['{exporter_site=""}']


def test_a_site_probes_its_devices_and_those_naming_none(tmp_path):
    exp = exporter_for(tmp_path, site="dc1")
    assert [d.name for d in exp.devices] == ["both", "only1"]
    assert site_info(exp) == ['{exporter_site="dc1"}']
    samples = {name: value for name, _, value in exp._self_samples()}
    assert samples["wardops_exporter_inventory_devices"] == 2


def test_config_site_name_and_the_flag_wins(tmp_path):
    exp = exporter_for(tmp_path, "site: {name: dc2}\n")
    assert [d.name for d in exp.devices] == ["both", "only2"] and exp.site == "dc2"
    exp = exporter_for(tmp_path, "site: {name: dc2}\n", site="dc1")
    assert [d.name for d in exp.devices] == ["both", "only1"] and site_info(exp) == ['{exporter_site="dc1"}']


def test_a_config_reload_with_another_site_reselects_the_devices(tmp_path):
    cfg = tmp_path / "exporter.yml"
    cfg.write_text("site: {name: dc1}\n")
    inv = tmp_path / "inv.yml"
    inv.write_text(INVENTORY)
    exp = Exporter(FileSource(str(inv)), loads_config(cfg.read_text()), log=LOG, components=(),
                   config_path=str(cfg))
    assert exp.refresh()[0] and [d.name for d in exp.devices] == ["both", "only1"]
    cfg.write_text("site: {name: dc2}\n")
    assert exp.reload()[0]
    assert [d.name for d in exp.devices] == ["both", "only2"] and site_info(exp) == ['{exporter_site="dc2"}']


def test_bad_site_names_are_errors_naming_the_place():
    with pytest.raises(ExporterConfigError) as exc:
        loads_config("site:\n  name: DC 1\n", "exporter.yml")
    assert [str(p) for p in exc.value.problems] == [
        "exporter.yml:2: site.name: a probe site name must match [a-z0-9][a-z0-9._-]* (at most 128 characters), "
        "got string 'DC 1'"]
    with pytest.raises(ValueError, match="--site must be a probe site name"):
        site_flag("DC 1")
    assert site_flag("dc1") == "dc1" and site_flag(None) is None


def test_http_sd_carries_the_sites_and_the_exporter_filters_on_them():
    groups = [{"targets": ["198.18.0.1"], "labels": {"device": "both", "region": "r", "branch": "b"}},
              {"targets": ["198.18.0.2"], "labels": {"device": "only1", "region": "r", "branch": "b",
                                                     "__meta_wardops_sites": ",dc1,"}},
              {"targets": ["198.18.0.3"], "labels": {"device": "only2", "region": "r", "branch": "b",
                                                     "__meta_wardops_sites": ",dc2,dc3,"}}]
    assert [d.sites for d in devices_from_sd(groups)] == [(), ("dc1",), ("dc2", "dc3")]
    with SdServer() as server:
        server.answers["/api/v1/sd"] = json.dumps(groups).encode()
        src = HttpSdSource(server.url)
        exp = Exporter(src, loads_config(""), site="dc2", log=LOG, components=())
        assert exp.refresh()[0]
        assert [d.name for d in exp.devices] == ["both", "only2"]
    bad = [{**groups[1], "labels": {**groups[1]["labels"], "__meta_wardops_sites": ",DC 1,"}}]
    with pytest.raises(TargetError, match=r"\$\[0\]\.labels\.__meta_wardops_sites: invalid site names"):
        devices_from_sd(bad)


def test_metrics_endpoint_serves_the_site_info(tmp_path):
    from exporter.web import WebServer
    from tests.exporter.test_web import get

    exp = exporter_for(tmp_path, site="dc1")
    exp.start()
    web = WebServer(exp, "127.0.0.1", 0).start()
    try:
        body = get(f"http://127.0.0.1:{web.port}/metrics")[1]
        assert "# TYPE wardops_exporter_site_info gauge\n" in body
        assert '\nwardops_exporter_site_info{exporter_site="dc1"} 1\n' in body
        assert "\nwardops_exporter_inventory_devices 2\n" in body
    finally:
        web.stop()
        exp.stop()


def test_a_bad_site_flag_stops_the_exporter_before_it_starts(tmp_path):
    import subprocess
    import sys

    inv = tmp_path / "inv.yml"
    inv.write_text(INVENTORY)
    proc = subprocess.run([sys.executable, "-m", "wardops.cli", "exporter", "--inventory", str(inv),
                           "--site", "DC 1", "--web.listen-address", "127.0.0.1:0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--site must be a probe site name matching [a-z0-9][a-z0-9._-]*, got 'DC 1'" in proc.stderr
