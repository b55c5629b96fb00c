"""The real consumer: vmagent 1.79.5 discovers targets from /api/v1/sd (with a read token).

Every discovered address is relabelled to a closed port on 127.0.0.1 before scraping, so no packet
leaves loopback (the inventory's 198.18.0.0/15 addresses are never contacted).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import requests
from conftest import AUTH, READER, Server, device, free_port, make_app

pytestmark = pytest.mark.stack


def test_vmagent_discovers_devices_from_sd(tmp_path):
    vmagent = shutil.which("vmagent")
    if vmagent is None:
        pytest.fail("vmagent is not installed (Debian package victoria-metrics / vmagent)")
    app = make_app(f"sqlite:///{tmp_path}/sd.db", READ_AUTH="token")
    client = app.test_client()
    assert client.post("/api/v1/devices/bulk", headers=AUTH, json={"create": [
        device(1, role="isp", isp="Magti"), device(2, role="router", labels={"vendor": "cisco"}),
        device(3, role="isp", isp="Silknet", enabled=False)]}).status_code == 200
    closed = free_port()  # nothing listens there: scrapes fail fast, on loopback
    (tmp_path / "read.token").write_text(READER + "\n")
    with Server(app) as server:
        (tmp_path / "scrape.yml").write_text(f"""
scrape_configs:
  - job_name: wardops_isp
    http_sd_configs:
      - url: {server.url}/api/v1/sd?role=isp
        authorization: {{credentials_file: {tmp_path}/read.token}}
    relabel_configs:
      - {{target_label: __address__, replacement: "127.0.0.1:{closed}"}}
  - job_name: wardops
    http_sd_configs:
      - url: {server.url}/api/v1/sd?exclude_role=isp
        authorization: {{credentials_file: {tmp_path}/read.token}}
    relabel_configs:
      - {{target_label: __address__, replacement: "127.0.0.1:{closed}"}}
""")
        port = free_port()
        proc = subprocess.Popen([vmagent, f"-promscrape.config={tmp_path}/scrape.yml",
                                 f"-httpListenAddr=127.0.0.1:{port}", "-remoteWrite.url=http://127.0.0.1:1/api/v1/write",
                                 f"-remoteWrite.tmpDataPath={tmp_path}/vmagent-data", "-promscrape.httpSDCheckInterval=1s",
                                 "-loggerLevel=ERROR"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ})
        try:
            found: dict = {}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    body = requests.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2).json()
                    found = {t["labels"]["device"]: t for t in body["data"]["activeTargets"]}
                    if len(found) >= 2:
                        break
                except (requests.ConnectionError, ValueError, KeyError):
                    pass
                time.sleep(0.3)
            assert sorted(found) == ["dev1", "dev2"], found
            assert found["dev1"]["labels"]["isp"] == "Magti" and found["dev1"]["scrapePool"] == "wardops_isp"
            assert found["dev2"]["labels"]["role"] == "router" and found["dev2"]["scrapePool"] == "wardops"
            assert found["dev2"]["discoveredLabels"]["__meta_wardops_label_vendor"] == "cisco"
            assert found["dev2"]["labels"]["ip"] == "198.18.0.3"
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    app.extensions["wardops_engine"].dispose()
