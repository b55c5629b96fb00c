"""Inventory service benchmark: 10k-device import, list page latency, HTTP SD latency; SQLite and PostgreSQL.

Reproduce (from the repository root; the benchmark shares the tests' throwaway PostgreSQL):
    .venv/bin/python -m bench.service_bench [--devices 10000] [--requests 300]
    .venv/bin/python -m bench.service_bench --smoke      # 200 devices, 5 requests: seconds, checks it runs

The service runs as `wardops inventory serve` (waitress) in a subprocess on 127.0.0.1; the client
measures latency over HTTP with keep-alive, and the server's CPU time is read from /proc. As an
in-run baseline, the same SD bytes are served by a trivial WSGI app under waitress (the floor for
any Python service on this machine), so the ratio says what the service itself adds.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.common import free_port
from inventory.dump import dump_yaml
from inventory.service.transfer import import_file, open_store
from inventory.synth import synth_inventory
from tests.service.throwaway_pg import ThrowawayPostgres

REPO = Path(__file__).resolve().parents[1]

ADMIN = "bench-admin-token-0123456789"
IDENTITY = {"Accept-Encoding": "identity"}
FLOOR_APP = """
import sys, waitress
body = open(sys.argv[1], 'rb').read()
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
waitress.serve(app, host='127.0.0.1', port=int(sys.argv[2]), threads=4, _quiet=True)
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def timed(session, url, n, headers=None, params=None):
    lat = []
    for _ in range(n):
        p = params() if callable(params) else params
        t = time.perf_counter()
        r = session.get(url, headers=headers, params=p, timeout=60)
        r.content  # noqa: B018 - read the body
        lat.append(time.perf_counter() - t)
        if r.status_code not in (200, 304):
            raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")
    return lat


