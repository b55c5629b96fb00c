"""`python -m bench.root_cause --smoke` on the real chain (root, namespaces, daemons; ~4 minutes): every
kind of root cause is injected and restored, a dark branch's BranchDown is found, every outage of a
branch or more pages at least once and is attributed, and the lab ends clean. How many pages and
which ones are the benchmark's to judge (printed and written), not this test's: they depend on the
generated rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.lab, pytest.mark.slow]

REPO = Path(__file__).parents[2]


def test_smoke_run_injects_every_kind_and_restores(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the root-cause smoke run needs root (network namespaces); run the suite as root")
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-m", "bench.root_cause", "--smoke", "--seed", "3", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["lab_clean_after"] is True
    assert {c["kind"] for c in result["causes"]} == {"device", "isp", "branch", "region", "flap", "site"}
    kinds = result["kinds"]
    assert kinds["branch"]["missed"] == [] and kinds["branch"]["latency_s"]["max"] < 60
    for c in result["causes"]:
        if c["kind"] in ("branch", "region", "site"):
            assert c["pages"], f"{c['kind']} {c['scope']}: no page at all"
    assert result["loss_1pct"]["seconds"] == 20 and "pages" in result["loss_1pct"]
    for c in result["causes"]:
        assert c["start"] < c["end"] and c["start"].endswith("+00:00")
