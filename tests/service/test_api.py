"""The REST API, run against SQLite and a real PostgreSQL (the `db_url` fixture is parametrized)."""

from __future__ import annotations

import json

from conftest import AUTH, device

from inventory.model import shard_of


def create(client, *specs):
    r = client.post("/api/v1/devices/bulk", json={"create": list(specs)}, headers=AUTH)
    assert r.status_code == 200, r.json
    return r.json


def names(client, **params) -> list[str]:
    r = client.get("/api/v1/devices", query_string={"limit": 1000, **params})
    assert r.status_code == 200, r.json
    return [d["name"] for d in r.json["items"]]


def test_device_crud(client):
    r = client.post("/api/v1/devices", json=device(1, role="router", labels={"vendor": "cisco"}), headers=AUTH)
    assert r.status_code == 201, r.json
    assert r.headers["Location"] == "/api/v1/devices/dev1"
    body = r.json
    assert body["name"] == "dev1" and body["role"] == "router" and body["labels"] == {"vendor": "cisco"}
    assert body["created_at"].endswith("+00:00")
    assert body["explicit"] == device(1, role="router", labels={"vendor": "cisco"})

    r = client.get("/api/v1/devices/dev1")
    assert r.status_code == 200 and r.json["ip"] == "198.18.0.2"

    r = client.put("/api/v1/devices/dev1", json=device(1, ip="198.18.9.9"), headers=AUTH)
    assert r.status_code == 200, r.json
    assert r.json["ip"] == "198.18.9.9" and r.json["role"] == "other" and r.json["labels"] == {}

    r = client.patch("/api/v1/devices/dev1", json={"enabled": False}, headers=AUTH)
    assert r.status_code == 200 and r.json["enabled"] is False and r.json["ip"] == "198.18.9.9"

    r = client.put("/api/v1/devices/dev1", json=device(1, name="dev1-renamed"), headers=AUTH)
    assert r.status_code == 200 and r.json["name"] == "dev1-renamed"
    assert client.get("/api/v1/devices/dev1").status_code == 404

    r = client.delete("/api/v1/devices/dev1-renamed", headers=AUTH)
    assert r.status_code == 204 and r.data == b""
    r = client.get("/api/v1/devices/dev1-renamed")
    assert r.status_code == 404 and r.json["error"] == "not_found"
    assert client.delete("/api/v1/devices/dev1-renamed", headers=AUTH).status_code == 404


def test_validation_errors_name_field_and_reason(client):
    r = client.post("/api/v1/devices", json=device(1, ip="999.1.1.1", role="toaster"), headers=AUTH)
    assert r.status_code == 422
    fields = {p["field"]: p["message"] for p in r.json["problems"]}
    assert "invalid ip '999.1.1.1'" in fields["ip"]
    assert "unknown role 'toaster'" in fields["role"]
    r = client.post("/api/v1/devices", json={**device(1), "colour": "red"}, headers=AUTH)
    assert r.status_code == 422 and r.json["problems"][0]["field"] == "colour"
    assert r.json["problems"][0]["message"].startswith("unknown key (allowed: name, ip,")
    assert client.get("/api/v1/devices").json["total"] == 0


def test_duplicates_are_409(client):
    create(client, device(1), device(2))
    r = client.post("/api/v1/devices", json=device(3, ip=device(1)["ip"]), headers=AUTH)
    assert r.status_code == 409 and r.json["error"] == "duplicate"
    assert r.json["problems"][0]["field"] == "ip" and "duplicate ip" in r.json["problems"][0]["message"]
    r = client.post("/api/v1/devices", json=device(1, ip="198.18.50.1"), headers=AUTH)
    assert r.status_code == 409 and "duplicate device name" in r.json["problems"][0]["message"]
    # IPv6 duplicates are found on the canonical form
    create(client, device(4, ip="2001:2::10"))
    r = client.post("/api/v1/devices", json=device(5, ip="2001:0002:0:0::0010"), headers=AUTH)
    assert r.status_code == 409


