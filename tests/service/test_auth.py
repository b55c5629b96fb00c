"""Auth matrix, rate limiting, config validation, and secrets/tokens never leaving the service."""

from __future__ import annotations

import logging

import pytest
from conftest import ADMIN, AUTH, READ_AUTH, READER, device, make_app

from inventory.service.app import ConfigError, create_app

WRITES = [
    ("post", "/api/v1/devices", device(1)),
    ("post", "/api/v1/devices/bulk", {"create": [device(2)]}),
    ("put", "/api/v1/snmp-profiles/p", {"version": "2c", "community_env": "C"}),
    ("post", "/api/v1/classify-rules", {"match": {"ip_last_octet": 5}, "set": {"role": "isp"}}),
    ("post", "/api/v1/maintenance-windows", {"name": "w", "regions": ["Tbilisi"]}),
]
READS = ["/api/v1/devices", "/api/v1/sd", "/api/v1/snmp-profiles", "/api/v1/classify-rules",
         "/api/v1/maintenance-windows"]


@pytest.fixture(params=["open", "token"])
def read_auth_app(request, tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/a.db", READ_AUTH=request.param)
    yield app
    app.extensions["wardops_engine"].dispose()


@pytest.mark.parametrize("who", ["none", "bad", "reader", "admin"])
def test_auth_matrix(read_auth_app, who):
    client = read_auth_app.test_client()
    headers = {"none": {}, "bad": {"Authorization": "Bearer wrong-token-0123456789"}, "reader": READ_AUTH,
               "admin": AUTH}[who]
    token_reads = read_auth_app.config["READ_AUTH"] == "token"
    for path in READS:
        r = client.get(path, headers=headers)
        want = 401 if who == "bad" or (who == "none" and token_reads) else 200
        assert r.status_code == want, (path, who)
        if want == 401:
            assert r.json["error"] == "unauthorized" and "Bearer" in r.headers["WWW-Authenticate"]
    for method, path, body in WRITES:
        r = getattr(client, method)(path, json=body, headers=headers)
        want = {"none": 401, "bad": 401, "reader": 403, "admin": (200, 201)}[who]
        assert r.status_code in (want if isinstance(want, tuple) else (want,)), (path, who, r.json)
    assert client.get("/healthz", headers=headers).status_code == 200  # health is always open


def test_writes_refused_without_any_admin_token(tmp_path):
    app = create_app({"DB_URL": f"sqlite:///{tmp_path}/a.db", "RATELIMIT_ENABLED": False}, environ={})
    r = app.test_client().post("/api/v1/devices", json=device(1), headers=AUTH)
    assert r.status_code == 401


def test_tokens_from_files_and_env(tmp_path):
    (tmp_path / "admin").write_text("# admins\nfile-admin-token-0123456789\n\n")
    env = {"WARDOPS_ADMIN_TOKEN_FILE": str(tmp_path / "admin"), "WARDOPS_READ_TOKENS": f"{READER},other-reader-0123456789",
           "WARDOPS_READ_AUTH": "token", "WARDOPS_DB_URL": f"sqlite:///{tmp_path}/e.db",
           "WARDOPS_RATELIMIT_ENABLED": "false"}
    app = create_app(environ=env)
    client = app.test_client()
    assert client.get("/api/v1/sd").status_code == 401
    assert client.get("/api/v1/sd", headers={"Authorization": "Bearer other-reader-0123456789"}).status_code == 200
    r = client.post("/api/v1/devices", json=device(1), headers={"Authorization": "Bearer file-admin-token-0123456789"})
    assert r.status_code == 201
    assert client.post("/api/v1/devices", json=device(2), headers=READ_AUTH).status_code == 403


def test_config_errors_are_reported_together(tmp_path):
    with pytest.raises(ConfigError) as exc:
        create_app({"DB_URL": f"sqlite:///{tmp_path}/c.db", "READ_AUTH": "maybe", "RATELIMIT_WRITE": "lots",
                    "ADMIN_TOKENS": ["short"], "NO_SUCH_KEY": 1}, environ={})
    msg = str(exc.value)
    assert "READ_AUTH" in msg and "RATELIMIT_WRITE" in msg and "16 characters" in msg and "NO_SUCH_KEY" in msg
    with pytest.raises(ConfigError, match="cannot read token file"):
        create_app({"DB_URL": f"sqlite:///{tmp_path}/c.db", "ADMIN_TOKEN_FILE": str(tmp_path / "missing")},
                   environ={})


def test_rate_limit_per_token_is_json_429(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/r.db", RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="5 per minute",
                   RATELIMIT_WRITE="2 per minute")
    client = app.test_client()
    codes = [client.get("/api/v1/sd").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    r = client.get("/api/v1/sd")
    assert r.json["error"] == "too_many_requests" and r.headers["Retry-After"]
    # another caller (the admin token) has its own budget; writes have a tighter one
    codes = [client.post("/api/v1/devices", json=device(i), headers=AUTH).status_code for i in range(3)]
    assert codes == [201, 201, 429]
    assert client.get("/api/v1/devices", headers=READ_AUTH).status_code == 200
    # made-up tokens count against the caller's IP, not a fresh budget each
    assert client.get("/api/v1/sd", headers={"Authorization": "Bearer made-up-token-000000001"}).status_code == 429


def test_secrets_and_tokens_never_in_responses_or_logs(client, caplog, monkeypatch):
    monkeypatch.setenv("WARDOPS_SNMP_COMMUNITY", "s3cret-community-value")
    caplog.set_level(logging.DEBUG)
    client.put("/api/v1/snmp-profiles/v2", json={"version": "2c", "community_env": "WARDOPS_SNMP_COMMUNITY"},
               headers=AUTH)
    client.post("/api/v1/devices", json=device(1, snmp="v2"), headers=AUTH)
    bodies = []
    for path in ["/api/v1/snmp-profiles", "/api/v1/snmp-profiles/v2", "/api/v1/devices", "/api/v1/devices/dev1",
                 "/api/v1/sd", "/healthz", "/api/v1/openapi.json"]:
        r = client.get(path, headers=AUTH)
        assert r.status_code == 200
        bodies.append(r.get_data(as_text=True) + str(r.headers))
    r = client.put("/api/v1/snmp-profiles/v2", json={"version": "2c", "community": "s3cret-community-value"},
                   headers=AUTH)
    assert r.status_code == 422
    bodies.append(r.get_data(as_text=True))
    everything = "\n".join(bodies) + caplog.text
    assert "s3cret-community-value" not in everything
    assert ADMIN not in everything and READER not in everything
    assert "WARDOPS_SNMP_COMMUNITY" in bodies[0]  # the reference is shown
