"""The ICMP engine and the whole exporter against real lab hosts (network namespaces, root only)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from exporter.app import Exporter
from exporter.config import loads_config
from exporter.icmp.engine import IcmpEngine
from exporter.icmp.sockets import IcmpSocketError, open_icmp_socket
from exporter.targets import FileSource
from exporter.web import WebServer
from wardops.lab.netns import enter_netns

pytestmark = pytest.mark.lab


def in_ns(ns: str, coro_factory, timeout: float = 60):
    """Run a coroutine on a fresh event loop in a thread inside namespace `ns`."""
    box = {}

    def main():
        try:
            with enter_netns(ns):
                box["value"] = asyncio.run(coro_factory())
        except BaseException as exc:  # re-raised in the test thread
            box["error"] = exc

    t = threading.Thread(target=main)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "lab coroutine did not finish"
    if "error" in box:
        raise box["error"]
    return box["value"]


def v4(base: str, n: int) -> list[str]:
    start = ipaddress.ip_address(base)
    return [str(start + i) for i in range(n)]


def v6(base: str, n: int) -> list[str]:
    start = ipaddress.ip_address(base)
    return [(start + i).compressed for i in range(n)]


@pytest.mark.parametrize("mode", ["unprivileged", "raw"])
def test_engine_finds_exactly_the_down_hosts_v4_and_v6(lab, mode):
    base4 = "198.18.10.1" if mode == "raw" else "198.18.20.1"
    base6 = "2001:2:0:10::1" if mode == "raw" else "2001:2:0:20::1"
    addrs = v4(base4, 400) + v6(base6, 100)
    down = set(addrs[::17]) | {addrs[-1]}
    lab.down(down)
    try:
        async def go():
            engine = IcmpEngine(mode=mode)
            engine.open(asyncio.get_running_loop(), versions=(4, 6), required=(4, 6))
            assert {s.mode for s in engine.sockets.values()} == {mode}
            result = await engine.ping(addrs, packets=2, spacing=0.05, timeout=0.5)
            engine.close()
            return result, engine.counters
        result, counters = in_ns(lab.probe_ns, go)
    finally:
        lab.up(down)
    silent = {a for a, r in zip(addrs, result.rtts, strict=True) if not r}
    assert silent == down
    assert all(len(r) == 2 for a, r in zip(addrs, result.rtts, strict=True) if a not in down)
    assert result.sent == [2] * len(addrs)
    assert all(0 < rtt < 0.5 for r in result.rtts for rtt in r)
    assert counters.send_errors == 0 and counters.receive_drops == 0
    # the round ends as soon as the last reply is in... unless something is down: then after the timeout
    assert 0.5 <= result.duration < 1.5


def test_all_up_round_ends_early_and_two_rounds_overlap(lab):
    a, b = v4("198.18.30.1", 300), v4("198.18.31.1", 300)

    async def go():
        engine = IcmpEngine(mode="unprivileged")
        engine.open(asyncio.get_running_loop(), versions=(4,))
        r1, r2 = await asyncio.gather(engine.ping(a, 3, 0.02, 2.0), engine.ping(b, 1, 0, 2.0))
        engine.close()
        return r1, r2
    r1, r2 = in_ns(lab.probe_ns, go)
    assert all(len(r) == 3 for r in r1.rtts) and all(len(r) == 1 for r in r2.rtts)
    assert r1.duration < 1.0 and r2.duration < 1.0  # no waiting for the 2 s timeout


def test_one_percent_loss_never_fails_a_three_packet_round(lab):
    addrs = v4("198.18.40.1", 1000)
    lab.set_loss(1, addrs)
    try:
        async def go():
            engine = IcmpEngine(mode="unprivileged")
            engine.open(asyncio.get_running_loop(), versions=(4,))
            rounds = [await engine.ping(addrs, 3, 0.05, 0.5) for _ in range(2)]
            engine.close()
            return rounds
        rounds = in_ns(lab.probe_ns, go)
    finally:
        lab.set_loss(0)
    for r in rounds:
        assert all(r.rtts), "a device lost all 3 packets under 1 % loss"
        lost = sum(3 - len(x) for x in r.rtts) / 3000
        assert 0.001 < lost < 0.03  # the loss is real and measured


def test_startup_error_names_sysctl_and_capability(lab):
    lab.unprivileged_ping(False)
    try:
        with pytest.raises(IcmpSocketError) as err:
            in_ns(lab.probe_ns, lambda: _open("unprivileged"))
        assert "net.ipv4.ping_group_range (now '1 0'" in str(err.value)
        code = ("from exporter.icmp.sockets import open_icmp_socket as o\n"
                "try:\n    o(4, 'auto')\nexcept Exception as e:\n    print(e)\n")
        out = subprocess.run(lab.probe_argv(["setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw",
                                             sys.executable, "-c", code]),
                             capture_output=True, text=True, timeout=30).stdout
        assert "ping_group_range" in out and "CAP_NET_RAW" in out
    finally:
        lab.unprivileged_ping(True)


async def _open(mode):
    return open_icmp_socket(4, mode)


# -- the whole exporter: probing inside the lab, web listener in the test's namespace -------------

INVENTORY = """
devices:
  - {name: isp-1, ip: 198.18.50.1, region: north, branch: hq, role: isp, isp: acme}
  - {name: isp-6, ip: "2001:2:0:50::1", region: north, branch: hq, role: isp, isp: beta}
  - {name: rtr-1, ip: 198.18.50.2, region: north, branch: hq, role: router}
  - {name: rtr-6, ip: "2001:2:0:50::2", region: south, branch: b1, role: router}
  - {name: rtr-x, ip: 198.18.50.3, region: south, branch: b1, role: router}
