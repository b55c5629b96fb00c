"""The one SNMP renderer (exporter/snmp/render.py) behind /metrics, /probe?module=snmp and the CLI:
its text says what the prometheus_client oracle says for the same samples, carries the contract's
HELP/TYPE and label names, and promtool's linter finds nothing in it."""

from __future__ import annotations

import re
import shutil
import subprocess
from types import MappingProxyType

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter import contract
from exporter.probing import ProbeTarget, render_probe
from exporter.snmp.poller import DeviceSample, ExtraSample, InterfaceSample, SnmpSnapshot
from exporter.snmp.probe import result
from exporter.snmp.render import round_text
from inventory.model import Device, ExtraOid, SnmpProfile
from inventory.secrets import Secret
from tests.exporter.snmp import oracle

NOW = 1_790_000_000.0
PROFILES = {"p": SnmpProfile("p", "2c", community=Secret("env", "C"), extra_oids=(
    ExtraOid("cpu_idle_percent", (1, 3, 6, 1, 4, 1, 2021, 11, 11, 0)),
    ExtraOid("load_int", (1, 3, 6, 1, 4, 1, 2021, 10, 1, 5), table=True),
    ExtraOid("cpu_user_ticks", (1, 3, 6, 1, 4, 1, 2021, 11, 50, 0), type="counter")))}


def interface(k: int, **kw) -> InterfaceSample:
    values = dict(index=k, name=f"Gi0/{k}", alias=f"uplink {k}", if_type=6, speed_bps=1e9, admin_up=True,
                  oper_up=k % 2 == 0, last_change=NOW - 1000.123 * k,
                  counters=MappingProxyType({"ifHCInOctets": 2**64 - 1 - k, "ifHCOutOctets": 10**12 + k,
                                             "ifInErrors": k, "ifOutErrors": 0, "ifInDiscards": 3,
                                             "ifOutDiscards": 0}))
    values.update(kw)
    return InterfaceSample(**values)


def snapshot() -> SnmpSnapshot:
    isp = Device("isp-a", "198.18.0.5", "R1", "Branch \"A\"", role="isp", isp="Magti", snmp="p")
    rtr = Device("rtr-b", "2001:db8::1", "R1", "Branch B", role="router", snmp="p")
    dead = Device("rtr-c", "198.18.0.7", "R2", "Branch C", role="router", snmp="p")
    samples = (
        DeviceSample(isp, True, None, 0.0123456789, NOW, uptime_seconds=12345.67, sys_name="isp-a",
                     interfaces=(interface(0), interface(1, alias='back\\slash "quoted"\nline', speed_bps=None))),
        DeviceSample(rtr, True, None, 0.5, NOW, uptime_seconds=3.0, interfaces=(interface(2, admin_up=None),),
                     extras=(ExtraSample("wardops_snmp_cpu_idle_percent", "gauge", "", 97.0),
                             ExtraSample("wardops_snmp_load_int", "gauge", "3", 45.0),
                             ExtraSample("wardops_snmp_cpu_user_ticks", "counter", "", 123456.0))),
        DeviceSample(dead, False, "timeout", 1.0, NOW),
    )
    errors = {("rtr-c", "timeout"): 4, ("rtr-b", "agent"): 1}
    return SnmpSnapshot(NOW, 1.25, samples, MappingProxyType(errors))


def headers(text: str) -> dict[str, tuple[str, str]]:
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", text, re.M))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    assert helps.keys() == types.keys()
    return {name: (types[name], helps[name]) for name in helps}


