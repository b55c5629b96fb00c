"""The daemon flags the generated rules' latency depends on, as one args file per daemon.

Users pass them to their own daemons (`victoria-metrics $(grep -v '^#' flags/victoria-metrics.args)
...`), and `wardops stack` reads the same files, so the figures measured on the stack hold for a
deployment. With the daemons' defaults a device page took ~30 s instead of ~5 s: VictoriaMetrics
hides the newest 30 s of samples (-search.latencyOffset) and vmalert aligns each query time down
to its evaluation interval.
"""

from __future__ import annotations

from generators.settings import Settings

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
    if settings.inventory_url:
        out.append(("-promscrape.httpSDCheckInterval=30s",
                    "vmagent 1.79.5 reads HTTP SD refresh only from this flag, not from the scrape config"))
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
# Topology (`wardops stack up --ha`): two chains, exporter replica N -> vmagent N -> VictoriaMetrics
# N -> vmalert N, and both vmalerts -> both Alertmanagers, which gossip so that a page is sent once.
# Each vmagent scrapes only its own exporter replica and writes only to its own storage, instead of
# every vmagent writing every replica to both storages (with -dedup.minScrapeInterval) or sharing
# scrapes with -promscrape.cluster.*: the replicas are two processes with their own counters, so
# their series either differ by `instance` (then BranchDown's `group_left` finds two series per
# branch on its right side and fails, and every device alert arrives twice) or, relabelled to one
# series, interleave two counters: wardops_icmp_status_changes_total at, say, 40 in one replica and 12
# in the other reads as a counter reset on every sample, increase() adds the whole 40 or 12 each
# time, and DeviceFlapping fires (>= 3 changes) while IspLinkDown is suppressed. Deduplication keeps
# one sample per interval but does not choose the same replica every interval. One chain per
# replica keeps every series from one process; the two chains' alerts carry identical labels and
# the Alertmanager cluster merges them into one notification.
HA_MEMBERS = 2
# Alertmanager peer N waits N x peer-timeout before sending what the notification log does not yet
# show as sent by a lower peer. The default (15 s) allows for a WAN; on one host gossip takes
# milliseconds, and 5 s is what a page waits when the first peer dies before its failure is noticed.
AM_PEER_TIMEOUT = "5s"
# A (re)started Alertmanager waits for the gossip to settle (or this long) before notifying, so it
# first learns what its peer has already sent; settling needs ~3 stable polls 2 s apart (~6 s).
AM_SETTLE_TIMEOUT = "10s"


def alertmanager_ha_flags(listen: str, peers: list[str]) -> tuple[tuple[str, str], ...]:
    """Flags of one Alertmanager cluster member: its gossip address and every member's (itself
    included: the same list for every member, and a restarted member finds whichever is alive)."""
    return (
        (f"--cluster.listen-address={listen}", "gossip with the other Alertmanager (notification log, silences)"),
        *((f"--cluster.peer={p}", "a cluster member") for p in peers),
        (f"--cluster.peer-timeout={AM_PEER_TIMEOUT}",
         "second member's wait before sending what the first has not; gossip on one host takes ms"),
        (f"--cluster.settle-timeout={AM_SETTLE_TIMEOUT}",
         "a restarted member learns what was already sent before it notifies (settles in ~6 s)"),
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


def vmagent_ha_flags(storage: str) -> tuple[tuple[str, str], ...]:
    return ((f"-remoteWrite.url={storage}/api/v1/write",
             "this chain's VictoriaMetrics only (one exporter replica per storage, see above)"),)


def build_ha_flag_files(members: list[dict[str, str]], header: str) -> dict[str, str]:
    """Per-member args files for an HA deployment: {`ha/NAME-N.args`: text}. `members` holds, per
    chain, the addresses `victoria_metrics` (URL), `alertmanager` (URL) and `alertmanager_cluster`
    (host:port)."""
    alertmanagers = [m["alertmanager"] for m in members]
    peers = [m["alertmanager_cluster"] for m in members]
    files = {}
    for n, m in enumerate(members, 1):
        files[f"ha/alertmanager-{n}.args"] = render_args(alertmanager_ha_flags(m["alertmanager_cluster"], peers), header)
        files[f"ha/vmalert-{n}.args"] = render_args(vmalert_ha_flags(alertmanagers, m["victoria_metrics"]), header)
        files[f"ha/vmagent-{n}.args"] = render_args(vmagent_ha_flags(m["victoria_metrics"]), header)
    return files
