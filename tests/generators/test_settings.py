"""SETTINGS validation: defaults, every section parsed, and an invalid-input table with exact messages."""

from __future__ import annotations

import pytest

from generators.generate import generate_files
from generators.settings import DEFAULT_SETTINGS, SettingsError, load_settings, loads_settings
from inventory import InventoryError, loads_inventory
from tests.generators.helpers import TESTDATA

T = "tests/testdata/"
INVALID = {
    "settings-invalid-durations.yml": [
        f"{T}settings-invalid-durations.yml:2: intervals.isp_eval: must be a duration like 1h30m, 5m, 2s, 1.5s, 500ms (units d h m s "
        "ms, largest first; a plain number is seconds), got string '2 seconds'",
        f"{T}settings-invalid-durations.yml:3: intervals.default_eval: must be at least 1s, got string '0s'",
        f"{T}settings-invalid-durations.yml:5: routing.critical_group_wait: must be at most 2s (ISP outage notification target), got "
        "5s",
        f"{T}settings-invalid-durations.yml:7: thresholds.flap_window: must be at least 1m, got string '30s'",
    ],
    "settings-invalid-email.yml": [
        f"{T}settings-invalid-email.yml:4: receivers.noc.emails[0].to: 'not-an-address' is not an e-mail address",
        f"{T}settings-invalid-email.yml:4: receivers.noc.emails[0].smarthost: must be host:port, got 'mail.bank.example'",
        f"{T}settings-invalid-email.yml:4: receivers.noc.emails[0]: auth_password needs auth_username",
    ],
    "settings-invalid-empty-receiver.yml": [
        f"{T}settings-invalid-empty-receiver.yml:2: receivers.noc: needs at least one of webhooks, emails, telegram",
        f"{T}settings-invalid-empty-receiver.yml:3: receivers.Bad Name: a receiver name must match [a-z0-9][a-z0-9._-]* (at most 128 "
        "characters), got string 'Bad Name'",
    ],
    "settings-invalid-inline-secret.yml": [
        f"{T}settings-invalid-inline-secret.yml:4: receivers.noc.webhooks[0].bearer_token: inline secret 'bearer_token' is not allowed; "
        "reference it with bearer_token_env or bearer_token_file",
        f"{T}settings-invalid-inline-secret.yml:7: receivers.noc.emails[0].auth_password: inline secret 'auth_password' is not allowed; "
        "reference it with auth_password_env or auth_password_file",
    ],
    "settings-invalid-telegram.yml": [
        f"{T}settings-invalid-telegram.yml:4: receivers.oncall.telegram[0].bot_token_file: not supported by Alertmanager 0.25; use "
        "bot_token_env",
        f"{T}settings-invalid-telegram.yml:5: receivers.oncall.telegram[1].chat_id: must be a non-zero whole number, got string 'ops'",
        f"{T}settings-invalid-telegram.yml:5: receivers.oncall.telegram[1].bot_token_env: '1TOKEN' is not a valid environment "
        "variable name",
    ],
    "settings-invalid-undefined-receiver.yml": [
        f"{T}settings-invalid-undefined-receiver.yml:4: routing.critical: receiver 'pager' is not defined (receivers: noc)",
    ],
    "settings-invalid-unknown-key.yml": [
        f"{T}settings-invalid-unknown-key.yml:1: reciever: unknown key (allowed: receivers, routing, intervals, thresholds, urls, "
        "exporter, inventory_service, external_labels, site, time_zone, sites, consensus, ha)",
        f"{T}settings-invalid-unknown-key.yml:5: thresholds.latency: unknown key (allowed: loss_percent, loss_window, loss_for, "
        "latency_ms, latency_window, latency_for, flap_changes, isp_flap_changes, flap_window, "
        "isp_flap_window, device_down_for, isp_down_for, interface_down_for, "
        "interface_flap_changes, interface_flap_window, snmp_unreachable_for, exporter_down_for, "
        "round_overruns, probe_site_blind_share, recovery_hold, targets_drop_share, "
        "rounds_stalled_after)",
    ],
    "settings-invalid-urls.yml": [
        f"{T}settings-invalid-urls.yml:2: receivers.noc.webhooks[0].url: must be an http:// or https:// URL, got "
        "'ftp://127.0.0.1/hook'",
        f"{T}settings-invalid-urls.yml:4: urls.runbook: must be an http:// or https:// URL, got 'wiki/runbooks'",
        f"{T}settings-invalid-urls.yml:6: inventory_service.url: must not start or end with spaces, got string ' "
        "http://127.0.0.1:9119'",
    ],
    "settings-invalid-wrong-types.yml": [
        f"{T}settings-invalid-wrong-types.yml:2: thresholds.loss_percent: must be a number from 0.01 to 100, got string '5%'",
        f"{T}settings-invalid-wrong-types.yml:3: thresholds.flap_changes: must be a whole number from 2 to 1000, got number 0",
        f"{T}settings-invalid-wrong-types.yml:5: exporter.targets: must be a non-empty list of host:port, got string '127.0.0.1:9118'",
        f"{T}settings-invalid-wrong-types.yml:6: exporter.scheme: must be one of http, https, got string 'ftp'",
        f"{T}settings-invalid-wrong-types.yml:8: external_labels.bad-name: must be a label name [a-z_][a-z0-9_]* (not starting __), got "
        "string 'bad-name'",
        f"{T}settings-invalid-wrong-types.yml:9: external_labels.site: label value must be a string (quote numbers), got number 5",
    ],
    "settings-invalid-yaml-syntax.yml": [
        f"{T}settings-invalid-yaml-syntax.yml:3: YAML syntax error: did not find expected ',' or '}}'",
    ],
}


