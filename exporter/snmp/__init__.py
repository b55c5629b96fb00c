"""SNMP polling of interfaces and device health.

Integration API (see docs/snmp.md):
    poller = SnmpPoller(inventory.devices, inventory.snmp_profiles, concurrency=64, interval=60)
    await poller.run(stop_event)            # in the exporter's probing loop (one loop, one thread)
    families(poller.snapshot, keep=...)     # from the snapshot collector, on any thread
    sample = await poller.probe(device)     # /probe?module=snmp, on the probing loop
    probe_families(sample)
"""

from exporter.snmp.credentials import CredentialError, resolve_auth
from exporter.snmp.metrics import families, probe_families
from exporter.snmp.poller import (
    EMPTY_SNAPSHOT,
    DeviceSample,
    InterfaceSample,
    SnmpPoller,
    SnmpSnapshot,
)
from exporter.snmp.walker import SnmpError

__all__ = ["SnmpPoller", "SnmpSnapshot", "DeviceSample", "InterfaceSample", "EMPTY_SNAPSHOT", "families",
           "probe_families", "SnmpError", "CredentialError", "resolve_auth"]
