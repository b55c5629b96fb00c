"""The exporter process without sockets: real app, web server, inventory reloads; a fake engine."""

import gzip
import json
import logging
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exporter.app import Exporter
from exporter.config import loads_config
from exporter.icmp.component import IcmpComponent
from exporter.targets import FileSource, HttpSdSource, Shard, TargetError, devices_from_sd
from exporter.web import WebServer
from tests.exporter.icmp.fakes import FakeEngine

CONFIG = """
policies:
  isp: {interval: 100ms, packets: 1, spacing: 0, timeout: 50ms, down_after: 2}
  default: {interval: 200ms, packets: 1, spacing: 0, timeout: 50ms, down_after: 2}
probe: {allowed_cidrs: [198.19.0.0/16]}
inventory: {poll_interval: 200ms}
"""

INVENTORY = """
devices:
  - {name: isp-a, ip: 198.18.0.1, region: north, branch: hq, role: isp, isp: acme}
  - {name: rtr-a, ip: 198.18.0.2, region: north, branch: hq, role: router}
  - {name: rtr-b, ip: 198.18.0.3, region: south, branch: b1, role: router}
  - {name: rtr-off, ip: 198.18.0.9, region: south, branch: b1, role: router, enabled: false}
"""


def get(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def running(tmp_path):
    inv = tmp_path / "inventory.yml"
    inv.write_text(INVENTORY)
    engine = FakeEngine(alive={"198.18.0.1", "198.18.0.2", "198.19.0.5"})
    log = logging.getLogger("test.exporter")
    exp = Exporter(FileSource(str(inv)), loads_config(CONFIG), log=log,
                   factories={"icmp": lambda rt: IcmpComponent(rt, engine=engine)})
    assert exp.refresh(force=True)[0]
    exp.start()
    web = WebServer(exp, "127.0.0.1", 0, lifecycle=True).start()
    base = f"http://127.0.0.1:{web.port}"
    try:
        yield exp, base, inv, engine
    finally:
        web.stop()
        exp.stop()


def test_ready_metrics_and_filters(running):
    exp, base, _, _ = running
    assert get(base + "/-/healthy")[0] == 200
    assert wait_for(lambda: get(base + "/-/ready")[0] == 200)
    assert wait_for(lambda: 'wardops_icmp_up{device="rtr-b"' in get(base + "/metrics")[1])  # DOWN after 2 rounds
    status, body = get(base + "/metrics")
    assert status == 200
    assert 'wardops_icmp_up{device="isp-a",ip="198.18.0.1",role="isp",region="north",branch="hq",isp="acme"} 1' in body
    assert 'wardops_icmp_up{device="rtr-b",ip="198.18.0.3",role="router",region="south",branch="b1"} 0' in body
    assert "rtr-off" not in body  # disabled devices are not probed
    assert "wardops_exporter_inventory_reload_success 1" in body
    assert 'wardops_exporter_rounds_total{protocol="icmp",policy="isp"}' in body
    isp = get(base + "/metrics?role=isp")[1]
    assert "isp-a" in isp and "rtr-a" not in isp and "wardops_exporter_" not in isp
    rest = get(base + "/metrics?exclude_role=isp")[1]
    assert "isp-a" not in rest and "rtr-a" in rest and "wardops_exporter_build_info" in rest
    assert get(base + "/metrics?role=router")[0] == 400
    req = urllib.request.Request(base + "/metrics?role=isp", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        unpacked = gzip.decompress(resp.read()).decode()
    assert "wardops_icmp_up{device=\"isp-a\"" in unpacked and "rtr-a" not in unpacked
    assert exp.exposition.gzip_wanted


def test_module_filter_one_scrape_job_per_protocol(running):
    exp, base, _, _ = running
    assert wait_for(lambda: 'wardops_icmp_up{device="isp-a"' in get(base + "/metrics?module=icmp")[1])
    icmp = get(base + "/metrics?module=icmp")[1]
    assert 'wardops_icmp_up{device="rtr-a"' in icmp and 'wardops_icmp_branch_up{region="north",branch="hq"' in icmp
    assert "wardops_exporter_build_info" in icmp  # self-metrics travel with the fast ICMP job
    snmp = get(base + "/metrics?module=snmp")
    assert snmp[0] == 200 and "wardops_icmp_" not in snmp[1] and "wardops_exporter_" not in snmp[1]
    assert "rtr-a" not in get(base + "/metrics?module=icmp&role=isp")[1]
    assert get(base + "/metrics?module=http")[0] == 400
    # No SNMP series at all, gzip asked (as vmagent does): still a valid gzip stream, or vmagent
    # counts the scrape as failed and ExporterDown pages for an exporter that is fine.
    req = urllib.request.Request(base + "/metrics?module=snmp", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        body = resp.read()
    assert body[:2] == b"\x1f\x8b" and gzip.decompress(body) == b""  # a gzip member, not zero bytes


def test_probe_module_table_and_refusal(running):
    exp, base, _, _ = running
    assert wait_for(exp.ready)
    status, body = get(base + "/probe?target=rtr-a&module=icmp")
    assert status == 200 and "probe_success 1" in body and 'probe_icmp_duration_seconds{phase="rtt"}' in body
    assert "probe_ip_protocol 4" in body
    status, body = get(base + "/probe?target=198.18.0.3")  # by IP; module defaults to icmp
    assert status == 200 and "probe_success 0" in body
    assert get(base + "/probe?target=198.19.0.5")[1].count("probe_success 1") == 1  # allowed CIDR
    status, body = get(base + "/probe?target=10.1.2.3&module=icmp")
    assert status == 403 and "neither an inventory device" in body
    assert get(base + "/probe?target=rtr-off")[0] == 403  # disabled: not a probe target
    assert get(base + "/probe?target=nosuchhost")[0] == 403
    assert get(base + "/probe?target=rtr-a&module=tcp")[0] == 400
    assert get(base + "/probe")[0] == 400


def test_reload_keeps_last_good_then_applies_and_removes(running):
    exp, base, inv, _ = running
    assert wait_for(lambda: "rtr-b" in get(base + "/metrics")[1])
    inv.write_text(INVENTORY.replace("region: south, branch: b1, role: router}", "region: 7}", 1))
    status, body = get(base + "/-/reload", "POST")
    assert status == 500 and "invalid inventory" in body
    body = get(base + "/metrics")[1]
    assert "wardops_exporter_inventory_reload_success 0" in body
    assert 'device="rtr-b"' in body  # last good set still probed and exported
    inv.write_text(INVENTORY.replace("  - {name: rtr-b, ip: 198.18.0.3, region: south, branch: b1, role: router}\n", ""))
    status, body = get(base + "/-/reload", "POST")
    assert status == 200 and "2 devices" in body
    assert wait_for(lambda: 'device="rtr-b"' not in get(base + "/metrics")[1], timeout=2)
    assert "wardops_exporter_inventory_reload_success 1" in get(base + "/metrics")[1]


def test_watch_picks_up_file_changes_and_sighup_request(running):
    exp, base, inv, _ = running
    watcher = threading.Thread(target=exp.watch)
    watcher.start()
    try:
        inv.write_text(INVENTORY + "  - {name: rtr-new, ip: 198.18.0.7, region: north, branch: hq}\n")
        assert wait_for(lambda: "rtr-new" in get(base + "/metrics")[1])
        exp.request_reload()  # what SIGHUP does: a forced reload even if the file did not change
        before = exp.reload_timestamp
        assert wait_for(lambda: exp.reload_timestamp > before)
    finally:
        exp.stop()
        watcher.join(5)


def test_shard_selects_a_stable_share():
    from inventory.synth import synth_inventory

    devs = synth_inventory(200, 0.1, 1, 0.0).devices
    parts = [Shard.parse(f"{i}/3").select(devs) for i in range(3)]
    assert sum(len(p) for p in parts) == 200
    assert set().union(*({d.name for d in p} for p in parts)) == {d.name for d in devs}
    assert all(len(p) > 30 for p in parts)
    # A branch is never split: its uplinks and other devices land on one exporter.
    homes = {}
    for i, p in enumerate(parts):
        for d in p:
            assert homes.setdefault((d.region, d.branch), i) == i, d.name
    with pytest.raises(ValueError):
        Shard.parse("3/3")
    with pytest.raises(ValueError):
        Shard.parse("x")


SD = [
    {"targets": ["198.18.0.1"], "labels": {"device": "isp-a", "ip": "198.18.0.1", "role": "isp", "region": "n",
                                           "branch": "hq", "isp": "acme", "__meta_wardops_snmp_profile": "core",
                                           "__meta_wardops_label_probe_policy": "default"}},
    {"targets": ["2001:2:0:0::5"], "labels": {"device": "rtr-6", "role": "router", "region": "n", "branch": "hq"}},
]


def test_devices_from_sd():
    a, b = devices_from_sd(SD)
    assert (a.name, a.role, a.isp, a.snmp, dict(a.labels)) == ("isp-a", "isp", "acme", "core", {"probe_policy": "default"})
    assert b.ip == "2001:2::5"  # canonical
    with pytest.raises(TargetError) as err:
        devices_from_sd([{"targets": ["x"], "labels": {"device": "a", "region": "r", "branch": "b"}},
                         {"targets": ["198.18.0.1"], "labels": {"device": "b", "role": "king", "region": "r",
                                                                "branch": "b"}},
                         {"targets": ["198.18.0.2"], "labels": {"device": "c"}}])
    msg = str(err.value)
    assert "$[0].targets[0]: 'x' is not an IP address" in msg
    assert "$[1].labels.role: unknown role 'king'" in msg
    assert "$[2].labels: device 'c' lacks region, branch" in msg


def test_http_sd_source_uses_etag_and_keeps_last_good():
    profiles = {"items": [{"name": "core", "version": "2c", "community_env": "WARDOPS_TEST_COMMUNITY"}]}
    state = {"/api/v1/sd": [json.dumps(SD), '"v1"'], "/api/v1/snmp-profiles": [json.dumps(profiles), '"p1"'],
             "requests": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            path = self.path.split("?")[0]
            body, etag = state[path]
            state["requests"].append((path, self.headers.get("If-None-Match")))
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            body = body.encode()
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        src = HttpSdSource(f"http://127.0.0.1:{httpd.server_address[1]}/api/v1/sd?exclude_role=isp")
        exp = Exporter(src, loads_config(""), log=logging.getLogger("test.sd"), components=())
        assert exp.refresh() == (True, "2 devices")
        assert list(exp.inventory.snmp_profiles) == ["core"]
        assert exp.inventory.snmp_profiles["core"].community.ref == "WARDOPS_TEST_COMMUNITY"
        assert exp.refresh() == (True, "unchanged")  # 304 for both
        assert state["requests"][-2:] == [("/api/v1/sd", '"v1"'), ("/api/v1/snmp-profiles", '"p1"')]
        # only the profiles changed: a new inventory with the same devices and the new profiles
        state["/api/v1/snmp-profiles"] = [json.dumps({"items": []}), '"p2"']
        assert exp.refresh() == (True, "2 devices") and dict(exp.inventory.snmp_profiles) == {}
        state["/api/v1/sd"] = ["{not json", '"v2"']
        ok, msg = exp.refresh()
        assert not ok and "not JSON" in msg and exp.reload_success == 0
        assert [d.name for d in exp.devices] == ["isp-a", "rtr-6"]  # last good set kept
        state["/api/v1/sd"] = [json.dumps(SD), '"v1"']  # the service is back, unchanged: 304 for both
        assert exp.refresh() == (True, "unchanged") and exp.reload_success == 1
        state["/api/v1/sd"] = [json.dumps(SD[:1]), '"v3"']
        state["/api/v1/snmp-profiles"] = [json.dumps({"items": [{"name": "core", "version": "2c",
                                                                  "community": "inline-secret"}]}), '"p3"']
        ok, msg = exp.refresh()  # invalid profiles: the whole set is kept, devices too
        assert not ok and "invalid snmp profiles" in msg and "inline-secret" not in msg
        assert [d.name for d in exp.devices] == ["isp-a", "rtr-6"] and exp.reload_success == 0
        state["/api/v1/snmp-profiles"] = [json.dumps(profiles), '"p4"']
        assert exp.refresh() == (True, "1 devices") and list(exp.inventory.snmp_profiles) == ["core"]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_file_source_reload_gauge_follows_the_file(tmp_path):
    """Broken file: 0 on every poll until it is fixed (an unchanged broken file is not 'unchanged')."""
    inv = tmp_path / "inv.yml"
    inv.write_text("devices: [{name: a, ip: 198.18.0.1, region: r, branch: b}]\n")
    # max_drop_share 1: replacing the only device is no shrink to hold here (tests/exporter/test_targets_guard.py)
    exp = Exporter(FileSource(str(inv)), loads_config("inventory: {max_drop_share: 1}"),
                   log=logging.getLogger("test.file"), components=())
    assert exp.refresh() == (True, "1 devices") and exp.reload_success == 1
    assert exp.refresh() == (True, "unchanged") and exp.reload_success == 1
    inv.write_text("devices: [{name: a, ip: 198.18.0.999, region: r, branch: b}]\n")
    for _ in range(2):  # the second poll sees the same broken file
        ok, msg = exp.refresh()
        assert not ok and "invalid ip" in msg and exp.reload_success == 0
    assert [d.name for d in exp.devices] == ["a"]
    inv.write_text("devices: [{name: b, ip: 198.18.0.2, region: r, branch: b}]\n")
    assert exp.refresh() == (True, "1 devices") and exp.reload_success == 1
    assert [d.name for d in exp.devices] == ["b"]


def test_cli_refuses_missing_or_invalid_inventory(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("devices: [{name: x}]\n")
    run = subprocess.run([sys.executable, "-m", "wardops.cli", "exporter", "--inventory", str(bad),
                          "--web.listen-address", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 1 and "invalid inventory" in run.stderr and "bad.yml:1" in run.stderr
    run = subprocess.run([sys.executable, "-m", "wardops.cli", "exporter"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "--inventory FILE|URL is required" in run.stderr


def test_reload_rereads_config_and_keeps_the_old_one_when_invalid(tmp_path):
    inv = tmp_path / "inventory.yml"
    inv.write_text(INVENTORY)
    cfg_file = tmp_path / "exporter.yml"
    cfg_file.write_text(CONFIG)
    engine = FakeEngine(alive={"198.18.0.1", "198.18.0.2", "198.18.0.3"})
    exp = Exporter(FileSource(str(inv)), loads_config(CONFIG, str(cfg_file)), log=logging.getLogger("test.cfg"),
                   factories={"icmp": lambda rt: IcmpComponent(rt, engine=engine)}, config_path=str(cfg_file))
    exp.refresh(force=True)
    exp.start()
    web = WebServer(exp, "127.0.0.1", 0, lifecycle=True).start()
    base = f"http://127.0.0.1:{web.port}"
    try:
        assert wait_for(exp.ready)
        comp = exp.runtime.components["icmp"]
        cfg_file.write_text(CONFIG + "policies_extra: 1\n")
        status, body = get(base + "/-/reload", "POST")
        assert status == 500 and "policies_extra: unknown key" in body
        assert "wardops_exporter_config_reload_success 0" in get(base + "/metrics")[1]
        assert set(comp.policies) == {"isp", "default"}  # old config kept
        cfg_file.write_text(CONFIG.replace("policies:\n", "policies:\n  core: {interval: 150ms, packets: 1, spacing: 0, "
                                           "timeout: 50ms}\n") + "role_policies: {router: core}\n")
        status, body = get(base + "/-/reload", "POST")
        assert status == 200 and "config reloaded" in body
        assert [t.device.name for t in comp.groups["core"]] == ["rtr-a", "rtr-b"]
        assert wait_for(lambda: 'wardops_exporter_rounds_total{protocol="icmp",policy="core"} 2'
                        in get(base + "/metrics")[1])
        body = get(base + "/metrics")[1]
        assert "wardops_exporter_config_reload_success 1" in body
        assert 'device="isp-a"' in body and 'device="rtr-a"' in body
    finally:
        web.stop()
        exp.stop()


def test_http_sd_of_the_real_inventory_service_matches_the_file(tmp_path):
    """The exporter's URL source against `wardops inventory serve`: same devices as the YAML file."""
    import socket
    from pathlib import Path

    from inventory import load_inventory

    example = Path(__file__).resolve().parents[2] / "examples" / "inventory.yml"
    db = f"sqlite:///{tmp_path / 'inv.db'}"
    cli = [sys.executable, "-m", "wardops.cli", "inventory"]
    subprocess.run(cli + ["import", "--db", db, str(example)], check=True, capture_output=True, timeout=60)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    svc = subprocess.Popen(cli + ["serve", "--db", db, "--listen", f"127.0.0.1:{port}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        src = HttpSdSource(f"http://127.0.0.1:{port}/api/v1/sd")
        # The example's profiles reference WARDOPS_* variables: allowed by this exporter-side policy.
        src.configure(loads_config("secrets: {env_prefix: WARDOPS_}"))
        inv = None
        deadline = time.monotonic() + 20
        while inv is None:
            try:
                inv = src.poll()
            except TargetError:
                assert time.monotonic() < deadline, "inventory service did not come up"
                time.sleep(0.2)
        assert src.poll() is None  # ETag: 304, nothing to apply
        want = load_inventory(example).enabled_devices()
        got = inv.devices
        def key(d):
            return d.name, d.ip, d.role, d.region, d.branch, d.isp, d.snmp, sorted(d.labels.items())
        assert sorted(map(key, got)) == sorted(map(key, want))
        assert len(got) == 134
        assert dict(inv.snmp_profiles) == dict(load_inventory(example).snmp_profiles)  # /api/v1/snmp-profiles
    finally:
        svc.terminate()
        svc.wait(10)


def test_http_sd_sends_the_bearer_token_when_the_service_requires_one(tmp_path):
    """A service with WARDOPS_READ_AUTH=token: no token -> 401 kept as an error; the token file works."""
    import os
    import socket
    from pathlib import Path

    from inventory.secrets import Secret

    example = Path(__file__).resolve().parents[2] / "examples" / "inventory.yml"
    db = f"sqlite:///{tmp_path / 'inv.db'}"
    cli = [sys.executable, "-m", "wardops.cli", "inventory"]
    subprocess.run(cli + ["import", "--db", db, str(example)], check=True, capture_output=True, timeout=60)
    token = "read-token-0123456789abcdef"
    (tmp_path / "token").write_text(token + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, WARDOPS_READ_AUTH="token", WARDOPS_READ_TOKENS=token)
    svc = subprocess.Popen(cli + ["serve", "--db", db, "--listen", f"127.0.0.1:{port}"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/v1/sd"
    try:
        anonymous = HttpSdSource(url)
        deadline = time.monotonic() + 20
        while True:
            try:
                anonymous.poll()
            except TargetError as exc:
                if "HTTP 401" in str(exc):
                    break
                assert time.monotonic() < deadline, f"inventory service did not come up: {exc}"
                time.sleep(0.2)
            else:
                raise AssertionError("the service answered without a token")
        inv = HttpSdSource(url, token=Secret("file", str(tmp_path / "token"))).poll()
        assert inv is not None and len(inv.devices) == 134
        missing = HttpSdSource(url, token=Secret("file", str(tmp_path / "nope")))
        with pytest.raises(TargetError, match="bearer token: cannot read secret file") as info:
            missing.poll()
        assert token not in str(info.value)
    finally:
        svc.terminate()
        svc.wait(10)


def test_probe_stays_inside_the_scrapers_timeout(running):
    exp, base, _, engine = running
    assert wait_for(exp.ready)
    engine.delay = 2.0  # a probe that would take 2 s
    req = urllib.request.Request(base + "/probe?target=rtr-a", headers={"X-Prometheus-Scrape-Timeout-Seconds": "1"})
    started = time.monotonic()
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read().decode()
    assert time.monotonic() - started < 1.0
    assert resp.status == 200 and "probe_success 0" in body