def test_bulk_is_all_or_nothing_with_item_errors(client):
    create(client, device(1), device(2), device(3))
    body = {
        "delete": ["dev3"],
        "update": [device(1, role="router"), device(2, ip="198.18.77.1", region=7)],
        "create": [device(10), device(11, ip=device(1)["ip"]), device(12, branch="")],
    }
    r = client.post("/api/v1/devices/bulk", json=body, headers=AUTH)
    assert r.status_code == 409  # a duplicate IP among the problems
    problems = r.json["problems"]
    by_loc = {p["location"]: p for p in problems}
    assert by_loc["$.update[1].region"]["op"] == "update" and by_loc["$.update[1].region"]["index"] == 1
    assert by_loc["$.update[1].region"]["device"] == "dev2"
    assert by_loc["$.create[1].ip"]["device"] == "dev11" and by_loc["$.create[1].ip"]["index"] == 1
    assert by_loc["$.create[2].branch"]["field"] == "branch"
    # nothing applied
    assert names(client) == ["dev1", "dev2", "dev3"]
    assert client.get("/api/v1/devices/dev1").json["role"] == "other"

    body["update"][1] = device(2, ip="198.18.77.1")
    body["create"] = [device(10), device(11)]
    r = client.post("/api/v1/devices/bulk", json=body, headers=AUTH)
    assert r.status_code == 200, r.json
    assert r.json["created"] == 2 and r.json["updated"] == 2 and r.json["deleted"] == 1
    assert names(client) == ["dev1", "dev2", "dev10", "dev11"]
    assert client.get("/api/v1/devices/dev2").json["ip"] == "198.18.77.1"


def test_bulk_request_problems(client):
    create(client, device(1))
    r = client.post("/api/v1/devices/bulk", json={"delete": ["nope", 5], "update": [{"ip": "x"}], "x": 1},
                    headers=AUTH)
    assert r.status_code == 422 and r.json["problems"][0]["location"] == "$.x"
    r = client.post("/api/v1/devices/bulk", json={"delete": ["nope", 5], "update": [device(9)]}, headers=AUTH)
    assert r.status_code == 422
    locs = {p["location"]: p["message"] for p in r.json["problems"]}
    assert "no device named 'nope'" in locs["$.delete[0]"]
    assert "strings" in locs["$.delete[1]"]
    assert "no device named 'dev9'" in locs["$.update[0].name"]


def test_bulk_items_of_the_wrong_type_are_422(client):
    create(client, device(1))
    r = client.post("/api/v1/devices/bulk", json={"delete": ["dev1"], "create": [5, None, "x", [1]]}, headers=AUTH)
    assert r.status_code == 422
    assert [p["location"] for p in r.json["problems"]] == [f"$.create[{i}]" for i in range(4)]
    assert all("must be a mapping" in p["message"] for p in r.json["problems"])
    assert names(client) == ["dev1"]


def test_bulk_swaps_ips_in_one_write(client):
    create(client, device(1), device(2))
    a, b = device(1)["ip"], device(2)["ip"]
    r = client.post("/api/v1/devices/bulk", json={"update": [device(1, ip=b), device(2, ip=a)]}, headers=AUTH)
    assert r.status_code == 200, r.json
    assert client.get("/api/v1/devices/dev1").json["ip"] == b
    assert client.get("/api/v1/devices/dev2").json["ip"] == a


