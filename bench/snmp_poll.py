#!/usr/bin/env python3
"""Benchmark: one SNMP poll cycle of N devices, wardops' poller vs prometheus-snmp-exporter.

Both poll the same agents in the same run: net-snmp snmpd processes in a lab target namespace with
24 interfaces (lo, the lab veth, 11 veth pairs), answering for every lab address (AnyIP), so N "devices" are
N addresses. Both walk the same columns (IF-MIB ifName, ifAlias, ifType, ifHighSpeed, ifAdminStatus,
ifOperStatus, ifLastChange, ifHC{In,Out}Octets, if{In,Out}{Errors,Discards}) plus sysUpTime and
sysName, v2c, max-repetitions 25, from the prober namespace.

CPU is user+system seconds: of this process (the poller, in-process, plus rendering the exposition
text of the whole snapshot, which snmp_exporter also does per scrape), of the snmp_exporter process
(/proc/PID/stat), and of the agents. The poller is measured cold (first round: static columns too)
and warm (statuses and counters only); it re-walks static columns every 10th poll, so the amortised
figure is (cold + 9 warm) / 10.

Run as root:  .venv/bin/python -m bench.snmp_poll --devices 100 1000
              .venv/bin/python -m bench.snmp_poll --smoke   # 5 devices, 1 agent, 1 round: seconds
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import free_port, proc_cpu, stop_on_sigterm
from exporter.netns import LoopThread, enter_netns
from exporter.snmp import SnmpPoller
from exporter.snmp.oids import DYNAMIC_COLUMNS, STATIC_COLUMNS
from exporter.snmp.render import round_text
from inventory.model import Device, SnmpProfile
from inventory.secrets import Secret
from wardops.lab.netns import Lab
from wardops.lab.snmpagents import V3User, add_veth_interfaces, start_snmpd

COMMUNITY = "bench-community"
BASE_PORT = 1161


def tree_cpu(pids: list[int]) -> float:
    return sum(proc_cpu(p) for p in pids)


def child_pid(pid: int) -> int:
    """`ip netns exec` execs, so the Popen pid is the program itself; keep this as a guard."""
    return pid


def dotted(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


def snmp_exporter_config(max_rep: int, timeout: float) -> str:
    """An if_mib-equivalent module for snmp_exporter 0.21 (Debian ships none): same columns."""
    lookups = [
        {"labels": ["ifIndex"], "labelname": "ifName", "oid": "1.3.6.1.2.1.31.1.1.1.1", "type": "DisplayString"},
        {"labels": ["ifIndex"], "labelname": "ifAlias", "oid": "1.3.6.1.2.1.31.1.1.1.18", "type": "DisplayString"},
    ]
    idx = [{"labelname": "ifIndex", "type": "gauge"}]
    metrics = [
        {"name": "sysUpTime", "oid": "1.3.6.1.2.1.1.3", "type": "gauge"},
        {"name": "sysName", "oid": "1.3.6.1.2.1.1.5", "type": "DisplayString"},
    ]
    types = {"ifType": "gauge", "ifHighSpeed": "gauge", "ifAdminStatus": "gauge", "ifOperStatus": "gauge",
             "ifLastChange": "gauge"}
    for col in STATIC_COLUMNS + DYNAMIC_COLUMNS:
        if col.name in ("ifName", "ifAlias"):
            continue
        metrics.append({"name": col.name, "oid": dotted(col.oid), "type": types.get(col.name, "counter"),
                        "indexes": idx, "lookups": lookups})
    module = {
        "walk": [dotted(c.oid) for c in STATIC_COLUMNS + DYNAMIC_COLUMNS],
        "get": ["1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0"],
        "metrics": metrics,
        "version": 2,
        "max_repetitions": max_rep,
        "retries": 1,
        "timeout": f"{timeout}s",
        "auth": {"community": COMMUNITY},
    }
    return json.dumps({"if_mib": module}, indent=1)  # JSON is YAML


def device_ips(n: int) -> list[str]:
    return [f"198.18.{1 + i // 250}.{1 + i % 250}" for i in range(n)]


async def lag_monitor(stop: asyncio.Event, out: list[float], period: float = 0.005) -> None:
    """Largest delay of a 5 ms timer on the polling loop: how long the poller can hold up other work
    on the same loop (the exporter's ICMP rounds)."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(period)
        out.append(loop.time() - t - period)


async def poll_with_lag(poller) -> tuple[object, list[float]]:
    stop, lags = asyncio.Event(), []
    monitor = asyncio.create_task(lag_monitor(stop, lags))
    snap = await poller.poll_round()
    stop.set()
    await monitor
    return snap, lags


def render(snapshot) -> bytes:
    """The round as /metrics serves it (the exporter's one SNMP renderer)."""
    return round_text(snapshot, (s.device for s in snapshot.devices), {})


def scrape_all(pool, port: int, targets: list[str]) -> tuple[int, int]:
    """Scrape every target once (64 in flight); returns (targets with snmp success, total bytes)."""
    def one(target):
        url = f"http://127.0.0.1:{port}/snmp?module=if_mib&target={target}"
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - loopback in the prober ns
            body = resp.read()
        return (b"\nifHCInOctets{" in body), len(body)
    ok = size = 0
    for good, n in pool.map(one, targets):
        ok += good
        size += n
    return ok, size


def main() -> int:
    stop_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--agents", type=int, default=4, help="snmpd processes (ports 1161..)")
    ap.add_argument("--rounds", type=int, default=3, help="warm rounds per size")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--max-repetitions", type=int, default=25)
    ap.add_argument("--pysnmp", type=int, default=100, help="also poll this many devices over v3 (pysnmp path)")
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes (5 devices, 1 agent, 1 warm round, 2 v3 devices): checks the bench runs")
    args = ap.parse_args()
    if args.smoke:
        args.devices, args.agents, args.rounds, args.pysnmp = [5], 1, 1, 2
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    results: dict = {"devices": {}, "agents": args.agents, "interfaces": 24}
    lab = Lab(f"sb{os.getpid() % 100000}")
    agents = []
    exporter = None
    loop = None
    work = Path(tempfile.mkdtemp(prefix="wardops-snmpbench-"))
    try:
        lab.create()
        add_veth_interfaces(lab.target_ns, 11)  # + lo + the lab veth = 24 interfaces
        v3 = V3User("bench", "SHA", "bench-auth-key", "AES", "bench-priv-key")
        for k in range(args.agents):
            agents.append(start_snmpd([f"udp:0.0.0.0:{BASE_PORT + k}"], netns=lab.target_ns, community=COMMUNITY,
                                      v3_users=[v3], ready=("198.18.1.1", BASE_PORT + k)))
        agent_pids = [a.pid for a in agents]
        environ = {"BENCH_COMMUNITY": COMMUNITY, "BENCH_AUTH": v3.auth_key, "BENCH_PRIV": v3.priv_key}
        profiles = {f"a{k}": SnmpProfile(f"a{k}", "2c", community=Secret("env", "BENCH_COMMUNITY"),
                                         port=BASE_PORT + k, timeout=5.0, retries=1,
                                         max_repetitions=args.max_repetitions) for k in range(args.agents)}
        profiles.update({f"v3-{k}": SnmpProfile(
            f"v3-{k}", "3", username="bench", auth_protocol="SHA", auth_key=Secret("env", "BENCH_AUTH"),
            priv_protocol="AES", priv_key=Secret("env", "BENCH_PRIV"), port=BASE_PORT + k, timeout=5.0,
            max_repetitions=args.max_repetitions) for k in range(args.agents)})
        (work / "snmp.yml").write_text(snmp_exporter_config(args.max_repetitions, 5.0))
        web = free_port()
        exporter = subprocess.Popen(lab.exec_argv(lab.probe_ns, [
            "/usr/bin/prometheus-snmp-exporter", f"--config.file={work / 'snmp.yml'}",
            f"--web.listen-address=127.0.0.1:{web}", "--log.level=error"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        inside: list = []  # keep the context managers alive: collecting one would leave the namespace

        def enter():
            cm = enter_netns(lab.probe_ns)
            cm.__enter__()
            inside.append(cm)

        pool = concurrent.futures.ThreadPoolExecutor(args.concurrency, initializer=enter)
        for _ in range(100):
            try:
                pool.submit(lambda: urllib.request.urlopen(f"http://127.0.0.1:{web}/", timeout=1).read()).result()
                break
            except Exception:
                time.sleep(0.1)
        loop = LoopThread(lab.probe_ns, name="snmp-bench").start()  # as the exporter polls
        for n in args.devices:
            ips = device_ips(n)
            devices = [Device(f"d{i}", ip, region="R", branch=f"B{i // 10}", role="router",
                              snmp=f"a{i % args.agents}") for i, ip in enumerate(ips)]
            targets = [f"{d.ip}:{BASE_PORT + i % args.agents}" for i, d in enumerate(devices)]
            res: dict = {}
            # --- wardops poller -----------------------------------------------------------------
            poller = SnmpPoller(devices, profiles, concurrency=args.concurrency, interval=60, environ=environ)
            a0, c0, w0 = tree_cpu(agent_pids), time.process_time(), time.monotonic()
            snap, cold_lag = loop.run(poll_with_lag(poller), 600)
            body = render(snap)
            cold = (time.process_time() - c0, time.monotonic() - w0, tree_cpu(agent_pids) - a0)
            up = sum(s.up for s in snap.devices)
            rows = sum(len(s.interfaces) for s in snap.devices)
            warm = []
            render_cpu, lags = [], list(cold_lag)
            for _ in range(args.rounds):
                a0, c0, w0 = tree_cpu(agent_pids), time.process_time(), time.monotonic()
                snap, lag = loop.run(poll_with_lag(poller), 600)
                lags.extend(lag)
                r0 = time.process_time()
                body = render(snap)
                render_cpu.append(time.process_time() - r0)
                warm.append((time.process_time() - c0, time.monotonic() - w0, tree_cpu(agent_pids) - a0))
                up = min(up, sum(s.up for s in snap.devices))
            loop.call(poller.close, 60)
            w_cpu = sum(w[0] for w in warm) / len(warm)
            res["wardops"] = {
                "up": up, "interfaces": rows, "exposition_bytes": len(body),
                "cold_cpu_s": round(cold[0], 3), "cold_wall_s": round(cold[1], 3),
                "warm_cpu_s": round(w_cpu, 3), "warm_wall_s": round(sum(w[1] for w in warm) / len(warm), 3),
                "amortised_cpu_per_device_ms": round((cold[0] + 9 * w_cpu) / 10 / n * 1000, 3),
                "warm_cpu_per_device_ms": round(w_cpu / n * 1000, 3),
                "of_which_render_per_device_ms": round(sum(render_cpu) / len(render_cpu) / n * 1000, 3),
                "cold_cpu_per_device_ms": round(cold[0] / n * 1000, 3),
                "agent_cpu_per_device_ms_warm": round(sum(w[2] for w in warm) / len(warm) / n * 1000, 3),
                "agent_cpu_per_device_ms_cold": round(cold[2] / n * 1000, 3),
                # includes the OS descheduling this process on a shared machine
                "loop_lag_ms_max": round(max(lags) * 1000, 1),
                "loop_lag_ms_p99": round(sorted(lags)[int(len(lags) * 0.99)] * 1000, 1),
            }
            # --- snmp_exporter ------------------------------------------------------------------
            ex = []
            ok = 0
            for _ in range(args.rounds):
                a0, e0, w0 = tree_cpu(agent_pids), proc_cpu(exporter.pid), time.monotonic()
                ok, size = scrape_all(pool, web, targets)
                ex.append((proc_cpu(exporter.pid) - e0, time.monotonic() - w0, tree_cpu(agent_pids) - a0))
            e_cpu = sum(e[0] for e in ex) / len(ex)
            res["snmp_exporter"] = {
                "up": ok, "exposition_bytes": size, "cpu_s": round(e_cpu, 3),
                "wall_s": round(sum(e[1] for e in ex) / len(ex), 3),
                "cpu_per_device_ms": round(e_cpu / n * 1000, 3),
                "agent_cpu_per_device_ms": round(sum(e[2] for e in ex) / len(ex) / n * 1000, 3),
            }
            res["ratio_amortised"] = round(res["wardops"]["amortised_cpu_per_device_ms"]
                                           / max(1e-9, res["snmp_exporter"]["cpu_per_device_ms"]), 2)
            res["ratio_cold"] = round(res["wardops"]["cold_cpu_per_device_ms"]
                                      / max(1e-9, res["snmp_exporter"]["cpu_per_device_ms"]), 2)
            res["core_share_at_60s"] = round((cold[0] + 9 * w_cpu) / 10 / 60, 3)
            results["devices"][n] = res
            print(json.dumps({n: res}, indent=1), flush=True)
        if args.pysnmp:
            n = args.pysnmp
            devices = [Device(f"v{i}", ip, region="R", branch="B", snmp=f"v3-{i % args.agents}")
                       for i, ip in enumerate(device_ips(n))]
            poller = SnmpPoller(devices, profiles, concurrency=args.concurrency, environ=environ)
            loop.run(poller.poll_round(), 600)  # engine discovery, key localisation
            c0, w0 = time.process_time(), time.monotonic()
            snap = loop.run(poller.poll_round(), 600)
            cpu = time.process_time() - c0
            loop.call(poller.close, 60)
            results["pysnmp_v3_authpriv"] = {"devices": n, "up": sum(s.up for s in snap.devices),
                                             "warm_cpu_per_device_ms": round(cpu / n * 1000, 3),
                                             "warm_wall_s": round(time.monotonic() - w0, 3)}
            print(json.dumps({"pysnmp_v3_authpriv": results["pysnmp_v3_authpriv"]}, indent=1), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
        return 0
    finally:
        if loop:
            loop.stop()
        if exporter and exporter.poll() is None:
            exporter.terminate()
            exporter.wait(10)
        for a in agents:
            a.stop()
        lab.destroy()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    sys.exit(main())
