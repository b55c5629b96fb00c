"""Benchmark: the ICMP snapshot (every device of every policy + branch verdicts + canaries) and the
whole exporter's CPU with the built-in policies (isp every 0.5 s, default every 1 s, 3 packets).

    .venv/bin/python -m bench.icmp_snapshot [--sizes 875,10000] [--seconds 30] [--dark-branches 5]
    .venv/bin/python -m bench.icmp_snapshot --smoke                               # seconds, no root

Part 1 (no sockets): render time in the render thread of a full snapshot, of the snapshot an ISP
round publishes (ISP group + branches) and of the one a default round publishes; and the part of a
publish that runs on the probing loop (building the row tuples and verdicts).
Part 2 (root, network namespaces it creates and removes): the real exporter in the lab on a
synthetic inventory (12 % ISP uplinks, ~10 devices per branch) for --seconds, scraped once a
second with gzip like vmagent (`?module=icmp`); CPU = user+sys of the whole process, as a share of
one core. The machine is shared: compare figures from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

from bench.common import cpu_self, inprocess_exporter, stop_on_sigterm

ISP_SHARE = 0.12  # the bank-shaped lab: 875 devices, ~105 uplinks over 88-93 branches


def render_times(n: int, repeat: int) -> dict:
    from exporter.component import Runtime
    from exporter.config import ExporterConfig
    from exporter.exposition import Exposition
    from exporter.icmp.component import FAMILIES, IcmpComponent, render_snapshot
    from exporter.icmp.engine import EngineCounters, PingResult
    from inventory.synth import synth_inventory

    class Engine:  # every device answers 3 packets
        counters = EngineCounters()
        unavailable: dict = {}

        async def ping(self, addresses, packets=1, spacing=0.0, timeout=1.0):
            return PingResult([packets] * len(addresses), [[0.001] * packets for _ in addresses])

    devices = synth_inventory(n, ISP_SHARE, 1, 0.0).enabled_devices()

    async def go():
        expo = Exposition()
        expo.register(FAMILIES)
        log = logging.getLogger("bench")
        log.addHandler(logging.NullHandler())
        log.propagate = False
        rt = Runtime(ExporterConfig(), expo, asyncio.get_running_loop(), log)
        comp = IcmpComponent(rt, engine=Engine())
        comp.set_devices(devices)
        for name, group in comp.groups.items():
            await comp.run_round(name, comp.policies[name], group)
        rt.flush()
        captured = []
        rt.publish_many_later = lambda render, *args: captured.append((render, args))
        out = {"devices": n, "isp": len(comp.groups["isp"]), "branches": sum(b.exported for b in comp.branches.values())}
        for label, names in (("full", list(comp.groups)), ("isp_round", ["isp"]), ("default_round", ["default"])):
            loop_s, render_s = [], []
            for _ in range(repeat):
                captured.clear()
                t0 = time.perf_counter()
                comp._judge(time.time())
                comp._publish(names)
                loop_s.append(time.perf_counter() - t0)
                render, args = captured[0]
                t0 = time.perf_counter()
                render(*args)
                render_s.append(time.perf_counter() - t0)
            out[label] = {"on_loop_ms": round(statistics.median(loop_s) * 1000, 2),
                          "render_ms": round(statistics.median(render_s) * 1000, 2)}
        sections = render_snapshot({("icmp", n): comp._rows(g) for n, g in comp.groups.items()},
                                   (tuple((b.labels, b.change_labels, b.verdict, b.since)
                                          for b in comp.branches.values() if b.exported), ()))
        out["exposition_mb"] = round(sum(len(a) + len(b) for s in sections.values() for a, b in s.values()) / 1e6, 2)
        rt.shutdown()
        return out
    return asyncio.run(go())


def worker(args) -> None:
    """Inside the prober namespace: the real exporter, built-in policies, for --seconds."""
    exp = inprocess_exporter(args.inventory, ready_within=60)
    time.sleep(3)
    comp = exp.runtime.components["icmp"]
    exp.exposition.gzip_wanted = True
    before = {n: (st.rounds, st.overruns) for n, st in comp.stats.items()}
    lab = None
    branches = sorted({(d.region, d.branch) for d in exp.devices})
    rng = random.Random(7)
    dark: list[str] = []
    if args.dark_branches:
        from wardops.lab.netns import Lab
        lab = Lab(args.lab)
    cpu0, t0 = cpu_self(), time.monotonic()
    scrape_s = []
    tick = 0
    while time.monotonic() - t0 < args.seconds:  # one vmagent-like gzip scrape a second
        s0 = time.perf_counter()
        b"".join(exp.exposition.render(gzip=True, module="icmp"))
        scrape_s.append(time.perf_counter() - s0)
        if lab is not None and tick % 3 == 0:  # every 3 s: the dark branches come back, others go dark
            if dark:
                lab.up(dark)
            chosen = set(rng.sample(branches, args.dark_branches))
            dark = [d.ip for d in exp.devices if (d.region, d.branch) in chosen]
            lab.down(dark)
        tick += 1
        time.sleep(max(0.0, 1.0 - (time.perf_counter() - s0)))
    cpu, wall = cpu_self() - cpu0, time.monotonic() - t0
    if lab is not None and dark:
        lab.up(dark)
    out = {"cpu_share_of_one_core": round(cpu / wall, 4), "wall": round(wall, 1),
           "rounds": {n: st.rounds - before[n][0] for n, st in comp.stats.items()},
           "overruns": {n: st.overruns - before[n][1] for n, st in comp.stats.items()},
           "round_duration_s": {n: round(st.duration, 3) for n, st in comp.stats.items()},
           "drops": comp.engine.counters.receive_drops, "bursts": comp.bursts,
           "scrape_gzip_ms_median": round(statistics.median(scrape_s) * 1000, 2),
           "branches": {str(v): sum(1 for b in comp.branches.values() if b.exported and b.verdict == v)
                        for v in (-1, 0, 1)}}
    exp.stop()
    print(json.dumps(out))


def main() -> int:
    stop_on_sigterm()
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="875,10000")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="render part only, 200 devices (CI)")
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--inventory")
    ap.add_argument("--lab")
    ap.add_argument("--dark-branches", type=int, default=0,
                    help="whole branches taken dark (and back) every 3 s during the lab run: burst load")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return 0
    sizes = [200] if args.smoke else [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        print(json.dumps({"render": render_times(n, 2 if args.smoke else args.repeat)}), flush=True)
    if args.smoke or not args.seconds:
        return 0
    if os.geteuid() != 0:
        print("lab part skipped: needs root", file=sys.stderr)
        return 0
    from inventory.dump import dump_yaml
    from inventory.synth import synth_inventory
    from wardops.lab.netns import Lab

    lab = Lab(f"ws{os.getpid() % 100000}")
    try:
        lab.create()
        for n in sizes:
            with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as fh:
                fh.write(dump_yaml(synth_inventory(n, ISP_SHARE, 1, 0.0)))
                path = fh.name
            try:
                argv = lab.probe_argv([sys.executable, "-m", "bench.icmp_snapshot", "--worker", "--inventory", path,
                                       "--seconds", str(args.seconds), "--lab", lab.name,
                                       "--dark-branches", str(args.dark_branches)])
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=args.seconds + 180)
                if proc.returncode != 0:
                    raise SystemExit(proc.stderr)
                print(json.dumps({"devices": n, "exporter": json.loads(proc.stdout)}), flush=True)
            finally:
                os.unlink(path)
    finally:
        lab.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
