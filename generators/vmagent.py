"""vmagent scrape config: a fast job for every ICMP series, a slow one for SNMP.

The exporter serves /metrics?module=icmp (device states, branch verdicts, canaries and the
exporter's self-metrics) and /metrics?module=snmp. All ICMP series come in one scrape because the
root-cause rules compare a branch's verdict with its devices' states: two scrapes a second apart
would show a branch answering while its devices still read DOWN (a false DeviceDown at every
recovery). Every exporter target carries the label `site`: one target group per probe site
(settings `sites:`, or the one `site` with `exporter.targets`), holding that site's exporters (one
per `--shard i/n`; `instance` tells the shards apart). With an inventory service, a third job
probes each device blackbox-style through the exporter's /probe (from the first site).
"""

from __future__ import annotations

from generators.settings import Settings

ICMP_JOB = "wardops_icmp"
SNMP_JOB = "wardops_snmp"
PROBE_JOB = "wardops_probe"
# Jobs that scrape the exporter's /metrics (ExporterDown); the /probe job's `up` is per device.
EXPORTER_JOBS = (ICMP_JOB, SNMP_JOB)


def build_scrape_config(settings: Settings) -> dict:
    iv = settings.intervals
    targets = [{"targets": list(site.targets), "labels": {"site": site.name}} for site in settings.probe_sites]

    def job(name: str, interval, params: dict) -> dict:
        # scrape_timeout may not exceed the interval; keep it just under so a slow scrape is dropped.
        return {"job_name": name, "scheme": settings.exporter_scheme, "metrics_path": "/metrics",
                "params": params, "scrape_interval": str(interval), "scrape_timeout": str(interval),
                "static_configs": targets}

    jobs = [
        job(ICMP_JOB, iv.isp_scrape, {"module": ["icmp"]}),
        job(SNMP_JOB, iv.default_scrape, {"module": ["snmp"]}),
    ]
    sd_urls = inventory_sd_urls(settings)
    if sd_urls:
        # With several sites the probes go through the first site's exporter: only its devices.
        query = f"?site={settings.site}" if settings.multi_site else ""
        jobs.append(probe_job([url + query for url in sd_urls], settings.exporter_targets[0],
                              settings.exporter_scheme, settings.site))
    return {"global": {"scrape_interval": str(iv.default_scrape),
                       "external_labels": dict(settings.external_labels)},
            "scrape_configs": jobs}


def inventory_sd_urls(settings: Settings) -> list[str]:
    """The HTTP SD URLs of the /probe job: every HA member's inventory service (settings
    `ha.members[].inventory_service`), else the one `inventory_service.url`, else none."""
    bases = [m.inventory_service for m in settings.ha if m.inventory_service] or (
        [settings.inventory_url] if settings.inventory_url else [])
    return [base.rstrip("/") + "/api/v1/sd" for base in bases]


def probe_job(sd_urls: list[str], exporter: str, scheme: str = "http", site: str | None = None) -> dict:
    """The blackbox-style job: each device the inventory service lists is probed through the
    exporter's /probe?target=ADDRESS.

    Several SD URLs (one per inventory service of an HA deployment, all on one database) list the
    same devices: vmagent 1.79.5 keeps one target per label set and drops the copies (measured
    with two SD URLs serving the same 3 targets: /api/v1/targets showed 3 active and 3 dropped
    targets, and the log got one `skipping duplicate scrape target` error line per copy at every
    SD check, 3 lines/s at -promscrape.httpSDCheckInterval=1s, none with
    -promscrape.suppressDuplicateScrapeTargetErrors). When one SD URL fails, vmagent keeps the
    job's previous targets as a whole (the other URL's changes wait until both answer again); a
    vmagent started while one service is down still gets every target from the other.
    """
    relabel = [
        {"source_labels": ["__address__"], "target_label": "__param_target"},
        {"source_labels": ["__param_target"], "target_label": "instance"},
        *([{"target_label": "site", "replacement": site}] if site is not None else []),
        {"target_label": "__address__", "replacement": exporter},
    ]
    return {
        "job_name": PROBE_JOB, "scheme": scheme, "metrics_path": "/probe",
        "params": {"module": ["icmp"]}, "scrape_interval": "60s", "scrape_timeout": "10s",
        # vmagent 1.79.5 rejects refresh_interval here: -promscrape.httpSDCheckInterval sets it.
        "http_sd_configs": [{"url": url} for url in sd_urls],
        "relabel_configs": relabel,
    }


def scrape_problems(config: dict) -> list[str]:
    out = []
    names = [j.get("job_name") for j in config.get("scrape_configs", [])]
    if len(set(names)) != len(names):
        out.append(f"duplicate job names in {names}")
    for want in EXPORTER_JOBS:
        if want not in names:
            out.append(f"job {want!r} missing")
    for j in config.get("scrape_configs", []):
        for sd in j.get("http_sd_configs", []):
            if "refresh_interval" in sd:
                out.append(f"job {j['job_name']!r}: vmagent 1.79.5 rejects refresh_interval in http_sd_configs")
    return out
