"""The daemon flags the generated rules' latency depends on, as one args file per daemon.

Users pass them to their own daemons (`victoria-metrics $(grep -v '^#' flags/victoria-metrics.args)
...`), and `wardops stack` reads the same files, so the figures measured on the stack hold for a
deployment. With the daemons' defaults a device page took ~30 s instead of ~5 s: VictoriaMetrics
hides the newest 30 s of samples (-search.latencyOffset) and vmalert aligns each query time down
to its evaluation interval.
"""

from __future__ import annotations

from generators.settings import Settings
from generators.vmagent import inventory_sd_urls

# flag -> why; kept in the file as comments, so a reader of the args file sees the reason.
VICTORIA_METRICS = (
    ("-search.latencyOffset=1s",
     "samples become queryable 1 s after ingestion instead of 30 s (the smallest value 1.79.5 accepts)"),
)
VMALERT = (
    ("-datasource.queryTimeAlignment=false",
     "query at the evaluation time itself, not aligned down to the interval (up to one interval later)"),
    ("-rule.validateExpressions=true", "refuse rule files whose expressions do not parse"),
)


def vmagent_flags(settings: Settings) -> tuple[tuple[str, str], ...]:
    out = []
    sd_urls = inventory_sd_urls(settings)
    if sd_urls:
        out.append(("-promscrape.httpSDCheckInterval=30s",
                    "vmagent 1.79.5 reads HTTP SD refresh only from this flag, not from the scrape config"))
    if len(sd_urls) > 1:
        out.append(("-promscrape.suppressDuplicateScrapeTargetErrors=true",
                    "every member's inventory service lists the same devices: vmagent probes each once and "
                    "would log an error line per dropped copy at every SD check"))
    return tuple(out)


def render_args(flags, header: str) -> str:
    lines = [header]
    for flag, why in flags:
        lines += [f"# {why}", flag]
    return "\n".join(lines) + "\n"


def build_flag_files(settings: Settings, header: str) -> dict[str, str]:
    """{file name: text}: one flag per line, `#` comments; empty files are still written so the
    set of files is stable."""
    return {
        "victoria-metrics.args": render_args(VICTORIA_METRICS, header),
        "vmalert.args": render_args(VMALERT, header),
        "vmagent.args": render_args(vmagent_flags(settings), header),
    }


