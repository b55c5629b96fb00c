"""`wardops demo`: the whole product on one machine, and an ISP outage paging within seconds.

Builds the namespace lab for the inventory, generates rules/routing/dashboards/scrape config,
starts the stack, the inventory service and the exporter (probing from inside the lab), shows
where to look, then takes one ISP uplink dark, waits for the critical IspLinkDown page at the
webhook receiver, restores it and waits for the resolution. Runs until Ctrl-C (or exits after
the outage with --once); everything it started is stopped and the lab removed on the way out.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from inventory.errors import InventoryError
from wardops.stack.process import StackError
from wardops.stack.stack import Ports, ephemeral_ports, free_ports
from wardops.stack.testbed import Testbed, TestbedSettings

DEFAULT_INVENTORY = "examples/inventory.yml"


def configure(parser) -> None:
    parser.add_argument("--inventory", default=DEFAULT_INVENTORY, help="inventory file (default %(default)s)")
    parser.add_argument("--dir", type=Path, default=Path(".wardops/demo"),
                        help="working directory: generated configs, data, logs (default %(default)s)")
    parser.add_argument("--lab-name", default="wddemo", help="namespace lab name, <= 8 chars (default %(default)s)")
    parser.add_argument("--once", action="store_true", help="exit after the outage demonstration")
    parser.add_argument("--free-ports", action="store_true",
                        help="use free ephemeral ports instead of the defaults (8428, 9093, ...)")
    parser.add_argument("--alert-timeout", type=float, default=90.0,
                        help="seconds to wait for the page and for its resolution (default %(default)s)")
    parser.set_defaults(func=run)


def _now() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S UTC")


def _terminate(*_args) -> None:
    raise KeyboardInterrupt


def run(args, trees: dict | None = None, out=None) -> int:
    def say(msg: str = "") -> None:
        print(msg, file=out, flush=True)

    if os.geteuid() != 0:
        say("wardops demo: needs root (it builds a network lab from namespaces); run it as root")
        return 2
    if args.free_ports:
        ports = ephemeral_ports()
        exporter_port, inventory_port = free_ports(2)
    else:
        ports, exporter_port, inventory_port = Ports(), 10118, 10119
    try:
        testbed = Testbed(TestbedSettings(workdir=args.dir, inventory=Path(args.inventory),
                                          lab_name=args.lab_name, ports=ports, exporter_port=exporter_port,
                                          inventory_port=inventory_port, trees=trees or {}), log=say)
    except InventoryError as exc:
        say(f"wardops demo: invalid inventory:\n{exc}")
        return 1
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        testbed.start()
        return _demo(testbed, args, say)
    except KeyboardInterrupt:
        say("\ndemo: stopping")
        return 0
    except StackError as exc:
        say(f"wardops demo: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the clean-up short
        testbed.stop()
        signal.signal(signal.SIGTERM, previous)
        say("demo: lab removed, stack stopped")


def _demo(tb: Testbed, args, say) -> int:
    if "exporter" in tb.skipped:
        say(f"demo: {tb.skipped['exporter']} — no outage to demonstrate")
        _where_to_look(tb, say)
        return 0 if args.once else _wait_forever(tb, say)
    say(f"demo: waiting for the first scrapes of {len(tb.inventory.enabled_devices())} devices ...")
    tb.wait_ingested(timeout=args.alert_timeout)
    _where_to_look(tb, say)
    ok = _isp_outage(tb, args.alert_timeout, say)
    if args.once:
        return 0 if ok else 1
    return _wait_forever(tb, say)


def _where_to_look(tb: Testbed, say) -> None:
    urls = tb.stack.urls()
    say("")
    say("Where to look:")
    say(f"  vmui (query wardops_icmp_up)  {urls['vmui']}")
    say(f"  Alertmanager UI               {urls['alertmanager']}")
    say(f"  vmalert (rules, alerts)       {urls['vmalert']}")
    say(f"  vmagent targets               {urls['vmagent targets']}")
    say(f"  exporter metrics              {tb.exporter_url}/metrics")
    if "inventory-service" in tb.daemons:
        say(f"  inventory service (HTTP SD)   {tb.inventory_url}/api/v1/sd")
    if tb.generated is not None:
        say(f"  Grafana dashboards to import  {tb.generated / 'dashboards'}/*.json "
            f"(data source: Prometheus type at {urls['victoria-metrics']})")
    say(f"  notifications received        {tb.workdir / 'notifications.jsonl'}")
    say(f"  take devices down yourself    wardops lab --name {tb.s.lab_name} --inventory {tb.s.inventory} "
        f"down DEVICE")
    for name, why in tb.skipped.items():
        say(f"  (skipped {name}: {why})")
    say("")


def pick_isp(tb: Testbed):
    """An ISP uplink whose branch has another one, so the demo shows IspLinkDown, not BranchDown."""
    isps = tb.devices(role="isp")
    for d in isps:
        if sum(1 for o in isps if o.branch == d.branch) > 1:
            return d
    return isps[0] if isps else None


def _isp_outage(tb: Testbed, timeout: float, say) -> bool:
    isp = pick_isp(tb)
    if isp is None:
        say("demo: the inventory has no ISP uplink; skipping the outage demonstration")
        return True
    say(f"demo: {_now()} taking ISP uplink {isp.name} ({isp.ip}, {isp.isp}, {isp.branch}) dark ...")
    since = time.time()
    tb.lab.down([isp.ip])
    try:
        page = tb.wait_alert("IspLinkDown", timeout, since=since, device=isp.name)
    finally:
        tb.lab.up([isp.ip])
    if page is None:
        say(f"demo: no IspLinkDown notification within {timeout:.0f} s — see {tb.stack.dir / 'log'}")
        return False
    say(f"demo: {_now()} PAGE  IspLinkDown [{page.labels.get('severity')}] {page.annotations.get('summary', '')}")
    say(f"demo:   {page.received_ts - since:.1f} s from the uplink going dark to the notification")
    restored = time.time()
    say(f"demo: {_now()} uplink restored, waiting for the resolution ...")
    resolved = tb.wait_alert("IspLinkDown", timeout, since=restored, status="resolved", device=isp.name)
    if resolved is None:
        say(f"demo: no resolved notification within {timeout:.0f} s")
        return False
    say(f"demo: {_now()} RESOLVED IspLinkDown {isp.name} ({resolved.received_ts - restored:.1f} s after restore)")
    return True


def _wait_forever(tb: Testbed, say) -> int:
    say("demo: running; try `wardops lab ... down DEVICE` in another shell. Ctrl-C stops everything.")
    seen = len(tb.webhook.records())
    stop = threading.Event()
    while not stop.wait(1.0):
        records = tb.webhook.records()
        for r in records[seen:]:
            for a in r["notification"].get("alerts", []):
                say(f"demo: {_now()} {a['status'].upper():<8} {a['labels'].get('alertname')} "
                    f"{a['labels'].get('device') or a['labels'].get('branch') or ''}")
        seen = len(records)
    return 0
