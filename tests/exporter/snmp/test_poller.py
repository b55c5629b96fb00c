"""Poller logic through its seam (in-memory agents from generated recordings, no sockets)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from exporter.probing import ProbeRefused, ProbeTarget, render_probe
from exporter.snmp import SnmpPoller
from exporter.snmp.oids import STATIC_COLUMNS
from exporter.snmp.probe import SnmpProber
from exporter.snmp.render import round_text
from inventory.model import Device, SnmpProfile
from inventory.secrets import Secret
from wardops.lab.snmpagents import AgentSpec, interface_rows, snmprec, with_step

from .fakeagent import FakeAgent

ENV = {"COMM": "not-logged-community"}
PROFILES = {"p": SnmpProfile("p", "2c", community=Secret("env", "COMM"), timeout=0.2, retries=0),
            "nokey": SnmpProfile("nokey", "2c", community=Secret("env", "MISSING_VAR"))}


def dev(name, ip, snmp="p", role="router"):
    return Device(name, ip, region="R", branch="B", role=role, snmp=snmp, isp="X" if role == "isp" else None)


def poller_for(agents: dict[str, FakeAgent], devices, **kw):
    return SnmpPoller(devices, PROFILES, environ=ENV, requester_for=lambda t: agents[t.ip], **kw)


def static_walked(agent: FakeAgent) -> list[bool]:
    return [any(c.oid in req for c in STATIC_COLUMNS) for req in agent.requests]


def test_static_columns_cached_and_refreshed_every_n_polls():
    spec = AgentSpec("a", interfaces=5)
    agent = FakeAgent(snmprec(spec))
    p = poller_for({"198.18.0.1": agent}, [dev("a", "198.18.0.1")], static_every=3)
    for step in range(7):
        agent.load(snmprec(with_step(spec, step)))
        snap = asyncio.run(p.poll_round())
        assert [i.name for i in snap.devices[0].interfaces] == [r["name"] for r in interface_rows(spec)]
    assert static_walked(agent) == [True, False, False, True, False, False, True]
    assert len(agent.requests) == 7  # 5 interfaces: one GETBULK per poll


def test_interface_set_change_and_reboot_refresh_static_at_once():
    spec = AgentSpec("a", interfaces=4, uptime_ticks=10_000_000)
    agent = FakeAgent(snmprec(spec))
    p = poller_for({"198.18.0.1": agent}, [dev("a", "198.18.0.1")], static_every=100)
    asyncio.run(p.poll_round())
    agent.load(snmprec(AgentSpec("a", interfaces=6, uptime_ticks=10_006_000)))  # two new interfaces
    snap = asyncio.run(p.poll_round())
    assert len(snap.devices[0].interfaces) == 6 and snap.devices[0].interfaces[5].name == "if6"
    agent.load(snmprec(AgentSpec("a", interfaces=6, uptime_ticks=500)))  # reboot
    asyncio.run(p.poll_round())
    assert static_walked(agent) == [True, False, True, False, True]


def test_slow_and_hung_devices_do_not_delay_others():
    spec = AgentSpec("a", interfaces=3)
    slow, hung, fast = FakeAgent(snmprec(spec), delay=0.5), FakeAgent(snmprec(spec)), FakeAgent(snmprec(spec))
    hung.hang = True
    p = poller_for({"198.18.0.1": slow, "198.18.0.2": hung, "198.18.0.3": fast},
                   [dev("slow", "198.18.0.1"), dev("hung", "198.18.0.2"), dev("fast", "198.18.0.3")],
                   concurrency=3, interval=1.5)
    snap = asyncio.run(p.poll_round())
    s = {d.device.name: d for d in snap.devices}
    assert s["fast"].up and s["fast"].duration < 0.2
    assert s["slow"].up and 0.5 <= s["slow"].duration < 1.0
    assert (s["hung"].up, s["hung"].error) == (False, "deadline")  # bounded by the per-device deadline
    assert s["hung"].duration < 2.0
    assert snap.errors == {("hung", "deadline"): 1}


def test_unresolvable_credentials_are_an_error_without_the_value(caplog):
    caplog.set_level(logging.DEBUG)
    agent = FakeAgent(snmprec(AgentSpec("a", interfaces=1)))
    p = poller_for({"198.18.0.1": agent}, [dev("a", "198.18.0.1", snmp="nokey"), dev("b", "198.18.0.1")])
    snap = asyncio.run(p.poll_round())
    s = {d.device.name: d for d in snap.devices}
    assert (s["a"].up, s["a"].error) == (False, "credentials") and s["b"].up
    assert "MISSING_VAR" in caplog.text  # the reference is named ...
    assert ENV["COMM"] not in caplog.text  # ... never a value
    assert agent.requests  # the good profile still polled
    asyncio.run(p.poll_round())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "device=a " in r.getMessage()]
    assert len(warnings) == 1  # a device that keeps failing the same way warns once, not every interval


def text_of(p: SnmpPoller) -> str:
    return round_text(asyncio.run(p.poll_round()), p.devices, p.profiles).decode()


def test_families_contract_labels_and_down_devices():
    agent = FakeAgent(snmprec(AgentSpec("a", interfaces=2)))
    dead = FakeAgent(snmprec(AgentSpec("a", interfaces=2)))
    dead.hang = True
    p = poller_for({"198.18.0.1": agent, "198.18.0.2": dead},
                   [dev("isp1", "198.18.0.1", role="isp"), dev("gone", "198.18.0.2")], interval=1.0)
    text = text_of(p)
    assert ('wardops_snmp_if_oper_up{device="isp1",ip="198.18.0.1",role="isp",region="R",branch="B",isp="X",'
            'ifName="Gi0/0",ifAlias="a link 1"} 1\n') in text
    assert 'wardops_snmp_up{device="gone",ip="198.18.0.2",role="router",region="R",branch="B"} 0\n' in text
    assert 'device="gone",ip="198.18.0.2",role="router",region="R",branch="B",ifName' not in text
    assert 'wardops_snmp_uptime_seconds{device="gone"' not in text
    assert 'wardops_snmp_poll_errors_total{device="gone",ip="198.18.0.2",role="router",region="R",branch="B",' \
           'error="deadline"} 1\n' in text
    assert "wardops_snmp_if_last_change_timestamp_seconds{" in text and "wardops_snmp_if_speed_bytes{" in text
    assert 'wardops_exporter_targets{protocol="snmp",policy="snmp"} 2\n' in text
    # removing a device from the inventory removes its series and error counters
    p.update([dev("isp1", "198.18.0.1", role="isp")], PROFILES)
    assert 'device="gone"' not in text_of(p)


def test_probe_is_live_and_leaves_round_state_alone():
    spec = AgentSpec("a", interfaces=2, in_errors_base=2**32 - 1)
    agent = FakeAgent(snmprec(spec))
    d = dev("a", "198.18.0.1")
    p = poller_for({"198.18.0.1": agent}, [d])
    first = asyncio.run(p.poll_round()).devices[0].interfaces[0].counters["ifInErrors"]
    agent.load(snmprec(with_step(spec, 1)))  # ifInErrors wraps
    target = ProbeTarget(d.ip, d)
    result = asyncio.run(SnmpProber(p)(target, {}, time.monotonic() + 5))
    text = render_probe(target, result, 0.25).decode()
    assert "probe_success 1\n" in text and "probe_duration_seconds 0.25\n" in text
    raw_now = interface_rows(with_step(spec, 1))[0]["in_errors"]
    assert f'wardops_snmp_if_in_errors_total{{device="a",ip="198.18.0.1",role="router",region="R",branch="B",' \
           f'ifName="Gi0/0",ifAlias="a link 1"}} {raw_now}\n' in text  # the raw value
    assert "wardops_snmp_poll_errors_total" not in text
    after = asyncio.run(p.poll_round()).devices[0].interfaces[0].counters["ifInErrors"]
    assert after == first + (raw_now - interface_rows(spec)[0]["in_errors"]) % 2**32


def test_probe_refuses_non_snmp_targets_and_answers_by_its_deadline():
    hung = FakeAgent(snmprec(AgentSpec("a", interfaces=1)))
    hung.hang = True
    d = dev("a", "198.18.0.1")
    p = poller_for({"198.18.0.1": hung}, [d], interval=60.0)
    prober = SnmpProber(p)
    for target, why in ((ProbeTarget("198.19.0.1", None), "target '198.19.0.1' is not an inventory device"),
                        (ProbeTarget("198.18.0.2", dev("b", "198.18.0.2", snmp=None)), "with an snmp profile"),
                        (ProbeTarget("198.18.0.3", dev("c", "198.18.0.3", snmp="gone")), "unknown snmp profile")):
        with pytest.raises(ProbeRefused, match=why):
            asyncio.run(prober(target, {}, time.monotonic() + 5))
    started = time.monotonic()
    result = asyncio.run(prober(ProbeTarget(d.ip, d), {}, started + 0.3))
    assert 0.3 <= time.monotonic() - started < 1.0  # the device's own deadline would be 1.6 s
    text = render_probe(ProbeTarget(d.ip, d), result, 0.3).decode()
    assert "probe_success 0\n" in text and 'probe_snmp_error{error="deadline"} 1\n' in text
    assert 'wardops_snmp_up{device="a",ip="198.18.0.1",role="router",region="R",branch="B"} 0\n' in text


def test_reload_keeps_state_of_unchanged_devices_only():
    spec = AgentSpec("a", interfaces=1)
    agents = {"198.18.0.1": FakeAgent(snmprec(spec)), "198.18.0.9": FakeAgent(snmprec(spec))}
    p = poller_for(agents, [dev("a", "198.18.0.1"), dev("b", "198.18.0.1")])
    asyncio.run(p.poll_round())
    p.update([dev("a", "198.18.0.1"), dev("b", "198.18.0.9")], PROFILES)  # b moved
    asyncio.run(p.poll_round())
    assert static_walked(agents["198.18.0.1"]) == [True, True, False]  # a: cached; b: first poll at old ip
    assert static_walked(agents["198.18.0.9"]) == [True]  # b starts over at its new address


def test_agent_without_64bit_counters_falls_back_to_32bit_octets():
    spec = AgentSpec("old", interfaces=3, no_hc=True, in_octets_base=2**32 - 6_000_000)
    agent = FakeAgent(snmprec(spec))
    p = poller_for({"198.18.0.1": agent}, [dev("old", "198.18.0.1")])
    first = asyncio.run(p.poll_round()).devices[0].interfaces
    rows = interface_rows(spec)
    assert [i.counters["ifHCInOctets"] for i in first] == [r["in_octets"] % 2**32 for r in rows]
    assert len(agent.requests) == 2  # the 64-bit walk came back empty: one extra walk of ifIn/OutOctets
    agent.load(snmprec(with_step(spec, 1)))
    second = asyncio.run(p.poll_round()).devices[0].interfaces
    assert len(agent.requests) == 3  # remembered: straight to the 32-bit columns
    new = interface_rows(with_step(spec, 1))
    for a, b, old_row, new_row in zip(first, second, rows, new, strict=True):
        delta = (new_row["in_octets"] % 2**32 - old_row["in_octets"] % 2**32) % 2**32
        assert b.counters["ifHCInOctets"] - a.counters["ifHCInOctets"] == delta  # 32-bit wraps handled
    assert any(n["in_octets"] % 2**32 < o["in_octets"] % 2**32 for o, n in zip(rows, new, strict=True))


def test_interface_last_change_is_stable_between_polls_and_moves_with_a_change(monkeypatch):
    """ifLastChange -> Unix time through an anchored boot time: the same ifLastChange gives the same
    value on every poll despite request jitter (InterfaceFlapping counts changes of it)."""
    import time as time_module

    first = snmprec(AgentSpec("a", interfaces=2, uptime_ticks=1_000_000))
    agent = FakeAgent(first)
    p = poller_for({"198.18.0.1": agent}, [dev("a", "198.18.0.1")])
    clock = {"now": 1_700_000_000.0}
    monkeypatch.setattr(time_module, "time", lambda: clock["now"])

    def last_changes(uptime_line: str, *more: tuple[str, str]) -> list[float]:
        text = "\n".join(uptime_line if line.startswith("1.3.6.1.2.1.1.3.0|") else line
                         for line in first.splitlines())
        for old, new in more:
            text = text.replace(old, new)
        agent.load(text)
        return [i.last_change for i in asyncio.run(p.poll_round()).devices[0].interfaces]

    base = last_changes("1.3.6.1.2.1.1.3.0|67|1000000")
    assert base == [1_700_000_000.0 - 10.0, 1_700_000_000.0 - 20.0]  # changed 10 s / 20 s before the poll
    clock["now"] += 60.37  # the next poll, 37 ms late relative to the agent's clock
    assert last_changes("1.3.6.1.2.1.1.3.0|67|1006000") == base
    clock["now"] += 60.0  # interface 1 changed state 5 s ago
    moved = last_changes("1.3.6.1.2.1.1.3.0|67|1012000", ("1.3.6.1.2.1.2.2.1.9.1|67|999000",
                                                          "1.3.6.1.2.1.2.2.1.9.1|67|1011500"))
    assert moved[1] == base[1] and moved[0] == base[0] + 125.0
    clock["now"] += 60.0  # a reboot: uptime back to 30 s, interfaces changed at boot
    rebooted = last_changes("1.3.6.1.2.1.1.3.0|67|3000", ("1.3.6.1.2.1.2.2.1.9.1|67|999000",
                                                         "1.3.6.1.2.1.2.2.1.9.1|67|0"),
                            ("1.3.6.1.2.1.2.2.1.9.2|67|998000", "1.3.6.1.2.1.2.2.1.9.2|67|0"))
    assert rebooted == [clock["now"] - 30.0] * 2
