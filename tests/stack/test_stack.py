"""`wardops stack` with the real Debian binaries on ephemeral ports and the minimal built-in configs."""

import json
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from wardops.cli import main
from wardops.stack.process import StackError
from wardops.stack.stack import Stack, StackSettings, ephemeral_ports, free_ports
from wardops.stack.testbed import command_available

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(shutil.which("victoria-metrics") is None, reason="victoria-metrics not installed"),
]


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # The built-in scrape config targets the exporter address: point it at a closed port so that
    # ExporterDown fires and travels vmagent -> VictoriaMetrics -> vmalert -> Alertmanager -> webhook.
    settings = StackSettings(dir=tmp_path_factory.mktemp("stack"), ports=ephemeral_ports(),
                             exporter=f"127.0.0.1:{free_ports(1)[0]}")
    st = Stack(settings)
    try:
        st.up(log=lambda _msg: None)
        yield st
    finally:
        st.down(log=lambda _msg: None)


def test_up_starts_every_daemon_healthy(stack):
    status = stack.status()
    assert list(status) == ["webhook", "victoria-metrics", "alertmanager", "vmagent", "vmalert"]
    assert all(s["pid"] and s["healthy"] for s in status.values()), status
    args = Path(f"/proc/{status['victoria-metrics']['pid']}/cmdline").read_bytes().split(b"\0")
    assert b"-search.latencyOffset=1s" in args and b"-retentionPeriod=7d" in args
    args = Path(f"/proc/{status['vmalert']['pid']}/cmdline").read_bytes().split(b"\0")
    assert any(a.startswith(b"-remoteRead.url=") for a in args)


def test_second_up_is_harmless_and_keeps_the_same_processes(stack):
    before = {n: s["pid"] for n, s in stack.status().items()}
    actions = Stack.from_dir(stack.dir).up(log=lambda _msg: None)
    assert set(actions.values()) <= {"running", "reloaded"}
    assert {n: s["pid"] for n, s in stack.status().items()} == before


def test_up_with_changed_flags_restarts_only_the_changed_daemon(stack):
    before = {n: s["pid"] for n, s in stack.status().items()}
    changed = Stack(StackSettings(**{**stack.settings.__dict__, "evaluation_interval": "4s"}))
    actions = changed.up(log=lambda _msg: None)
    assert actions["vmalert"] == "restarted" and actions["victoria-metrics"] in ("running", "reloaded")
    after = {n: s["pid"] for n, s in changed.status().items()}
    assert after["vmalert"] != before["vmalert"] and after["victoria-metrics"] == before["victoria-metrics"]
    args = Path(f"/proc/{after['vmalert']}/cmdline").read_bytes().split(b"\0")
    assert b"-evaluationInterval=4s" in args


def test_alert_reaches_the_webhook_through_the_whole_chain(stack):
    out = stack.dir / "notifications.jsonl"
    deadline = time.monotonic() + 90
    found = []
    while time.monotonic() < deadline and not found:
        if out.exists():
            found = [json.loads(line) for line in out.read_text().splitlines()]
            found = [r for r in found for a in r["notification"]["alerts"]
                     if a["labels"]["alertname"] == "ExporterDown" and a["status"] == "firing"]
        time.sleep(0.5)
    assert found, f"no ExporterDown at the webhook; alertmanager log:\n{(stack.dir / 'log/alertmanager.log').read_text()[-2000:]}"
    assert found[0]["received_at"].endswith("+00:00")


def test_port_taken_by_a_foreign_process_is_a_clear_error(tmp_path, stack):
    # Our own running VictoriaMetrics answers on this port; a second stack must not adopt it.
    ports = ephemeral_ports()
    clash = Stack(StackSettings(dir=tmp_path, webhook=False,
                                ports=type(ports)(**{**ports.__dict__,
                                                     "victoria_metrics": stack.settings.ports.victoria_metrics})))
    with pytest.raises(StackError, match="already answers but is not ours"):
        clash.up(log=lambda _msg: None)
    assert all(s["pid"] is None for s in clash.status().values())


def test_cli_up_status_down_leaves_nothing_running(tmp_path, capsys):
    ports = ephemeral_ports()
    flags = [f"--vm-port={ports.victoria_metrics}", f"--vmagent-port={ports.vmagent}",
             f"--vmalert-port={ports.vmalert}", f"--alertmanager-port={ports.alertmanager}",
             f"--webhook-port={ports.webhook}"]
    d = str(tmp_path / "st")
    try:
        assert main(["stack", "up", "--dir", d, *flags]) == 0
        out = capsys.readouterr().out
        assert f"http://127.0.0.1:{ports.victoria_metrics}/vmui" in out
        assert f"http://127.0.0.1:{ports.alertmanager}" in out
        assert main(["stack", "status", "--dir", d]) == 0
        pids = [s["pid"] for s in Stack.from_dir(Path(d)).status().values()]
        assert len(pids) == 5 and all(pids)
    finally:
        assert main(["stack", "down", "--dir", d]) == 0
    assert not any(alive(p) for p in pids)
    assert not list((tmp_path / "st" / "run").glob("*.pid"))
    assert main(["stack", "status", "--dir", d]) == 3
    assert main(["stack", "down", "--dir", d]) == 0  # nothing left: still fine
    assert "nothing was running" in capsys.readouterr().out
    never = tmp_path / "never-started"
    assert main(["stack", "status", "--dir", str(never)]) == 3
    assert not never.exists()  # status does not create anything


def test_missing_generated_config_names_the_files(tmp_path):
    (tmp_path / "gen" / "rules").mkdir(parents=True)
    st = Stack(StackSettings(dir=tmp_path / "st", config_dir=tmp_path / "gen", ports=ephemeral_ports()))
    with pytest.raises(StackError) as err:
        st.up(log=lambda _msg: None)
    msg = str(err.value)
    assert "vmagent/scrape.yml" in msg and "alertmanager/alertmanager.yml" in msg and "rules/*.yml" in msg
    assert not (tmp_path / "st" / "run").exists()  # nothing was started


@pytest.mark.skipif(not command_available("generate"), reason="wardops generate not installed")
def test_up_with_generated_configs_loads_every_rule_group(tmp_path):
    gen = tmp_path / "gen"
    assert main(["generate", "examples/inventory.yml", "-o", str(gen), "--no-tool-check"]) == 0
    st = Stack(StackSettings(dir=tmp_path / "st", config_dir=gen, ports=ephemeral_ports(), webhook=False))
    try:
        st.up(log=lambda _msg: None)
        with urllib.request.urlopen(st.settings.url(st.settings.ports.vmalert) + "/api/v1/rules", timeout=10) as r:
            groups = {g["name"] for g in json.loads(r.read())["data"]["groups"]}
        want = {g["name"] for f in sorted((gen / "rules").glob("*.yml"))
                for g in yaml.safe_load(f.read_text())["groups"]}
        assert groups == want and len(want) >= 2
        with urllib.request.urlopen(st.settings.url(st.settings.ports.vmagent) + "/api/v1/targets", timeout=10) as r:
            jobs = {t["labels"]["job"] for t in json.loads(r.read())["data"]["activeTargets"]}
        assert {"wardops_icmp", "wardops_snmp"} <= jobs
        # The stack runs the daemons with the generated flags files (the latency depends on them).
        argv = " ".join(st.daemons()["victoria-metrics"].argv) + " " + " ".join(st.daemons()["vmalert"].argv)
        assert "-search.latencyOffset=1s" in argv and "-datasource.queryTimeAlignment=false" in argv
    finally:
        st.down(log=lambda _msg: None)
