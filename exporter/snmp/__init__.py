"""SNMP polling of interfaces and device health.

Integration API (see docs/snmp.md):
    poller = SnmpPoller(inventory.devices, inventory.snmp_profiles, concurrency=64, interval=60)
    snapshot = await poller.poll_round()    # on the exporter's probing loop (one loop, one thread)
    render.render_rows(render.snapshot_rows(snapshot, devices))   # the section /metrics serves
    sample = await poller.probe(device)     # /probe?module=snmp (exporter/snmp/probe.py)
"""

from exporter.snmp.credentials import CredentialError, resolve_auth
from exporter.snmp.poller import (
    EMPTY_SNAPSHOT,
    DeviceSample,
    InterfaceSample,
    SnmpPoller,
    SnmpSnapshot,
)
from exporter.snmp.walker import SnmpError

__all__ = ["SnmpPoller", "SnmpSnapshot", "DeviceSample", "InterfaceSample", "EMPTY_SNAPSHOT", "SnmpError",
           "CredentialError", "resolve_auth"]
