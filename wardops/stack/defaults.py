"""Minimal built-in configs, used by `wardops stack up` when no generated config directory is given.

They make the stack usable on its own (scrape the local exporter and the stack itself, page on a
dead exporter, deliver to the local webhook receiver). `wardops generate` output replaces them.
"""

from __future__ import annotations

import yaml

HEADER = "# written by `wardops stack up` (minimal built-in config; use --config-dir for generated ones)\n"


def _dump(data) -> str:
    return HEADER + yaml.safe_dump(data, sort_keys=True, default_flow_style=False)


def scrape_config(s) -> str:
    p = s.ports
    return _dump({
        "global": {"scrape_interval": "5s", "scrape_timeout": "4s"},
        "scrape_configs": [
            {"job_name": "wardops", "static_configs": [{"targets": [s.exporter]}]},
            {"job_name": "stack", "static_configs": [{"targets": [
                f"{s.host}:{p.victoria_metrics}", f"{s.host}:{p.vmagent}", f"{s.host}:{p.vmalert}",
                f"{s.host}:{p.alertmanager}"]}]},
        ],
    })


def rules() -> str:
    return _dump({"groups": [{
        "name": "wardops-minimal",
        "interval": "5s",
        "rules": [{
            "alert": "ExporterDown",
            "expr": 'up{job=~"wardops.*"} == 0',
            "for": "15s",
            "labels": {"severity": "critical"},
            "annotations": {"summary": "wardops exporter {{ $labels.instance }} is not being scraped"},
        }],
    }]})


def alertmanager_config(s) -> str:
    return _dump({
        "route": {"receiver": "webhook", "group_by": ["alertname", "region", "branch"],
                  "group_wait": "1s", "group_interval": "10s", "repeat_interval": "4h"},
        "receivers": [{"name": "webhook", "webhook_configs": [
            {"url": f"{s.url(s.ports.webhook)}/alerts", "send_resolved": True}]}],
    })