def read_args(text: str) -> list[str]:
    """The flags of an args file (comments and blank lines dropped)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# -- high availability: two of every daemon -------------------------------------------------------
# Topology (`wardops stack up --ha`): the exporters are probe sites (settings `sites:`; consensus
# rules, whose pages carry neither `site` nor `instance`); vmagent 1 and 2 both scrape every site
# with the same scrape config and both write to VictoriaMetrics 1 and 2; vmalert N reads and writes
# back VictoriaMetrics N; both vmalerts notify both Alertmanagers, which gossip so a page is sent once.
# Why the two chains must evaluate the same data: Alertmanager keeps the newest update of an alert,
# and a firing update that arrives after a resolve re-opens the alert (their active ranges do not
# overlap, so nothing is merged). With one exporter replica per chain, the chains saw the recovery
# on different probe rounds and resolved a second or two apart; a `group_interval` tick (critical:
# 10 s) in between sent the resolve, and the lagging chain's next update then sent a second page and
# a second resolve, in 2 of 20 runs of the HA end-to-end scenarios.
# Why the same scrape config gives the same data: vmagent 1.79.5 starts a target's scrapes at an
# offset hashed from -promscrape.cluster.name (left unset here: it must be equal on both), the
# scrape URL and the target's labels, so both vmagents scrape each exporter within 0-1 ms of each
# other (sample timestamps compared in both storages) and get the same snapshot (the exporter serves
# its last completed round). vmalert 1.79.5 likewise starts each group at an offset hashed from the
# rule file path and group name: both vmalerts evaluate within 1 ms of each other (same rule paths).
# What remains is ingestion: at one instant the newest sample was in one storage and not yet in the
# other in 4 of 161 queries (vmagent flushes every 1 s, -search.latencyOffset=1s), 0 of 162 with
# the query time 2 s back. A chain that lags so sends its firing update in the same millisecond as
# the other's resolve and resolves 5 s later; a notification needs a `group_interval` tick inside
# that millisecond, so -datasource.lookback (2 s more on every page) is not worth it.
# Why every vmagent writes to every storage: a chain whose vmagent is dead is blind, not silent:
# VictoriaMetrics answers with the last sample up to vmalert's -datasource.queryStep (5 min) old, so
# the blind vmalert kept IspLinkDown firing after the uplink came back, and in the 48 s until the
# vmagent returned the Alertmanagers, fed "firing" by it and "resolved" by the other chain, sent 4
# pages and 4 resolves for the one outage; its frozen round timestamps also raised 4 false
# ProbeRoundsStalled. With both vmagents
# writing both storages, a dead vmagent leaves both chains their data. Each storage then holds two
# copies of every scrape (same timestamp within 1 ms, same value): -dedup.minScrapeInterval keeps
# one. No counters interleave: every series still comes from one exporter process. A dead
# VictoriaMetrics makes its vmalert's queries fail, and vmalert 1.79.5 sends nothing for a rule whose
# query failed; the vmagents queue its samples on disk and send them when it is back.
HA_MEMBERS = 2
# The smallest scrape interval of the generated config (the ICMP job, 1 s): deduplication keeps one
# sample per this interval and series, so it must not exceed any job's scrape interval.
HA_DEDUP_INTERVAL = "1s"
# Alertmanager peer N waits N x peer-timeout before sending what the notification log does not yet
# show as sent by a lower peer. The default (15 s) allows for a WAN; on one host gossip takes
# milliseconds, and 5 s is what a page waits when the first peer dies before its failure is noticed.
AM_PEER_TIMEOUT = "5s"
# No wait for the gossip to "settle" after a (re)start. A member learns what its peers already sent
# while it joins: the join's full state exchange is done before it serves its API (in a debug log,
# the peer's notification-log entry was merged 0.05 s before it listened). Waiting added only harm:
# the notifications it flushed meanwhile were sent when the wait ended, with the alerts as they were
# when flushed. With 10 s, an Alertmanager restarted while an uplink came back sent a second
# IspLinkDown firing 11 s after its peer had sent the resolve (bench/ha.py, 2 of 2 runs).
AM_SETTLE_TIMEOUT = "0s"


def alertmanager_ha_flags(listen: str, peers: list[str]) -> tuple[tuple[str, str], ...]:
    """Flags of one Alertmanager cluster member: its gossip address and every member's (itself
    included: the same list for every member, and a restarted member finds whichever is alive)."""
    return (
        (f"--cluster.listen-address={listen}", "gossip with the other Alertmanager (notification log, silences)"),
        *((f"--cluster.peer={p}", "a cluster member") for p in peers),
        (f"--cluster.peer-timeout={AM_PEER_TIMEOUT}",
         "second member's wait before sending what the first has not; gossip on one host takes ms"),
        (f"--cluster.settle-timeout={AM_SETTLE_TIMEOUT}",
         "no settle wait: the join already merged what the peers sent; a wait only sends stale flushes"),
    )


def vmalert_ha_flags(alertmanagers: list[str], storage: str) -> tuple[tuple[str, str], ...]:
    """Flags of one vmalert: notify every Alertmanager (the cluster sends once), read and write its
    own VictoriaMetrics, and restore alert state from it after a restart."""
    return (
        *((f"-notifier.url={am}", "every Alertmanager: either one alone still pages") for am in alertmanagers),
        (f"-datasource.url={storage}", "this chain's VictoriaMetrics"),
        (f"-remoteWrite.url={storage}", "ALERTS/ALERTS_FOR_STATE written back to this chain's storage"),
        (f"-remoteRead.url={storage}",
         "read back on start: a restarted vmalert keeps its `for` timers and active alerts (no second page)"),
    )


def vmagent_ha_flags(storages: list[str]) -> tuple[tuple[str, str], ...]:
    """Flags of one vmagent: write every sample to every VictoriaMetrics (one queue each on disk, so a
    restarted storage gets what it missed)."""
    return tuple((f"-remoteWrite.url={s}/api/v1/write",
                  "every VictoriaMetrics: a dead vmagent leaves no chain blind (see above)") for s in storages)


def victoria_metrics_ha_flags() -> tuple[tuple[str, str], ...]:
    return ((f"-dedup.minScrapeInterval={HA_DEDUP_INTERVAL}",
             "both vmagents write the same scrape (same moment, same value): keep one sample per interval"),)


def build_ha_flag_files(members: list[dict[str, str]], header: str) -> dict[str, str]:
    """Per-member args files for an HA deployment: {`ha/NAME-N.args`: text}. `members` holds, per
    chain, the addresses `victoria_metrics` (URL), `alertmanager` (URL) and `alertmanager_cluster`
    (host:port)."""
    alertmanagers = [m["alertmanager"] for m in members]
    peers = [m["alertmanager_cluster"] for m in members]
    storages = [m["victoria_metrics"] for m in members]
    files = {}
    for n, m in enumerate(members, 1):
        files[f"ha/alertmanager-{n}.args"] = render_args(alertmanager_ha_flags(m["alertmanager_cluster"], peers), header)
        files[f"ha/vmalert-{n}.args"] = render_args(vmalert_ha_flags(alertmanagers, m["victoria_metrics"]), header)
        files[f"ha/vmagent-{n}.args"] = render_args(vmagent_ha_flags(storages), header)
        files[f"ha/victoria-metrics-{n}.args"] = render_args(victoria_metrics_ha_flags(), header)
    return files
