"""Every rule and dashboard query runs on a real VictoriaMetrics (MetricsQL) without error.

A throwaway victoria-metrics on a free loopback port gets synthetic series that follow the
exporter's metric contract (/api/v1/import/prometheus); each generated rule expression and each
panel query (variables substituted) goes through /api/v1/query. Queries on raw exporter series
must also return data, so a misspelt metric or label cannot pass as "no error".
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from generators.dashboards import EXPORTER_METRICS, panels_of, query_metrics
from tests.generators.helpers import REPO, device_labels, need, series, wait_http

STEPS = 60  # 10 minutes of 10 s samples


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _samples(now_ms: int) -> str:
    lines = []
    isp, rtr = device_labels("a-isp1"), device_labels("a-rtr1")
    iface = device_labels("a-rtr1", ifName="Gi0/1", ifAlias="uplink")
    exporter = {"job": "wardops", "instance": "127.0.0.1:9118"}
    per_step = {
        "wardops_icmp_up": lambda i: 1 if i < 40 else 0,
        "wardops_icmp_rtt_seconds": lambda i: 0.02, "wardops_icmp_rtt_min_seconds": lambda i: 0.01,
        "wardops_icmp_rtt_max_seconds": lambda i: 0.03, "wardops_icmp_jitter_seconds": lambda i: 0.005,
        "wardops_icmp_loss_ratio": lambda i: 0.0, "wardops_icmp_packets_sent_total": lambda i: 3 * i,
        "wardops_icmp_packets_received_total": lambda i: 3 * i - i // 10,
        "wardops_icmp_status_changes_total": lambda i: 0 if i < 40 else 1,
        "wardops_icmp_last_change_timestamp_seconds": lambda i: 0 if i < 40 else (now_ms // 1000 - 200),
    }
    for metric, fn in per_step.items():
        for labels in (isp, rtr):
            lines += [f"{series(metric, labels)} {fn(i)} {now_ms - (STEPS - i) * 10000}" for i in range(STEPS)]
    iface_metrics = {
        "wardops_snmp_if_oper_up": 1, "wardops_snmp_if_admin_up": 1, "wardops_snmp_if_speed_bytes": 1.25e8,
        "wardops_snmp_if_in_octets_total": 1000, "wardops_snmp_if_out_octets_total": 2000,
        "wardops_snmp_if_in_errors_total": 1, "wardops_snmp_if_out_errors_total": 1,
        "wardops_snmp_if_in_discards_total": 1, "wardops_snmp_if_out_discards_total": 1,
        "wardops_snmp_if_last_change_timestamp_seconds": 100,
    }
    for metric, rate in iface_metrics.items():
        lines += [f"{series(metric, iface)} {rate * (i if metric.endswith('_total') else 1)} "
                  f"{now_ms - (STEPS - i) * 10000}" for i in range(STEPS)]
    singles = [
        ("wardops_snmp_up", rtr), ("wardops_snmp_uptime_seconds", rtr), ("wardops_snmp_poll_duration_seconds", rtr),
        ("wardops_exporter_round_duration_seconds", {**exporter, "policy": "isp"}),
        ("wardops_exporter_rounds_total", {**exporter, "policy": "isp"}),
        ("wardops_exporter_round_overruns_total", {**exporter, "policy": "isp"}),
        ("wardops_exporter_targets", {**exporter, "policy": "isp"}),
        ("wardops_exporter_last_round_timestamp_seconds", {**exporter, "policy": "isp"}),
        ("wardops_exporter_send_errors_total", exporter), ("wardops_exporter_receive_drops_total", exporter),
        ("wardops_exporter_inventory_reload_success", exporter),
        ("wardops_exporter_inventory_reload_timestamp_seconds", exporter),
        ("wardops_exporter_build_info", {**exporter, "version": "0.1.0"}),
        ("wardops_exporter_site_info", {**exporter, "exporter_site": "default"}),
        ("up", exporter), ("up", {**exporter, "job": "wardops_icmp"}), ("scrape_duration_seconds", exporter),
        ("wardops_icmp_branch_last_change_timestamp_seconds", {**exporter, "region": "R1", "branch": "Branch A"}),
        ("ALERTS", {"alertname": "DeviceDown", "alertstate": "firing", "device": "a-rtr1", "branch": "Branch A"}),
    ]
    for metric, labels in singles:
        lines += [f"{series(metric, labels)} {i} {now_ms - (STEPS - i) * 10000}" for i in range(STEPS)]
    # 0/1 states: the branch answers, the canary answers, no inventory answer is held.
    states = [("wardops_icmp_branch_up", {**exporter, "region": "R1", "branch": "Branch A", "uplinks": "a-isp1"}, 1),
              ("wardops_probe_site_canary_up", {**exporter, "canary": "198.19.255.1"}, 1),
              ("wardops_exporter_inventory_reload_held", exporter, 0)]
    for metric, labels, value in states:
        lines += [f"{series(metric, labels)} {value} {now_ms - (STEPS - i) * 10000}" for i in range(STEPS)]
    covered = set(per_step) | set(iface_metrics) | {m for m, _ in singles} | {m for m, _, _ in states}
    read = {m for _, expr in _rule_exprs() + _panel_exprs() for m in query_metrics(expr)} & EXPORTER_METRICS
    assert read <= covered, f"import misses {read - covered}"
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    binary = need("victoria-metrics")
    data = tmp_path_factory.mktemp("vm")
    port = _free_port()
    proc = subprocess.Popen([binary, f"-storageDataPath={data}", f"-httpListenAddr=127.0.0.1:{port}",
                             "-search.latencyOffset=1s", "-loggerLevel=ERROR"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(proc, f"{base}/health", 30, "victoria-metrics")
        now_ms = int(time.time() * 1000)
        req = urllib.request.Request(f"{base}/api/v1/import/prometheus", data=_samples(now_ms).encode(), method="POST")
        urllib.request.urlopen(req, timeout=10).read()
        urllib.request.urlopen(f"{base}/internal/force_flush", timeout=10).read()
        yield base, now_ms // 1000
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def query(vm, expr: str) -> list:
    base, now = vm
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": now - 2})
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{expr!r}: HTTP {exc.code}: {exc.read().decode()[:500]}") from None
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def _wait_for_data(vm) -> None:
    deadline = time.monotonic() + 15
    while not query(vm, "wardops_icmp_up"):
        assert time.monotonic() < deadline, "imported series never became visible"
        time.sleep(0.3)


def _rule_exprs() -> list[tuple[str, str]]:
    out = []
    for name in ("alerts.yml", "recording.yml"):
        for g in yaml.safe_load((REPO / "rules" / name).read_text())["groups"]:
            out += [(r.get("alert") or r["record"], r["expr"]) for r in g["rules"]]
    return out


def _panel_exprs() -> list[tuple[str, str]]:
    out = []
    for path in sorted((REPO / "dashboards").glob("*.json")):
        dash = json.loads(path.read_text())
        for p in panels_of(dash):
            out += [(f"{path.stem}: {p['title']}", t["expr"]) for t in p.get("targets", [])]
    return out


SUBSTITUTE = {"$__rate_interval": "1m", "$__range": "10m", "$region": ".*", "$branch": ".*", "$instance": ".*",
              "$site": ".*", "$device": "a-rtr1"}


def _substitute(expr: str) -> str:
    for var, value in SUBSTITUTE.items():
        expr = expr.replace(var, value)
    assert not re.search(r"\$\w", expr), expr
    return expr


def test_every_rule_expression_runs_on_victoriametrics(vm):
    _wait_for_data(vm)
    for name, expr in _rule_exprs():
        result = query(vm, expr)
        if name.count(":") == 2:  # recording rules read raw series: they must produce data
            assert result, f"recording rule {name} returned nothing: {expr}"


def test_down_alert_expression_yields_since_timestamp(vm):
    _wait_for_data(vm)
    expr = dict(_rule_exprs())["DeviceDown"]
    result = query(vm, expr)
    assert [r["metric"]["device"] for r in result] == ["a-rtr1"]
    assert float(result[0]["value"][1]) == vm[1] - 200


def test_every_panel_query_runs_and_raw_series_queries_return_data(vm):
    _wait_for_data(vm)
    for title, expr in _panel_exprs():
        result = query(vm, _substitute(expr))
        if query_metrics(expr) <= EXPORTER_METRICS:
            assert result, f"{title}: {expr} returned no data"


# --- MetricsQL semantics of the alert expressions (vmalert evaluates with VictoriaMetrics) ---------
# The promtool tests check PromQL; MetricsQL's increase()/changes() also use the sample just before
# the window. The same scenarios, replayed as instant queries at vmalert-like evaluation times, must
# give the same verdicts.

SCENARIO = {
    "a-atm2": "U" * 30 + "DDDUUU" * 3 + "U" * 52,  # flaps: changes at 300..450 s
    "a-isp1": "U" * 30 + "D" * 30 + "U" * 40,  # one outage 300-590 s
    "a-isp2": "U" * 32 + "D" * 28 + "U" * 40,  # one outage 320-590 s
    "b-rtr1": "U" * 100,
}


@pytest.fixture(scope="module")
def scenario(vm):
    from tests.generators.test_rules_promtool import timeline

    base, now = vm
    t0 = (now - 3600) // 10 * 10
    lines = []
    for name, states in SCENARIO.items():
        labels = device_labels(name)
        up, changes, since = (v.split() for v in timeline(states))
        for i, (u, c, s) in enumerate(zip(up, changes, since, strict=True)):
            ts = (t0 + i * 10) * 1000
            lines += [f"{series('wardops_icmp_up', labels)} {u} {ts}",
                      f"{series('wardops_icmp_status_changes_total', labels)} {c} {ts}",
                      f"{series('wardops_icmp_last_change_timestamp_seconds', labels)} {t0 + int(s)} {ts}"]
    # Branch A's verdict as the exporter exports it: deciding for one step, then dark until 600 s.
    branch = {"region": "R1", "branch": "Branch A", "job": "wardops_icmp", "instance": "127.0.0.1:9118"}
    for i, v in enumerate(["1"] * 32 + ["-1"] + ["0"] * 27 + ["1"] * 40):
        ts = (t0 + i * 10) * 1000
        last = 0 if i < 32 else 320 if i == 32 else 330 if i < 60 else 600
        lines += [f"{series('wardops_icmp_branch_up', {**branch, 'uplinks': 'a-isp1,a-isp2'})} {v} {ts}",
                  f"{series('wardops_icmp_branch_last_change_timestamp_seconds', branch)} {t0 + last} {ts}"]
    req = urllib.request.Request(f"{base}/api/v1/import/prometheus", data="\n".join(lines).encode(), method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    urllib.request.urlopen(f"{base}/internal/force_flush", timeout=10).read()
    return t0


def firing(vm, expr: str, at: int) -> list[str]:
    base, _ = vm
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": at, "nocache": 1})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return sorted(r["metric"].get("device") or r["metric"].get("branch") for r in body["data"]["result"])


@pytest.mark.parametrize("alert,severity,at,want", [
    ("DeviceDown", "warning", 310, ["a-atm2"]),
    ("DeviceFlapping", "warning", 350, []),  # two changes: not yet
    ("DeviceFlapping", "warning", 370, []),  # its branch is dark from 320 s: BranchDown says it
    ("DeviceDown", "warning", 370, []),  # suppressed while flapping
    ("DeviceFlapping", "warning", 680, ["a-atm2"]),
    ("DeviceFlapping", "warning", 700, []),  # stable: resolved
    ("IspLinkDown", "critical", 310, ["a-isp1"]),
    ("IspLinkDown", "critical", 324, []),  # both uplinks dark, the branch being decided
    ("IspLinkDown", "critical", 350, []),  # the branch is dark: BranchDown says it
    ("BranchDown", "critical", 310, []),
    ("BranchDown", "critical", 324, []),
    ("BranchDown", "critical", 350, ["Branch A"]),  # once for the branch
    ("BranchDown", "critical", 610, []),
    ("DeviceFlapping", "critical", 620, []),  # an outage and its recovery are not flapping
    ("DeviceFlapping", "critical", 900, []),
])
def test_metricsql_verdicts_match_the_promtool_scenarios(vm, scenario, alert, severity, at, want):
    _wait_for_data(vm)
    exprs = {(r["alert"], r["labels"]["severity"]): r["expr"]
             for g in yaml.safe_load((REPO / "rules" / "alerts.yml").read_text())["groups"] for r in g["rules"]}
    assert firing(vm, exprs[(alert, severity)], scenario + at) == want


# --- vmalert itself: evaluates the generated rules on VictoriaMetrics and notifies ---------------

@pytest.fixture(scope="module")
def notifications():
    """A loopback HTTP server standing in for Alertmanager: collects what vmalert posts."""
    import http.server
    import threading

    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.extend(json.loads(body or b"[]"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_vmalert_fires_isp_link_down_with_rendered_annotations(vm, notifications, tmp_path):
    from tests.generators.helpers import render_annotation

    _wait_for_data(vm)
    base, now = vm
    url, received = notifications
    proc = subprocess.Popen([need("vmalert"), f"-rule={REPO / 'rules' / 'alerts.yml'}", f"-datasource.url={base}",
                             f"-notifier.url={url}", f"-httpListenAddr=127.0.0.1:{_free_port()}",
                             "-loggerLevel=ERROR"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not any(a["labels"].get("alertname") == "IspLinkDown" for a in received):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, f"no IspLinkDown notification; got {received}"
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    alert = next(a for a in received if a["labels"].get("alertname") == "IspLinkDown")
    labels = alert["labels"]
    assert labels["device"] == "a-isp1" and labels["severity"] == "critical"
    assert labels["alertgroup"] == "wardops-root-cause"
    rule = next(r for g in yaml.safe_load((REPO / "rules" / "alerts.yml").read_text())["groups"]
                for r in g["rules"] if r.get("alert") == "IspLinkDown")
    assert alert["annotations"]["description"] == render_annotation(rule["annotations"]["description"], labels,
                                                                    now - 200)
