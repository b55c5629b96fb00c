"""Hostile input to the inventory service: bounded search, duplicate JSON keys, disguised duplicate
addresses, unusable label values. Run against SQLite and PostgreSQL (the `db_url` fixture)."""

from __future__ import annotations

import json

import pytest
from conftest import AUTH, device

from inventory.model import ip_text_problem, label_value_problem


def test_a_huge_search_is_a_400_not_a_500(client):
    client.post("/api/v1/devices", json=device(1), headers=AUTH)
    r = client.get("/api/v1/devices", query_string={"q": "x" * 50_000})
    assert r.status_code == 400 and r.json["message"] == "query parameter 'q' is longer than 200 characters"
    assert r.json["problems"][0]["location"] == "query.q"
    r = client.get("/api/v1/devices", query_string={"q": "d" * 200})
    assert r.status_code == 200 and r.json["total"] == 0


def test_duplicate_json_keys_are_rejected_naming_the_key(client):
    body = '{"name": "dev1", "ip": "198.18.0.1", "ip": "198.18.0.2", "region": "r", "branch": "b"}'
    r = client.post("/api/v1/devices", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json["message"] == "invalid JSON: duplicate key 'ip' in a JSON object"
    nested = '{"create": [{"name": "d", "ip": "198.18.0.1", "region": "r", "branch": "b", ' \
             '"labels": {"a": "1", "a": "2"}}]}'
    r = client.post("/api/v1/devices/bulk", data=nested, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400 and "duplicate key 'a'" in r.json["message"]
    assert client.get("/api/v1/devices").json["total"] == 0


def test_an_ipv4_mapped_address_cannot_duplicate_an_ipv4_device(client):
    assert client.post("/api/v1/devices", json=device(1, ip="198.18.200.1"), headers=AUTH).status_code == 201
    r = client.post("/api/v1/devices", json=device(2, ip="::ffff:198.18.200.1"), headers=AUTH)
    assert r.status_code == 422
    assert r.json["problems"] == [{
        "message": "ip: ::ffff:198.18.200.1 is an IPv4-mapped IPv6 address: write the IPv4 address 198.18.200.1",
        "location": r.json["problems"][0]["location"], "field": "ip", "device": "dev2", "resource": "device"}]
    r = client.post("/api/v1/devices/bulk", json={"create": [device(3, ip="::ffff:c612:c801")]}, headers=AUTH)
    assert r.status_code == 422 and r.json["problems"][0]["location"].startswith("$.create[0]")
    assert client.get("/api/v1/devices").json["total"] == 1


@pytest.mark.parametrize("value, reason", [
    ("a\0b", "must not contain control characters"),
    ("line\nbreak", "must not contain control characters"),
    ("cr\r", "must not contain control characters"),
    ("tab\there", "must not contain control characters"),
    ("", "must not be empty"),
    (" edge", "must not start or end with spaces"),
    ("edge ", "must not start or end with spaces"),
])
def test_unusable_label_values_are_422(client, value, reason):
    r = client.post("/api/v1/devices", json=device(1, labels={"vendor": value}), headers=AUTH)
    assert r.status_code == 422, r.json
    # The loader's rule (one for files and the API): the message is the reason, the field names the label.
    assert r.json["problems"][0]["message"] == reason + (" (NUL, CR, LF, tab, ...)" if "control" in reason else "")
    assert r.json["problems"][0]["field"] == "labels.vendor", r.json
    rule = {"match": {"region": "r"}, "set": {"labels": {"site": value}}}
    r = client.post("/api/v1/classify-rules", json=rule, headers=AUTH)
    assert r.status_code == 422 and reason in r.json["problems"][0]["message"], r.json
    assert r.json["problems"][0]["resource"] == "classify_rule"


def test_good_label_values_and_addresses_pass():
    assert label_value_problem("Cisco IOS-XE 17.3") is None
    assert ip_text_problem("198.18.0.1") is None and ip_text_problem("2001:db8::1") is None
    assert ip_text_problem("not an ip") is None  # the schema reports unparsable addresses
    assert label_value_problem(7) == "must be a string"


def test_bad_values_are_refused_on_update_too(client):
    assert client.post("/api/v1/devices", json=device(1), headers=AUTH).status_code == 201
    r = client.patch("/api/v1/devices/dev1", json={"labels": {"x": "a\tb"}}, headers=AUTH)
    assert r.status_code == 422 and json.dumps(r.json).count("control characters") == 1
