"""Which credentials the lab's SNMP agent gets from an inventory (no agent started)."""

import pytest

from inventory.loader import load_inventory
from wardops.lab.snmplab import SnmpLabError, env_value, lab_credentials, snmp_devices


def test_example_inventory_profiles_become_one_community_and_one_v3_user():
    inv = load_inventory("examples/inventory.yml")
    asked = []

    def value_of(secret, lab_default):
        asked.append((secret.ref, lab_default))
        return f"value-of-{secret.ref}"

    community, users, n = lab_credentials(inv, value_of)
    assert community == "value-of-WARDOPS_SNMP_COMMUNITY" and n == 1
    (user,) = users
    assert (user.username, user.auth_protocol, user.priv_protocol) == ("monitor", "SHA", "AES")
    assert (user.auth_key, user.priv_key) == ("value-of-WARDOPS_SNMP_AUTH", "value-of-WARDOPS_SNMP_PRIV")
    assert sorted(ref for ref, _ in asked) == ["WARDOPS_SNMP_AUTH", "WARDOPS_SNMP_COMMUNITY", "WARDOPS_SNMP_PRIV"]
    assert all(d.snmp for d in snmp_devices(inv)) and len(snmp_devices(inv)) == 44


def test_env_value_requires_the_variable_and_never_shows_a_value(monkeypatch):
    inv = load_inventory("examples/inventory.yml")
    monkeypatch.delenv("WARDOPS_SNMP_COMMUNITY", raising=False)
    monkeypatch.setenv("WARDOPS_SNMP_AUTH", "s3cret-auth")
    monkeypatch.setenv("WARDOPS_SNMP_PRIV", "s3cret-priv")
    with pytest.raises(SnmpLabError, match=r"\$WARDOPS_SNMP_COMMUNITY is not set") as err:
        lab_credentials(inv, env_value)
    assert "s3cret" not in str(err.value)
    monkeypatch.setenv("WARDOPS_SNMP_COMMUNITY", "c0mm")
    community, users, _ = lab_credentials(inv, env_value)
    assert community == "c0mm" and users[0].priv_key == "s3cret-priv"
