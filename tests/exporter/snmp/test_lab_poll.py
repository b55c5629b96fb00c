"""End to end against real agents in the lab: snmpsim recordings (v2c) and net-snmp snmpd (v3) in the
target namespace, the poller on an event loop thread inside the prober namespace."""

from __future__ import annotations

import logging
import time

import pytest

from exporter.probing import ProbeTarget, render_probe
from exporter.snmp import SnmpPoller
from exporter.snmp.probe import SnmpProber
from exporter.snmp.render import render_rows, round_text, snapshot_rows
from inventory.model import Device, ExtraOid, SnmpProfile
from inventory.secrets import Secret
from wardops.lab.snmpagents import AgentSpec, V3User, interface_rows, start_agents, start_snmpd, with_step

pytestmark = pytest.mark.lab

SECRETS = {"SNMPT_COMMUNITY": "c0mm-Secret-77", "SNMPT_WRONG": "wrong-Secret-88",
           "SNMPT_AUTH": "authKey-Secret-55", "SNMPT_PRIV": "privKey-Secret-66", "SNMPT_BAD": "badKey-Secret-99"}
V3_IP = "198.18.100.10"


def profiles():
    c = dict(timeout=0.5, retries=1)
    return {
        "v2c": SnmpProfile("v2c", "2c", community=Secret("env", "SNMPT_COMMUNITY"), extra_oids=EXTRA_OIDS, **c),
        "v2c-wrong": SnmpProfile("v2c-wrong", "2c", community=Secret("env", "SNMPT_WRONG"), **c),
        "v1": SnmpProfile("v1", "1", community=Secret("env", "SNMPT_COMMUNITY"), **c),
        "v3": SnmpProfile("v3", "3", username="mon", auth_protocol="SHA", auth_key=Secret("env", "SNMPT_AUTH"),
                          priv_protocol="AES", priv_key=Secret("env", "SNMPT_PRIV"), **c),
        "v3-wrong": SnmpProfile("v3-wrong", "3", username="mon", auth_protocol="SHA",
                                auth_key=Secret("env", "SNMPT_BAD"), priv_protocol="AES",
                                priv_key=Secret("env", "SNMPT_PRIV"), **c),
    }


def dev(name, ip, snmp, role="router"):
    return Device(name, ip, region="Tbilisi", branch="Branch 1", role=role, snmp=snmp,
                  isp="Magti" if role == "isp" else None)


EXTRA_OIDS = (ExtraOid("cpu_idle_percent", (1, 3, 6, 1, 4, 1, 2021, 11, 11, 0)),
              ExtraOid("load_int", (1, 3, 6, 1, 4, 1, 2021, 10, 1, 5), table=True),
              ExtraOid("cpu_user_ticks", (1, 3, 6, 1, 4, 1, 2021, 11, 50, 0), type="counter"))
EXTRA_RECORDS = (("1.3.6.1.4.1.2021.11.11.0", "2", "97"), ("1.3.6.1.4.1.2021.10.1.5.1", "2", "12"),
                 ("1.3.6.1.4.1.2021.10.1.5.2", "2", "30"), ("1.3.6.1.4.1.2021.10.1.5.3", "2", "45"),
                 ("1.3.6.1.4.1.2021.11.50.0", "65", "123456"))
SPECS = [
    AgentSpec("r-ok", ip="198.18.100.1", extra=EXTRA_RECORDS),
    AgentSpec("r-isp", ip="198.18.100.2", interfaces=3, seed=4),
    AgentSpec("r-reboot", ip="198.18.100.3", uptime_ticks=50_000_000, step=5),
    AgentSpec("r-wrap", ip="198.18.100.4", in_errors_base=2**32 - 30, in_octets_base=2**64 - 5_001_000),
    AgentSpec("r-silent", ip="198.18.100.5", silent=True),
    AgentSpec("r-v6", ip="2001:2::100:6", interfaces=2, seed=6),
]


@pytest.fixture(scope="module")
def agents(lab):
    handle = start_agents(SPECS, netns=lab.target_ns, community=SECRETS["SNMPT_COMMUNITY"])
    snmpd = None
    try:
        snmpd = start_snmpd([f"udp:{V3_IP}:161"], netns=lab.target_ns, community=None,
                            v3_users=[V3User("mon", "SHA", SECRETS["SNMPT_AUTH"], "AES", SECRETS["SNMPT_PRIV"])],
                            ready=(V3_IP, 161))
        yield handle
    finally:
        if snmpd:
            snmpd.stop()
        handle.stop()


def by_name(snapshot):
    return {s.device.name: s for s in snapshot.devices}


