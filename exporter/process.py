"""`process_*` self-metrics as every Prometheus client library exports them, read from /proc.

The names, types and units are those of the Go and Python clients' process collectors, so existing
"process" dashboards and alerts work on the exporter unchanged. Not prometheus_client's
ProcessCollector: the exposition here is pre-rendered text (exporter/exposition.py), and these six
numbers are one read of /proc/self/stat plus a directory listing per scrape.
"""

from __future__ import annotations

import os
import resource

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = resource.getpagesize()
_boot_time: float | None = None


def _btime() -> float:
    global _boot_time
    if _boot_time is None:
        with open("/proc/stat", encoding="ascii") as f:
            _boot_time = next(float(line.split()[1]) for line in f if line.startswith("btime "))
    return _boot_time


def process_samples(pid: str = "self") -> list[tuple[str, str, float]]:
    """(family, label text, value) for process_cpu_seconds_total, process_resident_memory_bytes,
    process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds;
    [] where /proc is missing (not Linux): absent series, never zeros that look like data."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            # the command name (field 2) may contain spaces and parentheses: split after the last ')'
            fields = f.read().rpartition(")")[2].split()
        open_fds = len(os.listdir(f"/proc/{pid}/fd"))
        boot = _btime()
    except (OSError, StopIteration, ValueError):
        return []
    # fields[0] is field 3 of proc(5): utime is field 14, stime 15, starttime 22, vsize 23, rss 24
    utime, stime, start = int(fields[11]), int(fields[12]), int(fields[19])
    vsize, rss = int(fields[20]), int(fields[21])
    return [("process_cpu_seconds_total", "", (utime + stime) / _TICKS),
            ("process_resident_memory_bytes", "", rss * _PAGE),
            ("process_virtual_memory_bytes", "", vsize),
            ("process_open_fds", "", open_fds),
            ("process_max_fds", "", resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
            ("process_start_time_seconds", "", boot + start / _TICKS)]