def test_every_invalid_file_has_expectations():
    assert sorted(p.name for p in TESTDATA.glob("settings-invalid-*.yml")) == sorted(INVALID)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_settings_report_every_problem_with_file_and_line(name, monkeypatch):
    monkeypatch.chdir(TESTDATA.parents[1])
    with pytest.raises(SettingsError) as info:
        load_settings(f"{T}{name}")
    assert [str(p) for p in info.value.problems] == INVALID[name]


def test_inline_secret_values_never_appear_in_messages():
    with pytest.raises(SettingsError) as info:
        load_settings(TESTDATA / "settings-invalid-inline-secret.yml")
    text = str(info.value)
    assert "s3cr3t-value" not in text and "hunter2" not in text


def test_defaults_without_a_settings_file():
    s = load_settings(None)
    assert s is DEFAULT_SETTINGS
    assert [(r.name, [h.url for h in r.webhooks]) for r in s.receivers] == [("default", ["http://127.0.0.1:9095/"])]
    assert (s.intervals.isp_eval.seconds, s.intervals.isp_scrape.seconds) == (1, 1)
    assert s.routing.critical_group_wait.seconds <= 2


def test_empty_file_means_defaults():
    s = loads_settings("", "empty.yml")
    assert s.receivers == DEFAULT_SETTINGS.receivers and s.thresholds == DEFAULT_SETTINGS.thresholds


def test_full_settings_parse():
    s = load_settings(TESTDATA / "generators" / "settings-full.yml")
    assert [r.name for r in s.receivers] == ["oncall", "noc"]
    assert s.routing.critical == "oncall" and s.routing.warning == "noc"
    oncall = s.receivers[0]
    assert oncall.webhooks[0].bearer_token.kind == "file"
    assert oncall.telegram[0].bot_token.ref == "WARDOPS_TELEGRAM_TOKEN"
    assert s.thresholds.loss_percent == 3 and s.thresholds.flap_changes == 4
    assert s.intervals.default_eval.text == "15s"
    assert s.exporter_targets == ("127.0.0.1:9118", "127.0.0.1:9128")
    assert dict(s.external_labels) == {"monitor": "wardops", "site": "dc1"}


def test_secrets_are_emitted_as_references_only():
    inv = loads_inventory((TESTDATA / "generators" / "inventory.yml").read_text(), "inv.yml")
    files = generate_files(inv, load_settings(TESTDATA / "generators" / "settings-full.yml"), "inv.yml")
    am = files["alertmanager/alertmanager.yml"]
    assert "credentials_file: /run/secrets/webhook-token" in am
    assert "auth_password_file: /run/secrets/smtp-password" in am
    assert "bot_token: ${WARDOPS_TELEGRAM_TOKEN}" in am
    assert "envsubst '$WARDOPS_TELEGRAM_TOKEN $WARDOPS_WEBHOOK_TOKEN'" in am.splitlines()[1]


