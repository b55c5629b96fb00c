"""vmagent scrape config: a fast job for ISP uplinks, a normal one for everything else.

The exporter serves /metrics?role=isp (ISP device series only) and /metrics?exclude_role=isp (the
rest, with self-metrics and SNMP), so ISP state reaches VictoriaMetrics every couple of seconds
without scraping 10,000 device series at that rate. With an inventory service, a third job probes
each device blackbox-style through the exporter's /probe, discovered over HTTP SD.
"""

from __future__ import annotations

from generators.settings import Settings

ISP_JOB = "wardops_isp"
DEFAULT_JOB = "wardops"
PROBE_JOB = "wardops_probe"


def build_scrape_config(settings: Settings) -> dict:
    iv = settings.intervals
    targets = [{"targets": list(settings.exporter_targets)}]

    def job(name: str, interval, params: dict) -> dict:
        # scrape_timeout may not exceed the interval; keep it just under so a slow scrape is dropped.
        return {"job_name": name, "scheme": settings.exporter_scheme, "metrics_path": "/metrics",
                "params": params, "scrape_interval": str(interval), "scrape_timeout": str(interval),
                "static_configs": targets}

    jobs = [
        job(ISP_JOB, iv.isp_scrape, {"role": ["isp"]}),
        job(DEFAULT_JOB, iv.default_scrape, {"exclude_role": ["isp"]}),
    ]
    if settings.inventory_url:
        exporter = settings.exporter_targets[0]
        jobs.append({
            "job_name": PROBE_JOB, "scheme": settings.exporter_scheme, "metrics_path": "/probe",
            "params": {"module": ["icmp"]}, "scrape_interval": "60s", "scrape_timeout": "10s",
            # vmagent 1.79.5 rejects refresh_interval here: -promscrape.httpSDCheckInterval sets it.
            "http_sd_configs": [{"url": settings.inventory_url.rstrip("/") + "/api/v1/sd"}],
            "relabel_configs": [
                {"source_labels": ["__address__"], "target_label": "__param_target"},
                {"source_labels": ["__param_target"], "target_label": "instance"},
                {"target_label": "__address__", "replacement": exporter},
            ],
        })
    return {"global": {"scrape_interval": str(iv.default_scrape),
                       "external_labels": dict(settings.external_labels)},
            "scrape_configs": jobs}


def scrape_problems(config: dict) -> list[str]:
    out = []
    names = [j.get("job_name") for j in config.get("scrape_configs", [])]
    if len(set(names)) != len(names):
        out.append(f"duplicate job names in {names}")
    for want in (ISP_JOB, DEFAULT_JOB):
        if want not in names:
            out.append(f"job {want!r} missing")
    for j in config.get("scrape_configs", []):
        for sd in j.get("http_sd_configs", []):
            if "refresh_interval" in sd:
                out.append(f"job {j['job_name']!r}: vmagent 1.79.5 rejects refresh_interval in http_sd_configs")
    return out
