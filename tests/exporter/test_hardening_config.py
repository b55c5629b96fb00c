"""Config keys of the hardening settings: inventory fetch limits, shrink hold, secrets policy."""

from pathlib import Path

import pytest

from exporter.config import ConfigError, InventorySettings, SecretsSettings, load_config, loads_config

DATA = Path(__file__).parent / "testdata" / "hardening"

INVALID = {
    "invalid-inventory.yml": [
        "2: inventory.max_bytes: must be a whole number from 1024 to 17179869184, got number 10",
        "3: inventory.max_drop_share: must be a number from 0 to 1, got number 1.5",
        "4: inventory.hold_time: must be a duration like 1h30m, 5m, 2s, 1.5s, 500ms (units d h m s ms, largest "
        "first; a plain number is seconds), got string 'forever'",
        "5: inventory.timeout: must be a duration above 0s to 5m, got number 0"],
    "invalid-secrets.yml": [
        "2: secrets.directory: must be an absolute directory path, got string 'etc/secrets'",
        "3: secrets.env_prefix: must be a non-empty environment variable name prefix [A-Za-z_][A-Za-z0-9_]*, "
        "got string 'WARD-'",
        "4: secrets.community: unknown key (allowed: directory, env_prefix)"],
}


def test_every_invalid_file_is_in_the_table():
    assert sorted(p.name for p in DATA.glob("invalid-*.yml")) == sorted(INVALID)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_config_reports_every_problem_with_file_and_line(name):
    path = DATA / name
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert [str(p) for p in err.value.problems] == [f"{path}:{m}" for m in INVALID[name]]


def test_defaults_and_overrides():
    cfg = load_config(None)
    assert cfg.inventory == InventorySettings(poll_interval=5.0, timeout=10.0, max_bytes=64 << 20,
                                              max_drop_share=0.5, hold_time=300.0)
    assert cfg.secrets == SecretsSettings() and not cfg.secrets.configured
    cfg = loads_config("inventory: {timeout: 3s, max_bytes: 4096, max_drop_share: 0.2, hold_time: 0}\n"
                       "secrets: {directory: /etc/wardops/secrets, env_prefix: WARDOPS_}\n")
    assert cfg.inventory == InventorySettings(timeout=3.0, max_bytes=4096, max_drop_share=0.2, hold_time=0.0)
    assert cfg.secrets == SecretsSettings("/etc/wardops/secrets", "WARDOPS_") and cfg.secrets.configured