@pytest.mark.parametrize("value", ['"fast"', '"0"', '"-5"', '"nan"', '"70000"'])
def test_bad_per_device_latency_override_names_the_device(value):
    text = ("devices:\n"
            "  - {name: r1, ip: 198.18.1.1, region: R, branch: B, role: router}\n"
            f"  - {{name: r2, ip: 198.18.1.2, region: R, branch: B, role: router, labels: {{latency_threshold_ms: {value}}}}}\n")
    inv = loads_inventory(text, "inv.yml")
    with pytest.raises(InventoryError) as info:
        generate_files(inv, DEFAULT_SETTINGS, "inv.yml")
    assert [str(p) for p in info.value.problems] == [
        f"inv.yml:3: device 'r2': label latency_threshold_ms must be a number above 0 and at most 60000, "
        f"got {value.strip(chr(34))!r}"]


def test_settings_reach_rules_and_scrape_config():
    inv = loads_inventory((TESTDATA / "generators" / "inventory.yml").read_text(), "inv.yml")
    files = generate_files(inv, load_settings(TESTDATA / "generators" / "settings-full.yml"), "inv.yml")
    rules = files["rules/alerts.yml"]
    assert 'increase(wardops_icmp_status_changes_total{role!="isp"}[5m]) >= 4' in rules  # flap_changes: 4
    assert "* 100 > 3 and on(site, device)" in rules  # loss_percent: 3
    assert "> 0.15 and on(site, device)" in rules  # latency_ms: 150
    assert "https://wiki.bank.example/wardops/runbooks/IspLinkDown.md" in rules
    assert "interval: 15s" in rules
    scrape = files["vmagent/scrape.yml"]
    assert "job_name: wardops_probe" in scrape and "url: http://127.0.0.1:9119/api/v1/sd" in scrape
    assert "site: dc1" in scrape
    assert "https://grafana.bank.example/d/wardops-device" in files["alertmanager/templates/wardops.tmpl"]


def test_site_and_exporter_fields_keep_their_defaults_unless_set():
    s = loads_settings("site: tbilisi-dc\nexporter: {scheme: https}\n")
    assert (s.site, s.exporter_scheme, s.exporter_targets) == ("tbilisi-dc", "https", DEFAULT_SETTINGS.exporter_targets)
    with pytest.raises(SettingsError) as info:
        loads_settings("site: ' dc'\nexternal_labels: {monitor: \"a\\tb\"}\n", "s.yml")
    assert [str(p) for p in info.value.problems] == [
        "s.yml:1: site: must not start or end with spaces, got string ' dc'",
        "s.yml:2: external_labels.monitor: must not contain control characters (NUL, CR, LF, tab, ...)"]


def test_fractional_and_plain_durations_reach_generated_configs_in_a_form_every_tool_reads(tmp_path):
    """The kit accepts `1.5m` and `90`; Prometheus' model.Duration (promtool, Alertmanager) has no
    fractions, so such values are written canonically (`1m30s`) and the real checkers accept them."""
    import subprocess

    from tests.generators.helpers import REPO, generate_into, need

    settings = loads_settings(
        "intervals: {isp_eval: 1.5s, default_eval: 7.5, isp_scrape: 1.5s}\n"
        "thresholds: {loss_for: 1.5m, recovery_hold: 90, loss_window: 0.25h}\n"
        "routing: {critical_group_interval: 7.5s, warning_repeat_interval: 1.5h}\n", "s.yml")
    assert (str(settings.intervals.isp_eval), str(settings.intervals.default_eval)) == ("1s500ms", "7s500ms")
    assert (str(settings.thresholds.loss_for), str(settings.thresholds.loss_window)) == ("1m30s", "15m")
    generate_into(tmp_path, REPO / "examples" / "inventory.yml", settings, "examples/inventory.yml")
    alerts = tmp_path / "rules" / "alerts.yml"
    assert "1s500ms" in alerts.read_text() and "1m30s" in alerts.read_text()
    for argv in (["promtool", "check", "rules", str(alerts), str(tmp_path / "rules" / "recording.yml")],
                 ["vmalert", "-dryRun", f"-rule={alerts}"],
                 ["amtool", "check-config", str(tmp_path / "alertmanager" / "alertmanager.yml")],
                 ["vmagent", "-promscrape.config.dryRun", f"-promscrape.config={tmp_path / 'vmagent' / 'scrape.yml'}",
                  f"-remoteWrite.tmpDataPath={tmp_path / 'vmagent-data'}"]):
        result = subprocess.run([need(argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{argv[0]}: {result.stdout}\n{result.stderr}"
