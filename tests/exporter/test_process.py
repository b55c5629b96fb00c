"""exporter/process.py against what the kernel and Python say about the same process."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

import pytest

from exporter.process import process_samples
from exporter.version import source_revision

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="no /proc (not Linux)")


def test_values_match_the_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(64 << 20); time.sleep(30)"])
    try:
        time.sleep(1.0)  # the child has touched its 64 MiB by then
        got = dict((name, value) for name, _, value in process_samples(str(child.pid)))
    finally:
        child.kill()
        child.wait()
    assert got["process_resident_memory_bytes"] > 64 << 20
    assert got["process_virtual_memory_bytes"] > got["process_resident_memory_bytes"]
    assert abs(got["process_start_time_seconds"] - (time.time() - 1.0)) < 5  # started about 1 s ago
    mine = dict((name, value) for name, _, value in process_samples())
    assert mine["process_max_fds"] == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert mine["process_open_fds"] == pytest.approx(len(os.listdir("/proc/self/fd")), abs=2)


def test_a_missing_process_has_no_samples():
    assert process_samples("999999999") == []


def test_source_revision(tmp_path):
    assert source_revision(tmp_path) == "unknown"  # no .git: an installed copy
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert source_revision(tmp_path) == "unknown"  # no commit yet
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org", "commit",
                    "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert source_revision(tmp_path) == head
