#!/usr/bin/env python3
"""Benchmark: ICMP and SNMP in ONE exporter process ("mixed load").

The real `wardops exporter --netns` process probes 10,000 lab devices over ICMP (default policies:
10 % ISP uplinks every 1 s with 3 packets, the rest every 5 s with 2) and, in the mixed phase, also
polls 1,000 of them over SNMP v2c (4 net-snmp snmpd agents in the target namespace, 24 interfaces
each, ports 1161.., as bench/snmp_poll.py). Two phases in the same run, each a fresh process:
ICMP only (`snmp: {enabled: false}`) and mixed. While each phase runs, /metrics is scraped twice a
second with gzip (as vmagent does) and every ICMP round seen (last_round_timestamp, duration) is
kept; a round is counted once. Reported per phase: ICMP round duration p50/p99/max per policy, ICMP
overruns, SNMP rounds/duration/overruns and devices up, and the exporter's CPU (user+sys from
/proc/PID/stat over the measured window) as % of one core.

`--render-only` compares the CPU of rendering one SNMP round (1,000 devices x 24 interfaces): the
component's direct lines against prometheus_client families + generate_latest.

Run as root:  .venv/bin/python -m bench.exporter_mixed --seconds 130
              .venv/bin/python -m bench.exporter_mixed --render-only
              .venv/bin/python -m bench.exporter_mixed --smoke   # 50 devices, 5 over SNMP, 3 s phases
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import proc_cpu, spawn_exporter, stop_on_sigterm
from wardops.lab.netns import Lab
from wardops.lab.snmpagents import add_veth_interfaces, start_snmpd

COMMUNITY_ENV = "BENCH_SNMP_COMMUNITY"
COMMUNITY = "bench-mixed-community"
BASE_PORT = 1161




def inventory_yaml(icmp: int, snmp: int, agents: int, isp_share: float) -> str:
    lines = ["snmp_profiles:"]
    for k in range(agents):
        lines.append(f"  a{k}: {{version: 2c, community_env: {COMMUNITY_ENV}, port: {BASE_PORT + k}, "
                     "timeout: 5, retries: 1, max_repetitions: 25}")
    lines.append("devices:")
    isp_every = round(1 / isp_share) if isp_share else 0
    snmp_every = max(1, icmp // snmp) if snmp else 0
    for i in range(icmp):
        ip = f"198.18.{1 + i // 250}.{1 + i % 250}"
        isp = isp_every and i % isp_every == 0
        role = "role: isp, isp: acme" if isp else "role: router"
        profile = f", snmp: a{i % agents}" if snmp_every and i % snmp_every == 1 else ""
        lines.append(f"  - {{name: d{i}, ip: {ip}, region: r{i % 4}, branch: b{i // 10}, {role}{profile}}}")
    return "\n".join(lines) + "\n"




def scrape(port: int) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics?exclude_role=isp",
                                 headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
        return (gzip.decompress(body) if resp.headers.get("Content-Encoding") == "gzip" else body).decode()


def self_metrics(text: str) -> dict:
    """Self-metrics with a protocol label and the SNMP up count; a plain line scan (the parser would
    take seconds on a 10k-device exposition and thin out the round samples)."""
    out: dict = {}
    up = [0, 0]
    for line in text.splitlines():
        if line.startswith("wardops_exporter_") and "protocol=" in line:
            name, _, rest = line.partition("{")
            labels, _, value = rest.rpartition("} ")
            kv = dict(item.split("=", 1) for item in labels.split(","))
            policy = kv.get("policy")
            out[(name, kv["protocol"].strip('"'), policy.strip('"') if policy else None)] = float(value)
        elif line.startswith("wardops_snmp_up{"):
            up[int(line.endswith(" 1"))] += 1
    out["snmp_up"] = up
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def phase(lab: Lab, inv: Path, work: Path, snmp: bool, seconds: float, snmp_interval: float,
          settle: float = 5.0) -> dict:
    cfg = work / f"exporter-{'mixed' if snmp else 'icmp'}.yml"
    cfg.write_text(f"snmp: {{enabled: {'true' if snmp else 'false'}, interval: {snmp_interval:g}s}}\n"
                   "inventory: {poll_interval: 60s}\n")
    proc, port = spawn_exporter(inv, cfg, lab.probe_ns, work / f"exporter-{'mixed' if snmp else 'icmp'}.log",
                                {COMMUNITY_ENV: COMMUNITY})
    try:
        time.sleep(settle)  # past start-up (inventory load, first renders)
        first = self_metrics(scrape(port))
        cpu0, t0 = proc_cpu(proc.pid), time.monotonic()
        rounds: dict[str, dict[float, float]] = {}
        last = first
        while time.monotonic() - t0 < seconds:
            last = self_metrics(scrape(port))
            for key, value in last.items():
                if key[0] == "wardops_exporter_last_round_timestamp_seconds" and key[1] == "icmp":
                    policy = key[2]
                    duration = last.get(("wardops_exporter_round_duration_seconds", "icmp", policy))
                    rounds.setdefault(policy, {})[value] = duration
            time.sleep(0.5)
        cpu, wall = proc_cpu(proc.pid) - cpu0, time.monotonic() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()

    def delta(name, protocol, policy):
        return last.get((name, protocol, policy), 0) - first.get((name, protocol, policy), 0)

    out: dict = {"cpu_s": round(cpu, 2), "wall_s": round(wall, 1), "cpu_pct_of_one_core": round(100 * cpu / wall, 1),
                 "icmp": {}}
    for policy, seen in sorted(rounds.items()):
        durations = list(seen.values())
        out["icmp"][policy] = {
            "rounds_seen": len(durations),
            "rounds": delta("wardops_exporter_rounds_total", "icmp", policy),
            "targets": last.get(("wardops_exporter_targets", "icmp", policy)),
            "duration_p50_s": round(pct(durations, 0.5), 3), "duration_p99_s": round(pct(durations, 0.99), 3),
            "duration_max_s": round(max(durations), 3),
            "overruns": last.get(("wardops_exporter_round_overruns_total", "icmp", policy))}
    out["receive_drops"] = last.get(("wardops_exporter_receive_drops_total", "icmp", None))
    if snmp:
        out["snmp"] = {"rounds": last.get(("wardops_exporter_rounds_total", "snmp", "snmp")),
                       "last_round_duration_s": round(last.get(("wardops_exporter_round_duration_seconds",
                                                                "snmp", "snmp"), 0), 2),
                       "overruns": last.get(("wardops_exporter_round_overruns_total", "snmp", "snmp")),
                       "targets": last.get(("wardops_exporter_targets", "snmp", "snmp")),
                       "devices_down_up": last["snmp_up"]}
    logs = (work / f"exporter-{'mixed' if snmp else 'icmp'}.log").read_text()
    out["community_in_logs"] = COMMUNITY in logs
    return out


def render_compare(n: int, interfaces: int = 24, repeat: int = 3) -> dict:
    """CPU to render one round of n SNMP devices: the component's direct lines vs prometheus_client's
    families + generate_latest (the tests' oracle, tests/exporter/snmp/oracle.py), same synthetic snapshot; best of
    `repeat`."""
    import gc

    from prometheus_client import CollectorRegistry, generate_latest

    from exporter.exposition import label_text
    from exporter.snmp.poller import DeviceSample, InterfaceSample, SnmpSnapshot
    from exporter.snmp.render import render_rows
    from inventory.model import Device
    from tests.exporter.snmp.oracle import families

    now = time.time()
    samples = []
    for i in range(n):
        d = Device(f"d{i}", f"198.18.{1 + i // 250}.{1 + i % 250}", region=f"r{i % 4}", branch=f"b{i // 10}",
                   role="router", snmp="a0")
        ifs = tuple(InterfaceSample(index=k, name=f"ge-0/0/{k}", alias=f"uplink {k}", if_type=6, speed_bps=1e9,
                                    admin_up=True, oper_up=k % 7 != 0, last_change=now - 1000 * k,
                                    counters={"ifHCInOctets": 10**12 + k, "ifHCOutOctets": 10**11 + k,
                                              "ifInErrors": k, "ifOutErrors": 0, "ifInDiscards": 3,
                                              "ifOutDiscards": 0})
                    for k in range(interfaces))
        samples.append(DeviceSample(d, True, None, 0.0123, now, uptime_seconds=123456.78, interfaces=ifs))
    snap = SnmpSnapshot(now, 5.0, tuple(samples))
    rows = tuple((label_text(s.device.target_labels()), False, s, ()) for s in samples)

    def client():
        fams = families(snap)
        reg = CollectorRegistry()
        reg.register(type("C", (), {"collect": lambda self: fams})())
        return generate_latest(reg)

    def lines():
        return b"".join(b for pair in render_rows(rows).values() for b in pair)

    out = {}
    for name, fn in (("direct_lines", lines), ("prometheus_client", client)):
        best, size, gc_runs = float("inf"), 0, 0
        for _ in range(repeat):
            before = sum(st["collections"] for st in gc.get_stats())
            c0 = time.process_time()
            size = len(fn())
            best = min(best, time.process_time() - c0)
            gc_runs = sum(st["collections"] for st in gc.get_stats()) - before
        out[name] = {"cpu_s": round(best, 3), "bytes": size, "gc_collections": gc_runs}
    out["ratio"] = round(out["prometheus_client"]["cpu_s"] / out["direct_lines"]["cpu_s"], 2)
    return out


def main() -> int:
    stop_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--icmp", type=int, default=10000, help="ICMP devices")
    ap.add_argument("--snmp", type=int, default=1000, help="of which polled over SNMP in the mixed phase")
    ap.add_argument("--agents", type=int, default=4, help="snmpd processes (ports 1161..)")
    ap.add_argument("--isp-share", type=float, default=0.1)
    ap.add_argument("--seconds", type=float, default=130.0, help="measured window per phase")
    ap.add_argument("--snmp-interval", type=float, default=60.0)
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--render-only", action="store_true",
                    help="only compare rendering one SNMP round (--snmp devices), no lab")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds after /-/ready before measuring")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes (50 devices, 5 over SNMP, 1 agent, 3 s phases, 20-device render): "
                         "checks the bench runs, in seconds")
    args = ap.parse_args()
    if args.smoke:
        args.icmp, args.snmp, args.agents, args.seconds, args.snmp_interval, args.settle = 50, 5, 1, 3.0, 2.0, 2.0
        print(json.dumps({"render_snmp_round": {"devices": 20, **render_compare(20, repeat=1)}}), flush=True)
    if args.render_only:
        print(json.dumps({"render_snmp_round": {"devices": args.snmp, **render_compare(args.snmp)}}, indent=1))
        return 0
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    lab = Lab(f"mx{os.getpid() % 100000}")
    agents = []
    work = Path(tempfile.mkdtemp(prefix="wardops-mixedbench-"))
    results: dict = {"icmp_devices": args.icmp, "snmp_devices": args.snmp, "seconds": args.seconds,
                     "snmp_interval": args.snmp_interval}
    try:
        lab.create()
        add_veth_interfaces(lab.target_ns, 11)  # + lo + the lab veth = 24 interfaces per "device"
        for k in range(args.agents):
            agents.append(start_snmpd([f"udp:0.0.0.0:{BASE_PORT + k}"], netns=lab.target_ns, community=COMMUNITY,
                                      ready=("198.18.1.1", BASE_PORT + k)))
        inv = work / "inventory.yml"
        inv.write_text(inventory_yaml(args.icmp, args.snmp, args.agents, args.isp_share))
        results["icmp_only"] = phase(lab, inv, work, False, args.seconds, args.snmp_interval, args.settle)
        print(json.dumps({"icmp_only": results["icmp_only"]}), flush=True)
        results["mixed"] = phase(lab, inv, work, True, args.seconds, args.snmp_interval, args.settle)
        print(json.dumps({"mixed": results["mixed"]}), flush=True)
    finally:
        for agent in agents:
            agent.stop()
        lab.destroy()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
