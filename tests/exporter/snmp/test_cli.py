"""`wardops snmp poll` against a real snmpsim agent on loopback."""

from __future__ import annotations

import argparse

import pytest

from exporter.snmp import cli
from wardops.lab.snmpagents import loopback_specs, start_agents


@pytest.fixture(scope="module")
def agent():
    specs = loopback_specs(["cli-r1"], interfaces=4)
    with start_agents(specs, community="cli-community-secret"):
        yield specs[0]


def run(argv):
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(argv)
    return args.func(args)


def test_poll_prints_probe_answer_and_hides_secret(agent, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CLI_COMMUNITY", "cli-community-secret")
    inv = tmp_path / "inv.yml"
    inv.write_text(f"""
snmp_profiles:
  lo: {{version: 2c, community_env: CLI_COMMUNITY, port: {agent.port}, timeout: 1}}
devices:
  - {{name: cli-r1, ip: 127.0.0.1, region: R, branch: B, role: router, snmp: lo}}
""")
    assert run(["poll", str(inv), "--device", "cli-r1"]) == 0
    out = capsys.readouterr().out
    assert "probe_success 1\n" in out and "# HELP probe_snmp_error" not in out
    assert out.count("wardops_snmp_if_oper_up{") == 4
    assert "cli-community-secret" not in out
    assert run(["poll", str(inv)]) == 0
    assert 'wardops_snmp_up{device="cli-r1",ip="127.0.0.1",role="router",region="R",branch="B"} 1\n' \
        in capsys.readouterr().out
    assert run(["poll", str(inv), "--device", "nope"]) == 1
    assert "no enabled SNMP device named nope" in capsys.readouterr().err