"""


def get(url, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def value(body: str, metric: str, device: str) -> float | None:
    for line in body.splitlines():
        if line.startswith(metric + "{") and f'device="{device}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def wait_value(base, metric, device, want, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value(get(base + "/metrics")[1], metric, device) == want:
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"{metric}{{device={device}}} != {want} after {timeout}s")


@pytest.fixture(scope="module")
def exporter(lab, tmp_path_factory):
    inv = tmp_path_factory.mktemp("inv") / "inventory.yml"
    inv.write_text(INVENTORY)
    # Built-in policies (the detection targets are about them); only /probe CIDRs added.
    cfg = loads_config("probe: {allowed_cidrs: [198.19.0.0/16]}\n")
    exp = Exporter(FileSource(str(inv)), cfg, netns=lab.probe_ns, log=logging.getLogger("test.lab"))
    exp.refresh(force=True)
    exp.start()
    # lifecycle: the tests POST /-/reload (Prometheus-style gate, off by default).
    web = WebServer(exp, "127.0.0.1", 0, lifecycle=True).start()  # host namespace: no lab route to us
    base = f"http://127.0.0.1:{web.port}"
    deadline = time.monotonic() + 15
    while get(base + "/-/ready")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        yield exp, base, inv
    finally:
        web.stop()
        exp.stop()


def test_exporter_in_netns_serves_all_devices(exporter):
    exp, base, _ = exporter
    assert get(base + "/-/ready")[0] == 200
    body = get(base + "/metrics")[1]
    for device in ("isp-1", "isp-6", "rtr-1", "rtr-6", "rtr-x"):
        assert value(body, "wardops_icmp_up", device) == 1, device
    assert value(body, "wardops_icmp_rtt_seconds", "rtr-6") > 0
    assert "wardops_exporter_receive_drops_total{protocol=\"icmp\"} 0" in body


def test_isp_uplink_dark_is_down_within_3s_and_flaps_are_counted(exporter, lab):
    exp, base, _ = exporter
    ip = "198.18.50.1"
    before = value(get(base + "/metrics")[1], "wardops_icmp_status_changes_total", "isp-1")
    dark = time.monotonic()
    lab.down([ip])
    try:
        seen = wait_value(base, "wardops_icmp_up", "isp-1", 0, timeout=5)
        print(f"ISP uplink DOWN {seen - dark:.2f}s after going dark")
        assert seen - dark <= 3.0, f"ISP DOWN after {seen - dark:.2f}s"
    finally:
        lab.up([ip])
        answering = time.monotonic()
    back = wait_value(base, "wardops_icmp_up", "isp-1", 1, timeout=5)
    assert back - answering >= 0.4  # up_after=2 good rounds, 0.5 s apart: never instant
    body = get(base + "/metrics")[1]
    assert value(body, "wardops_icmp_status_changes_total", "isp-1") == before + 2
    assert value(body, "wardops_icmp_up", "isp-6") == 1  # neighbours unaffected


def test_short_blip_never_flips_the_isp_uplink(exporter, lab):
    exp, base, _ = exporter
    ip = "2001:2:0:50::1"
    before = value(get(base + "/metrics")[1], "wardops_icmp_status_changes_total", "isp-6")
    lab.down([ip])
    time.sleep(0.2)  # shorter than the gap between two rounds' last packets: at most one round fails
    lab.up([ip])
    time.sleep(1.5)
    body = get(base + "/metrics")[1]
    assert value(body, "wardops_icmp_status_changes_total", "isp-6") == before
    assert value(body, "wardops_icmp_up", "isp-6") == 1


def test_branch_device_down_within_5s_via_default_policy(exporter, lab):
    exp, base, _ = exporter
    ip = "2001:2:0:50::2"
    dark = time.monotonic()
    lab.down([ip])
    try:
        seen = wait_value(base, "wardops_icmp_up", "rtr-6", 0, timeout=10)
        print(f"branch device DOWN {seen - dark:.2f}s after going dark")
        # 2 failed rounds 1 s apart, each waiting its 0.6 s timeout: never before ~1.6 s, ~2.8 s worst
        assert 1.0 <= seen - dark <= 5.0, f"DOWN after {seen - dark:.2f}s"
        status, body = get(base + "/probe?target=rtr-6&module=icmp")
        assert status == 200 and "probe_success 0" in body and "probe_ip_protocol 6" in body
    finally:
        lab.up([ip])


def test_probe_answers_inventory_and_cidrs_only(exporter):
    exp, base, _ = exporter
    status, body = get(base + "/probe?target=rtr-1&module=icmp")
    assert status == 200 and "probe_success 1" in body
    assert "probe_success 1" in get(base + "/probe?target=198.19.7.7")[1]
    assert get(base + "/probe?target=198.18.99.99")[0] == 403  # lab address, but not in inventory/CIDRs
    assert get(base + "/probe?target=192.0.2.2")[0] == 403


def test_reload_keeps_last_good_and_removal_is_immediate(exporter):
    exp, base, inv = exporter
    inv.write_text("devices: [{name: broken}]\n")
    status, _ = get(base + "/-/reload", "POST")
    assert status == 500
    body = get(base + "/metrics")[1]
    assert "wardops_exporter_inventory_reload_success 0" in body
    assert value(body, "wardops_icmp_up", "rtr-x") == 1
    inv.write_text(INVENTORY.replace('  - {name: rtr-x, ip: 198.18.50.3, region: south, branch: b1, role: router}\n', ""))
    assert get(base + "/-/reload", "POST")[0] == 200
    deadline = time.monotonic() + 1.0  # no round needed: the reload republishes
    while 'device="rtr-x"' in get(base + "/metrics")[1]:
        assert time.monotonic() < deadline, "removed device still exported"
        time.sleep(0.02)
    assert "wardops_exporter_inventory_reload_success 1" in get(base + "/metrics")[1]


def test_source_address_is_used_and_a_foreign_one_is_refused(lab):
    addrs = v4("198.18.60.1", 20) + v6("2001:2:0:60::1", 5)

    async def go():
        engine = IcmpEngine(mode="unprivileged", source_ipv4="192.0.2.1", source_ipv6="2001:db8::1")
        engine.open(asyncio.get_running_loop(), required=(4, 6))
        bound = {v: s.sock.getsockname()[0] for v, s in engine.sockets.items()}
        result = await engine.ping(addrs, 1, 0, 0.5)
        engine.close()
        return bound, result
    bound, result = in_ns(lab.probe_ns, go)
    assert bound == {4: "192.0.2.1", 6: "2001:db8::1"}
    assert all(result.rtts)

    async def foreign():
        IcmpEngine(mode="unprivileged", source_ipv4="192.0.2.77").open(asyncio.get_running_loop())
    with pytest.raises(IcmpSocketError, match=r"source 192\.0\.2\.77"):
        in_ns(lab.probe_ns, foreign)


def test_cli_process_netns_sighup_and_sigterm(lab, tmp_path):
    import os
    import signal
    import socket

    inv = tmp_path / "inv.yml"
    inv.write_text(INVENTORY)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "wardops.cli", "exporter", "--inventory", str(inv),
                             "--netns", lab.probe_ns, "--web.listen-address", f"127.0.0.1:{port}"],
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if get(base + "/-/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        body = get(base + "/metrics")[1]
        assert value(body, "wardops_icmp_up", "isp-1") == 1 and value(body, "wardops_icmp_up", "rtr-6") == 1

        def reload_ts():
            for line in get(base + "/metrics")[1].splitlines():
                if line.startswith("wardops_exporter_inventory_reload_timestamp_seconds "):
                    return float(line.split()[1])
        before = reload_ts()
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while reload_ts() == before:
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stderr.read()
    assert 'msg="icmp sockets open" ipv4="unprivileged(id=' in log and 'msg="stopped"' in log


# -- the branch verdict against real lab hosts ------------------------------------------------------

BRANCH_INVENTORY = """
devices:
  - {name: solo-isp, ip: 198.18.70.1, region: west, branch: solo, role: isp, isp: acme}
  - {name: solo-rtr, ip: 198.18.70.2, region: west, branch: solo, role: router}
  - {name: solo-atm, ip: 198.18.70.3, region: west, branch: solo, role: atm}
  - {name: next-isp, ip: 198.18.71.1, region: west, branch: next, role: isp, isp: beta}
  - {name: next-rtr, ip: 198.18.71.2, region: west, branch: next, role: router}
