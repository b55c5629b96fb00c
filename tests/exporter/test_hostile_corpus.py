"""Fuzz corpus: hostile HTTP SD answers, SNMP profile answers and inventory files against the
exporter's target loader. Each one is a failed reload with one bounded message; the last good set is
kept; nothing escapes as another exception. Files live in tests/testdata/hostile/ (one per case);
the huge, deep and slow cases are generated here and in test_hardening_sources.py."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.app import Exporter
from exporter.config import loads_config
from exporter.targets import FileSource, HttpSdSource, TargetError, devices_from_sd
from inventory.secrets import SecretError
from tests.exporter.sdserver import SdServer

CORPUS = Path(__file__).resolve().parents[1] / "testdata" / "hostile"
LOG = logging.getLogger("test.corpus")
MAX_MESSAGE = 2000  # characters: a reload error is one log line, whatever the answer held

# file -> a fragment of the failed reload's message
SD_CASES = {
    "sd-empty-list.json": "held: the new answer removes 10 of 10 devices",
    "sd-empty-body.json": "not JSON",
    "sd-object-not-list.json": "HTTP SD must be a JSON list",
    "sd-role-list.json": "label values must be strings",
    "sd-two-targets.json": "want exactly one IP string",
    "sd-null-target.json": "want exactly one IP string",
    "sd-bad-name.json": "invalid device name 'A B'",
    "sd-duplicate-device.json": "duplicate device 'a'",
    "sd-infinite-number.json": "label values must be strings",
    "sd-truncated.json": "not JSON",
    "sd-not-utf8.json": "not JSON",
    "sd-bool-label.json": "label values must be strings",
    "sd-scalars.json": "want {\"targets\": [ip]",
}
PROFILE_CASES = {
    "profiles-items-string.json": "want {\"items\": [{\"name\": ..., ...}]}",
    "profiles-no-name.json": "want {\"items\": [{\"name\": ..., ...}]}",
    "profiles-inline-secret.json": "invalid snmp profiles",
    "profiles-unclosed-nesting.json": "not JSON",
}
INVENTORY_CASES = {
    "inventory-duplicate-device.yml": "invalid inventory",
    "inventory-devices-mapping.yml": "invalid inventory",
    "inventory-wrong-types.yml": "invalid inventory",
    "inventory-binary.yml": "invalid inventory",
    "inventory-truncated.yml": "invalid inventory",
    "inventory-two-documents.yml": "only one YAML document",
    "inventory-python-tag.yml": "invalid inventory",
}
GENERATED_SD = {
    "deep-list": (b"[" * 100_000, "not JSON: nested too deeply"),
    "deep-object": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "not JSON: nested too deeply"),
    "deep-in-labels": (json.dumps([{"targets": ["198.18.0.1"], "labels": {"device": "a"}}]).encode()
                       .replace(b'"a"', b"[" * 50_000 + b"]" * 50_000), "nested too deeply"),
    "long-name": (json.dumps([{"targets": ["198.18.0.1"], "labels": {"device": "a" * 1_000_000}}]).encode(),
                  "lacks region, branch"),
    "many-bad-groups": (json.dumps([{"targets": []}] * 100_000).encode(), "(+99995 more)"),
    "wrong-device-type": (json.dumps([{"targets": ["198.18.0.1"], "labels": {"device": {"x": ["y"] * 10_000}}}])
                          .encode(), "label values must be strings"),
}


def test_every_corpus_file_is_in_a_table():
    listed = set(SD_CASES) | set(PROFILE_CASES) | set(INVENTORY_CASES) | {"profiles-shadow.json"}
    assert {p.name for p in CORPUS.iterdir()} == listed


def loaded_exporter(server) -> Exporter:
    exp = Exporter(HttpSdSource(server.url), loads_config(""), log=LOG, components=())
    assert exp.refresh() == (True, "10 devices")
    return exp


def assert_failed_and_kept(exp: Exporter, fragment: str) -> None:
    ok, message = exp.refresh(force=True)
    assert not ok and fragment in message, message
    assert len(message) < MAX_MESSAGE
    assert exp.reload_success == 0 and len(exp.devices) == 10


@pytest.mark.parametrize("name", sorted(SD_CASES))
def test_hostile_sd_answer(name):
    with SdServer() as server:
        exp = loaded_exporter(server)
        server.answers["/api/v1/sd"] = (CORPUS / name).read_bytes()
        assert_failed_and_kept(exp, SD_CASES[name])


@pytest.mark.parametrize("name", sorted(GENERATED_SD))
def test_generated_hostile_sd_answer(name):
    body, fragment = GENERATED_SD[name]
    with SdServer() as server:
        exp = loaded_exporter(server)
        server.answers["/api/v1/sd"] = body
        assert_failed_and_kept(exp, fragment)


@pytest.mark.parametrize("name", sorted(PROFILE_CASES))
def test_hostile_profiles_answer(name):
    with SdServer() as server:
        exp = loaded_exporter(server)
        server.answers["/api/v1/snmp-profiles"] = (CORPUS / name).read_bytes()
        assert_failed_and_kept(exp, PROFILE_CASES[name])


def test_a_profile_reading_the_shadow_file_is_refused_not_loaded():
    with SdServer() as server:
        exp = loaded_exporter(server)
        server.answers["/api/v1/snmp-profiles"] = (CORPUS / "profiles-shadow.json").read_bytes()
        assert exp.refresh(force=True)[0]  # the profile loads, its reference does not resolve
    assert exp.source.refusals == {"p": 1}
    assert "refused by the exporter's secret policy" in repr(
        pytest.raises(SecretError, exp.inventory.snmp_profiles["p"].community.resolve).value)


@pytest.mark.parametrize("name", sorted(INVENTORY_CASES))
def test_hostile_inventory_file(name, tmp_path):
    inv = tmp_path / "inventory.yml"
    inv.write_text("devices:\n" + "".join(f"  - {{name: d{i}, ip: 198.18.1.{i}, region: r, branch: b}}\n"
                                          for i in range(1, 11)))
    exp = Exporter(FileSource(str(inv)), loads_config(""), log=LOG, components=())
    assert exp.refresh() == (True, "10 devices")
    shutil.copyfile(CORPUS / name, inv)
    assert_failed_and_kept(exp, INVENTORY_CASES[name])


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children,
                                                                                       max_size=5), max_leaves=30)
GROUP = st.fixed_dictionaries({"targets": st.lists(st.one_of(st.text(max_size=20), JSON), max_size=2)},
                              optional={"labels": st.dictionaries(
                                  st.sampled_from(["device", "region", "branch", "role", "isp",
                                                   "__meta_wardops_snmp_profile", "__meta_wardops_label_x"]),
                                  st.one_of(st.text(max_size=10), JSON))})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(JSON, st.lists(st.one_of(GROUP, JSON), max_size=6)))
def test_any_json_is_devices_or_one_target_error(data):
    try:
        devices = devices_from_sd(data)
    except TargetError as exc:
        assert len(str(exc)) < MAX_MESSAGE
        return
    for d in devices:  # whatever passed is well-typed
        assert all(isinstance(v, str) for v in (d.name, d.ip, d.region, d.branch, d.role))
        assert d.snmp is None or isinstance(d.snmp, str)
        assert all(isinstance(v, str) for v in d.labels.values())

