"""`wardops stack up --ha` with the real Debian binaries: every member runs and is healthy, the two
Alertmanagers form one cluster, an alert raised by both chains reaches the webhook once, a dead
vmagent leaves both storages fed, and `down` leaves no process behind."""

import json
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from wardops.cli import main
from wardops.stack.stack import Stack, StackSettings, ephemeral_ports, free_ports

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(shutil.which("victoria-metrics") is None, reason="victoria-metrics not installed"),
]

MEMBERS = ["webhook", "victoria-metrics", "victoria-metrics-2", "alertmanager", "alertmanager-2",
           "vmagent", "vmagent-2", "vmalert", "vmalert-2"]


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def get(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def ha_stack(tmp_path_factory):
    # Both chains scrape a closed port as "the exporter": ExporterDown fires on each chain with the
    # same labels, and the Alertmanager cluster must turn the two into one notification.
    settings = StackSettings(dir=tmp_path_factory.mktemp("ha"), ports=ephemeral_ports(), ha=True,
                             exporter=f"127.0.0.1:{free_ports(1)[0]}")
    st = Stack(settings)
    try:
        st.up(log=lambda _msg: None)
        yield st
    finally:
        st.down(log=lambda _msg: None)


def test_every_member_runs_healthy(ha_stack):
    status = ha_stack.status()
    assert list(status) == MEMBERS
    assert all(s["pid"] and s["healthy"] for s in status.values()), status
    assert len({s["pid"] for s in status.values()}) == len(MEMBERS)


def test_alertmanagers_form_one_cluster_and_vmalerts_notify_both(ha_stack):
    p = ha_stack.settings.ports
    for port in (p.alertmanager, p.alertmanager_2):
        cluster = get(f"http://127.0.0.1:{port}/api/v2/status")["cluster"]
        assert cluster["status"] == "ready"
        assert sorted(peer["address"] for peer in cluster["peers"]) == sorted(
            [f"127.0.0.1:{p.alertmanager_cluster}", f"127.0.0.1:{p.alertmanager_cluster_2}"])
    for name, port in (("vmalert", p.vmalert), ("vmalert-2", p.vmalert_2)):
        argv = ha_stack.daemon(name).started_with()
        assert [a for a in argv if a.startswith("-notifier.url=")] == [
            f"-notifier.url=http://127.0.0.1:{p.alertmanager}", f"-notifier.url=http://127.0.0.1:{p.alertmanager_2}"]
        assert get(f"http://127.0.0.1:{port}/api/v1/alerts")["status"] == "success"


def test_alert_of_both_chains_is_notified_once(ha_stack):
    """ExporterDown (for 15 s) fires on both vmalerts; both reach both Alertmanagers: one notification."""
    p = ha_stack.settings.ports
    notifications = ha_stack.dir / "notifications.jsonl"
    deadline = time.monotonic() + 90
    firing = []
    while time.monotonic() < deadline and not firing:
        time.sleep(1)
        lines = notifications.read_text().splitlines() if notifications.exists() else []
        firing = [json.loads(line) for line in lines]
    assert firing, "no notification within 90 s"
    for port in (p.vmalert, p.vmalert_2):  # both chains raise it
        alerts = get(f"http://127.0.0.1:{port}/api/v1/alerts")["data"]["alerts"] or []  # null while none is active
        assert any(a["name"] == "ExporterDown" and a["state"] == "firing" for a in alerts)
    for port in (p.alertmanager, p.alertmanager_2):  # each Alertmanager holds it once
        names = [a["labels"]["alertname"] for a in get(f"http://127.0.0.1:{port}/api/v2/alerts")]
        assert names.count("ExporterDown") == 1
    time.sleep(15)  # a second peer's copy would arrive after its peer timeout (5 s) + group_wait
    lines = [json.loads(line) for line in notifications.read_text().splitlines()]
    sent = [a for n in lines for a in n["notification"]["alerts"]
            if a["labels"]["alertname"] == "ExporterDown" and a["status"] == "firing"]
    assert len(lines) == 1 and len(sent) == 1, lines


def newest_sample(vm_port: int, expr: str) -> float:
    result = get(f"http://127.0.0.1:{vm_port}/api/v1/query?query={urllib.parse.quote(f'timestamp({expr})')}")
    return max((float(r["value"][1]) for r in result["data"]["result"]), default=0.0)


def test_a_dead_vmagent_leaves_both_storages_fed(ha_stack):
    """Both vmagents write both VictoriaMetrics (which deduplicate the two copies): with vmagent 1
    killed, storage 1 still receives the exporter job's samples, so chain 1 does not evaluate stale
    data."""
    p = ha_stack.settings.ports
    storages = [f"-remoteWrite.url=http://127.0.0.1:{port}/api/v1/write" for port in (p.victoria_metrics,
                                                                                     p.victoria_metrics_2)]
    for name in ("vmagent", "vmagent-2"):
        assert [a for a in ha_stack.daemon(name).started_with() if a.startswith("-remoteWrite.url=")] == storages
    for name in ("victoria-metrics", "victoria-metrics-2"):
        assert "-dedup.minScrapeInterval=1s" in ha_stack.daemon(name).started_with()
    agent = ha_stack.daemon("vmagent")
    assert agent.kill()
    killed = time.time()
    try:
        deadline = time.monotonic() + 60  # scrape interval 5 s, vmagent flush 1 s, latency offset 1 s
        newest = 0.0
        while time.monotonic() < deadline and newest <= killed + 1:
            time.sleep(1)
            newest = newest_sample(p.victoria_metrics, 'up{job="wardops"}')
        assert newest > killed + 1, f"no sample in VictoriaMetrics 1 after vmagent 1 died (newest {newest}, killed {killed})"
    finally:
        agent.start()
        agent.wait_healthy(30)


def test_cli_up_ha_status_down_leaves_nothing_running(tmp_path, capsys):
    ports = ephemeral_ports()
    flags = [f"--vm-port={ports.victoria_metrics}", f"--vmagent-port={ports.vmagent}",
             f"--vmalert-port={ports.vmalert}", f"--alertmanager-port={ports.alertmanager}",
             f"--webhook-port={ports.webhook}", f"--victoria-metrics-2-port={ports.victoria_metrics_2}",
             f"--vmagent-2-port={ports.vmagent_2}", f"--vmalert-2-port={ports.vmalert_2}",
             f"--alertmanager-2-port={ports.alertmanager_2}",
             f"--alertmanager-cluster-port={ports.alertmanager_cluster}",
             f"--alertmanager-cluster-2-port={ports.alertmanager_cluster_2}"]
    d = str(tmp_path / "st")
    pids = []
    try:
        assert main(["stack", "up", "--ha", "--dir", d, *flags]) == 0
        out = capsys.readouterr().out
        assert f"http://127.0.0.1:{ports.alertmanager_2}" in out and f"http://127.0.0.1:{ports.vmalert_2}" in out
        assert main(["stack", "status", "--dir", d]) == 0
        out = capsys.readouterr().out
        assert [line.split()[0] for line in out.splitlines()] == MEMBERS
        assert all(" healthy " in line for line in out.splitlines())
        pids = [s["pid"] for s in Stack.from_dir(Path(d)).status().values()]
        assert len(pids) == len(MEMBERS) and all(pids)
    finally:
        assert main(["stack", "down", "--dir", d]) == 0
    assert not any(alive(p) for p in pids)
    assert not list((tmp_path / "st" / "run").glob("*.pid"))
    assert main(["stack", "status", "--dir", d]) == 3


def test_three_exporters_with_ha_is_an_error(tmp_path, capsys):
    assert main(["stack", "up", "--ha", "--dir", str(tmp_path), "--exporter", "a:1", "--exporter", "b:1",
                 "--exporter", "c:1"]) == 2
    assert "at most two" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
