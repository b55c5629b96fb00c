"""`wardops check`: summary and exit 0, or every error and exit 1; secrets never printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from inventory import Secret, SecretError, load_inventory
from wardops.check import secret_problems
from wardops.cli import main

ROOT = Path(__file__).resolve().parent.parent


def wardops(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wardops.cli", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_check_prints_summary_with_counts_by_role_and_region():
    proc = wardops("check", str(ROOT / "examples" / "inventory.yml"))
    assert proc.returncode == 0, proc.stderr
    inv = load_inventory(ROOT / "examples" / "inventory.yml")
    line = proc.stdout.strip()
    assert line.startswith(f"ok: {len(inv.devices)} devices") and "\n" not in line
    assert f"isp {inv.counts('role')['isp']}" in line and f"Tbilisi {inv.counts('region')['Tbilisi']}" in line
    assert line.endswith(f"; {len(inv.topology.upstreams)} upstreams")


def test_check_lists_every_error_and_exits_1(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("devices:\n  - {name: a, ip: 1.2.3, region: R, branch: B}\n  - {name: b, ip: 198.18.0.2}\n")
    proc = wardops("check", str(bad))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith(f"{bad}:2: devices[0].ip: invalid ip '1.2.3'")
    assert lines[1] == f"{bad}:3: devices[1]: missing required field 'region' (set it or add a classify rule)"
    assert lines[2] == f"{bad}:3: devices[1]: missing required field 'branch' (set it or add a classify rule)"
    assert lines[3] == f"3 error(s) in {bad}"


def test_check_reports_topology_errors_with_file_and_line(tmp_path):
    bad = tmp_path / "topo.yml"
    bad.write_text("devices:\n  - {name: a, ip: 198.18.0.1, region: R, branch: B}\n"
                   "topology:\n  upstreams:\n    x: {upstream: y, branches: [B]}\n    y: {upstream: x, regions: [Q]}\n")
    proc = wardops("check", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"{bad}:5: topology.upstreams.x: upstream cycle x -> y -> x",
        f"{bad}:6: topology.upstreams.y.regions[0]: unknown region 'Q' (no device has it)",
        f"2 error(s) in {bad}"]
    bad.write_text(bad.read_text().replace("upstream: x, regions: [Q]", "regions: [R]"))
    proc = wardops("check", str(bad))
    assert proc.returncode == 1 and proc.stderr.splitlines()[0] == (
        f"{bad}:6: topology.upstreams.y.regions[0]: branch 'B' is already directly behind upstream 'x' "
        "(branches); a branch sits directly behind one node")


def test_check_of_missing_file_names_it(tmp_path):
    assert main(["check", str(tmp_path / "nope.yml")]) == 1


def test_secret_check_reports_references_never_values(tmp_path, monkeypatch):
    monkeypatch.setenv("WARDOPS_SNMP_COMMUNITY", "s3cr3t-community")
    monkeypatch.setenv("WARDOPS_SNMP_AUTH", "short")
    monkeypatch.delenv("WARDOPS_SNMP_PRIV", raising=False)
    problems = secret_problems(load_inventory(ROOT / "examples" / "inventory.yml"))
    text = "\n".join(problems)
    assert "auth_key (env:WARDOPS_SNMP_AUTH): auth_key is shorter than 8 characters" in text
    assert "environment variable WARDOPS_SNMP_PRIV is not set" in text
    assert "s3cr3t" not in text and "short" not in text.replace("shorter", "")
    assert not any("branch-v2c" in p for p in problems)


def test_secret_repr_and_errors_hide_the_value(tmp_path):
    f = tmp_path / "community"
    f.write_text("topsecret\n")
    secret = Secret("file", str(f))
    assert secret.resolve() == "topsecret"
    assert "topsecret" not in repr(secret) and "topsecret" not in str(secret)
    try:
        Secret("env", "WARDOPS_UNSET_FOR_TEST").resolve({})
    except SecretError as exc:
        assert "WARDOPS_UNSET_FOR_TEST" in str(exc)
    else:
        raise AssertionError("unset env var resolved")