def test_list_pagination_and_sql_filters(client):
    specs = [device(i, role="atm" if i % 3 == 0 else "router", region="Batumi" if i % 2 else "Tbilisi",
                    enabled=i % 5 != 0) for i in range(1, 26)]
    create(client, *specs)
    r = client.get("/api/v1/devices", query_string={"limit": 10})
    assert r.json["total"] == 25 and r.json["has_more"] is True and len(r.json["items"]) == 10
    r = client.get("/api/v1/devices", query_string={"limit": 10, "offset": 20})
    assert r.json["has_more"] is False and [d["name"] for d in r.json["items"]] == [f"dev{i}" for i in range(21, 26)]
    # cursor pagination walks everything exactly once
    seen, cursor = [], None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/devices", query_string=params).json
        seen += [d["name"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            assert cursor is None
            break
    assert seen == [s["name"] for s in specs]
    assert names(client, role="atm") == [s["name"] for s in specs if s["role"] == "atm"]
    assert names(client, region="Batumi", enabled="false") == ["dev5", "dev15", "dev25"]
    r = client.get("/api/v1/devices", query_string={"role": "atm,router", "region": "Tbilisi", "limit": 3})
    assert r.json["total"] == 12
    assert names(client, q="DEV2") == ["dev2"] + [f"dev{i}" for i in range(20, 26)]
    assert names(client, q="198.18.0.13") == ["dev12"]
    assert names(client, q="%") == []  # LIKE wildcards are escaped
    assert names(client, branch="Branch 3") == ["dev3", "dev10", "dev17", "dev24"]


def test_list_bad_parameters_are_400(client):
    for params in ({"limit": 0}, {"limit": "x"}, {"limit": "²"}, {"offset": -1}, {"role": "toaster"},
                   {"enabled": "maybe"}, {"colour": "red"}, {"cursor": "!!"}, {"cursor": "aWQ6MQ", "offset": 1}):
        r = client.get("/api/v1/devices", query_string=params)
        assert r.status_code == 400, params
        assert r.json["error"] == "bad_request"


def test_classify_rules_apply_to_fields_a_device_does_not_set(client):
    client.put("/api/v1/snmp-profiles/branch-v2c", json={"version": "2c", "community_env": "C"}, headers=AUTH)
    r = client.post("/api/v1/classify-rules", json={"match": {"ip_last_octet": 5}, "set": {"role": "isp"}},
                    headers=AUTH)
    assert r.status_code == 201 and r.json["index"] == 0
    create(client, {"name": "up1", "ip": "198.18.1.5", "region": "Tbilisi", "branch": "Branch 1", "isp": "Magti"},
           {"name": "rtr1", "ip": "198.18.1.6", "region": "Tbilisi", "branch": "Branch 1"},
           {"name": "sw5", "ip": "198.18.2.5", "region": "Tbilisi", "branch": "Branch 2", "role": "switch"})
    up1 = client.get("/api/v1/devices/up1").json
    assert up1["role"] == "isp" and "role" not in up1["explicit"]
    assert client.get("/api/v1/devices/sw5").json["role"] == "switch"  # explicit wins
    assert names(client, role="isp") == ["up1"]  # the SQL filter sees resolved fields

    # a new rule re-resolves stored devices (only those it affects)
    r = client.post("/api/v1/classify-rules", json={"match": {"ip_last_octet": 6},
                                                    "set": {"role": "router", "snmp": "branch-v2c"}}, headers=AUTH)
    assert r.status_code == 201, r.json
    assert client.get("/api/v1/devices/rtr1").json["snmp"] == "branch-v2c"
    assert names(client, snmp="branch-v2c") == ["rtr1"]
    assert names(client, snmp="") == ["up1", "sw5"]
    # the profile is now in use by a rule: deleting it is a conflict, nothing changes
    r = client.delete("/api/v1/snmp-profiles/branch-v2c", headers=AUTH)
    assert r.status_code == 409 and r.json["error"] == "conflict"
    assert any(p.get("resource") == "classify_rule" for p in r.json["problems"])
    # deleting the first rule: up1 becomes role other, and then its isp is invalid -> 409, named
    r = client.delete("/api/v1/classify-rules/0", headers=AUTH)
    assert r.status_code == 409
    assert r.json["problems"][0]["device"] == "up1" and r.json["problems"][0]["field"] == "isp"
    assert client.get("/api/v1/classify-rules").json["items"][0]["set"] == {"role": "isp"}

    r = client.put("/api/v1/classify-rules", json={"items": [{"match": {"ip_last_octet": 5}, "set": {"role": "isp"}}]},
                   headers=AUTH)
    assert r.status_code == 200 and len(r.json["items"]) == 1
    assert client.get("/api/v1/devices/rtr1").json["snmp"] is None
    r = client.put("/api/v1/classify-rules/0", json={"match": {}, "set": {"role": "isp"}}, headers=AUTH)
    assert r.status_code == 422 and r.json["problems"][0]["field"] == "match"
    assert client.get("/api/v1/classify-rules/5").status_code == 404


def test_snmp_profiles_are_references_only(client):
    r = client.put("/api/v1/snmp-profiles/core-v3", headers=AUTH, json={
        "version": "3", "username": "monitor", "auth_protocol": "SHA", "auth_key_env": "WARDOPS_SNMP_AUTH",
        "priv_protocol": "AES", "priv_key_file": "/etc/wardops/priv.key"})
    assert r.status_code == 201, r.json
    assert r.json == {"name": "core-v3", "version": "3", "auth_key_env": "WARDOPS_SNMP_AUTH",
                      "priv_key_file": "/etc/wardops/priv.key", "username": "monitor", "auth_protocol": "SHA",
                      "priv_protocol": "AES"}
    r = client.put("/api/v1/snmp-profiles/bad", json={"version": "2c", "community": "public"}, headers=AUTH)
    assert r.status_code == 422 and "inline secret" in r.json["problems"][0]["message"]
    assert "public" not in r.get_data(as_text=True)
    listing = client.get("/api/v1/snmp-profiles").json
    assert [p["name"] for p in listing["items"]] == ["core-v3"]
    assert client.get("/api/v1/snmp-profiles/nope").status_code == 404
    assert client.delete("/api/v1/snmp-profiles/core-v3", headers=AUTH).status_code == 204
    assert client.get("/api/v1/snmp-profiles").json == {"items": []}


def test_maintenance_windows(client):
    create(client, device(1), device(2))
    w = {"name": "sunday-night", "branches": ["Branch 1"], "weekdays": ["sunday"], "times": ["01:00-03:00"],
         "timezone": "Asia/Tbilisi"}
    r = client.post("/api/v1/maintenance-windows", json=w, headers=AUTH)
    assert r.status_code == 201 and r.json == w
    r = client.post("/api/v1/maintenance-windows", json=w, headers=AUTH)
    assert r.status_code == 409
    r = client.put("/api/v1/maintenance-windows/dev-window", json={"devices": ["dev2"], "times": ["25:00-26:00"]},
                   headers=AUTH)
    assert r.status_code == 422 and r.json["problems"][0]["field"] == "times[0]"
    r = client.put("/api/v1/maintenance-windows/dev-window", json={"devices": ["dev2"]}, headers=AUTH)
    assert r.status_code == 201
    # deleting a device a window names is a conflict with the window
    r = client.delete("/api/v1/devices/dev2", headers=AUTH)
    assert r.status_code == 409 and r.json["problems"][0]["resource"] == "maintenance_window"
    assert [x["name"] for x in client.get("/api/v1/maintenance-windows").json["items"]] == ["sunday-night",
                                                                                          "dev-window"]
    assert client.delete("/api/v1/maintenance-windows/dev-window", headers=AUTH).status_code == 204
    assert client.delete("/api/v1/devices/dev2", headers=AUTH).status_code == 204
    assert client.get("/api/v1/maintenance-windows/dev-window").status_code == 404


def test_sd_contract(client):
    assert client.get("/api/v1/sd").json == []
    client.put("/api/v1/snmp-profiles/p", json={"version": "2c", "community_env": "C"}, headers=AUTH)
    create(client, device(1, role="isp", isp="Magti"), device(2, snmp="p", labels={"vendor": "cisco"}),
           device(3, enabled=False), device(4, ip="2001:2::4", role="router"))
    r = client.get("/api/v1/sd")
    assert r.status_code == 200 and r.mimetype == "application/json"
    groups = r.json
    assert groups == [
        {"targets": ["198.18.0.2"], "labels": {"device": "dev1", "ip": "198.18.0.2", "role": "isp",
                                                "region": "Tbilisi", "branch": "Branch 1", "isp": "Magti"}},
        {"targets": ["198.18.0.3"], "labels": {"device": "dev2", "ip": "198.18.0.3", "role": "other",
                                                "region": "Tbilisi", "branch": "Branch 2",
                                                "__meta_wardops_snmp_profile": "p",
                                                "__meta_wardops_label_vendor": "cisco"}},
        {"targets": ["2001:2::4"], "labels": {"device": "dev4", "ip": "2001:2::4", "role": "router",
                                               "region": "Tbilisi", "branch": "Branch 4"}},
    ]
    assert [g["labels"]["device"] for g in client.get("/api/v1/sd?role=isp").json] == ["dev1"]
    assert [g["labels"]["device"] for g in client.get("/api/v1/sd?exclude_role=isp").json] == ["dev2", "dev4"]
    assert [g["labels"]["device"] for g in client.get("/api/v1/sd?role=isp,router").json] == ["dev1", "dev4"]
    shards = [[g["labels"] for g in client.get(f"/api/v1/sd?shard={i}/2").json] for i in range(2)]
    assert sorted(lb["device"] for lb in shards[0] + shards[1]) == ["dev1", "dev2", "dev4"]
    # Shards are cut by branch (region/branch), so a branch's uplinks and devices stay together.
    assert all(shard_of(f"{lb['region']}\x00{lb['branch']}", 2) == i for i in range(2) for lb in shards[i])
    for bad in ("shard=2/2", "shard=x", "shard=1/0", "role=toaster", "other=1"):
        assert client.get(f"/api/v1/sd?{bad}").status_code == 400, bad


def test_sd_etag_304_and_change(client):
    create(client, device(1))
    r = client.get("/api/v1/sd")
    etag = r.headers["ETag"]
    r2 = client.get("/api/v1/sd", headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.data == b"" and r2.headers["ETag"] == etag
    create(client, device(2))
    r3 = client.get("/api/v1/sd", headers={"If-None-Match": etag})
    assert r3.status_code == 200 and len(r3.json) == 2 and r3.headers["ETag"] != etag
    # a filtered variant has its own ETag
    assert client.get("/api/v1/sd?role=isp").headers["ETag"] != r3.headers["ETag"]


def test_json_errors_never_500(client):
    r = client.post("/api/v1/devices", data="{bad", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400 and "line 1" in r.json["message"]
    r = client.post("/api/v1/devices", data="", headers=AUTH)
    assert r.status_code == 400
    r = client.post("/api/v1/devices", data='{"name": NaN}', headers=AUTH)
    assert r.status_code == 400
    r = client.post("/api/v1/devices", data='{"timeout": 1e999}', headers=AUTH)
    assert r.status_code == 400
    r = client.post("/api/v1/devices", data="[" * 100000 + "]" * 100000, headers=AUTH)
    assert r.status_code == 400
    r = client.post("/api/v1/devices", json=[1, 2], headers=AUTH)
    assert r.status_code == 422
    r = client.post("/api/v1/devices", data=b"\xff\xfe", headers=AUTH)
    assert r.status_code == 400
    r = client.post("/api/v1/devices", json=device(1, ip="fe80::1%\u0000x"), headers=AUTH)
    assert r.status_code in (201, 422)  # PostgreSQL text cannot hold NUL: a 422, never a 500
    r = client.delete("/api/v1/sd")
    assert r.status_code == 405 and r.json["error"] == "method_not_allowed"
    r = client.get("/api/v1/nothing")
    assert r.status_code == 404 and r.json["error"] == "not_found"
    r = client.get("/api/v1/classify-rules/-1")
    assert r.status_code == 404


def test_body_size_limit_413(db_url):
    from conftest import make_app

    app = make_app(db_url, MAX_CONTENT_LENGTH=4096)
    try:
        r = app.test_client().post("/api/v1/devices/bulk", data=json.dumps({"create": [device(i) for i in range(200)]}),
                                   headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 413 and r.json["error"] == "request_entity_too_large"
    finally:
        app.extensions["wardops_engine"].dispose()


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json["status"] == "ok" and r.json["database"]["ok"] is True
    assert r.json["database"]["schema_version"] == 2 and r.json["inventory"]["valid"] is True


def test_healthz_reports_database_down(tmp_path):
    from conftest import make_app

    app = make_app(f"sqlite:///{tmp_path}/x.db")
    app.extensions["wardops_engine"].dispose()
    for name in ("x.db", "x.db-wal", "x.db-shm"):  # the database is gone (a new empty file has no schema)
        (tmp_path / name).unlink(missing_ok=True)
    r = app.test_client().get("/healthz")
    assert r.status_code == 503 and r.json["status"] == "error" and r.json["database"]["ok"] is False
    assert r.json["database"]["error"] == "OperationalError"


def test_openapi_document_is_served(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/sd" in doc["paths"] and "/api/v1/devices/bulk" in doc["paths"]


def test_schema_migration_is_idempotent(db_url):
    from conftest import make_app

    a = make_app(db_url)
    a.test_client().post("/api/v1/devices", json=device(1), headers=AUTH)
    a.extensions["wardops_engine"].dispose()
    b = make_app(db_url)  # a second start keeps data and schema
    try:
        assert b.test_client().get("/api/v1/devices/dev1").status_code == 200
    finally:
        b.extensions["wardops_engine"].dispose()


def test_html_device_list(client):
    create(client, device(1, labels={"note": "<script>alert(1)</script>"}), device(2, role="atm"))
    r = client.get("/")
    text = r.get_data(as_text=True)
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    text = client.get("/?role=atm").get_data(as_text=True)
    assert "<td>dev2</td>" in text and "<td>dev1</td>" not in text
    assert client.get("/?role=toaster").status_code == 400


def test_sd_gzip_for_large_lists(client):
    import gzip

    create(client, *[device(i) for i in range(1, 40)])
    plain = client.get("/api/v1/sd")
    assert "Content-Encoding" not in plain.headers and len(plain.json) == 39
    r = client.get("/api/v1/sd", headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip" and r.headers["Vary"] == "Accept-Encoding"
    assert json.loads(gzip.decompress(r.data)) == plain.json
    assert r.headers["ETag"] != plain.headers["ETag"]
    r2 = client.get("/api/v1/sd", headers={"Accept-Encoding": "gzip", "If-None-Match": r.headers["ETag"]})
    assert r2.status_code == 304


def test_start_rewrites_stale_resolved_columns(db_url):
    from conftest import make_app
    from sqlalchemy import update

    from inventory.service.db import devices_table

    app = make_app(db_url)
    client = app.test_client()
    create(client, device(1, role="router"), device(2))
    generation = client.get("/healthz").json["inventory"]["generation"]
    engine = app.extensions["wardops_engine"]
    with engine.begin() as conn:  # as if an older version had resolved it differently
        conn.execute(update(devices_table).where(devices_table.c.name == "dev1").values(role="atm", region="X"))
    app.extensions["wardops_engine"].dispose()
    app = make_app(db_url)
    try:
        client = app.test_client()
        assert names(client, role="router") == ["dev1"] and names(client, region="X") == []
        assert client.get("/healthz").json["inventory"]["generation"] == generation + 1
        app.extensions["wardops_engine"].dispose()
        app = make_app(db_url)  # nothing stale: no write at start
        assert app.test_client().get("/healthz").json["inventory"]["generation"] == generation + 1
    finally:
        app.extensions["wardops_engine"].dispose()
