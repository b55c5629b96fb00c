"""`wardops stack up --ha --inventory-db`: two inventory services on one PostgreSQL, with the real
Debian binaries and a throwaway PostgreSQL cluster.

A device written through one service is served by the other; with service 1 killed, the vmagents'
/probe job keeps every target, and a vmagent started while it is dead still finds every device
through service 2's HTTP SD. The database URL (with a password in it) appears in no argv, log,
stack.json or status output. Every discovered device is probed through a closed loopback port
as "the exporter": no packet leaves loopback.
"""

import json
import shutil
import stat
import time
import urllib.request
from pathlib import Path

import pytest

from tests.service.throwaway_pg import ThrowawayPostgres
from wardops.cli import main
from wardops.stack.stack import Stack, StackSettings, ephemeral_ports, free_ports

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(shutil.which("victoria-metrics") is None, reason="victoria-metrics not installed"),
]

ADMIN = "stack-admin-token-0123456789"
PASSWORD = "pw-never-shown-4711"  # trust auth ignores it; it only has to stay out of sight
SD_INTERVAL = 1.0  # -promscrape.httpSDCheckInterval of this stack, seconds
MEMBERS = ["webhook", "inventory-service", "inventory-service-2", "victoria-metrics", "victoria-metrics-2",
           "alertmanager", "alertmanager-2", "vmagent", "vmagent-2", "vmalert", "vmalert-2"]


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def call(url, body=None, method="GET"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def probe_targets(vmagent_port: int) -> set[str]:
    body = call(f"http://127.0.0.1:{vmagent_port}/api/v1/targets")
    return {t["labels"]["instance"] for t in body["data"]["activeTargets"] if t["labels"]["job"] == "wardops_probe"}


def wait_for(what, check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            assert got, f"{what}: not within {timeout:.0f} s"
            return got
        time.sleep(0.2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    pg = ThrowawayPostgres().start()
    # The URL as a user would give it, password included (host is the cluster's socket directory).
    url = pg.create_database().replace(f"://{pg.user}@", f"://{pg.user}:{PASSWORD}@")
    settings = StackSettings(dir=tmp_path_factory.mktemp("ha-inv"), ports=ephemeral_ports(), ha=True,
                             exporter=f"127.0.0.1:{free_ports(1)[0]}", sd_check_interval=f"{SD_INTERVAL:.0f}s",
                             inventory_db=url)
    st = Stack(settings)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WARDOPS_ADMIN_TOKENS", ADMIN)  # the services take their tokens from the environment
        try:
            st.up(log=lambda _msg: None)
            yield st
        finally:
            st.down(log=lambda _msg: None)
            pg.stop()


def test_both_services_healthy_in_status_and_the_url_stays_hidden(stack, capsys):
    assert main(["stack", "status", "--dir", str(stack.dir)]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == MEMBERS
    assert all(" healthy " in line for line in out.splitlines())
    p = stack.settings.ports
    assert f"http://127.0.0.1:{p.inventory_service_2}" in out
    secret = stack.dir / "secrets" / "inventory-db"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and PASSWORD in secret.read_text()
    assert json.loads((stack.dir / "stack.json").read_text())["inventory_db"].count("***") == 1
    shown = [out, (stack.dir / "stack.json").read_text()]
    shown += [f.read_text() for f in (stack.dir / "log").glob("*.log")]
    shown += [f.read_text() for f in (stack.dir / "run").glob("*.argv")]
    shown += [Path(f"/proc/{s['pid']}/cmdline").read_text() for s in stack.status().values()]
    assert not [text[:200] for text in shown if PASSWORD in text]
    assert "db=postgresql+psycopg://" in (stack.dir / "log" / "inventory-service-2.log").read_text()
    # A second `up` keeps them (same argv, same database): nothing restarts.
    pids = {name: s["pid"] for name, s in stack.status().items()}
    assert set(stack.up(log=lambda _msg: None).values()) <= {"running", "reloaded"}
    assert {name: s["pid"] for name, s in stack.status().items()} == pids


def test_one_database_and_a_dead_service_loses_no_probe_target(stack):
    p = stack.settings.ports
    one, two = (f"http://127.0.0.1:{port}" for port in (p.inventory_service, p.inventory_service_2))
    devices = [{"name": f"dev{i}", "ip": f"198.18.0.{i}", "region": "Tbilisi", "branch": "Vake"} for i in (1, 2, 3)]
    call(f"{one}/api/v1/devices/bulk", {"create": devices}, "POST")
    assert call(f"{two}/api/v1/devices/dev2")["ip"] == "198.18.0.2"  # written through 1, read through 2
    want = {d["ip"] for d in devices}
    for port in (p.vmagent, p.vmagent_2):
        wait_for(f"vmagent :{port} probe targets", lambda port=port: probe_targets(port) == want)

    service = stack.daemon("inventory-service")
    assert service.kill()
    try:
        # vmagent keeps the job's targets while one of its SD URLs fails (3 checks here)...
        for _ in range(int(3 * SD_INTERVAL / 0.5)):
            time.sleep(0.5)
            assert probe_targets(p.vmagent) == want and probe_targets(p.vmagent_2) == want
        # ...and a vmagent (re)started while service 1 is dead finds every device through service 2:
        # with service 1 as the only SD URL it would start with no /probe target at all.
        agent = stack.daemon("vmagent-2")
        assert agent.kill()
        agent.start()
        agent.wait_healthy(30)
        wait_for("restarted vmagent-2 probe targets", lambda: probe_targets(p.vmagent_2) == want)
    finally:
        stack.restart("inventory-service")
    assert stack.status()["inventory-service"]["healthy"]
    assert call(f"{one}/api/v1/devices/dev3")["ip"] == "198.18.0.3"


def test_down_leaves_no_process(stack, capsys):
    pids = [s["pid"] for s in stack.status().values()]
    assert len(pids) == len(MEMBERS) and all(pids)
    assert main(["stack", "down", "--dir", str(stack.dir)]) == 0
    assert not any(alive(pid) for pid in pids)
    assert not list((stack.dir / "run").glob("*.pid"))
    assert not (stack.dir / "secrets" / "inventory-db").exists()
    capsys.readouterr()
    assert main(["stack", "status", "--dir", str(stack.dir)]) == 3
    out = capsys.readouterr().out
    assert [line.split()[:2] for line in out.splitlines()] == [[name, "down"] for name in MEMBERS]


@pytest.mark.parametrize(("flags", "message"), [
    (["--ha", "--inventory-db", "sqlite:///inv.db"], "--ha runs two services on one database, which must be "
                                                     "PostgreSQL (got a sqlite URL)"),
    (["--inventory-db", "not a url :secret@"], "not a SQLAlchemy database URL"),
])
def test_bad_inventory_db_is_refused_before_anything_starts(tmp_path, capsys, flags, message):
    assert main(["stack", "up", "--dir", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "secret" not in err and "inv.db" not in err
    assert not (tmp_path / "run").exists()


def test_single_stack_runs_one_service_member():
    st = Stack(StackSettings(dir=Path("/nonexistent"), inventory_db="postgresql+psycopg://u:p@h/db"))
    assert [n for n in st.daemons() if n.startswith("inventory")] == ["inventory-service"]
    assert st.inventory_sd_urls() == ["http://127.0.0.1:10119/api/v1/sd"]
    assert "inventory-service" not in Stack(StackSettings(dir=Path("/nonexistent"))).daemons()
    env = st.daemons()["inventory-service"].env
    assert env == {"WARDOPS_DB_URL": "postgresql+psycopg://u:p@h/db"}
    assert not [a for a in st.daemons()["inventory-service"].argv if "u:p@" in a]
