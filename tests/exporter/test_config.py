from pathlib import Path

import pytest

from exporter.config import (
    BUILTIN_POLICIES,
    ConfigError,
    ExporterConfig,
    SnmpSettings,
    load_config,
    loads_config,
)
from wardops.cli import main

DATA = Path(__file__).parent / "testdata"

# One tiny file per failure, each with every message it must produce (in order).
INVALID = {
    "invalid-default-policy.yml": [
        "1: default_policy: unknown policy 'nope' (defined: isp, default)",
    ],
    "invalid-duplicate-key.yml": [
        "4: policies.isp: duplicate key 'interval'",
    ],
    "invalid-duration.yml": [
        "3: policies.isp.interval: must be a duration like 1h30m, 5m, 2s, 1.5s, 500ms (units d h m s ms, largest first; a plain number is seconds), got string 'soon'",
        '4: policies.isp.timeout: must be a duration above 0s to 1m, got number -1',
    ],
    "invalid-icmp.yml": [
        "2: icmp.mode: must be one of auto, unprivileged, raw, got string 'kernel'",
        "3: icmp.source_ipv4: must be an IPv4 address, got string '2001:db8::1'",
        '4: icmp.receive_buffer: must be a whole number from 65536 to 1073741824, got number 10',
    ],
    "invalid-integer.yml": [
        '3: policies.isp.packets: must be a whole number from 1 to 20, got number 0',
        '4: policies.isp.down_after: must be a whole number from 1 to 100, got number 1.5',
    ],
    "invalid-policies-list.yml": [
        '1: policies: must be a mapping of policy name to settings, got a list',
    ],
    "invalid-probe-cidrs.yml": [
        "2: probe.allowed_cidrs[0]: invalid CIDR '198.18.0.1/15': 198.18.0.1/15 has host bits set",
        "2: probe.allowed_cidrs[1]: invalid CIDR 'nonsense': 'nonsense' does not appear to be an IPv4 or IPv6 network",
    ],
    "invalid-role-policies.yml": [
        "2: role_policies.isp: unknown policy 'fastest' (defined: isp, default)",
        "3: role_policies.printer: unknown role 'printer' (one of isp, router, switch, firewall, atm, server, other)",
    ],
    "invalid-round-longer-than-interval.yml": [
        '2: policies.fast: a round needs spacing x (packets - 1) + timeout = 0.7s, more than its interval 0.5s',
    ],
    "invalid-site.yml": [
        "2: site.canaries[2]: must be an IPv4 or IPv6 address (no prefix or zone), got string 'gateway'",
        "2: site.canaries[3]: must be an IPv4 or IPv6 address (no prefix or zone), got string '192.0.2.1/32'",
        '2: site.canaries[4]: duplicate canary 2001:db8::1 (also site.canaries[1])',
        '2: site.canaries[5]: 224.0.0.1 is not a unicast host address',
        '2: site.canaries[6]: must be an IPv4 or IPv6 address (no prefix or zone), got number 7',
        '3: site.gateway: unknown key (allowed: canaries, name)',
    ],
    "invalid-snmp-deadline.yml": [
        '1: snmp.deadline: must not exceed snmp.interval 30s, got 45s',
    ],
    "invalid-snmp.yml": [
        "2: snmp.enabled: must be true or false, got string 'yes'",
        "3: snmp.interval: must be a duration above 1s to 1h, got string '500ms'",
        '4: snmp.concurrency: must be a whole number from 1 to 4096, got number 0',
        "5: snmp.static_every: must be a whole number from 1 to 1000, got string 'many'",
        '6: snmp.deadline: must not exceed snmp.interval 1m, got 2m',
        '7: snmp.community: unknown key (allowed: enabled, interval, concurrency, static_every, deadline)',
    ],
    "invalid-unknown-policy-key.yml": [
        '4: policies.isp.retries: unknown key (allowed: interval, packets, spacing, timeout, down_after, up_after)',
    ],
    "invalid-unknown-top-key.yml": [
        '1: polices: unknown key (allowed: policies, role_policies, default_policy, policy_label, icmp, probe, inventory, snmp, site, secrets)',
    ],
    "invalid-yaml-syntax.yml": [
        "3: YAML syntax error: did not find expected ',' or '}'",
    ],
    "invalid-inventory-limits.yml": [
        "2: inventory.max_bytes: must be a whole number from 1024 to 17179869184, got number 10",
        "3: inventory.max_drop_share: must be a number from 0 to 1, got number 1.5",
        "4: inventory.hold_time: must be a duration like 1h30m, 5m, 2s, 1.5s, 500ms (units d h m s ms, largest "
        "first; a plain number is seconds), got string 'forever'",
        "5: inventory.timeout: must be a duration above 0s to 5m, got number 0",
    ],
    "invalid-secrets.yml": [
        "2: secrets.directory: must be an absolute directory path, got string 'etc/secrets'",
        "3: secrets.env_prefix: must be a non-empty environment variable name prefix [A-Za-z_][A-Za-z0-9_]*, "
        "got string 'WARD-'",
        "4: secrets.community: unknown key (allowed: directory, env_prefix)",
    ],
}


def test_every_invalid_file_is_in_the_table():
    assert sorted(p.name for p in DATA.glob("invalid-*.yml")) == sorted(INVALID)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_config_reports_every_problem_with_file_and_line(name):
    path = DATA / name
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert [str(p) for p in err.value.problems] == [f"{path}:{m}" for m in INVALID[name]]


