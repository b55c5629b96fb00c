"""`wardops snmp poll INVENTORY [--device NAME]... [--netns NS]`: poll devices once, print metrics.

For operators checking a profile against a device (the same poll `/probe?module=snmp` does) and
for the demo. Secrets resolve from the environment/files named in the inventory.
"""

from __future__ import annotations

import argparse
import sys
import time

from exporter.netns import run_in_netns

# The CLI waits for a slow device longer than a scraper would (probe.timeout is 5 s by default).
PROBE_DEADLINE = 60.0


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action")
    poll = sub.add_parser("poll", help="poll SNMP devices of an inventory once and print their metrics")
    poll.add_argument("inventory", help="inventory YAML file")
    poll.add_argument("--device", action="append", default=[], metavar="NAME",
                      help="only this device (repeatable); with exactly one, answer like /probe")
    poll.add_argument("--netns", help="poll from inside this network namespace (e.g. the lab's prober)")
    poll.add_argument("--concurrency", type=int, default=64)
    poll.set_defaults(func=run_poll)


def run_poll(args: argparse.Namespace) -> int:
    from exporter.probing import ProbeTarget, render_probe
    from exporter.snmp.poller import SnmpPoller
    from exporter.snmp.probe import SnmpProber
    from exporter.snmp.render import round_text
    from inventory import InventoryError, load_inventory

    try:
        inv = load_inventory(args.inventory)
    except InventoryError as exc:
        print(exc, file=sys.stderr)
        return 1
    devices = [d for d in inv.enabled_devices() if d.snmp]
    if args.device:
        known = {d.name: d for d in devices}
        missing = [n for n in args.device if n not in known]
        if missing:
            print(f"no enabled SNMP device named {', '.join(missing)} in {args.inventory}", file=sys.stderr)
            return 1
        devices = [known[n] for n in args.device]

    async def poll() -> bytes:
        poller = SnmpPoller(devices, inv.snmp_profiles, concurrency=args.concurrency)
        try:
            if len(devices) == 1 and args.device:  # the /probe?module=snmp answer
                target = ProbeTarget(devices[0].ip, devices[0])
                started = time.monotonic()
                result = await SnmpProber(poller)(target, {}, started + PROBE_DEADLINE)
                return render_probe(target, result, time.monotonic() - started)
            return round_text(await poller.poll_round(), poller.devices, poller.profiles)
        finally:
            poller.close()

    try:  # sockets are created on the loop thread, inside the namespace
        text = run_in_netns(args.netns, poll, name="snmp-poll")
    except Exception as exc:  # reported without a traceback full of internals
        print(f"snmp poll failed: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text.decode())
    return 0