def measure(backend: str, db_url: str, yml: Path, devices: int, n: int) -> dict:
    out: dict = {"backend": backend}
    store = open_store(db_url)
    c0, t0 = time.process_time(), time.perf_counter()
    snap = import_file(store, yml)
    out["import_s"] = time.perf_counter() - t0
    out["import_cpu_s"] = time.process_time() - c0
    assert len(snap.devices) == devices
    store.engine.dispose()

    port = free_port()
    env = {**os.environ, "WARDOPS_ADMIN_TOKENS": ADMIN, "WARDOPS_RATELIMIT_ENABLED": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "wardops.cli", "inventory", "serve", "--db", db_url, "--listen",
                             f"127.0.0.1:{port}", "--threads", "4"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        t = time.perf_counter()
        wait_up(f"{base}/api/v1/openapi.json", proc)
        out["start_s"] = time.perf_counter() - t  # process start + migrate + load/validate/resync check
        s = requests.Session()
        # first SD request: the snapshot is warm from start, this renders the JSON
        t = time.perf_counter()
        sd = s.get(f"{base}/api/v1/sd", headers=IDENTITY, timeout=60)
        out["sd_cold_s"] = time.perf_counter() - t
        assert len(sd.json()) == sum(1 for d in snap.inventory.devices if d.enabled)
        out["sd_bytes"] = len(sd.content)
        etag = sd.headers["ETag"]

        rng = random.Random(1)
        cpu = cpu_seconds(proc.pid)
        lat = timed(s, f"{base}/api/v1/devices", n, params=lambda: {"limit": 100,
                                                                     "offset": rng.randrange(0, devices - 100)})
        out["list_cpu_ms"] = (cpu_seconds(proc.pid) - cpu) / n * 1000
        out["list_p50_ms"], out["list_p99_ms"] = pct(lat, 50) * 1000, pct(lat, 99) * 1000
        lat = timed(s, f"{base}/api/v1/devices", n, params={"limit": 100, "role": "atm", "region": "Batumi"})
        out["list_filtered_p99_ms"] = pct(lat, 99) * 1000

        cpu = cpu_seconds(proc.pid)
        lat = timed(s, f"{base}/api/v1/sd", n, headers=IDENTITY)
        out["sd_cpu_ms"] = (cpu_seconds(proc.pid) - cpu) / n * 1000
        out["sd_p50_ms"], out["sd_p99_ms"] = pct(lat, 50) * 1000, pct(lat, 99) * 1000
        cpu = cpu_seconds(proc.pid)
        lat = timed(s, f"{base}/api/v1/sd", n, headers={"Accept-Encoding": "gzip"})
        out["sd_gz_cpu_ms"] = (cpu_seconds(proc.pid) - cpu) / n * 1000
        out["sd_gz_p50_ms"], out["sd_gz_p99_ms"] = pct(lat, 50) * 1000, pct(lat, 99) * 1000
        lat = timed(s, f"{base}/api/v1/sd", n, headers={"If-None-Match": etag, **IDENTITY})
        out["sd_304_p50_ms"], out["sd_304_p99_ms"] = pct(lat, 50) * 1000, pct(lat, 99) * 1000
        lat = timed(s, f"{base}/api/v1/sd", n, params={"role": "isp"}, headers=IDENTITY)
        out["sd_isp_p99_ms"] = pct(lat, 99) * 1000

        # one write at 10k devices: the whole inventory is re-validated by the shared loader
        writes = []
        for i in range(10):
            t = time.perf_counter()
            r = s.patch(f"{base}/api/v1/devices/{snap.devices[i]['name']}", json={"enabled": i % 2 == 1},
                        headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)
            writes.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
        out["write_p50_ms"] = pct(writes, 50) * 1000
        t = time.perf_counter()
        s.get(f"{base}/api/v1/sd", headers=IDENTITY, timeout=60).content  # noqa: B018
        out["sd_after_write_ms"] = (time.perf_counter() - t) * 1000
        out["sd_content"] = sd.content
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def floor(body: bytes, n: int) -> dict:
    port = free_port()
    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        fh.write(body)
        fh.flush()
        proc = subprocess.Popen([sys.executable, "-c", FLOOR_APP, fh.name, str(port)])
        try:
            wait_up(f"http://127.0.0.1:{port}/", proc)
            s = requests.Session()
            cpu = cpu_seconds(proc.pid)
            lat = timed(s, f"http://127.0.0.1:{port}/", n, headers=IDENTITY)
            return {"p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000,
                    "cpu_ms": (cpu_seconds(proc.pid) - cpu) / n * 1000}
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=10000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (200 devices, 5 requests): checks the bench runs")
    args = ap.parse_args()
    if args.smoke:
        args.devices, args.requests = 200, 5
    work = Path(tempfile.mkdtemp(prefix="wardops-svc-bench-"))
    try:
        yml = work / "inventory.yml"
        yml.write_text(dump_yaml(synth_inventory(args.devices, snmp_share=0.3)))
        results = []
        results.append(measure("sqlite", f"sqlite:///{work}/inventory.db", yml, args.devices, args.requests))
        with ThrowawayPostgres() as pg:
            results.append(measure("postgresql", pg.create_database(), yml, args.devices, args.requests))
        base = floor(results[0]["sd_content"], args.requests)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"# inventory service, {args.devices} devices, {args.requests} requests per figure, "
          f"SD body {results[0]['sd_bytes']} bytes; {os.cpu_count()} CPUs (shared)")
    rows = [
        ("import (YAML file -> DB, atomic), wall s", "import_s", "{:.2f}"),
        ("import, client CPU s", "import_cpu_s", "{:.2f}"),
        ("list limit=100 random offset p50 ms", "list_p50_ms", "{:.1f}"),
        ("list limit=100 random offset p99 ms", "list_p99_ms", "{:.1f}"),
        ("list server CPU ms/request", "list_cpu_ms", "{:.2f}"),
        ("list role+region filter p99 ms", "list_filtered_p99_ms", "{:.1f}"),
        ("service start until it answers (load + validate 10k) s", "start_s", "{:.2f}"),
        ("SD first request after start (render) ms", "sd_cold_s", "{:.0f}"),
        ("SD full list (identity) p50 ms", "sd_p50_ms", "{:.1f}"),
        ("SD full list (identity) p99 ms", "sd_p99_ms", "{:.1f}"),
        ("SD (identity) server CPU ms/request", "sd_cpu_ms", "{:.2f}"),
        ("SD full list (gzip, client decompresses) p50 ms", "sd_gz_p50_ms", "{:.1f}"),
        ("SD full list (gzip, client decompresses) p99 ms", "sd_gz_p99_ms", "{:.1f}"),
        ("SD (gzip) server CPU ms/request", "sd_gz_cpu_ms", "{:.2f}"),
        ("SD If-None-Match -> 304 p50 ms", "sd_304_p50_ms", "{:.1f}"),
        ("SD If-None-Match -> 304 p99 ms", "sd_304_p99_ms", "{:.1f}"),
        ("SD role=isp p99 ms", "sd_isp_p99_ms", "{:.1f}"),
        ("single-device PATCH (re-validates all) p50 ms", "write_p50_ms", "{:.0f}"),
        ("SD first request after a write ms", "sd_after_write_ms", "{:.0f}"),
    ]
    print("| figure | SQLite | PostgreSQL |\n|---|---|---|")
    for label, key, fmt in rows:
        vals = [r[key] * (1000 if key == "sd_cold_s" else 1) for r in results]
        print(f"| {label} | " + " | ".join(fmt.format(v) for v in vals) + " |")
    print(f"\nbaseline: same SD bytes (identity) from a trivial WSGI app under waitress: p50 {base['p50_ms']:.1f} ms, "
          f"p99 {base['p99_ms']:.1f} ms, server CPU {base['cpu_ms']:.2f} ms/request; "
          f"service/baseline p50: SQLite {results[0]['sd_p50_ms'] / base['p50_ms']:.2f}x, "
          f"PostgreSQL {results[1]['sd_p50_ms'] / base['p50_ms']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