def test_round_text_equals_the_oracle_and_the_contract():
    snap = snapshot()
    text = round_text(snap, [s.device for s in snap.devices], PROFILES).decode()
    got = oracle.samples(text)
    want = oracle.samples(oracle.text(oracle.families(snap)))
    assert {k: v for k, v in got.items() if k[0].startswith("wardops_snmp_")} == want
    assert got[("wardops_exporter_round_duration_seconds", (("policy", "snmp"), ("protocol", "snmp")))] == 1.25
    assert got[("wardops_exporter_last_round_timestamp_seconds", (("policy", "snmp"), ("protocol", "snmp")))] == NOW
    assert got[("wardops_exporter_targets", (("policy", "snmp"), ("protocol", "snmp")))] == 3
    known = {**contract.FAMILIES, **{f.name: f for f in (
        contract.snmp_extra_family("cpu_idle_percent", "gauge", False),
        contract.snmp_extra_family("load_int", "gauge", True),
        contract.snmp_extra_family("cpu_user_ticks", "counter", False))}}
    for name, (kind, help_text) in headers(text).items():
        assert (kind, help_text) == (known[name].type, known[name].help), name
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            assert set(s.labels) <= set(known[s.name].labels), s
    assert 'ifAlias="back\\\\slash \\"quoted\\"\\nline"' in text  # escaped as the text format requires
    # 64-bit counters stay exact integers (a float would round 2**64 - 1)
    assert f'ifName="Gi0/0",ifAlias="uplink 0"}} {2**64 - 1}\n' in text


def test_a_device_left_out_has_no_series():
    snap = snapshot()
    text = round_text(snap, [snap.devices[0].device], PROFILES).decode()
    assert 'device="isp-a"' in text and 'device="rtr-b"' not in text and 'device="rtr-c"' not in text


def test_probe_answer_has_probe_families_and_the_devices_series_only():
    snap = snapshot()
    for sample in snap.devices:
        answer = result(sample.device, sample, PROFILES)
        text = render_probe(ProbeTarget(sample.device.ip, sample.device), answer, 0.5).decode()
        got = oracle.samples(text)
        want = oracle.samples(oracle.text(oracle.families(oracle.probe_sample(sample))))
        assert {k: v for k, v in got.items() if k[0].startswith("wardops_snmp_")} == want
        assert got[("probe_success", ())] == int(sample.up)
        assert got[("probe_ip_protocol", ())] == (6 if ":" in sample.device.ip else 4)
        errors = {dict(k[1])["error"] for k in got if k[0] == "probe_snmp_error"}
        assert errors == ({sample.error} if sample.error else set())
        assert "wardops_snmp_poll_errors_total" not in text and "wardops_exporter_" not in text
        assert set(headers(text)) == {name for name, _ in got}  # HELP/TYPE for every family, only them


# promtool's one complaint: the contract's interface labels ifName/ifAlias (snmp_exporter's names,
# which users' queries use) are camelCase.
CAMEL = re.compile(r"(wardops_snmp_if_\w+) label names should be written in 'snake_case' not 'camelCase'")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (scripts/bootstrap)")
def test_promtool_lints_the_round_and_the_probe_answers_clean():
    snap = snapshot()
    texts = [round_text(snap, [s.device for s in snap.devices], PROFILES)]
    texts += [render_probe(ProbeTarget(s.device.ip, s.device), result(s.device, s, PROFILES), 0.5)
              for s in snap.devices]
    for text in texts:
        run = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30)
        lines = run.stderr.decode().splitlines()
        others = [line for line in lines if not CAMEL.fullmatch(line)]
        assert run.stdout == b"" and others == [], text.decode()[:2000]
        assert {CAMEL.fullmatch(line)[1] for line in lines} <= {
            f.name for f in contract.SNMP_FAMILIES if "ifName" in f.labels}



def test_units_are_base_units():
    """Speed in bytes per second (a 1 Gbit/s port: 125,000,000), the last change as a Unix timestamp."""
    snap = snapshot()
    text = round_text(snap, [s.device for s in snap.devices], PROFILES).decode()
    speeds = re.findall(r'^wardops_snmp_if_speed_bytes\{.*ifName="Gi0/(\d)".*\} (\S+)$', text, re.M)
    assert sorted(speeds) == [("0", "125000000"), ("2", "125000000")]  # Gi0/1 reports no speed
    changes = dict(re.findall(r'^wardops_snmp_if_last_change_timestamp_seconds\{.*ifName="Gi0/(\d)".*\} (\S+)$',
                              text, re.M))
    assert float(changes["1"]) == round(NOW - 1000.123, 2)
    assert "_speed_bps" not in text and "wardops_snmp_if_last_change_seconds" not in text
