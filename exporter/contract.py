"""The metric contract: every family the exporter serves (name, type, help, label names), in one place.

The exporter registers and renders these families; the generators (rules, dashboards) and the tests
check every query against them. Standard library only, so `import exporter.contract` from the
generators pulls in nothing else of the exporter (a test checks this).

One tuple per area; add a family as one line in its area (exposition order is tuple order, and the
ICMP renderer writes ICMP_FAMILIES in this order). Names and label sets are a public interface:
rules, dashboards and users' own queries depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Family:
    name: str  # the sample name (counters carry their `_total`)
    type: str  # gauge | counter
    help: str
    labels: tuple[str, ...] = ()  # label names in exposition order (optional ones included, see below)

    def header(self) -> bytes:
        return f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.type}\n".encode()


# -- label sets ------------------------------------------------------------------------------------
# Every per-device series: inventory/model.py Device.target_labels(). `isp` is present only on
# devices with role "isp" (the provider's name).
DEVICE = ("device", "ip", "role", "region", "branch", "isp")
INTERFACE = (*DEVICE, "ifName", "ifAlias")
ROUND = ("protocol", "policy")  # one round loop: protocol icmp|snmp, the ICMP policy (or "snmp")

# -- ICMP, per device --------------------------------------------------------------------------------
ICMP_FAMILIES = (
    Family("wardops_icmp_up", "gauge", "1 if the device answers ICMP echo (hysteresis-filtered), 0 if DOWN.", DEVICE),
    Family("wardops_icmp_rtt_seconds", "gauge", "Average echo round-trip time of the last round.", DEVICE),
    Family("wardops_icmp_rtt_min_seconds", "gauge", "Minimum echo round-trip time of the last round.", DEVICE),
    Family("wardops_icmp_rtt_max_seconds", "gauge", "Maximum echo round-trip time of the last round.", DEVICE),
    Family("wardops_icmp_jitter_seconds", "gauge", "Mean absolute difference of consecutive RTTs, last round.",
           DEVICE),
    Family("wardops_icmp_loss_ratio", "gauge", "Share of echo requests without a reply in the last round.", DEVICE),
    Family("wardops_icmp_packets_sent_total", "counter", "Echo requests sent.", DEVICE),
    Family("wardops_icmp_packets_received_total", "counter", "Echo replies received within the timeout.", DEVICE),
    Family("wardops_icmp_status_changes_total", "counter", "UP/DOWN transitions (hysteresis-filtered).", DEVICE),
    Family("wardops_icmp_last_change_timestamp_seconds", "gauge", "When the current UP/DOWN state began (UTC epoch).",
           DEVICE),
)

# -- SNMP, per device and interface ------------------------------------------------------------------
# (family, interface column it exports) for the per-interface counters; the column names are
# exporter/snmp/oids.py's (agents without 64-bit counters feed the ifHC* columns from 32-bit ones).
SNMP_IF_COUNTERS = (
    (Family("wardops_snmp_if_in_octets_total", "counter", "Octets received (ifHCInOctets; ifInOctets on agents "
            "without 64-bit counters), monotonic across wraps and reboots.", INTERFACE), "ifHCInOctets"),
    (Family("wardops_snmp_if_out_octets_total", "counter", "Octets sent (ifHCOutOctets; ifOutOctets on agents "
            "without 64-bit counters), monotonic across wraps and reboots.", INTERFACE), "ifHCOutOctets"),
    (Family("wardops_snmp_if_in_errors_total", "counter", "Inbound packets with errors (ifInErrors).", INTERFACE),
     "ifInErrors"),
    (Family("wardops_snmp_if_out_errors_total", "counter", "Outbound packets with errors (ifOutErrors).", INTERFACE),
     "ifOutErrors"),
    (Family("wardops_snmp_if_in_discards_total", "counter", "Inbound packets discarded (ifInDiscards).", INTERFACE),
     "ifInDiscards"),
    (Family("wardops_snmp_if_out_discards_total", "counter", "Outbound packets discarded (ifOutDiscards).",
            INTERFACE), "ifOutDiscards"),
)
SNMP_FAMILIES = (
    Family("wardops_snmp_up", "gauge", "1 if the last SNMP poll of the device succeeded.", DEVICE),
    Family("wardops_snmp_uptime_seconds", "gauge", "Device sysUpTime in seconds.", DEVICE),
    Family("wardops_snmp_poll_duration_seconds", "gauge", "Duration of the last SNMP poll of the device.", DEVICE),
    Family("wardops_snmp_if_oper_up", "gauge", "1 if ifOperStatus is up(1).", INTERFACE),
    Family("wardops_snmp_if_admin_up", "gauge", "1 if ifAdminStatus is up(1).", INTERFACE),
    Family("wardops_snmp_if_speed_bytes", "gauge", "Interface speed in bytes per second (ifHighSpeed x 10^6 / 8).",
           INTERFACE),
    Family("wardops_snmp_if_last_change_timestamp_seconds", "gauge",
           "Unix time of the interface's last status change (from ifLastChange).", INTERFACE),
    *(family for family, _ in SNMP_IF_COUNTERS),
    Family("wardops_snmp_poll_errors_total", "counter",
           "Failed SNMP polls by error kind (timeout, auth, agent, protocol, credentials, deadline, network).",
           (*DEVICE, "error")),
)

SNMP_EXTRA_PREFIX = "wardops_snmp_"


def snmp_extra_family(metric: str, kind: str, table: bool) -> Family:
    """The family of a profile's extra OID (`extra_oids` in the inventory): `wardops_snmp_<metric>`,
    counters with `_total`; a table's rows carry an `index` label (the dotted row index)."""
    name = SNMP_EXTRA_PREFIX + metric + ("_total" if kind == "counter" else "")
    return Family(name, "counter" if kind == "counter" else "gauge",
                  f"Extra SNMP OID ({kind}) from the device's profile.", (*DEVICE, "index") if table else DEVICE)


