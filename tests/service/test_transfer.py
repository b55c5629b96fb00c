"""`wardops inventory import/export`: atomic import with file:line errors, round trip to the same inventory."""

from __future__ import annotations

from pathlib import Path

from conftest import AUTH, make_app

from inventory.dump import dump_yaml
from inventory.loader import load_inventory, loads_inventory
from inventory.synth import synth_inventory

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inventory.yml"


def test_example_round_trip(runner, db_url, tmp_path):
    code, out, err = runner.invoke("inventory", "import", str(EXAMPLE), "--db", db_url)
    assert code == 0, err
    assert "imported 135 devices, 2 snmp profiles, 3 classify rules, 2 maintenance windows" in out
    code, text, err = runner.invoke("inventory", "export", "--db", db_url)
    assert code == 0, err
    original = load_inventory(EXAMPLE)
    assert loads_inventory(text, "export") == original
    assert "ip_last_octet: 5" in text  # classify rules are kept, not baked into devices
    code, resolved, _ = runner.invoke("inventory", "export", "--db", db_url, "--resolved")
    assert code == 0 and loads_inventory(resolved, "export") == original
    # export is deterministic, and exporting an import of the export gives the same text
    (tmp_path / "again.yml").write_text(text)
    assert runner.invoke("inventory", "import", str(tmp_path / "again.yml"), "--db", db_url)[0] == 0
    assert runner.invoke("inventory", "export", "--db", db_url)[1] == text


def test_synth_round_trip_and_service_sees_import(runner, db_url, tmp_path):
    inv = synth_inventory(600, snmp_share=0.5, seed=3)
    path = tmp_path / "synth.yml"
    path.write_text(dump_yaml(inv))
    assert runner.invoke("inventory", "import", str(path), "--db", db_url)[0] == 0
    out = tmp_path / "out.yml"
    code, _, err = runner.invoke("inventory", "export", "--db", db_url, "-o", str(out))
    assert code == 0, err
    assert load_inventory(out) == inv
    app = make_app(db_url)
    try:
        client = app.test_client()
        assert client.get("/api/v1/devices?limit=1").json["total"] == 600
        assert len(client.get("/api/v1/sd").json) == 600
    finally:
        app.extensions["wardops_engine"].dispose()


def test_import_is_atomic_and_reports_every_error_with_line(runner, db_url, tmp_path):
    assert runner.invoke("inventory", "import", str(EXAMPLE), "--db", db_url)[0] == 0
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "devices:\n"
        "  - {name: a, ip: 198.18.0.1, region: R, branch: B}\n"
        "  - {name: b, ip: 198.18.0.1, region: R, branch: B}\n"
        "  - {name: c, ip: nope, region: R, branch: B}\n"
        "  - {name: d, ip: 198.18.0.4, region: R}\n")
    code, out, err = runner.invoke("inventory", "import", str(bad), "--db", db_url)
    assert code == 1
    assert f"{bad}:3: devices[1].ip: duplicate ip" in err
    assert f"{bad}:4: devices[2].ip: invalid ip 'nope'" in err
    assert f"{bad}:5: devices[3]: missing required field 'branch'" in err
    assert "3 error(s)" in err and "nothing imported" in err
    code, text, _ = runner.invoke("inventory", "export", "--db", db_url)
    assert loads_inventory(text, "x") == load_inventory(EXAMPLE)  # unchanged


def test_import_replaces_what_the_api_wrote(runner, db_url, tmp_path):
    app = make_app(db_url)
    try:
        client = app.test_client()
        r = client.post("/api/v1/devices", json={"name": "old", "ip": "198.18.9.9", "region": "R", "branch": "B"},
                        headers=AUTH)
        assert r.status_code == 201
        assert runner.invoke("inventory", "import", str(EXAMPLE), "--db", db_url)[0] == 0
        # the running app notices the new generation without a restart
        assert client.get("/api/v1/devices/old").status_code == 404
        assert len(client.get("/api/v1/sd").json) == len(load_inventory(EXAMPLE).enabled_devices())
        assert client.get("/api/v1/devices?role=isp&limit=1").json["total"] == \
            load_inventory(EXAMPLE).counts("role")["isp"]
    finally:
        app.extensions["wardops_engine"].dispose()


def test_import_refuses_a_topology_it_cannot_store(runner, db_url, tmp_path):
    topo = tmp_path / "topo.yml"
    topo.write_text("devices:\n  - {name: a, ip: 198.18.0.1, region: R, branch: B}\n"
                    "topology:\n  upstreams: {x: {branches: [B]}}\n")
    code, _, err = runner.invoke("inventory", "import", str(topo), "--db", db_url)
    assert code == 1 and f"{topo}:3: topology: not stored by the inventory service yet" in err, err


def test_cli_errors(runner, tmp_path):
    code, _, err = runner.invoke("inventory", "import", str(tmp_path / "missing.yml"), "--db",
                                 f"sqlite:///{tmp_path}/x.db")
    assert code == 1 and "cannot read inventory" in err
    code, _, err = runner.invoke("inventory", "export", "--db", "mysql://x/y")
    assert code == 2 and "unsupported database" in err
    code, _, err = runner.invoke("inventory", "serve", "--listen", "nonsense", "--db", f"sqlite:///{tmp_path}/x.db")
    assert code == 2 and "HOST:PORT" in err


def test_serve_under_waitress(tmp_path):
    import os
    import subprocess
    import sys
    import time

    import requests
    from conftest import ADMIN, free_port

    port = free_port()
    env = {**os.environ, "WARDOPS_ADMIN_TOKENS": ADMIN}
    proc = subprocess.Popen([sys.executable, "-m", "wardops.cli", "inventory", "serve", "--db",
                             f"sqlite:///{tmp_path}/s.db", "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                health = requests.get(f"{base}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert health.json()["status"] == "ok"
        r = requests.post(f"{base}/api/v1/devices", headers=AUTH, timeout=10,
                          json={"name": "a", "ip": "198.18.0.1", "region": "R", "branch": "B"})
        assert r.status_code == 201
        assert requests.get(f"{base}/api/v1/sd", timeout=10).json()[0]["targets"] == ["198.18.0.1"]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert f"listen=127.0.0.1:{port}" in err and "read_auth=open" in err
    assert ADMIN not in out + err