def test_v2c_poll_matches_recording_and_metric_contract(agents, probe_loop):
    devices = [dev("r-ok", "198.18.100.1", "v2c"), dev("r-isp", "198.18.100.2", "v2c", role="isp"),
               dev("r-v6", "2001:2::100:6", "v2c")]
    poller = SnmpPoller(devices, profiles(), environ=SECRETS)
    snap = probe_loop.run(poller.poll_round())
    s = by_name(snap)["r-ok"]
    assert s.up and s.error is None
    assert s.uptime_seconds == SPECS[0].uptime_ticks / 100
    want = interface_rows(SPECS[0])
    assert [i.name for i in s.interfaces] == [r["name"] for r in want]
    assert [i.alias for i in s.interfaces] == [r["alias"] for r in want]
    assert [i.speed_bps for i in s.interfaces] == [r["speed_mbps"] * 1e6 for r in want]
    assert [i.oper_up for i in s.interfaces] == [r["oper"] == 1 for r in want]
    assert [i.admin_up for i in s.interfaces] == [r["admin"] == 1 for r in want]
    assert [dict(i.counters) for i in s.interfaces] == [
        {"ifHCInOctets": r["in_octets"], "ifHCOutOctets": r["out_octets"], "ifInErrors": r["in_errors"],
         "ifOutErrors": r["out_errors"], "ifInDiscards": r["in_discards"], "ifOutDiscards": r["out_discards"]}
        for r in want]
    text = round_text(snap, poller.devices, poller.profiles).decode()
    r_ok = 'device="r-ok",ip="198.18.100.1",role="router",region="Tbilisi",branch="Branch 1"'
    assert (f'wardops_snmp_if_in_octets_total{{{r_ok},ifName="Gi0/0",ifAlias="r-ok link 1"}} '
            f'{want[0]["in_octets"]}\n') in text
    assert 'wardops_snmp_up{device="r-isp",ip="198.18.100.2",role="isp",region="Tbilisi",branch="Branch 1",' \
           'isp="Magti"} 1\n' in text
    assert text.count("wardops_snmp_if_oper_up{") == 24 + 3 + 2
    assert [i.name for i in by_name(snap)["r-v6"].interfaces] == [r["name"] for r in interface_rows(SPECS[-1])]
    # extra OIDs of the profile: a scalar gauge, a table (index label) and a counter
    assert f"wardops_snmp_cpu_idle_percent{{{r_ok}}} 97\n" in text
    assert f'wardops_snmp_load_int{{{r_ok},index="3"}} 45\n' in text
    assert "# TYPE wardops_snmp_cpu_user_ticks_total counter" in text
    assert f"wardops_snmp_cpu_user_ticks_total{{{r_ok}}} " in text
    assert 'wardops_snmp_cpu_idle_percent{device="r-isp",' not in text  # agent lacks it
    # role filter for /metrics?role=isp
    isp_only = b"".join(isp for isp, _ in render_rows(snapshot_rows(snap, poller.devices)).values()).decode()
    assert 'device="r-ok"' not in isp_only and 'device="r-isp"' in isp_only
    # v1 walks with GETNEXT and cannot see Counter64 columns: octets come from 32-bit ifInOctets
    v1 = probe_loop.run(SnmpPoller([dev("r-ok", "198.18.100.1", "v1")], profiles(), environ=SECRETS).poll_round())
    i0 = v1.devices[0].interfaces[0]
    assert v1.devices[0].up and i0.counters["ifInErrors"] == want[0]["in_errors"]
    assert i0.counters["ifHCInOctets"] == want[0]["in_octets"] % 2**32
    probe_loop.call(poller.close)


def test_dead_and_misconfigured_devices_do_not_delay_others(agents, probe_loop, caplog):
    caplog.set_level(logging.DEBUG)
    devices = [dev("r-silent", "198.18.100.5", "v2c"), dev("r-wrongc", "198.18.100.1", "v2c-wrong"),
               dev("r-ok", "198.18.100.1", "v2c")]
    poller = SnmpPoller(devices, profiles(), environ=SECRETS, concurrency=4)
    started = time.monotonic()
    snap = probe_loop.run(poller.poll_round())
    elapsed = time.monotonic() - started
    s = by_name(snap)
    assert (s["r-silent"].up, s["r-silent"].error) == (False, "timeout")
    assert (s["r-wrongc"].up, s["r-wrongc"].error) == (False, "timeout")  # v2c agents drop bad communities
    assert s["r-silent"].duration >= 0.9  # 2 tries x 0.5 s
    assert s["r-ok"].up and s["r-ok"].duration < 0.9
    assert s["r-ok"].timestamp < s["r-silent"].timestamp
    assert elapsed < 2.5
    text = round_text(snap, poller.devices, poller.profiles).decode()
    r_silent = 'device="r-silent",ip="198.18.100.5",role="router",region="Tbilisi",branch="Branch 1"'
    assert f'wardops_snmp_poll_errors_total{{{r_silent},error="timeout"}} 1\n' in text
    assert f"wardops_snmp_up{{{r_silent}}} 0\n" in text
    for secret in SECRETS.values():
        assert secret not in text and secret not in caplog.text
    probe_loop.call(poller.close)


