"""`wardops stack up --ha`: two of every daemon, as two chains joined at the Alertmanagers.

Chain N = exporter replica N -> vmagent N -> VictoriaMetrics N -> vmalert N; both vmalerts notify
both Alertmanagers, which gossip so each notification is sent once (why one chain per exporter
replica and not every replica into both storages: generators/flags.py). This module derives each
chain's scrape config from the one scrape config (generated or built-in), so the generated rules
run unchanged on either chain.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from generators.flags import HA_MEMBERS

# Both chains' series (and so their alerts) must carry identical labels for the Alertmanager cluster
# to merge them: the exporter jobs' `instance` (otherwise each replica's address) becomes this.
REPLICA_INSTANCE = "exporter-replicas"
HEADER = "# written by `wardops stack up --ha` from {source}: chain {n} scrapes exporter replica {n} only\n"


def is_exporter_job(job: dict) -> bool:
    return str(job.get("job_name", "")).startswith("wardops")


def member_scrape_config(config: dict, n: int, exporters: list[str]) -> dict:
    """Chain `n`'s (1-based) copy of `config`: exporter jobs keep only exporter replica `n` (the
    n-th static target, or the one of `exporters`), the /probe job goes through that replica, and
    when the replicas differ their `instance` label is REPLICA_INSTANCE in both chains."""
    mine = exporters[(n - 1) % len(exporters)] if exporters else None
    replicated = len(set(exporters)) > 1
    jobs = []
    for job in config.get("scrape_configs", []):
        job = dict(job)
        if is_exporter_job(job):
            if job.get("static_configs"):
                statics = []
                for sc in job["static_configs"]:
                    targets = list(sc.get("targets", []))
                    if len(targets) == HA_MEMBERS:
                        replicated, targets = True, [targets[n - 1]]
                    elif mine and len(targets) == 1 and targets[0] == exporters[0]:
                        targets = [mine]
                    statics.append({**sc, "targets": targets})
                job["static_configs"] = statics
            relabels = []
            for r in job.get("relabel_configs", []):
                if r.get("target_label") == "__address__" and mine and "replacement" in r:
                    r = {**r, "replacement": mine}
                relabels.append(r)
            if relabels:
                job["relabel_configs"] = relabels
        jobs.append(job)
    if replicated:
        for job in jobs:
            if is_exporter_job(job) and job.get("static_configs"):
                job["relabel_configs"] = [*job.get("relabel_configs", []),
                                          {"target_label": "instance", "replacement": REPLICA_INSTANCE}]
    return {**config, "scrape_configs": jobs}


def write_member_scrape_configs(source: Path, out_dir: Path, exporters: list[str]) -> list[Path]:
    config = yaml.safe_load(source.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(1, HA_MEMBERS + 1):
        path = out_dir / f"scrape-{n}.yml"
        path.write_text(HEADER.format(source=source, n=n)
                        + yaml.safe_dump(member_scrape_config(config, n, exporters), sort_keys=False))
        paths.append(path)
    return paths


def cluster_state(am_url: str) -> tuple[str, int]:
    """(cluster status, number of peers) as one Alertmanager sees it; ("down", 0) if it does not answer."""
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(am_url + "/api/v2/status", timeout=2) as resp:
            cluster = json.loads(resp.read()).get("cluster") or {}
    except (urllib.error.URLError, OSError, ValueError):
        return "down", 0
    return str(cluster.get("status", "disabled")), len(cluster.get("peers") or ())


def wait_cluster(am_urls: list[str], timeout: float) -> None:
    """Block until every Alertmanager reports the cluster `ready` with all members: until then a
    member may notify what its peer already sent (it has not yet received the notification log)."""
    import time

    from wardops.stack.process import StackError

    deadline = time.monotonic() + timeout
    while True:
        states = {url: cluster_state(url) for url in am_urls}
        if all(st == ("ready", len(am_urls)) for st in states.values()):
            return
        if time.monotonic() > deadline:
            raise StackError(f"Alertmanager cluster not ready after {timeout:.0f} s: " + ", ".join(
                f"{url} {st} with {n} peer(s)" for url, (st, n) in states.items()))
        time.sleep(0.5)
