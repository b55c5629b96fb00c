"""Notifications per outage and page latency under each single failure: HA stack vs single stack.

    sudo .venv/bin/python -m bench.ha [--devices 120] [--trials 2] [--json FILE]
    sudo .venv/bin/python -m bench.ha --smoke   # HA stack only, 20 devices, one trial with vmalert killed

Both stacks run in the same invocation, one after the other, on the same synthetic inventory (two
ISP uplinks per branch) probed from two probe sites of a namespace lab. A trial takes one ISP uplink
dark and SIGKILLs one member at once ("none": nothing killed), waits for the IspLinkDown page,
restarts the member RESTART_AFTER seconds after the kill (on the single stack the page can only come
after that), brings the uplink back once the page is out and the restarted member has rejoined its
chain (BACK_IN_CHAIN later), waits for the resolve and a quiet period, then counts the notifications
about that uplink: an outage must give exactly one firing and one resolved (notifications per outage
1.00). Every trial uses an uplink of its own (an uplink reused within 10 min would count as flapping).

One more row, "alertmanager, back at the resolve", is reported apart and not held to 1.00: the
sending Alertmanager is restarted at the moment the uplink comes back. Alertmanager 0.25 names a
(re)started member after its start time, so it is the last in the cluster and waits the peer
timeout (5 s) before sending what it flushed; when the peer sends the resolve inside that wait, the
restarted member still sends its older firing (then the peer a second resolve). Measured: 3 of 3
such runs. Odds for an alert active across an Alertmanager restart that resolves at a random time:
about (peer timeout)^2 / (2 x group_interval^2) = 5^2 / (2 x 10^2) = 1 in 8 (docs/stack.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import stop_on_sigterm
from bench.detection_latency import summary
from inventory.dump import dump_yaml
from inventory.synth import synth_inventory
from wardops.stack.ha import wait_cluster
from wardops.stack.ha_testbed import HaTestbed
from wardops.stack.stack import ephemeral_ports, free_ports
from wardops.stack.testbed import Testbed, TestbedSettings

VICTIMS = ("none", "alertmanager", "vmalert", "victoria-metrics", "vmagent", "exporter")
AT_RESOLVE = "alertmanager, back at the resolve"  # the corner row (module docstring)
# Past the HA stack's slowest page with one member lost (the sending Alertmanager: its peer's 5 s
# peer timeout on top of ~4 s), so a restart never helps the HA stack; the single stack waits for it.
RESTART_AFTER = 20.0
PAGE_TIMEOUT = 90.0
# A duplicate would come from the second Alertmanager (peer timeout 5 s) or the next group_interval
# tick (critical: 10 s): wait past both.
QUIET = 15.0
# After a restart, before the uplink comes back: the member's first evaluation, scrape or flush
# (5 s intervals) and, for an Alertmanager, its peer timeout (5 s) are behind it.
BACK_IN_CHAIN = 10.0


def victim_daemon(tb: Testbed, victim: str):
    if victim == AT_RESOLVE:
        victim = "alertmanager"
    if victim == "alertmanager" and isinstance(tb, HaTestbed):
        return tb.stack.daemon(tb.first_alertmanager())  # the member that would send
    return tb.daemons.get(victim) or tb.stack.daemon(victim)


def trial(tb: Testbed, isp, victim: str) -> dict:
    daemon = None if victim == "none" else victim_daemon(tb, victim)
    since = time.time()
    tb.lab.down([isp.ip])
    try:
        if daemon is not None:
            daemon.kill()
        # With a member down, wait for the page only until the restart is due: the single stack
        # cannot page before it (waiting PAGE_TIMEOUT first put its restart at 90 s, not 20 s).
        page = tb.wait_alert("IspLinkDown", RESTART_AFTER if daemon else PAGE_TIMEOUT, since=since,
                             device=isp.name)
        if daemon is not None:
            time.sleep(max(0.0, since + RESTART_AFTER - time.time()))
            daemon.start()
            daemon.wait_healthy(60)
        if page is None:  # the single stack pages once the member is back
            page = tb.wait_alert("IspLinkDown", PAGE_TIMEOUT, since=since, device=isp.name)
        if daemon is not None and victim != AT_RESOLVE:
            if victim == "alertmanager" and isinstance(tb, HaTestbed):
                wait_cluster([f"http://{tb.s.host}:{tb.s.ports.of('alertmanager', n)}" for n in (1, 2)], 60)
            time.sleep(BACK_IN_CHAIN)
    finally:
        if daemon is not None and daemon.pid() is None:
            daemon.start()
            daemon.wait_healthy(60)
        tb.lab.up([isp.ip])
    restored = time.time()
    resolved = tb.wait_alert("IspLinkDown", PAGE_TIMEOUT, since=restored, status="resolved", device=isp.name)
    time.sleep(QUIET)
    got = [a for a in tb.alerts(since) if a.name == "IspLinkDown" and a.labels.get("device") == isp.name]
    sent = [a.status for a in got]
    return {"victim": victim, "device": isp.name, "latency": round(page.received_ts - since, 1) if page else None,
            "firing": sent.count("firing"), "resolved": sent.count("resolved"), "resolve_seen": resolved is not None,
            # every notification: seconds after the uplink went dark, status, the Alertmanager that sent it
            "sent": [(round(a.received_ts - since, 1), a.status, a.sender) for a in got]}


def run_stack(kind: str, inv_path: Path, tmp: Path, uplinks: list[str], victims: tuple[str, ...],
              trials: int, settle: float) -> list[dict]:
    e1, e2, inventory_port = free_ports(3)
    settings = TestbedSettings(workdir=tmp / kind, inventory=inv_path, lab_name=f"wh{kind[0]}{os.getpid() % 10000}",
                               ports=ephemeral_ports(), exporter_port=e1, site_exporter_ports=(e2,),
                               inventory_port=inventory_port, snmp=False)
    tb = HaTestbed(settings, log=lambda _m: None) if kind == "ha" else Testbed(settings, log=lambda _m: None)
    out = []
    with tb:
        if kind == "ha":
            tb.wait_ingested_everywhere(timeout=180)
        else:
            tb.wait_ingested(timeout=180)
        time.sleep(settle)  # the site exporters started seconds apart: let the consensus' recovery holds pass
        devices = iter(uplinks)
        for _ in range(trials):
            for victim in victims:
                name = next(devices)  # an uplink of its own per trial
                isp = next(d for d in tb.devices(role="isp") if d.name == name)
                result = trial(tb, isp, victim)
                print(f"{kind}: {json.dumps(result)}", flush=True)
                out.append(result)
    return out


def table(results: dict[str, list[dict]], victims: tuple[str, ...]) -> list[str]:
    lines = ["| member killed | stack | outages | notifications per outage (firing/resolved) | page p50 s | page max s |",
             "|---|---|---|---|---|---|"]
    for victim in victims:
        for kind, rows in results.items():
            rows = [r for r in rows if r["victim"] == victim]
            if not rows:
                continue
            lat = [r["latency"] for r in rows if r["latency"] is not None]
            firing = sum(r["firing"] for r in rows) / len(rows)
            resolved = sum(r["resolved"] for r in rows) / len(rows)
            s = summary(lat) if lat else None
            lines.append(f"| {victim} | {kind} | {len(rows)} | {firing:.2f} / {resolved:.2f} | "
                         f"{s['p50'] if s else '-'} | {s['max'] if s else 'no page'} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=120)
    parser.add_argument("--trials", type=int, default=2, help="per member killed and per stack")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--smoke", action="store_true",
                        help="HA stack only, 20 devices, one trial with vmalert killed: checks the bench runs")
    args = parser.parse_args(argv)
    stacks, victims, settle = ("ha", "single"), (*VICTIMS, AT_RESOLVE), 30.0
    if args.smoke:
        args.devices, args.trials, stacks, victims, settle = 20, 1, ("ha",), ("vmalert",), 10.0
    if os.geteuid() != 0:
        print("ha: needs root (network namespaces)", file=sys.stderr)
        return 2
    inv = synth_inventory(args.devices, isp_share=0.2, seed=args.seed)
    uplinks = [d.name for d in inv.devices if d.role == "isp"]
    if len(uplinks) < args.trials * len(victims):
        print(f"need >= {args.trials * len(victims)} ISP uplinks, the inventory has {len(uplinks)}: raise --devices",
              file=sys.stderr)
        return 2
    results: dict[str, list[dict]] = {}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="wardops-bench-ha-") as tmp:
        path = Path(tmp) / "inventory.yml"
        path.write_text(dump_yaml(inv))
        for kind in stacks:
            results[kind] = run_stack(kind, path, Path(tmp), uplinks, victims, args.trials, settle)
    lines = table(results, victims)
    print("\n".join(lines))
    held = [r for r in results["ha"] if r["victim"] != AT_RESOLVE]  # the corner row is reported, not held
    exact = [r for r in held if (r["firing"], r["resolved"]) == (1, 1)]
    summary_line = f"HA: {len(exact)} of {len(held)} outages gave exactly one page and one resolve"
    print(summary_line)
    if args.json:
        args.json.write_text(json.dumps({"devices": args.devices, "trials": args.trials, "restart_after_s": RESTART_AFTER,
                                         "results": results, "table": lines, "wall_seconds": round(time.time() - started)},
                                        indent=2) + "\n")
    return 0 if len(exact) == len(held) else 1


if __name__ == "__main__":
    sys.exit(main())
