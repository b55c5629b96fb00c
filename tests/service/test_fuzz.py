"""Arbitrary JSON (any shape, not just schema-shaped) to every write endpoint: never a 5xx, always JSON."""

from __future__ import annotations

import json

import pytest
from conftest import AUTH, device, make_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "ip", "region", "branch", "role", "isp", "snmp", "enabled", "labels", "create",
                         "update", "delete", "items", "match", "set", "version", "community_env", "devices",
                         "times", "weekdays", "timezone"]) | st.text(max_size=8), inner, max_size=6),
    max_leaves=20)
ENDPOINTS = [("post", "/api/v1/devices"), ("post", "/api/v1/devices/bulk"), ("put", "/api/v1/devices/dev1"),
             ("patch", "/api/v1/devices/dev1"), ("put", "/api/v1/snmp-profiles/p1"),
             ("post", "/api/v1/classify-rules"), ("put", "/api/v1/classify-rules"),
             ("put", "/api/v1/classify-rules/0"), ("post", "/api/v1/maintenance-windows"),
             ("put", "/api/v1/maintenance-windows/w1")]


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    app = make_app(f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/f.db")
    client = app.test_client()
    client.post("/api/v1/devices", json=device(1), headers=AUTH)
    client.post("/api/v1/classify-rules", json={"match": {"ip_last_octet": 99}, "set": {"role": "atm"}}, headers=AUTH)
    client.put("/api/v1/maintenance-windows/w1", json={"devices": ["dev1"]}, headers=AUTH)
    yield client
    app.extensions["wardops_engine"].dispose()


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_arbitrary_json_never_5xx(fuzz_client, method, path):
    @given(body=JSON)
    @settings(max_examples=40, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(body):
        r = getattr(fuzz_client, method)(path, data=json.dumps(body), headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code < 500, (body, r.get_data(as_text=True))
        if r.status_code != 204:
            assert r.is_json, r.get_data(as_text=True)

    run()
