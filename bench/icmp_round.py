"""Benchmark: one ICMP round over 1k/10k/50k lab targets (10 % down) vs fping in the same lab and
run; scrape latency of the 10k exposition (pre-rendered vs a prometheus_client Collector); CPU
share of 50k targets every 10 s. Needs root (creates and removes its own network namespaces).

    .venv/bin/python -m bench.icmp_round [--sizes 1000,10000,50000] [--repeat 3] [--steady 60]
    .venv/bin/python -m bench.icmp_round --smoke    # 100 targets, 1 round, 4 s steady, no detection run

CPU = user+sys seconds. The machine is shared: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from bench.common import cpu_self, inprocess_exporter, stop_on_sigterm

LAB_BASE = ipaddress.ip_address("198.18.0.0")


def targets(n: int) -> list[str]:
    return [str(LAB_BASE + i + 1) for i in range(n)]


def peak_rss_kb() -> int:
    """VmHWM of this process's own memory. (ru_maxrss would also count the parent's image that a
    vforked child carries until exec.)"""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Children:
    """CPU of children reaped since the last call (RUSAGE_CHILDREN is cumulative)."""

    def __init__(self):
        self.last = self._now()

    @staticmethod
    def _now() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    def delta(self) -> float:
        now = self._now()
        out, self.last = now - self.last, now
        return out


# -- worker: runs inside the prober namespace ---------------------------------------------------

async def _worker_round(addrs: list[str], mode: str, timeout: float) -> dict:
    from exporter.icmp.engine import IcmpEngine

    engine = IcmpEngine(mode=mode)
    engine.open(asyncio.get_running_loop(), versions=(4,))
    await engine.ping(addrs[:10], 1, 0, timeout)  # warm-up (ARP/neighbour of the gateway)
    cpu0, t0 = cpu_self(), time.monotonic()
    result = await engine.ping(addrs, 1, 0, timeout)
    cpu, wall = cpu_self() - cpu0, time.monotonic() - t0
    down = [a for a, r in zip(addrs, result.rtts, strict=True) if not r]
    c = engine.counters
    engine.close()
    return {"cpu": cpu, "wall": wall, "down": down, "drops": c.receive_drops, "send_errors": c.send_errors,
            "rss_kb": peak_rss_kb(), "socket": engine.describe()}


def worker_round(args) -> None:
    addrs = sys.stdin.read().split()
    print(json.dumps(asyncio.run(_worker_round(addrs, args.mode, args.timeout))))


def worker_steady(args) -> None:
    """The real exporter (app + component + render thread) on a synthetic inventory for --seconds."""
    from exporter.config import loads_config

    cfg = loads_config(f"policies:\n  default: {{interval: {args.interval}}}\n"
                       "role_policies: {isp: default}\n", "<bench>")
    exp = inprocess_exporter(args.inventory, ready_within=120, config=cfg)
    cpu0, t0 = cpu_self(), time.monotonic()
    comp = exp.runtime.components["icmp"]
    rounds0 = comp.stats["default"].rounds
    time.sleep(args.seconds)
    cpu, wall = cpu_self() - cpu0, time.monotonic() - t0
    st = comp.stats["default"]
    out = {"cpu": cpu, "wall": wall, "rounds": st.rounds - rounds0, "overruns": st.overruns,
           "last_round_duration": st.duration, "targets": st.targets,
           "drops": comp.engine.counters.receive_drops, "rss_kb": peak_rss_kb()}
    exp.stop()
    print(json.dumps(out))


def worker_detect(args) -> None:
    """Detection time under load: the real exporter with a 10k-device inventory (10 % ISP, default
    policies); take 5 ISP uplinks and 5 branch devices dark at once; time until each is DOWN in
    the exposition (what a scrape would see)."""
    from wardops.lab.netns import Lab

    exp = inprocess_exporter(args.inventory, ready_within=120)
    time.sleep(6)  # every device UP first
    isp = [d for d in exp.devices if d.role == "isp"][:5]
    other = [d for d in exp.devices if d.role != "isp"][:5]
    lab = Lab(args.lab)
    cpu0 = cpu_self()
    dark = time.monotonic()
    lab.down([d.ip for d in isp + other])
    seen: dict[str, float] = {}
    while len(seen) < 10 and time.monotonic() - dark < 40:
        body = b"".join(exp.exposition.render()).decode()
        for d in isp + other:
            if d.name not in seen and f'wardops_icmp_up{{device="{d.name}",' in body:
                line = body.split(f'wardops_icmp_up{{device="{d.name}",', 1)[1].split("\n", 1)[0]
                if line.endswith(" 0"):
                    seen[d.name] = time.monotonic() - dark
        time.sleep(0.05)
    lab.up([d.ip for d in isp + other])
    cpu = cpu_self() - cpu0
    c = exp.runtime.components["icmp"]
    out = {"isp_s": sorted(seen.get(d.name, -1) for d in isp), "other_s": sorted(seen.get(d.name, -1) for d in other),
           "targets": len(exp.devices), "overruns": {n: st.overruns for n, st in c.stats.items()},
           "drops": c.engine.counters.receive_drops, "cpu_s_during": cpu}
    exp.stop()
    print(json.dumps(out))


def scrape_latency(n: int, scrapes: int) -> dict:
    """p50/p99 over HTTP of /metrics with n devices (pre-rendered), and of a Collector rendering."""
    import http.client
    import logging

    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from exporter.app import Exporter
    from exporter.component import SELF_FAMILIES
    from exporter.config import ExporterConfig
    from exporter.exposition import label_text
    from exporter.icmp.component import FAMILIES, render_rows
    from exporter.icmp.state import RoundStats
    from exporter.targets import EMPTY_INVENTORY
    from exporter.web import WebServer
    from inventory.synth import synth_inventory

    inv = synth_inventory(n, 0.1, 1, 0.0)
    rows = []
    rng = random.Random(1)
    for d in inv.devices:
        rtts = [rng.uniform(0.001, 0.05) for _ in range(2)]
        st = RoundStats(2, 2, sum(rtts) / 2, min(rtts), max(rtts), abs(rtts[0] - rtts[1]))
        rows.append((label_text(d.target_labels()), d.role == "isp", 1, 1.7e9, 3, 1000, 998,
                     st.rtt_avg, st.rtt_min, st.rtt_max, st.jitter, st.loss))
    t0 = time.perf_counter()
    section = render_rows(rows)
    render_s = time.perf_counter() - t0

    class _Src:
        def poll(self, force=False):
            return EMPTY_INVENTORY

        def describe(self):
            return "bench"

    log = logging.getLogger("bench")
    log.propagate = False
    exp = Exporter(_Src(), ExporterConfig(), log=log, components=())
    exp.exposition.register(FAMILIES)
    exp.exposition.register(SELF_FAMILIES)
    exp.exposition.publish(("icmp", "default"), section)
    web = WebServer(exp, "127.0.0.1", 0).start()

    def scrape_many(headers):
        lat, size = [], 0
        conn = http.client.HTTPConnection("127.0.0.1", web.port)
        for _ in range(scrapes):
            t = time.perf_counter()
            conn.request("GET", "/metrics", headers=headers)
            body = conn.getresponse().read()  # to the last byte; decompressing is the scraper's cost
            lat.append(time.perf_counter() - t)
            size = len(body)
        conn.close()
        return lat, size

    lat, size = scrape_many({})
    scrape_many({"Accept-Encoding": "gzip"})  # first gzip scrape switches on compression per round
    cpu0 = cpu_self()
    exp.exposition.publish(("icmp", "default"), section)  # as after a round: compressed once, here
    gzip_cpu = cpu_self() - cpu0
    gz_lat, gz_size = scrape_many({"Accept-Encoding": "gzip"})
    web.stop()

    names = [label for label in ("device", "ip", "role", "region", "branch")]
    devices = inv.devices

    class RowsCollector:
        def describe(self):
            return []

        def collect(self):
            fams = {f.name: (CounterMetricFamily if f.type == "counter" else GaugeMetricFamily)(
                f.name[:-6] if f.type == "counter" else f.name, f.help, labels=names + ["isp"]) for f in FAMILIES}
            for d, r in zip(devices, rows, strict=True):
                lv = [d.name, d.ip, d.role, d.region, d.branch, d.isp or ""]
                fams["wardops_icmp_up"].add_metric(lv, r[2])
                fams["wardops_icmp_rtt_seconds"].add_metric(lv, r[7])
                fams["wardops_icmp_rtt_min_seconds"].add_metric(lv, r[8])
                fams["wardops_icmp_rtt_max_seconds"].add_metric(lv, r[9])
                fams["wardops_icmp_jitter_seconds"].add_metric(lv, r[10])
                fams["wardops_icmp_loss_ratio"].add_metric(lv, r[11])
                fams["wardops_icmp_packets_sent_total"].add_metric(lv, r[5])
                fams["wardops_icmp_packets_received_total"].add_metric(lv, r[6])
                fams["wardops_icmp_status_changes_total"].add_metric(lv, r[4])
                fams["wardops_icmp_last_change_timestamp_seconds"].add_metric(lv, r[3])
            yield from fams.values()

    reg = CollectorRegistry()
    reg.register(RowsCollector())
    coll = []
    for _ in range(max(5, scrapes // 20)):
        t = time.perf_counter()
        generate_latest(reg)
        coll.append(time.perf_counter() - t)

    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

    return {"devices": n, "bytes": size, "render_once_s": render_s, "scrapes": scrapes,
            "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3, "gzip_bytes": gz_size,
            "gzip_once_cpu_s": gzip_cpu, "gzip_p50_ms": pct(gz_lat, 50) * 1e3, "gzip_p99_ms": pct(gz_lat, 99) * 1e3,
            "collector_p50_ms": pct(coll, 50) * 1e3, "collector_p99_ms": pct(coll, 99) * 1e3}


# -- orchestrator ------------------------------------------------------------------------------

def fping_round(lab, addrs: list[str], timeout_ms: int, interval_ms: float, children: Children) -> dict:
    """One fping round in the prober namespace. CPU: os.wait4 of `ip netns exec /usr/bin/time fping`
    (includes its reaped descendants); RSS: GNU time's %M for fping itself (wait4's maxrss would show
    our Python image, which the vforked child carried until exec)."""
    argv = lab.probe_argv(["/usr/bin/time", "-f", "WARDOPS_RSS_KB=%M",
                           "fping", "-c1", "-q", "-t", str(timeout_ms), "-i", str(interval_ms), "-r", "0"])
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr))
    reader.start()
    proc.stdin.write("\n".join(addrs) + "\n")
    proc.stdin.close()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    wall = time.monotonic() - t0
    children.delta()  # keep the children baseline in step
    down = []
    rss_kb = 0
    for line in err_lines:  # "198.18.0.1 : xmt/rcv/%loss = 1/0/100%"
        if line.startswith("WARDOPS_RSS_KB="):
            rss_kb = int(line.split("=")[1])
        if "xmt/rcv" in line:
            ip, _, rest = line.partition(" : ")
            if rest.split("=")[1].split(",")[0].strip().split("/")[1] == "0":
                down.append(ip.strip())
    return {"cpu": ru.ru_utime + ru.ru_stime, "wall": wall, "down": down, "rss_kb": rss_kb}


def verdict(down: list[str], truth: set[str]) -> tuple[int, int]:
    got = set(down)
    return len(got - truth), len(truth - got)  # false downs, missed downs


def main() -> int:
    stop_on_sigterm()
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", choices=("round", "steady", "detect"))
    ap.add_argument("--lab")
    ap.add_argument("--mode", default="unprivileged")
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--inventory")
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steady", type=float, default=60.0, help="seconds of the 50k/10 s run (0 skips)")
    ap.add_argument("--steady-devices", type=int, default=50_000)
    ap.add_argument("--steady-interval", type=float, default=10.0)
    ap.add_argument("--scrape-devices", type=int, default=10_000)
    ap.add_argument("--fping-interval", default="0.05", help="fping -i in ms")
    ap.add_argument("--scrapes", type=int, default=200)
    ap.add_argument("--detect", type=int, default=10000, help="devices in the detection-under-load run (0 skips)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes (100 targets, 1 round, 200-device steady run of 4 s, no detection run): "
                         "checks the bench runs, in seconds")
    args = ap.parse_args()
    if args.smoke:
        args.sizes, args.repeat, args.scrapes, args.scrape_devices = "100", 1, 10, 200
        args.steady, args.steady_devices, args.steady_interval, args.detect = 4.0, 200, 3.0, 0
    if args.worker == "round":
        worker_round(args)
        return 0
    if args.worker == "steady":
        worker_steady(args)
        return 0
    if args.worker == "detect":
        worker_detect(args)
        return 0

    from wardops.lab.netns import Lab

    report: dict = {"rounds": [], "steady": None, "scrape": None, "detect": None}
    lab = Lab(f"wb{os.getpid() % 100000}")
    children = Children()
    try:
        lab.create()
        py = sys.executable
        for n in [int(s) for s in args.sizes.split(",")]:
            addrs = targets(n)
            truth = set(random.Random(n).sample(addrs, n // 10))
            lab.down(truth)
            for rep in range(args.repeat):
                row = {"targets": n, "repeat": rep}
                f = fping_round(lab, addrs, int(args.timeout * 1000), float(args.fping_interval), children)
                row["fping"] = {"cpu": f["cpu"], "wall": f["wall"], "rss_kb": f["rss_kb"],
                                "false_down_missed": verdict(f["down"], truth)}
                for mode in ("unprivileged", "raw"):
                    argv = lab.probe_argv([py, "-m", "bench.icmp_round", "--worker", "round", "--mode", mode,
                                           "--timeout", str(args.timeout)])
                    t0 = time.monotonic()
                    proc = subprocess.run(argv, input="\n".join(addrs), capture_output=True, text=True, timeout=600)
                    wall = time.monotonic() - t0
                    proc_cpu = children.delta()
                    if proc.returncode != 0:
                        raise SystemExit(proc.stderr)
                    w = json.loads(proc.stdout)
                    row[mode] = {"cpu": w["cpu"], "wall": w["wall"], "process_cpu": proc_cpu, "process_wall": wall,
                                 "rss_kb": w["rss_kb"], "drops": w["drops"], "send_errors": w["send_errors"],
                                 "false_down_missed": verdict(w["down"], truth)}
                    row[mode]["cpu_vs_fping"] = w["cpu"] / f["cpu"] if f["cpu"] else None
                print(json.dumps(row), flush=True)
                report["rounds"].append(row)
            lab.up(truth)
        report["scrape"] = scrape_latency(args.scrape_devices, args.scrapes)
        print(json.dumps({"scrape": report["scrape"]}), flush=True)
        if args.steady:
            from inventory.dump import dump_yaml
            from inventory.synth import synth_inventory

            with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as fh:
                fh.write(dump_yaml(synth_inventory(args.steady_devices, 0.1, 1, 0.0)))
                inv_path = fh.name
            try:
                argv = lab.probe_argv([py, "-m", "bench.icmp_round", "--worker", "steady", "--inventory", inv_path,
                                       "--interval", str(args.steady_interval), "--seconds", str(args.steady)])
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=args.steady + 300)
                if proc.returncode != 0:
                    raise SystemExit(proc.stderr)
                s = json.loads(proc.stdout)
                s["cpu_share_of_one_core"] = s["cpu"] / s["wall"]
                s["interval"] = args.steady_interval
                report["steady"] = s
                print(json.dumps({"steady": s}), flush=True)
            finally:
                os.unlink(inv_path)
        if args.detect:
            from inventory.dump import dump_yaml
            from inventory.synth import synth_inventory

            with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as fh:
                fh.write(dump_yaml(synth_inventory(args.detect, 0.1, 2, 0.0)))
                inv_path = fh.name
            try:
                argv = lab.probe_argv([py, "-m", "bench.icmp_round", "--worker", "detect", "--inventory", inv_path, "--lab", lab.name])
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
                if proc.returncode != 0:
                    raise SystemExit(proc.stderr)
                report["detect"] = json.loads(proc.stdout)
                print(json.dumps({"detect": report["detect"]}), flush=True)
            finally:
                os.unlink(inv_path)
    finally:
        lab.destroy()
    summarize(report)
    return 0


def summarize(report: dict) -> None:
    print("\n| targets | prober | CPU s (median) | wall s | RSS MB | false/missed downs | CPU vs fping |")
    print("|---|---|---|---|---|---|---|")
    sizes = sorted({r["targets"] for r in report["rounds"]})
    for n in sizes:
        rows = [r for r in report["rounds"] if r["targets"] == n]
        for who in ("fping", "unprivileged", "raw"):
            cpu = statistics.median(r[who]["cpu"] for r in rows)
            wall = statistics.median(r[who]["wall"] for r in rows)
            fm = [tuple(r[who]["false_down_missed"]) for r in rows]
            worst = (max(f for f, _ in fm), max(m for _, m in fm))
            rss = f"{max(r[who]['rss_kb'] for r in rows) / 1024:.0f}"
            ratio = f"{statistics.median(r[who]['cpu_vs_fping'] for r in rows):.2f}x" if who != "fping" else "1x"
            name = "fping -c1" if who == "fping" else f"wardops ({who})"
            print(f"| {n} | {name} | {cpu:.3f} | {wall:.2f} | {rss} | {worst[0]}/{worst[1]} | {ratio} |")
    if report["scrape"]:
        s = report["scrape"]
        print(f"\nscrape {s['devices']} devices ({s['bytes'] / 1e6:.1f} MB): pre-rendered p50 {s['p50_ms']:.1f} ms, "
              f"p99 {s['p99_ms']:.1f} ms (render once {s['render_once_s'] * 1e3:.0f} ms); gzip "
              f"({s['gzip_bytes'] / 1e6:.2f} MB, compressed once per round in {s['gzip_once_cpu_s'] * 1e3:.0f} ms CPU) "
              f"p50 {s['gzip_p50_ms']:.1f} ms, p99 {s['gzip_p99_ms']:.1f} ms; prometheus_client "
              f"Collector p50 {s['collector_p50_ms']:.0f} ms, p99 {s['collector_p99_ms']:.0f} ms")
    if report["steady"]:
        s = report["steady"]
        print(f"\n{s['targets']} targets every {s['interval']:g} s: {s['cpu']:.1f} CPU s in {s['wall']:.0f} s = "
              f"{100 * s['cpu_share_of_one_core']:.0f} % of one core; rounds {s['rounds']}, overruns "
              f"{s['overruns']}, last round {s['last_round_duration']:.2f} s, drops {s['drops']}, "
              f"RSS {s['rss_kb'] / 1024:.0f} MB")
    if report["detect"]:
        d = report["detect"]
        print(f"\ndetection with {d['targets']} devices probed (default policies): ISP uplinks DOWN after "
              f"{', '.join(f'{x:.2f}' for x in d['isp_s'])} s; branch devices after "
              f"{', '.join(f'{x:.1f}' for x in d['other_s'])} s; overruns {d['overruns']}, drops {d['drops']}")


if __name__ == "__main__":
    sys.exit(main())
