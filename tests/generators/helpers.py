"""Shared helpers for the generator tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from generators.generate import generate_files, write_files
from generators.settings import DEFAULT_SETTINGS, Settings
from inventory import load_inventory

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO / "tests" / "testdata"
TEST_INVENTORY = TESTDATA / "generators" / "inventory.yml"
INSTANCE = "127.0.0.1:9118"


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed (scripts/bootstrap installs it)")
    return path


def generate_into(out: Path, inventory: Path = TEST_INVENTORY, settings: Settings = DEFAULT_SETTINGS,
                  source: str = "tests/testdata/generators/inventory.yml") -> dict[str, str]:
    files = generate_files(load_inventory(inventory), settings, source)
    write_files(files, out)
    return files


# Devices of tests/testdata/generators/inventory.yml: name -> (ip, role, region, branch, isp)
DEVICES = {
    "a-isp1": ("198.18.1.5", "isp", "R1", "Branch A", "Magti"),
    "a-isp2": ("198.18.1.6", "isp", "R1", "Branch A", "Silknet"),
    "a-rtr1": ("198.18.1.1", "router", "R1", "Branch A", None),
    "a-atm1": ("198.18.1.21", "atm", "R1", "Branch A", None),
    "a-atm2": ("198.18.1.22", "atm", "R1", "Branch A", None),
    "b-rtr1": ("198.18.2.1", "router", "R1", "Branch B", None),
    "b-sw1": ("198.18.2.2", "switch", "R1", "Branch B", None),
    "c-rtr1": ("198.18.3.1", "router", "R2", "Branch C", None),
    "c-isp1": ("198.18.3.5", "isp", "R2", "Branch C", "Magti"),
}


def device_labels(name: str, **extra) -> dict[str, str]:
    """The labels a scraped per-device series carries (metric contract + vmagent's job/instance)."""
    ip, role, region, branch, isp = DEVICES[name]
    out = {"device": name, "ip": ip, "role": role, "region": region, "branch": branch,
           "job": "wardops_isp" if role == "isp" else "wardops", "instance": INSTANCE}
    if isp:
        out["isp"] = isp
    out.update(extra)
    return out


def series(metric: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


# A small Go-template evaluator for exactly the constructs the annotation templates use, so the
# tests can state expected annotation text for given labels and value.
_WITH_RE = re.compile(r"\{\{ with \$labels\.(\w+) \}\}(.*?)\{\{ end \}\}")
_IF_ROLE_RE = re.compile(r'\{\{ if eq \$labels\.role "(\w+)" \}\}(.*?)\{\{ else \}\}(.*?)\{\{ end \}\}')
_LABEL_RE = re.compile(r"\{\{ \$labels\.(\w+) \}\}")
_VALUE_RE = re.compile(r'\{\{ \$value \| (humanizeTimestamp|humanizeDuration|printf "%\.(\d)f") \}\}')
_SINCE = '{{ reReplaceAll "(\\\\.[0-9]+)? \\\\+0000 UTC$" " UTC" ($value | humanizeTimestamp) }}'


def render_annotation(template: str, labels: dict[str, str], value: float) -> str:
    def value_text(m):
        if m.group(1) == "humanizeTimestamp":
            from datetime import UTC, datetime
            return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")
        if m.group(1) == "humanizeDuration":
            if value < 1:
                return f"{value * 1000:.4g}ms"
            minutes, seconds = divmod(int(value), 60)
            assert minutes < 60, "helper renders durations under an hour"
            return f"{minutes}m {seconds}s" if minutes else f"{value:.4g}s"
        return f"{value:.{int(m.group(2))}f}"

    text = _IF_ROLE_RE.sub(lambda m: m.group(2) if labels.get("role") == m.group(1) else m.group(3), template)
    text = _WITH_RE.sub(lambda m: m.group(2).replace("{{ . }}", labels[m.group(1)]) if labels.get(m.group(1))
                        else "", text)
    text = _LABEL_RE.sub(lambda m: labels.get(m.group(1), ""), text)
    if _SINCE in text:  # whole seconds, labelled UTC
        from datetime import UTC, datetime
        text = text.replace(_SINCE, datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    text = _VALUE_RE.sub(value_text, text)
    assert "{{" not in text, f"helper cannot render: {text}"
    return text


def wait_http(proc: subprocess.Popen, url: str, seconds: float, what: str) -> None:
    """Return once `url` answers; fail with the process's stderr if it exits or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"{what} did not start: {proc.stderr.read1().decode()}") from None
            time.sleep(0.1)
