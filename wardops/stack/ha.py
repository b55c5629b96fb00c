"""`wardops stack up --ha`: two of every daemon, as two chains joined at the Alertmanagers.

Chain N = vmagent N -> VictoriaMetrics N -> vmalert N; both vmagents scrape every exporter (every
probe site) with the same scrape config and write to both VictoriaMetrics, and both vmalerts notify
both Alertmanagers, which gossip so each notification is sent once. Why the two chains must
evaluate the same data, and how they do: generators/flags.py.
"""

from __future__ import annotations

from pathlib import Path

import yaml

HEADER = "# written by `wardops stack up --ha` from {source}: the one scrape config of both vmagents\n"


def is_exporter_job(job: dict) -> bool:
    return str(job.get("job_name", "")).startswith("wardops")


def shared_scrape_config(config: dict, extra_exporters: list[str]) -> dict:
    """`config` with `extra_exporters` (a second `--exporter`: a second probe site for the built-in
    config) added to every exporter job's first static target group where absent. Both vmagents
    read the result: same targets, same labels, so they scrape each exporter at the same moment."""
    jobs = []
    for job in config.get("scrape_configs", []):
        job = dict(job)
        statics = [dict(sc) for sc in job.get("static_configs", [])]
        if is_exporter_job(job) and statics:
            present = {t for sc in statics for t in sc.get("targets", [])}
            statics[0]["targets"] = [*statics[0].get("targets", []),
                                     *(e for e in extra_exporters if e not in present)]
            job["static_configs"] = statics
        jobs.append(job)
    return {**config, "scrape_configs": jobs}


def write_shared_scrape_config(source: Path, out_dir: Path, extra_exporters: list[str]) -> Path:
    config = yaml.safe_load(source.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "scrape.yml"
    path.write_text(HEADER.format(source=source)
                    + yaml.safe_dump(shared_scrape_config(config, extra_exporters), sort_keys=False))
    return path


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