def test_defaults_without_a_file():
    cfg = load_config(None)
    assert cfg == ExporterConfig()
    assert dict(cfg.policies) == dict(BUILTIN_POLICIES)
    isp, default = cfg.policies["isp"], cfg.policies["default"]
    assert cfg.policy_for("isp", {}) is isp
    assert cfg.policy_for("router", {}) is default
    assert cfg.policy_for("router", {"probe_policy": "isp"}) is isp
    assert cfg.policy_for("isp", {"probe_policy": "nonexistent"}) is isp  # unknown label -> role mapping
    # every default round fits its interval, with room for the send burst
    assert all(p.busy < p.interval for p in cfg.policies.values())


def test_detection_and_false_down_budget_of_the_defaults():
    """The targets in the issue, computed from the default policies (docs/icmp.md shows the sums)."""
    q = 0.01  # 1 % random packet loss
    isp, default = BUILTIN_POLICIES["isp"], BUILTIN_POLICIES["default"]
    for policy, worst_detect, max_false_per_device_year in ((isp, 1.5, 1e-4), (default, 3.0, 1e-4)):
        detect = policy.down_after * policy.interval + policy.busy  # dark right after a good round
        assert detect <= worst_detect
        rounds_per_year = 365 * 86400 / policy.interval
        assert (q ** policy.packets) ** policy.down_after * rounds_per_year < max_false_per_device_year


def test_valid_full_file_overrides_and_inherits():
    cfg = load_config(str(DATA / "valid-full.yml"))
    assert cfg.policies["isp"].packets == 4 and cfg.policies["isp"].up_after == 3
    core = cfg.policies["core"]
    assert (core.interval, core.timeout) == (10.0, 3.0)
    assert core.packets == BUILTIN_POLICIES["default"].packets  # unspecified fields from `default`
    assert cfg.policy_for("router", {}) is core
    assert cfg.policy_for("switch", {"ping_policy": "isp"}) is cfg.policies["isp"]
    assert cfg.icmp.mode == "unprivileged" and cfg.icmp.source_ipv4 == "192.0.2.1"
    assert [str(n) for n in cfg.probe.allowed_cidrs] == ["198.18.0.0/15", "2001:2::/48"]
    assert cfg.inventory.poll_interval == 1.0


def test_zero_spacing_and_millisecond_durations():
    cfg = loads_config("policies:\n  x: {interval: 250ms, packets: 1, spacing: 0, timeout: 0.2}\n")
    x = cfg.policies["x"]
    assert (x.interval, x.spacing, x.timeout) == (0.25, 0.0, 0.2)


def test_check_config_command(capsys):
    assert main(["exporter", "--check-config", str(DATA / "valid-full.yml")]) == 0
    assert "isp every 2s" in capsys.readouterr().out
    assert main(["exporter", "--check-config", str(DATA / "invalid-icmp.yml")]) == 1
    err = capsys.readouterr().err
    assert "invalid-icmp.yml:2: icmp.mode" in err and "3 error(s)" in err


def test_the_documented_config_is_valid_and_equals_the_defaults():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "icmp.md").read_text()
    block = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert loads_config(block, "docs/icmp.md") == ExporterConfig()


def test_snmp_section_defaults_and_overrides():
    assert load_config(None).snmp == SnmpSettings()
    assert (SnmpSettings().enabled, SnmpSettings().interval, SnmpSettings().concurrency) == (True, 60.0, 64)
    cfg = loads_config("snmp: {enabled: false, interval: 30s, concurrency: 8, static_every: 5, deadline: 10s}\n")
    assert cfg.snmp == SnmpSettings(enabled=False, interval=30.0, concurrency=8, static_every=5, deadline=10.0)
    assert loads_config("snmp: {deadline: null}\n").snmp.deadline is None


def test_site_canaries_are_canonical_addresses_in_order():
    assert load_config(None).site.canaries == ()
    cfg = loads_config('site:\n  canaries: [198.18.255.1, "2001:DB8:0:0::7"]\n')
    assert cfg.site.canaries == ("198.18.255.1", "2001:db8::7")


def test_inventory_fetch_limits_and_secrets_policy_keys():
    from exporter.config import InventorySettings, SecretsSettings

    cfg = load_config(None)
    assert cfg.secrets == SecretsSettings() and not cfg.secrets.configured
    cfg = loads_config("inventory: {timeout: 3s, max_bytes: 4096, max_drop_share: 0.2, hold_time: 0}\n"
                       "secrets: {directory: /etc/wardops/secrets, env_prefix: WARDOPS_}\n")
    assert cfg.inventory == InventorySettings(timeout=3.0, max_bytes=4096, max_drop_share=0.2, hold_time=0.0)
    assert cfg.secrets == SecretsSettings("/etc/wardops/secrets", "WARDOPS_") and cfg.secrets.configured
    with pytest.raises(ConfigError) as err:
        loads_config("inventory: {max_drop_share: 1.5, hold_time: 8d}\nsecrets: {directory: etc, env_prefix: A-}\n",
                     "c.yml")
    assert [str(p) for p in err.value.problems] == [
        "c.yml:1: inventory.max_drop_share: must be a number from 0 to 1, got number 1.5",
        "c.yml:1: inventory.hold_time: must be a duration from 0s to 7d, got string '8d'",
        "c.yml:2: secrets.directory: must be an absolute directory path, got string 'etc'",
        "c.yml:2: secrets.env_prefix: must be a non-empty environment variable name prefix [A-Za-z_][A-Za-z0-9_]*, "
        "got string 'A-'"]
