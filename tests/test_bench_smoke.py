"""Every benchmark in bench/ runs in its --smoke mode (tiny sizes, seconds), so none can rot
unnoticed. The smokes are real: the ICMP/SNMP/mixed ones create their own namespace lab and agents,
detection_latency starts the whole chain (lab, exporter, VictoriaMetrics, vmalert, Alertmanager).
Measured here: all seven together take about 50 s; detection_latency alone ~20 s.

Figures are not checked (timing belongs to the benchmarks themselves); each smoke must exit 0
and print the line that shows its measurement ran on real results.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SMOKES = [
    # (bench module, markers, a regex its output must contain)
    ("inventory_load", (), r"\| 200 \| [\d.]+ MB \| [\d.]+ \| [\d.]+ \|"),
    ("generate_speed", (), r"\| 60 \| [\d.]+ \| [\d.]+ \|.*\(\d+ tools\) \|"),
    ("service_bench", (), r"\| SD full list \(identity\) p50 ms \| [\d.]+ \| [\d.]+ \|"),
    ("icmp_round", (pytest.mark.lab,), r"\| 100 \| wardops \(unprivileged\) \| [\d.]+ \| [\d.]+ \| \d+ \| 0/0 \|"),
    ("snmp_poll", (pytest.mark.lab,), r'"pysnmp_v3_authpriv": \{\s*"devices": 2,\s*"up": 2'),
    ("exporter_mixed", (pytest.mark.lab,), r'"devices_down_up": \[\s*0,\s*5\s*\]'),
    ("detection_latency", (pytest.mark.lab, pytest.mark.stack), r"smoke: the ISP uplink trial paged: yes"),
    ("icmp_snapshot", (), r'"render": \{"devices": 200, "isp": \d+, "branches": 20, "full": \{"on_loop_ms"'),
    ("soak", (pytest.mark.lab,), r'"verdict": "ok"'),
    ("ha", (pytest.mark.lab, pytest.mark.stack), r"HA: 1 of 1 outages gave exactly one page and one resolve"),
    ("sites", (pytest.mark.lab, pytest.mark.stack), r"smoke: the ISP uplink trial paged with 1 and 2 sites: yes"),
]


def test_every_bench_script_has_a_smoke_that_a_test_runs():
    scripts = {p.stem for p in (REPO / "bench").glob("*.py") if p.stem not in ("__init__", "common")}
    assert not [s for s in sorted(scripts) if '"--smoke"' not in (REPO / "bench" / f"{s}.py").read_text()]
    # A bench whose smoke is too long for this module (minutes) has its own test module.
    others = scripts - {name for name, _, _ in SMOKES}
    test_text = "\n".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py") if p.name != Path(__file__).name)
    assert not [s for s in sorted(others) if s not in test_text]


@pytest.mark.parametrize("name,expect", [pytest.param(n, e, marks=m, id=n) for n, m, e in SMOKES])
def test_bench_smoke(name, expect):
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}", "--smoke"], cwd=REPO,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"bench.{name} --smoke exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert re.search(expect, proc.stdout), proc.stdout[-3000:]
