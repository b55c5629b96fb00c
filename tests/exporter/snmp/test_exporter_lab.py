"""The real `wardops exporter --netns` process polling a lab snmpd (target namespace) over SNMP while
it pings: SNMP series per device, the role split, removal on reload, /probe?module=snmp, and the
community never leaving the process (root only)."""

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from wardops.lab.snmpagents import start_lab_snmpd

pytestmark = pytest.mark.lab

PROFILE_ENV = "WARDOPS_LABTEST_SNMP_COMMUNITY"
INVENTORY = f"""
snmp_profiles:
  v2: {{version: 2c, community_env: {PROFILE_ENV}, timeout: 1, retries: 0}}
devices:
  - {{name: isp-up, ip: 198.18.7.5, region: north, branch: hq, role: isp, isp: acme, snmp: v2}}
  - {{name: rtr-1, ip: 198.18.7.1, region: north, branch: hq, role: router, snmp: v2}}
  - {{name: sw-2, ip: 198.18.7.2, region: north, branch: b2, role: switch, snmp: v2}}
  - {{name: atm-3, ip: 198.18.7.3, region: north, branch: b2, role: atm}}
"""
CONFIG = "inventory: {poll_interval: 300ms}\nsnmp: {interval: 2s}\n"


def get(url, timeout=15):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def series(text):
    return {(s.name, s.labels.get("device"), s.labels.get("ifName")): (s.value, s.labels)
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def snmp_devices(text, name="wardops_snmp_up"):
    return {dev for (n, dev, _), _ in series(text).items() if n == name}


def wait(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        result = cond()
        if result:
            return result
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.fixture(scope="module")
def snmpd(lab):
    community = "c-" + secrets.token_hex(8)
    agent = start_lab_snmpd(lab.target_ns, community=community)
    try:
        yield community
    finally:
        agent.stop()


def test_exporter_polls_snmp_splits_roles_reloads_probes_and_hides_the_community(lab, snmpd, tmp_path):
    community = snmpd
    inv = tmp_path / "inv.yml"
    inv.write_text(INVENTORY)
    cfg = tmp_path / "exporter.yml"
    cfg.write_text(CONFIG)
    log = tmp_path / "exporter.log"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with open(log, "w") as log_fh:
        proc = subprocess.Popen([sys.executable, "-m", "wardops.cli", "exporter", "--inventory", str(inv),
                                 "--config.file", str(cfg), "--netns", lab.probe_ns, "--log.level", "debug",
                                 "--web.listen-address", f"127.0.0.1:{port}"],
                                stderr=log_fh, env={**os.environ, PROFILE_ENV: community})
    texts = []
    try:
        def polled():
            try:
                body = get(base + "/metrics")[1]
            except OSError:
                return None
            done = (snmp_devices(body, "wardops_snmp_if_oper_up") == {"isp-up", "rtr-1", "sw-2"}
                    and "atm-3" in snmp_devices(body, "wardops_icmp_up"))
            return body if done else None
        body = wait(polled, 30, "no SNMP interface series for the three SNMP devices (or no ICMP state)")
        texts.append(body)
        s = series(body)
        assert snmp_devices(body) == {"isp-up", "rtr-1", "sw-2"}  # atm-3 has no profile
        assert all(s[("wardops_snmp_up", d, None)][0] == 1 for d in ("isp-up", "rtr-1", "sw-2"))
        ifs = {i for (n, d, i) in s if n == "wardops_snmp_if_oper_up" and d == "rtr-1"}
        assert len(ifs) >= 24 and "lo" in ifs  # snmpd serves its namespace's interfaces (11 veth pairs + ...)
        assert s[("wardops_snmp_if_in_octets_total", "rtr-1", "lo")][0] >= 0
        assert s[("wardops_snmp_up", "isp-up", None)][1] == {
            "device": "isp-up", "ip": "198.18.7.5", "role": "isp", "region": "north", "branch": "hq", "isp": "acme"}
        assert s[("wardops_snmp_uptime_seconds", "rtr-1", None)][0] > 0
        assert s[("wardops_icmp_up", "atm-3", None)][0] == 1  # ICMP still runs beside it
        selfm = {(x.name, x.labels.get("protocol")): x.value for f in text_string_to_metric_families(body)
                 for x in f.samples if x.name.startswith("wardops_exporter_")}
        assert selfm[("wardops_exporter_rounds_total", "snmp")] >= 1
        assert selfm[("wardops_exporter_targets", "snmp")] == 3
        assert selfm[("wardops_exporter_round_overruns_total", "snmp")] == 0

        # role split: the fast ISP job gets only the ISP device's SNMP series, the other job the rest
        isp = get(base + "/metrics?role=isp")[1]
        other = get(base + "/metrics?exclude_role=isp")[1]
        texts += [isp, other]
        assert snmp_devices(isp, "wardops_snmp_if_oper_up") == {"isp-up"}
        assert snmp_devices(other, "wardops_snmp_if_oper_up") == {"rtr-1", "sw-2"}

        # /probe?module=snmp: a live poll of an inventory SNMP device; 403 for anything else
        status, probe = get(base + "/probe?module=snmp&target=rtr-1")
        texts.append(probe)
        assert status == 200
        p = series(probe)
        assert p[("probe_success", None, None)][0] == 1 and p[("probe_duration_seconds", None, None)][0] > 0
        assert ("wardops_snmp_if_oper_up", "rtr-1", "lo") in p
        assert get(base + "/probe?module=snmp&target=198.18.7.2")[0] == 200  # by IP
        for target in ("atm-3", "198.18.9.9", "no-such-device"):
            status, text = get(base + f"/probe?module=snmp&target={target}")
            texts.append(text)
            assert status == 403, (target, status, text)

        # reload: a removed SNMP device disappears (the file is re-read on change)
        inv.write_text(INVENTORY.replace("  - {name: sw-2,", "  # - {name: sw-2,"))
        wait(lambda: snmp_devices(get(base + "/metrics")[1]) == {"isp-up", "rtr-1"}, 10,
             "removed SNMP device still exported")
        body = get(base + "/metrics")[1]
        texts.append(body)
        assert not [line for line in body.splitlines() if 'device="sw-2"' in line]
        assert get(base + "/probe?module=snmp&target=sw-2")[0] == 403
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    logs = log.read_text()
    assert "snmp" in logs.lower()  # debug logging was on: the SNMP path did log
    for text in texts + [logs]:
        assert community not in text