"""
SOLO = ("solo-isp", "solo-rtr", "solo-atm")


def branch_value(body: str, branch: str) -> float | None:
    for line in body.splitlines():
        if line.startswith("wardops_icmp_branch_up{") and f'branch="{branch}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def watch(base, until, timeout):
    """Scrape every 20 ms until `until(body)`; return (seconds waited, every body seen)."""
    start = time.monotonic()
    bodies = []
    while time.monotonic() - start < timeout:
        body = get(base + "/metrics?module=icmp")[1]
        bodies.append(body)
        if until(body):
            return time.monotonic() - start, bodies
        time.sleep(0.02)
    raise AssertionError(f"condition not met after {timeout}s; last body:\n{bodies[-1][:3000]}")


def test_branch_verdict_single_uplink_dark_then_whole_branch_dark(lab, tmp_path):
    inv = tmp_path / "inventory.yml"
    inv.write_text(BRANCH_INVENTORY)
    exp = Exporter(FileSource(str(inv)), loads_config(""), netns=lab.probe_ns, log=logging.getLogger("test.lab"))
    exp.refresh(force=True)
    exp.start()
    web = WebServer(exp, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{web.port}"
    ips = {"solo-isp": "198.18.70.1", "solo-rtr": "198.18.70.2", "solo-atm": "198.18.70.3"}
    try:
        watch(base, lambda b: branch_value(b, "solo") == 1 and branch_value(b, "next") == 1, 10)
        # 1. the branch's only uplink goes dark while its other devices answer
        lab.down([ips["solo-isp"]])
        took, bodies = watch(base, lambda b: value(b, "wardops_icmp_up", "solo-isp") == 0
                             and branch_value(b, "solo") == 1, 10)  # IspLinkDown, not BranchDown
        print(f"single uplink dark: uplink DOWN with branch_up 1 after {took:.2f}s")
        assert all(branch_value(b, "solo") != 0 for b in bodies)
        assert all(value(bodies[-1], "wardops_icmp_up", d) == 1 for d in ("solo-rtr", "solo-atm"))
        lab.up([ips["solo-isp"]])
        watch(base, lambda b: all(value(b, "wardops_icmp_up", d) == 1 for d in SOLO)
              and branch_value(b, "solo") == 1, 10)
        # 2. the whole branch goes dark
        lab.down(ips.values())
        took, bodies = watch(base, lambda b: branch_value(b, "solo") == 0, 10)
        print(f"whole branch dark: branch_up 0 after {took:.2f}s")
        assert all(value(bodies[-1], "wardops_icmp_up", d) == 0 for d in SOLO)
        # never a scrape claiming the branch answers while its uplink is DOWN (a false IspLinkDown)
        assert not [b for b in bodies if value(b, "wardops_icmp_up", "solo-isp") == 0 and branch_value(b, "solo") == 1]
        assert branch_value(bodies[-1], "next") == 1
        # 3. back: devices UP no later than the branch
        lab.up(ips.values())
        took, bodies = watch(base, lambda b: branch_value(b, "solo") == 1, 10)
        print(f"branch back: branch_up 1 after {took:.2f}s")
        assert all(value(bodies[-1], "wardops_icmp_up", d) == 1 for d in SOLO)
    finally:
        lab.up(ips.values())
        web.stop()
        exp.stop()