def test_v3_right_and_wrong_credentials(agents, probe_loop, caplog):
    caplog.set_level(logging.DEBUG)
    devices = [dev("core-ok", V3_IP, "v3"), dev("core-bad", V3_IP, "v3-wrong")]
    poller = SnmpPoller(devices, profiles(), environ=SECRETS)
    snap = probe_loop.run(poller.poll_round())
    s = by_name(snap)
    assert s["core-ok"].up, s["core-ok"].error
    assert s["core-ok"].sys_name == "wardops-lab-snmpd"
    assert {i.name for i in s["core-ok"].interfaces} >= {"lo"}
    assert (s["core-bad"].up, s["core-bad"].error) == (False, "auth")
    target = ProbeTarget(V3_IP, devices[1])
    answer = probe_loop.run(SnmpProber(poller)(target, {}, time.monotonic() + 10))
    text = (round_text(snap, poller.devices, poller.profiles) + render_probe(target, answer, 0.1)).decode()
    assert 'wardops_snmp_poll_errors_total{device="core-bad",' in text and 'error="auth"} 1\n' in text
    assert "probe_success 0\n" in text and 'probe_snmp_error{error="auth"} 1\n' in text
    assert "auth" in caplog.text
    for secret in SECRETS.values():
        assert secret not in text and secret not in caplog.text and secret not in repr(poller.target(
            devices[0], poller.profiles["v3"]))
    probe_loop.call(poller.close)


def test_reboot_and_counter_wrap_keep_counters_monotonic(agents, probe_loop):
    devices = [dev("r-reboot", "198.18.100.3", "v2c"), dev("r-wrap", "198.18.100.4", "v2c")]
    poller = SnmpPoller(devices, profiles(), environ=SECRETS)
    first = by_name(probe_loop.run(poller.poll_round()))
    # reboot: sysUpTime goes back and every counter restarts low (step 0 < step 5)
    rebooted = AgentSpec("r-reboot", ip="198.18.100.3", uptime_ticks=3_000, step=0)
    agents.restart("r-reboot", rebooted)
    wrap_spec = with_step(agents.spec("r-wrap"), 1)
    old_wrap_rows = interface_rows(agents.spec("r-wrap"))
    agents.restart("r-wrap", wrap_spec)
    second = by_name(probe_loop.run(poller.poll_round()))
    r1, r2 = first["r-reboot"], second["r-reboot"]
    assert r2.up and r2.uptime_seconds < r1.uptime_seconds
    for before, after, raw in zip(r1.interfaces, r2.interfaces, interface_rows(rebooted), strict=True):
        assert after.counters["ifInErrors"] == before.counters["ifInErrors"] + raw["in_errors"]
        assert after.counters["ifHCInOctets"] == before.counters["ifHCInOctets"] + raw["in_octets"]
    w1, w2 = first["r-wrap"], second["r-wrap"]
    new_rows = interface_rows(wrap_spec)
    wrapped32 = wrapped64 = 0
    for before, after, old, new in zip(w1.interfaces, w2.interfaces, old_wrap_rows, new_rows, strict=True):
        wrapped32 += new["in_errors"] < old["in_errors"]
        wrapped64 += new["in_octets"] < old["in_octets"]
        assert after.counters["ifInErrors"] - before.counters["ifInErrors"] == (new["in_errors"] - old["in_errors"]) % 2**32
        assert after.counters["ifHCInOctets"] - before.counters["ifHCInOctets"] == (
            new["in_octets"] - old["in_octets"]) % 2**64
    assert wrapped32 > 0 and wrapped64 > 0  # the recording really wrapped both kinds
    probe_loop.call(poller.close)


def test_one_lab_snmpd_answers_for_every_address(lab, probe_loop):
    """The demo set-up: one snmpd for the whole target namespace, v2c and v3, IPv4 and IPv6."""
    from wardops.lab.snmpagents import start_lab_snmpd

    users = [V3User("demo", "SHA", SECRETS["SNMPT_AUTH"], "AES", SECRETS["SNMPT_PRIV"])]
    with start_lab_snmpd(lab.target_ns, community=SECRETS["SNMPT_COMMUNITY"], v3_users=users, port=1161,
                         ipv6=["2001:2::7:1", "2001:2::7:2"]):
        c = dict(timeout=1.0, retries=1, port=1161)
        profs = {"v2c": SnmpProfile("v2c", "2c", community=Secret("env", "SNMPT_COMMUNITY"), **c),
                 "v3": SnmpProfile("v3", "3", username="demo", auth_protocol="SHA", auth_key=Secret("env", "SNMPT_AUTH"),
                                   priv_protocol="AES", priv_key=Secret("env", "SNMPT_PRIV"), **c)}
        devices = [dev("a", "198.18.7.1", "v2c"), dev("b", "198.19.250.9", "v2c"), dev("c", "2001:2::7:1", "v2c"),
                   dev("d", "198.18.7.2", "v3"), dev("e", "2001:2::7:2", "v3")]
        poller = SnmpPoller(devices, profs, environ=SECRETS)
        snap = probe_loop.run(poller.poll_round())
        probe_loop.call(poller.close)
    assert {s.device.name: (s.up, len(s.interfaces)) for s in snap.devices} == {n: (True, 24) for n in "abcde"}
