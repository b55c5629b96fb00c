"""SNMP secret references from the inventory service resolve only inside the exporter's policy."""

from __future__ import annotations

import asyncio
import json
import logging
import os

import pytest

from exporter.app import Exporter
from exporter.config import loads_config
from exporter.snmp import SnmpPoller
from exporter.snmp.credentials import CredentialError, RefusedSecret, SecretPolicy, resolve_auth
from exporter.targets import FileSource, HttpSdSource
from inventory.model import Device
from inventory.secrets import Secret
from tests.exporter.sdserver import SD, SdServer

LOG = logging.getLogger("test.secrets")


@pytest.fixture
def secrets_dir(tmp_path):
    d = tmp_path / "secrets"
    d.mkdir()
    (d / "community").write_text("lab-community\n")
    (tmp_path / "outside").write_text("host-secret\n")
    os.symlink(tmp_path / "outside", d / "escape")
    return d


@pytest.mark.parametrize("kind, ref, reason", [
    ("file", "community", "is not an absolute path"),  # resolve() would read it relative to the cwd
    ("file", "{dir}/community", None),
    ("file", "{dir}/../outside", "contains '..'"),
    ("file", "{dir}/escape", "is not inside secrets.directory"),  # a symlink out of the directory
    ("file", "/etc/passwd", "is not inside secrets.directory"),
    ("file", "{dir}", "is not inside secrets.directory"),
    ("env", "WARDOPS_COMMUNITY", None),
    ("env", "HOME", "does not start with secrets.env_prefix WARDOPS_"),
])
def test_policy_checks_the_reference(secrets_dir, kind, ref, reason):
    policy = SecretPolicy(str(secrets_dir), "WARDOPS_")
    problem = policy.problem(Secret(kind, ref.format(dir=secrets_dir)))
    assert problem == reason if reason is None else reason in problem


def test_without_a_policy_nothing_from_the_network_resolves():
    assert "no secrets.directory" in SecretPolicy().problem(Secret("file", "/x"))
    assert "no secrets.env_prefix" in SecretPolicy().problem(Secret("env", "WARDOPS_X"))


def profiles_answer(**refs) -> bytes:
    return json.dumps({"items": [{"name": "stolen", "version": "2c", **refs}]}).encode()


def sd_with_snmp() -> bytes:
    sd = [dict(g, labels=dict(g["labels"], __meta_wardops_snmp_profile="stolen")) if i < 2 else g
          for i, g in enumerate(SD)]
    return json.dumps(sd).encode()


def test_network_profiles_are_refused_by_default_and_counted(caplog, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "must-never-leave")
    caplog.set_level(logging.INFO)
    with SdServer() as server:
        server.answers["/api/v1/sd"] = sd_with_snmp()
        server.answers["/api/v1/snmp-profiles"] = profiles_answer(community_env="AWS_SECRET_ACCESS_KEY")
        src = HttpSdSource(server.url)
        exp = Exporter(src, loads_config(""), log=LOG, components=())
        assert exp.refresh() == (True, "10 devices")
    community = exp.inventory.snmp_profiles["stolen"].community
    assert isinstance(community, RefusedSecret)
    with pytest.raises(CredentialError) as err:
        resolve_auth(exp.inventory.snmp_profiles["stolen"])
    assert "env:AWS_SECRET_ACCESS_KEY refused by the exporter's secret policy" in str(err.value)
    samples = {(n, labels): v for n, labels, v in exp._self_samples()}
    assert samples[("wardops_exporter_secret_refusals_total", '{profile="stolen"}')] == 1
    assert "no secrets policy configured" in caplog.text
    assert 'profile=stolen field=community reference="env:AWS_SECRET_ACCESS_KEY"' in caplog.text
    assert "must-never-leave" not in caplog.text


def test_a_refused_profile_sends_nothing_even_from_probe(secrets_dir):
    """/probe?module=snmp of a device whose profile was refused: a credentials error, no packet."""
    with SdServer() as server:
        server.answers["/api/v1/sd"] = sd_with_snmp()
        server.answers["/api/v1/snmp-profiles"] = profiles_answer(community_file="/etc/passwd")
        src = HttpSdSource(server.url)
        src.configure(loads_config(f"secrets: {{directory: {secrets_dir}}}"))
        inv = src.poll()
    sent = []

    def requester_for(target):
        sent.append(target)
        raise AssertionError("nothing may be sent with a refused secret")

    device = next(d for d in inv.devices if d.snmp)
    poller = SnmpPoller(inv.devices, inv.snmp_profiles, requester_for=requester_for)
    sample = asyncio.run(poller.probe(device))
    snapshot = asyncio.run(poller.poll_round())
    assert (sample.up, sample.error) == (False, "credentials") and not sent
    assert all(s.error == "credentials" for s in snapshot.devices) and not sent


def test_allowed_references_resolve_and_the_flags_win(secrets_dir, monkeypatch):
    monkeypatch.setenv("WARDOPS_COMMUNITY", "from-env")
    with SdServer() as server:
        server.answers["/api/v1/snmp-profiles"] = profiles_answer(community_file=f"{secrets_dir}/community")
        src = HttpSdSource(server.url)
        src.configure(loads_config(f"secrets: {{directory: {secrets_dir}}}"))
        inv = src.poll()
        assert resolve_auth(inv.snmp_profiles["stolen"]).community == b"lab-community"
        server.answers["/api/v1/snmp-profiles"] = profiles_answer(community_env="WARDOPS_COMMUNITY")
        src.secrets_override = loads_config("secrets: {env_prefix: WARDOPS_}").secrets
        src.configure(loads_config(f"secrets: {{directory: {secrets_dir}}}"))  # the flags win over this
        inv = src.poll()
        assert resolve_auth(inv.snmp_profiles["stolen"]).community == b"from-env"
        assert src.refusals == {}


def test_a_local_file_inventory_is_trusted_unless_a_policy_is_set(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_COMMUNITY", "c")
    inv = tmp_path / "inv.yml"
    inv.write_text("snmp_profiles:\n  p: {version: 2c, community_env: LAB_COMMUNITY}\n"
                   "devices:\n  - {name: a, ip: 198.18.0.1, region: r, branch: b, snmp: p}\n")
    src = FileSource(str(inv))
    src.configure(loads_config(""))
    assert resolve_auth(src.poll().snmp_profiles["p"]).community == b"c"
    src.configure(loads_config("secrets: {env_prefix: WARDOPS_}"))
    assert isinstance(src.poll(force=True).snmp_profiles["p"].community, RefusedSecret)
    assert src.refusals == {"p": 1}


def test_devices_keep_icmp_when_their_profile_is_refused():
    with SdServer() as server:
        server.answers["/api/v1/sd"] = sd_with_snmp()
        server.answers["/api/v1/snmp-profiles"] = profiles_answer(community_env="HOME")
        inv = HttpSdSource(server.url).poll()
    assert len(inv.devices) == 10 and all(isinstance(d, Device) for d in inv.devices)