# -- the process, as every Prometheus client library names it (exporter/process.py) ----------------
PROCESS_FAMILIES = (
    Family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds."),
    Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes."),
    Family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes."),
    Family("process_open_fds", "gauge", "Number of open file descriptors."),
    Family("process_max_fds", "gauge", "Maximum number of open file descriptors."),
    Family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds."),
)

# -- the exporter itself ------------------------------------------------------------------------------
SELF_FAMILIES = (
    Family("wardops_exporter_build_info", "gauge",
           "Always 1; the exporter's version, source revision (git, or unknown) and Python version.",
           ("version", "revision", "python")),
    Family("wardops_exporter_round_duration_seconds", "gauge", "Duration of the last completed round.", ROUND),
    Family("wardops_exporter_rounds_total", "counter", "Completed probe rounds.", ROUND),
    Family("wardops_exporter_round_overruns_total", "counter",
           "Round starts skipped because the previous round ran past its interval (never queued).", ROUND),
    Family("wardops_exporter_targets", "gauge", "Devices probed per round.", ROUND),
    Family("wardops_exporter_last_round_timestamp_seconds", "gauge", "When the last round completed (UTC epoch).",
           ROUND),
    Family("wardops_exporter_send_errors_total", "counter", "Packets the kernel refused to send.", ("protocol",)),
    Family("wardops_exporter_receive_drops_total", "counter",
           "Packets the kernel dropped because the socket receive queue was full (SO_RXQ_OVFL).", ("protocol",)),
    Family("wardops_exporter_config_reload_success", "gauge", "1 if the last config file (re)load succeeded."),
    Family("wardops_exporter_inventory_reload_success", "gauge", "1 if the last inventory (re)load succeeded."),
    Family("wardops_exporter_inventory_reload_timestamp_seconds", "gauge",
           "When the inventory was last loaded successfully (UTC epoch)."),
    Family("wardops_exporter_inventory_devices", "gauge",
           "Devices of the inventory set in use (after --site and --shard)."),
    Family("wardops_exporter_site_info", "gauge",
           "Always 1; the probe site this exporter was started for (--site or site.name; empty: none, so it "
           "probes every device).", ("exporter_site",)),
    Family("wardops_exporter_inventory_reload_held", "gauge",
           "1 while an inventory answer removing more than inventory.max_drop_share of the devices is held."),
    Family("wardops_exporter_inventory_held_removals", "gauge", "Devices the held inventory answer would remove."),
    Family("wardops_exporter_threads", "gauge", "Threads of the exporter process."),
    Family("wardops_exporter_asyncio_tasks", "gauge", "Unfinished asyncio tasks on the probing loop."),
    Family("wardops_exporter_secret_refusals_total", "counter",
           "SNMP secret references refused by the exporter's secrets policy, per profile and inventory answer loaded.",
           ("profile",)),
    *PROCESS_FAMILIES,
)

