"""Inventory load speed: strict load (with line numbers and validation) vs plain PyYAML in the same run.

    .venv/bin/python -m bench.inventory_load [--devices 10000] [--repeat 7] [--smoke]

Reports the best of N runs (CPU seconds of this process) so other load on the machine matters less.
Baseline: yaml.load(CSafeLoader) of the same text, which does no validation and keeps no lines.
"""

from __future__ import annotations

import argparse
import time

import yaml

from inventory import loads_inventory
from inventory.dump import dump_yaml
from inventory.synth import synth_inventory


def best_cpu(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (200 devices, 1 run): checks the bench runs")
    args = parser.parse_args()
    if args.smoke:
        args.devices, args.repeat = [200], 1
    print("| devices | YAML size | wardops strict load (CPU s) | PyYAML CSafeLoader, no checks (CPU s) | ratio |")
    print("|---:|---:|---:|---:|---:|")
    for n in args.devices:
        text = dump_yaml(synth_inventory(n, 0.1, seed=1))
        ours = best_cpu(lambda text=text: loads_inventory(text, "bench.yml"), args.repeat)
        base = best_cpu(lambda text=text: yaml.load(text, Loader=yaml.CSafeLoader), args.repeat)
        print(f"| {n:,} | {len(text) / 1e6:.1f} MB | {ours:.3f} | {base:.3f} | {ours / base:.2f} |")


if __name__ == "__main__":
    main()
