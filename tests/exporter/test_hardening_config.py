"""Config keys of the hardening settings: inventory fetch limits, shrink hold, secrets policy."""



from exporter.config import InventorySettings, SecretsSettings, load_config, loads_config

# The invalid-input files of these keys are in the one exporter-config table (test_config.py).


def test_defaults_and_overrides():
    cfg = load_config(None)
    assert cfg.inventory == InventorySettings(poll_interval=5.0, timeout=10.0, max_bytes=64 << 20,
                                              max_drop_share=0.5, hold_time=300.0)
    assert cfg.secrets == SecretsSettings() and not cfg.secrets.configured
    cfg = loads_config("inventory: {timeout: 3s, max_bytes: 4096, max_drop_share: 0.2, hold_time: 0}\n"
                       "secrets: {directory: /etc/wardops/secrets, env_prefix: WARDOPS_}\n")
    assert cfg.inventory == InventorySettings(timeout=3.0, max_bytes=4096, max_drop_share=0.2, hold_time=0.0)
    assert cfg.secrets == SecretsSettings("/etc/wardops/secrets", "WARDOPS_") and cfg.secrets.configured
