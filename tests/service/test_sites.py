"""Probe sites per device (`sites:`) through the inventory service: CRUD, bulk, classify rules,
HTTP SD (meta label and `?site=`), and the schema migration of a database made before the field."""

from __future__ import annotations

import sqlalchemy as sa
from conftest import AUTH, device, make_app

from inventory.service.db import SCHEMA_VERSION, make_engine, migrate


def sd_names(client, query: str = "") -> list[str]:
    r = client.get("/api/v1/sd" + query)
    assert r.status_code == 200, r.json
    return [g["labels"]["device"] for g in r.json]


def test_sites_round_trip_crud_bulk_and_sd(client):
    r = client.post("/api/v1/devices", json=device(1, sites=["dc1"]), headers=AUTH)
    assert r.status_code == 201, r.json
    assert r.json["sites"] == ["dc1"] and r.json["explicit"]["sites"] == ["dc1"]
    r = client.post("/api/v1/devices/bulk", json={"create": [device(2), device(3, sites=["dc2", "dc1"])]},
                    headers=AUTH)
    assert r.status_code == 200, r.json
    assert client.get("/api/v1/devices/dev2").json["sites"] == []  # every site
    assert client.get("/api/v1/devices/dev3").json["sites"] == ["dc2", "dc1"]
    r = client.patch("/api/v1/devices/dev1", json={"sites": ["dc2"]}, headers=AUTH)
    assert r.status_code == 200 and r.json["sites"] == ["dc2"]

    groups = {g["labels"]["device"]: g["labels"] for g in client.get("/api/v1/sd").json}
    assert groups["dev1"]["__meta_wardops_sites"] == ",dc2,"
    assert groups["dev3"]["__meta_wardops_sites"] == ",dc2,dc1,"
    assert "__meta_wardops_sites" not in groups["dev2"]
    # an exporter of site dc1 asks for its devices: those naming dc1, and those naming none
    assert sd_names(client, "?site=dc1") == ["dev2", "dev3"]
    assert sd_names(client, "?site=dc2") == ["dev1", "dev2", "dev3"]
    assert sd_names(client, "?site=dc9") == ["dev2"]
    assert client.get("/api/v1/sd?site=Bad%20Name").status_code == 400


def list_names(client, query: str) -> list[str]:
    r = client.get("/api/v1/devices" + query)
    assert r.status_code == 200, r.json
    return [d["name"] for d in r.json["items"]]


def test_device_list_filters_by_site_like_sd(client):
    r = client.post("/api/v1/devices/bulk", json={"create": [
        device(1, sites=["dc1"]), device(2), device(3, sites=["dc10"]), device(4, sites=["dc2", "dc1"])]},
        headers=AUTH)
    assert r.status_code == 200, r.json
    # one whole list item: dc1 is not a prefix match of dc10
    assert list_names(client, "?site=dc1") == ["dev1", "dev2", "dev4"] == sd_names(client, "?site=dc1")
    assert list_names(client, "?site=dc10") == ["dev2", "dev3"] == sd_names(client, "?site=dc10")
    assert list_names(client, "?site=dc1&role=router") == [
        d for d in ["dev1", "dev2", "dev4"] if client.get(f"/api/v1/devices/{d}").json["role"] == "router"]
    r = client.get('/api/v1/devices?site=%22dc1')
    assert r.status_code == 400 and r.json["problems"][0]["location"] == "query.site", r.json


def test_bad_sites_are_item_errors(client):
    r = client.post("/api/v1/devices/bulk", json={"create": [device(1, sites=[]), device(2, sites=["dc1", "dc1"]),
                                                             device(3, sites="dc1")]}, headers=AUTH)
    assert r.status_code == 422
    where = sorted((p["location"], p["message"]) for p in r.json["problems"])
    assert [loc for loc, _ in where] == ["$.create[0].sites", "$.create[1].sites[1]", "$.create[2].sites"], where
    assert any("duplicate site" in m for _, m in where)


def test_classify_rule_sets_sites_for_a_branch(client):
    r = client.post("/api/v1/classify-rules", json={"match": {"branch": "Branch 1"}, "set": {"sites": ["dc1"]}},
                    headers=AUTH)
    assert r.status_code == 201, r.json
    r = client.post("/api/v1/devices/bulk", json={"create": [device(1), device(2), device(8, sites=["dc2"])]},
                    headers=AUTH)
    assert r.status_code == 200, r.json
    assert client.get("/api/v1/devices/dev1").json["sites"] == ["dc1"]  # Branch 1, from the rule
    assert client.get("/api/v1/devices/dev2").json["sites"] == []  # Branch 2
    assert client.get("/api/v1/devices/dev8").json["sites"] == ["dc2"]  # Branch 1, explicit wins
    assert sd_names(client, "?site=dc2") == ["dev2", "dev8"]


def test_migration_adds_sites_to_a_version_1_database(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    engine = make_engine(url)
    migrate(engine)
    # Make it look like a database of version 1: no sites column, no version 2 row.
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM wardops_schema_migrations WHERE version = 2"))
        conn.execute(sa.text("ALTER TABLE wardops_devices DROP COLUMN sites"))
        conn.execute(sa.text(
            "INSERT INTO wardops_devices (name, ip, region, branch, role, enabled, labels, spec, created_at, "
            "updated_at) VALUES ('dev1', '198.18.0.2', 'Tbilisi', 'Branch 1', 'other', 1, '{}', "
            "'{\"name\": \"dev1\", \"ip\": \"198.18.0.2\", \"region\": \"Tbilisi\", \"branch\": \"Branch 1\"}', "
            "'2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')"))
    assert migrate(engine) == SCHEMA_VERSION == 2
    engine.dispose()
    app = make_app(url)
    try:
        client = app.test_client()
        assert client.get("/api/v1/devices/dev1").json["sites"] == []
        r = client.patch("/api/v1/devices/dev1", json={"sites": ["dc1"]}, headers=AUTH)
        assert r.status_code == 200 and r.json["sites"] == ["dc1"]
    finally:
        app.extensions["wardops_engine"].dispose()


def test_import_export_round_trip_keeps_sites(runner, db_url, tmp_path):
    from inventory.loader import loads_inventory

    text = ("classify:\n  - match: {region: East}\n    set: {sites: [dc2]}\n"
            "devices:\n  - {name: a1, ip: 198.18.0.1, region: West, branch: Centre, sites: [dc1]}\n"
            "  - {name: b1, ip: 198.18.1.1, region: East, branch: Port}\n"
            "  - {name: c1, ip: 198.18.2.1, region: West, branch: Airport}\n")
    path = tmp_path / "inv.yml"
    path.write_text(text)
    code, _, err = runner.invoke("inventory", "import", str(path), "--db", db_url)
    assert code == 0, err
    original = loads_inventory(text, "inv.yml")
    for flags in ((), ("--resolved",)):
        code, exported, err = runner.invoke("inventory", "export", "--db", db_url, *flags)
        assert code == 0, err
        again = loads_inventory(exported, "export")
        assert again == original
        assert {d.name: d.sites for d in again.devices} == {"a1": ("dc1",), "b1": ("dc2",), "c1": ()}
