#!/usr/bin/env python3
"""Soak: does the exporter leak over hours of reloads, flapping and loss?

The real `wardops exporter --netns` process probes --targets lab devices over ICMP (10 % ISP uplinks
every 1 s, the rest every 5 s: the default policies) and polls --snmp of them over SNMP v2c (net-snmp
snmpd agents in the target namespace). Meanwhile:
- the inventory file is rewritten every --reload-every seconds (default 60): a rotating 2 % of the
  devices is replaced by new ones and a label changes on another 2 %, so devices come, go and change;
- every --flap-every seconds (default 10) a new random 1 % of the devices is taken down and the
  previous ones come back (nftables set in the target namespace), so states flip all the time;
- 1 % random packet loss on every device for the whole run.
Sampled every --sample-every seconds (default 15): the process's RSS, open fds and threads (/proc)
and its asyncio tasks (`wardops_exporter_asyncio_tasks` self-metric). After the warm-up (default
the first 20 % of the run, at least one reload period) the growth of each figure is the median of
the last 10 % of samples against the median of the first 10 % after warm-up, in %. The verdict
asks for <= 5 % on RSS and no growth in fds, threads and tasks beyond +2 (a scrape or an SNMP
round in flight at sampling time).

Run as root:  .venv/bin/python bench/soak.py --minutes 60
              .venv/bin/python bench/soak.py --smoke        (about 30 s, 300 devices, 5 SNMP)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import spawn_exporter, stop_on_sigterm
from wardops.lab.netns import Lab
from wardops.lab.snmpagents import start_snmpd

COMMUNITY_ENV = "SOAK_SNMP_COMMUNITY"
COMMUNITY = "soak-community"
BASE_PORT = 1161
RSS_LIMIT_PCT = 5.0
COUNT_SLACK = 2


def ip_of(i: int) -> str:
    return f"198.18.{1 + i // 250}.{1 + i % 250}"


def inventory_yaml(ids: list[int], snmp_ids: set[int], agents: int, generation: int, relabel: set[int]) -> str:
    lines = ["snmp_profiles:"]
    for k in range(agents):
        lines.append(f"  a{k}: {{version: 2c, community_env: {COMMUNITY_ENV}, port: {BASE_PORT + k}, "
                     "timeout: 2, retries: 1}")
    lines.append("devices:")
    for i in ids:
        role = "role: isp, isp: acme" if i % 10 == 0 else "role: router"
        profile = f", snmp: a{i % agents}" if i in snmp_ids else ""
        labels = f", labels: {{rev: g{generation}}}" if i in relabel else ""
        lines.append(f"  - {{name: d{i}, ip: {ip_of(i)}, region: r{i % 4}, branch: b{i // 10}, {role}{profile}{labels}}}")
    return "\n".join(lines) + "\n"


def proc_sample(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def self_metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics?exclude_role=isp", timeout=30) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("wardops_exporter_") and "{" not in line:
            name, _, value = line.partition(" ")
            out[name] = float(value)
    return out


def growth(samples: list[dict], key: str, warmup: int) -> dict:
    after = [s[key] for s in samples[warmup:]]
    if len(after) < 2:
        return {"start": None, "end": None}
    k = max(1, len(after) // 10)
    start, end = statistics.median(after[:k]), statistics.median(after[-k:])
    out = {"start": round(start, 1), "end": round(end, 1), "max": round(max(after), 1)}
    out["growth_pct"] = round(100 * (end - start) / start, 2) if start else None
    return out


def main() -> int:
    stop_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0, help="run time (default 60)")
    ap.add_argument("--targets", type=int, default=10000)
    ap.add_argument("--snmp", type=int, default=500, help="of the targets, polled over SNMP every 60 s")
    ap.add_argument("--agents", type=int, default=2, help="snmpd processes (ports 1161..)")
    ap.add_argument("--reload-every", type=float, default=60.0)
    ap.add_argument("--flap-every", type=float, default=10.0)
    ap.add_argument("--sample-every", type=float, default=15.0)
    ap.add_argument("--warmup-share", type=float, default=0.2)
    ap.add_argument("--smoke", action="store_true", help="about 30 s with 300 devices: does the bench work?")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if args.smoke:
        args.minutes, args.targets, args.snmp, args.agents = 0.5, 300, 5, 1
        args.reload_every, args.flap_every, args.sample_every = 5.0, 2.0, 1.0
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    rng = random.Random(14)
    seconds = args.minutes * 60
    lab = Lab(f"sk{os.getpid() % 100000}")
    agents = []
    work = Path(tempfile.mkdtemp(prefix="wardops-soak-"))
    proc = None
    samples: list[dict] = []
    reloads = flaps = 0
    try:
        lab.create()
        lab.set_loss(1.0)
        for k in range(args.agents):
            agents.append(start_snmpd([f"udp:0.0.0.0:{BASE_PORT + k}"], netns=lab.target_ns, community=COMMUNITY,
                                      ready=("198.18.1.1", BASE_PORT + k)))
        ids = list(range(args.targets))
        next_id = args.targets
        snmp_ids = set(rng.sample(ids, min(args.snmp, len(ids))))
        inv = work / "inventory.yml"
        inv.write_text(inventory_yaml(ids, snmp_ids, args.agents, 0, set()))
        cfg = work / "exporter.yml"
        cfg.write_text(f"inventory: {{poll_interval: {min(5.0, args.reload_every / 2):g}s}}\n"
                       "snmp: {interval: 60s}\n" if not args.smoke else
                       "inventory: {poll_interval: 1s}\nsnmp: {interval: 5s}\n")
        proc, port = spawn_exporter(inv, cfg, lab.probe_ns, work / "exporter.log", {COMMUNITY_ENV: COMMUNITY})
        t0 = time.monotonic()
        next_reload, next_flap, next_sample = t0 + args.reload_every, t0, t0
        down: list[str] = []
        generation = 0
        while (now := time.monotonic()) - t0 < seconds:
            if proc.poll() is not None:
                raise SystemExit(f"exporter exited with {proc.returncode}; log: {work / 'exporter.log'}")
            if now >= next_flap:
                if down:
                    lab.up(down)
                down = [ip_of(i) for i in rng.sample(ids, max(1, len(ids) // 100))]
                lab.down(down)
                flaps += 1
                next_flap += args.flap_every
            if now >= next_reload:
                generation += 1
                churn = max(1, len(ids) // 50)
                gone = set(rng.sample(ids, churn))
                ids = [i for i in ids if i not in gone] + list(range(next_id, next_id + churn))
                next_id += churn
                snmp_ids = (snmp_ids - gone) | {i for i in range(next_id - churn, next_id) if rng.random() < 0.05}
                relabel = set(rng.sample(ids, churn))
                tmp = inv.with_suffix(".tmp")
                tmp.write_text(inventory_yaml(ids, snmp_ids, args.agents, generation, relabel))
                tmp.replace(inv)  # atomic: the exporter never reads half a file
                reloads += 1
                next_reload += args.reload_every
            if now >= next_sample:
                metrics = self_metrics(port)
                sample = {"t": round(now - t0, 1), **proc_sample(proc.pid),
                          "tasks": metrics.get("wardops_exporter_asyncio_tasks", float("nan")),
                          "devices": metrics.get("wardops_exporter_inventory_devices"),
                          "reload_ok": metrics.get("wardops_exporter_inventory_reload_success")}
                samples.append(sample)
                if not args.smoke and len(samples) % 20 == 0:
                    print(json.dumps(sample), flush=True)
                next_sample += args.sample_every
            time.sleep(max(0.05, min(next_flap, next_reload, next_sample) - time.monotonic()))
        cpu = sum(int(x) for x in Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13])
        cpu_s = cpu / os.sysconf("SC_CLK_TCK")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for agent in agents:
            agent.stop()
        lab.destroy()
    warmup = max(int(len(samples) * args.warmup_share), int(args.reload_every / args.sample_every))
    result = {"minutes": args.minutes, "targets": args.targets, "snmp": args.snmp, "reloads": reloads,
              "flaps": flaps, "samples": len(samples), "warmup_samples": warmup,
              "cpu_pct_of_one_core": round(100 * cpu_s / seconds, 1),
              "reload_failures_seen": sum(1 for s in samples if s["reload_ok"] == 0)}
    for key in ("rss_mb", "fds", "threads", "tasks"):
        result[key] = growth(samples, key, warmup)
    ok = samples and all(result[k].get("end") is not None for k in ("rss_mb", "fds", "threads", "tasks"))
    if ok:
        ok = (result["rss_mb"]["growth_pct"] <= RSS_LIMIT_PCT
              and all(result[k]["end"] - result[k]["start"] <= COUNT_SLACK for k in ("fds", "threads", "tasks")))
    result["verdict"] = "ok" if ok else "GROWTH"
    result["log"] = str(work / "exporter.log")
    if args.json:
        Path(args.json).write_text(json.dumps({"result": result, "samples": samples}, indent=1))
    print(json.dumps(result, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
