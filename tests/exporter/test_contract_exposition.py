"""The running exporter (real app, web server and components; a fake ICMP engine and in-memory SNMP
agents, no sockets) serves every family of the metric contract and nothing else, with the contract's
HELP, TYPE and label names; its /probe answers too. promtool lints both."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter import contract
from exporter.app import Exporter
from exporter.config import loads_config
from exporter.icmp.component import IcmpComponent
from exporter.icmp.engine import PingResult
from exporter.icmp.probe import IcmpProber
from exporter.probers import PROBERS, get_prober
from exporter.probing import ProbeRefused, ProbeTarget
from exporter.snmp import SnmpPoller
from exporter.snmp.component import SnmpComponent
from exporter.targets import Source
from inventory.model import Device, ExtraOid, Inventory, SnmpProfile
from inventory.secrets import Secret
from tests.exporter.icmp.fakes import FakeEngine
from tests.exporter.snmp.fakeagent import FakeAgent
from wardops.lab.snmpagents import AgentSpec, snmprec

CONFIG = """
policies:
  isp: {interval: 100ms, packets: 2, spacing: 10ms, timeout: 50ms, down_after: 1}
  default: {interval: 200ms, packets: 1, spacing: 0, timeout: 50ms, down_after: 1}
snmp: {interval: 2s, deadline: 200ms}
inventory: {poll_interval: 10s}
site: {canaries: [198.18.255.1]}
secrets: {env_prefix: COMM}
"""
EXTRA = (ExtraOid("cpu_idle_percent", (1, 3, 6, 1, 4, 1, 2021, 11, 11, 0)),
         ExtraOid("load_int", (1, 3, 6, 1, 4, 1, 2021, 10, 1, 5), table=True),
         ExtraOid("cpu_user_ticks", (1, 3, 6, 1, 4, 1, 2021, 11, 50, 0), type="counter"))
EXTRA_RECORDS = (("1.3.6.1.4.1.2021.11.11.0", "2", "97"), ("1.3.6.1.4.1.2021.10.1.5.1", "2", "12"),
                 ("1.3.6.1.4.1.2021.11.50.0", "65", "123456"))
PROFILES = {"p": SnmpProfile("p", "2c", community=Secret("env", "COMM"), timeout=0.1, retries=0, extra_oids=EXTRA)}
DEVICES = (Device("isp-a", "198.18.0.1", "north", "hq", role="isp", isp="acme", snmp="p"),
           Device("rtr-a", "198.18.0.2", "north", "hq", role="router", snmp="p"),
           Device("rtr-b", "198.18.0.3", "south", "b1", role="router", snmp="p"))
EXTRA_FAMILIES = {f.name: f for f in (contract.snmp_extra_family(e.metric, e.type, e.table) for e in EXTRA)}
KNOWN = {**contract.FAMILIES, **EXTRA_FAMILIES}
# promtool's one complaint: the contract's interface labels ifName/ifAlias are camelCase.
CAMEL = re.compile(r"wardops_snmp_\w+ label names should be written in 'snake_case' not 'camelCase'")


class _Source(Source):
    """A network-like source (untrusted: its secret references obey the exporter's policy), with a
    second profile whose reference the policy refuses, so the refusal counter is served too."""

    trusted = False

    def _poll(self, force=False):
        refused = SnmpProfile("q", "2c", community=Secret("env", "NOT_ALLOWED"))
        return Inventory(devices=DEVICES, snmp_profiles={**PROFILES, "q": refused}, source="test")

    def describe(self):
        return "test"


@pytest.fixture(scope="module")
def running():
    from exporter.web import WebServer

    agents = {"198.18.0.1": FakeAgent(snmprec(AgentSpec("isp-a", interfaces=2, extra=EXTRA_RECORDS))),
              "198.18.0.2": FakeAgent(snmprec(AgentSpec("rtr-a", interfaces=3))),
              "198.18.0.3": FakeAgent(snmprec(AgentSpec("rtr-b", interfaces=1)))}
    agents["198.18.0.3"].hang = True  # an SNMP poll error (deadline) to count

    def snmp(rt):
        cfg = rt.config.snmp
        poller = SnmpPoller((), {}, concurrency=cfg.concurrency, interval=cfg.interval, deadline=cfg.deadline,
                            environ={"COMM": "contract-test-community"}, requester_for=lambda t: agents[t.ip])
        return SnmpComponent(rt, poller=poller)

    engine = FakeEngine(alive={"198.18.0.1", "198.18.0.2"})  # rtr-b answers no ping
    exp = Exporter(_Source(), loads_config(CONFIG), log=logging.getLogger("test.contract"),
                   factories={"icmp": lambda rt: IcmpComponent(rt, engine=engine), "snmp": snmp})
    assert exp.refresh(force=True)[0]
    exp.start()
    web = WebServer(exp, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{web.port}"
    try:
        deadline = time.monotonic() + 15
        while not all(f"\n{name}" in get(base + "/metrics")[1] for name in contract.METRICS):
            assert time.monotonic() < deadline, sorted(n for n in contract.METRICS
                                                       if f"\n{n}" not in get(base + "/metrics")[1])
            time.sleep(0.1)
        yield exp, base
    finally:
        web.stop()
        exp.stop()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def conformance_problems(text: str) -> list[str]:
    """Families outside the contract, HELP/TYPE other than the contract's, labels a family lacks."""
    out = []
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", text, re.M))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    samples = {s.name: s for fam in text_string_to_metric_families(text) for s in fam.samples}
    if helps.keys() != types.keys() or set(samples) - set(helps):
        out.append(f"HELP {sorted(helps)} / TYPE {sorted(types)} / samples {sorted(samples)} differ")
    for name, help_text in helps.items():
        family = KNOWN.get(name)
        if family is None:
            out.append(f"{name}: not in the contract")
        elif (types[name], help_text) != (family.type, family.help):
            out.append(f"{name}: {types[name]} {help_text!r}, contract {family.type} {family.help!r}")
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            extra = set(s.labels) - set(KNOWN[s.name].labels) if s.name in KNOWN else set()
            if extra:
                out.append(f"{s.name}: labels {sorted(extra)} are not the contract's")
    return out


def promtool_problems(text: str) -> list[str]:
    run = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    return [line for line in (run.stdout + run.stderr).decode().splitlines() if not CAMEL.fullmatch(line)]


def test_metrics_serves_every_contract_family_and_only_them(running):
    _, base = running
    status, body = get(base + "/metrics")
    assert status == 200
    served = set(re.findall(r"^# TYPE (\S+) ", body, re.M))
    assert served - set(EXTRA_FAMILIES) == contract.METRICS
    assert set(EXTRA_FAMILIES) <= served  # the profile's extra OIDs
    assert conformance_problems(body) == []
    assert "contract-test-community" not in body


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (scripts/bootstrap)")
def test_promtool_lints_metrics_and_probe_answers(running):
    _, base = running
    for path in ("/metrics", "/probe?target=isp-a&module=icmp", "/probe?target=rtr-b&module=icmp",
                 "/probe?target=isp-a&module=snmp", "/probe?target=rtr-b&module=snmp"):
        status, body = get(base + path)
        assert status == 200 and promtool_problems(body) == [], (path, body[:1500])


def test_probe_answers_carry_help_type_and_contract_names(running):
    _, base = running
    status, icmp = get(base + "/probe?target=isp-a&module=icmp")
    assert status == 200 and conformance_problems(icmp) == []
    assert "# HELP probe_icmp_packets_sent Echo requests sent by the probe.\n" in icmp
    assert "probe_success 1\n" in icmp and "probe_icmp_packets_sent 2\n" in icmp
    answered = set(re.findall(r"^# TYPE (\S+) ", icmp, re.M))
    assert answered == {f.name for f in (*contract.PROBE_FAMILIES, *contract.PROBE_ICMP_FAMILIES)}
    status, snmp = get(base + "/probe?target=rtr-a&module=snmp")
    assert status == 200 and conformance_problems(snmp) == []
    assert "probe_success 1\n" in snmp and "# TYPE wardops_snmp_if_in_octets_total counter\n" in snmp
    assert snmp.count("wardops_snmp_if_oper_up{") == 3 and "wardops_snmp_poll_errors_total" not in snmp
    status, hung = get(base + "/probe?target=rtr-b&module=snmp")  # the poll ends at the SNMP deadline
    assert status == 200 and "probe_success 0\n" in hung and 'probe_snmp_error{error="deadline"} 1\n' in hung


def test_probe_table_dispatch_and_refusals(running):
    exp, base = running
    assert set(PROBERS) == {"icmp", "snmp"}
    assert get_prober(exp.runtime, "tcp") is None
    status, body = get(base + "/probe?target=isp-a&module=tcp")
    assert status == 400 and "known: icmp, snmp" in body
    status, body = get(base + "/probe?target=198.18.0.99&module=snmp")
    assert status == 403


def test_a_module_whose_component_is_not_running_refuses():
    class _Runtime:
        components: dict = {}

    for module in PROBERS:
        prober = get_prober(_Runtime(), module)
        with pytest.raises(ProbeRefused, match="not running|disabled"):
            asyncio.run(prober(ProbeTarget("198.18.0.1", DEVICES[0]), {}, time.monotonic() + 1))


class _RecordingPinger:
    def __init__(self):
        self.calls = []

    async def ping(self, addresses, packets, spacing, timeout):
        self.calls.append((tuple(addresses), packets, spacing, timeout))
        return PingResult([packets], [[0.001] * packets])


def test_icmp_prober_waits_for_replies_until_the_deadline_at_most():
    config = loads_config("policies: {default: {interval: 10s, packets: 3, spacing: 500ms, timeout: 4s}}\n")
    pinger = _RecordingPinger()
    prober = IcmpProber(pinger, config)
    target = ProbeTarget("198.18.0.2", Device("rtr-a", "198.18.0.2", "north", "hq"))
    assert asyncio.run(prober(target, {}, time.monotonic() + 30)).success
    assert pinger.calls[-1] == (("198.18.0.2",), 3, 0.5, 4.0)  # the policy as it is
    asyncio.run(prober(target, {}, time.monotonic() + 2.0))
    assert 0.9 < pinger.calls[-1][3] <= 1.0  # 2 s left - 1 s of sends: replies awaited 1 s at most
    asyncio.run(prober(ProbeTarget("198.19.0.5", None), {}, time.monotonic() + 0.5))
    assert pinger.calls[-1][3] == 0.0  # the sends alone outlast the deadline


def _samples(body: str) -> dict[str, object]:
    return {s.name: s for fam in text_string_to_metric_families(body) for s in fam.samples}


def test_build_info_and_process_metrics(running):
    import os
    import platform

    from exporter.version import __version__

    _, base = running
    before = _samples(get(base + "/metrics")[1])
    info = before["wardops_exporter_build_info"]
    assert info.value == 1 and info.labels["version"] == __version__
    assert info.labels["python"] == platform.python_version()
    git = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                         cwd=os.path.dirname(__file__), check=False)
    assert info.labels["revision"] == (git.stdout.strip() if git.returncode == 0 else "unknown")
    # the exporter runs in this process: its numbers are this process's
    assert before["process_resident_memory_bytes"].value > 10e6  # a Python with the exporter loaded
    assert before["process_virtual_memory_bytes"].value >= before["process_resident_memory_bytes"].value
    assert 3 <= before["process_open_fds"].value <= before["process_max_fds"].value
    assert abs(before["process_start_time_seconds"].value - time.time()) < 24 * 3600
    assert before["process_start_time_seconds"].value < time.time()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # 0.3 s of CPU; the counter's resolution is 0.01 s
        pass
    after = _samples(get(base + "/metrics")[1])
    assert after["process_cpu_seconds_total"].value - before["process_cpu_seconds_total"].value >= 0.25
