"""Every v3 auth/priv protocol the inventory accepts works against net-snmp's snmpd (loopback)."""

from __future__ import annotations

import asyncio

import pytest

from exporter.snmp import SnmpPoller
from inventory.model import SNMP_AUTH_PROTOCOLS, SNMP_PRIV_PROTOCOLS, Device, SnmpProfile
from inventory.secrets import Secret
from wardops.lab.snmpagents import V3User, _free_udp_port, start_snmpd

COMBOS = [("MD5", "DES"), ("SHA", "AES"), ("SHA224", "AES"), ("SHA256", "AES192"), ("SHA384", "AES256"),
          ("SHA512", "AES256"), ("MD5", None), ("SHA256", None)]


def test_combos_cover_every_protocol():
    assert {a for a, _ in COMBOS} == set(SNMP_AUTH_PROTOCOLS)
    assert {p for _, p in COMBOS if p} == set(SNMP_PRIV_PROTOCOLS)


@pytest.fixture(scope="module")
def snmpd():
    port = _free_udp_port()
    users = [V3User(f"u{i}", a, f"auth-key-{i}", p or "NONE", f"priv-key-{i}" if p else "")
             for i, (a, p) in enumerate(COMBOS)]
    agent = start_snmpd([f"udp:127.0.0.1:{port}"], community=None, v3_users=users, ready=("127.0.0.1", port))
    yield port
    agent.stop()


def test_every_auth_and_priv_protocol_polls(snmpd):
    env, profiles = {}, {}
    for i, (a, p) in enumerate(COMBOS):
        env[f"A{i}"], env[f"P{i}"] = f"auth-key-{i}", f"priv-key-{i}"
        profiles[f"p{i}"] = SnmpProfile(f"p{i}", "3", username=f"u{i}", auth_protocol=a,
                                        auth_key=Secret("env", f"A{i}"), priv_protocol=p,
                                        priv_key=Secret("env", f"P{i}") if p else None, port=snmpd,
                                        timeout=1.0, retries=1)
    # a user whose priv key is wrong: snmpd cannot decrypt and drops the request (no report PDU)
    env["BADP"] = "priv-key-wrong"
    profiles["bad"] = SnmpProfile("bad", "3", username="u1", auth_protocol="SHA", auth_key=Secret("env", "A1"),
                                  priv_protocol="AES", priv_key=Secret("env", "BADP"), port=snmpd, timeout=1.0)
    devices = [Device(f"d{i}", "127.0.0.1", "R", "B", snmp=f"p{i}") for i in range(len(COMBOS))]
    poller = SnmpPoller(devices + [Device("bad", "127.0.0.1", "R", "B", snmp="bad")], profiles, environ=env)

    async def poll():
        try:
            snap = await poller.poll_round()
            assert len(poller._usm._engines) == len(COMBOS) + 1  # one engine per credential set
            poller.update(devices[:2], profiles)  # a reload drops engines nobody uses any more
            assert len(poller._usm._engines) == 2
            again = await poller.poll_round()
            assert [s.up for s in again.devices] == [True, True]
            return snap
        finally:
            poller.close()

    snap = asyncio.run(poll())
    results = {s.device.name: (s.up, s.error) for s in snap.devices}
    assert results == {**{f"d{i}": (True, None) for i in range(len(COMBOS))}, "bad": (False, "timeout")}
