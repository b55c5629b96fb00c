"""Secrets resolve from env/files, are format-checked, and never show in repr, str or errors."""

import pytest

from exporter.snmp.credentials import CommunityAuth, CredentialError, UsmAuth, resolve_auth
from inventory.model import SnmpProfile
from inventory.secrets import Secret


def test_v2c_and_v1_community_from_env_and_file(tmp_path):
    f = tmp_path / "community"
    f.write_text("from-file-secret\n")
    a = resolve_auth(SnmpProfile("p", "2c", community=Secret("file", str(f))))
    assert a == CommunityAuth(1, b"from-file-secret")
    b = resolve_auth(SnmpProfile("p", "1", community=Secret("env", "C")), {"C": "env-secret"})
    assert b.version == 0 and b.community == b"env-secret"
    assert "secret" not in repr(a) + str(b)


def test_v3_user_data_and_masking():
    env = {"A": "auth-secret-1", "P": "priv-secret-2"}
    p = SnmpProfile("core", "3", username="mon", auth_protocol="SHA256", auth_key=Secret("env", "A"),
                    priv_protocol="AES256", priv_key=Secret("env", "P"))
    auth = resolve_auth(p, env)
    assert isinstance(auth, UsmAuth) and auth.auth_key == "auth-secret-1"
    assert "secret" not in repr(auth) and "secret" not in str(auth)
    ud = auth.user_data()
    assert ud.userName == "mon" and ud.security_level == "authPriv"


@pytest.mark.parametrize("profile,env,fragment", [
    (SnmpProfile("p", "2c", community=Secret("env", "C")), {}, "environment variable C is not set"),
    (SnmpProfile("p", "2c", community=Secret("env", "C")), {"C": "bad\x01secret"}, "control characters"),
    (SnmpProfile("p", "3", username="u", auth_protocol="SHA", auth_key=Secret("env", "A")), {"A": "k3y"},
     "auth_key (Secret(env:A)): auth_key is shorter than 8 characters"),
])
def test_bad_secrets_named_by_reference_only(profile, env, fragment):
    with pytest.raises(CredentialError) as exc:
        resolve_auth(profile, env)
    assert fragment in str(exc.value) and "snmp profile 'p'" in str(exc.value)
    for value in env.values():
        assert value not in str(exc.value)
