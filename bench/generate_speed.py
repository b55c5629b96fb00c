"""Generation speed: `wardops generate` on synthetic inventories (target: 10,000 devices in <= 3 s).

    .venv/bin/python -m bench.generate_speed [--devices 135 1000 10000] [--repeat 5] [--smoke]

The inventory text comes from the same code as `wardops inventory synth --devices N`, with
maintenance windows on every 20th branch and a latency override on every 10th device added (the
inventory-dependent parts of the output: mute routes and threshold classes). Reported: best-of-N
CPU seconds of this process for loading the inventory, for generating + re-validating all files,
and wall seconds for the external checkers (promtool, vmalert, amtool, vmagent) run once.
Baseline in the same run: the inventory load alone (the generator cannot be faster than reading
its input).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from generators.generate import generate_files, tool_checks, write_files
from generators.settings import DEFAULT_SETTINGS
from inventory import loads_inventory
from inventory.dump import dump_yaml
from inventory.model import MaintenanceWindow, frozen_labels
from inventory.synth import synth_inventory


def synth_text(devices: int) -> str:
    inv = synth_inventory(devices, 0.1, seed=1)
    out = []
    for i, d in enumerate(inv.devices):
        if i % 10 == 0:
            d = dataclasses.replace(d, labels=frozen_labels({**d.labels, "latency_threshold_ms": str(150 + i % 3 * 50)}))
        out.append(d)
    branches = sorted({d.branch for d in inv.devices})[::20]
    windows = tuple(MaintenanceWindow(name=f"mw-{i}", weekdays=("sunday",), times=(("01:00", "03:00"),),
                                      timezone="Asia/Tbilisi", branches=(b,)) for i, b in enumerate(branches))
    return dump_yaml(dataclasses.replace(inv, devices=tuple(out), maintenance=windows))


def best_cpu(fn, repeat: int) -> tuple[float, float, object]:
    cpu, wall, result = [], [], None
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        result = fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return min(cpu), min(wall), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[135, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (60 devices, 1 run, the checkers once): checks the bench runs")
    args = parser.parse_args()
    if args.smoke:
        args.devices, args.repeat = [60], 1
    print("| devices | load CPU s (baseline) | generate+validate CPU s | total CPU s | total wall s "
          "| generate/load | external checkers wall s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.devices:
        text = synth_text(n)
        load_cpu, load_wall, inv = best_cpu(lambda text=text: loads_inventory(text, "synth.yml"), args.repeat)
        gen_cpu, gen_wall, files = best_cpu(lambda inv=inv: generate_files(inv, DEFAULT_SETTINGS, "synth.yml"),
                                            args.repeat)
        with tempfile.TemporaryDirectory() as tmp:
            write_files(files, Path(tmp))
            start = time.perf_counter()
            runs = tool_checks(Path(tmp))
            tools_wall = time.perf_counter() - start
            failed = [argv[0] for argv, r in runs if r.returncode != 0]
        assert not failed, f"checkers rejected the output: {failed}"
        print(f"| {n:,} | {load_cpu:.3f} | {gen_cpu:.3f} | {load_cpu + gen_cpu:.3f} | {load_wall + gen_wall:.3f} "
              f"| {gen_cpu / load_cpu:.2f} | {tools_wall:.2f} ({len(runs)} tools) |")


if __name__ == "__main__":
    main()
