"""The generated output passes the real checkers: promtool, vmalert, amtool, vmagent (Debian binaries)."""

from __future__ import annotations

import subprocess

import pytest

from generators.settings import load_settings
from tests.generators.helpers import REPO, TESTDATA, generate_into, need

FULL_SETTINGS = TESTDATA / "generators" / "settings-full.yml"
CASES = {
    "example-defaults": (REPO / "examples" / "inventory.yml", None),
    "test-inventory-full-settings": (TESTDATA / "generators" / "inventory.yml", FULL_SETTINGS),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def out(request, tmp_path_factory):
    inventory, settings = CASES[request.param]
    path = tmp_path_factory.mktemp(request.param)
    generate_into(path, inventory, load_settings(settings), str(inventory.relative_to(REPO)))
    return path


def run(argv, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run([need(argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60, **kw)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_promtool_check_rules(out):
    result = run(["promtool", "check", "rules", str(out / "rules" / "alerts.yml"), str(out / "rules" / "recording.yml")])
    assert "SUCCESS" in result.stdout


def test_vmalert_dry_run(out):
    run(["vmalert", "-dryRun", f"-rule={out / 'rules' / 'alerts.yml'}", f"-rule={out / 'rules' / 'recording.yml'}"])


def test_vmalert_rejects_what_it_should(tmp_path):
    # Guard for the check above: the 1.79.5 binary does refuse a field it does not know.
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    keep_firing_for: 1m\n")
    result = subprocess.run([need("vmalert"), "-dryRun", f"-rule={bad}"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_amtool_check_config(out):
    result = run(["amtool", "check-config", str(out / "alertmanager" / "alertmanager.yml")])
    assert "1 templates" in result.stdout


def test_vmagent_dry_run(out, tmp_path):
    run(["vmagent", "-promscrape.config.dryRun", f"-promscrape.config={out / 'vmagent' / 'scrape.yml'}",
         f"-remoteWrite.tmpDataPath={tmp_path}"])


ROUTES = [
    # (labels, receiver with the full settings)
    ({"alertname": "IspLinkDown", "severity": "critical", "scope": "device", "device": "a-isp1",
      "region": "R1", "branch": "Branch A"}, "oncall"),
    ({"alertname": "BranchDown", "severity": "critical", "scope": "branch", "region": "R1", "branch": "Branch B"},
     "oncall"),
    ({"alertname": "DeviceDown", "severity": "warning", "scope": "device", "device": "a-rtr1", "region": "R1",
      "branch": "Branch A"}, "noc"),
    ({"alertname": "ExporterDown", "severity": "critical", "scope": "exporter", "job": "wardops_isp",
      "instance": "127.0.0.1:9118"}, "oncall"),
    ({"alertname": "InventoryReloadFailed", "severity": "warning", "scope": "exporter"}, "noc"),
    ({"alertname": "Other", "severity": "info"}, "noc"),
]


@pytest.mark.parametrize("labels,receiver", ROUTES, ids=[r[0]["alertname"] for r in ROUTES])
def test_amtool_routes(tmp_path, labels, receiver):
    out = tmp_path / "out"
    generate_into(out, TESTDATA / "generators" / "inventory.yml", load_settings(FULL_SETTINGS))
    args = [f"{k}={v}" for k, v in labels.items()]
    run(["amtool", "config", "routes", "test", f"--config.file={out / 'alertmanager' / 'alertmanager.yml'}",
         f"--verify.receivers={receiver}", *args])


@pytest.mark.parametrize("name", ["wardops.subject", "wardops.text", "wardops.html", "wardops.telegram"])
def test_notification_templates_render_with_amtool(out, name):
    # Renders with amtool's example data; fails if the template is missing or does not execute.
    run(["amtool", "template", "render", f"--template.glob={out / 'alertmanager' / 'templates' / '*.tmpl'}",
         f'--template.text={{{{ template "{name}" . }}}}'])


def test_amtool_template_render_fails_on_unknown_template(out):
    result = subprocess.run([need("amtool"), "template", "render",
                             f"--template.glob={out / 'alertmanager' / 'templates' / '*.tmpl'}",
                             '--template.text={{ template "wardops.nope" . }}'], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