# -- /probe answers (blackbox_exporter's names, so existing probe dashboards read them) -------------
PROBE_FAMILIES = (
    Family("probe_success", "gauge", "Displays whether or not the probe was a success"),
    Family("probe_duration_seconds", "gauge", "Returns how long the probe took to complete in seconds"),
    Family("probe_ip_protocol", "gauge", "Specifies whether probe ip protocol is IP4 or IP6"),
    Family("probe_ip_addr_hash", "gauge",
           "Specifies the hash of IP address. It's useful to detect if the IP address changes."),
)
PROBE_ICMP_FAMILIES = (
    Family("probe_icmp_duration_seconds", "gauge", "Duration of the probe by phase (resolve, setup, rtt: average).",
           ("phase",)),
    Family("probe_icmp_packets_sent", "gauge", "Echo requests sent by the probe."),
    Family("probe_icmp_packets_received", "gauge", "Echo replies received within the timeout."),
    Family("probe_icmp_loss_ratio", "gauge", "Share of echo requests without a reply."),
    Family("probe_icmp_rtt_min_seconds", "gauge", "Minimum echo round-trip time."),
    Family("probe_icmp_rtt_max_seconds", "gauge", "Maximum echo round-trip time."),
    Family("probe_icmp_jitter_seconds", "gauge", "Mean absolute difference of consecutive RTTs."),
)
# followed by SNMP_FAMILIES (raw counters of one live poll; no poll error counter) and extra OIDs
PROBE_SNMP_FAMILIES = (
    Family("probe_snmp_error", "gauge", "1 for the kind of error of the failed poll.", ("error",)),
)

# -- ICMP, per branch and per probe site (docs/root-cause.md) -----------------------------------------
BRANCH = ("region", "branch")
SITE_FAMILIES = (
    Family("wardops_icmp_branch_up", "gauge",
           "1 if the branch answers (some probed device UP), 0 if observed dark (every probed device DOWN), "
           "-1 while deciding (confirmation burst running, or no device decided yet).",
           (*BRANCH, "uplinks", "providers")),
    Family("wardops_icmp_branch_last_change_timestamp_seconds", "gauge",
           "When the branch's current wardops_icmp_branch_up value began (UTC epoch).", BRANCH),
    Family("wardops_probe_site_canary_up", "gauge",
           "1 if the probe site's canary address answers ICMP (fastest policy, hysteresis-filtered), 0 if DOWN.",
           ("canary",)),
)
BURST_FAMILIES = (
    Family("wardops_icmp_confirmation_bursts_total", "counter",
           "Confirmation bursts started (per branch: every ISP uplink failed a round, or one answered again)."),
    Family("wardops_icmp_burst_rounds_total", "counter", "Batched confirmation-burst probe rounds run."),
)

# -- every fixed family, by name -----------------------------------------------------------------------
AREAS = {
    "icmp": ICMP_FAMILIES,
    "site": SITE_FAMILIES,
    "burst": BURST_FAMILIES,
    "snmp": SNMP_FAMILIES,
    "self": SELF_FAMILIES,
    "probe": PROBE_FAMILIES,
    "probe_icmp": PROBE_ICMP_FAMILIES,
    "probe_snmp": PROBE_SNMP_FAMILIES,
}
FAMILIES = {f.name: f for area in AREAS.values() for f in area}
# What /metrics serves (the /probe families are answers to one probe, not scraped series).
METRICS = frozenset(f.name for area in (ICMP_FAMILIES, SITE_FAMILIES, BURST_FAMILIES, SNMP_FAMILIES,
                                        SELF_FAMILIES) for f in area)

