"""Targets from any Prometheus SD source: an HTTP SD server without the inventory service's SNMP
profiles (404: ICMP only), and a file_sd JSON file as --inventory. Real loopback HTTP servers."""

from __future__ import annotations

import io
import json
import logging

import pytest

from exporter.app import Exporter
from exporter.config import loads_config
from exporter.icmp.component import IcmpComponent
from exporter.targets import FileSource, HttpSdSource, TargetError, is_file_sd, open_source
from tests.exporter.icmp.fakes import FakeEngine
from tests.exporter.sdserver import SD, SdServer
from wardops.cli import main


def _status(code: int):
    def answer(handler, _server):
        body = b"not here\n"
        handler.send_response(code)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return answer


@pytest.fixture
def log_text():
    log = logging.getLogger("wardops.exporter")
    saved = log.handlers[:], log.level, log.propagate
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    log.handlers[:], log.level, log.propagate = [handler], logging.INFO, False
    yield buf.getvalue
    log.handlers[:], log.level, log.propagate = saved


def test_profiles_404_means_icmp_only_with_one_info_line(log_text):
    with SdServer() as sd:
        sd.answers["/api/v1/snmp-profiles"] = _status(404)
        source = HttpSdSource(sd.url, timeout=5)
        inv = source.poll(force=True)
        assert [d.name for d in inv.enabled_devices()] == [f"d{i}" for i in range(1, 11)]
        assert dict(inv.snmp_profiles) == {}
        assert source.poll(force=True) is not None and source.poll() is not None  # a second and third 404
        lines = log_text().splitlines()
        assert lines == [f'msg="no SNMP profiles next to the SD URL (HTTP 404): ICMP only" '
                         f'url={sd.url.replace("/sd", "/snmp-profiles")}']
        sd.answers["/api/v1/snmp-profiles"] = b'{"items": []}'  # profiles appear, then go away again
        source.poll(force=True)
        sd.answers["/api/v1/snmp-profiles"] = _status(404)
        source.poll(force=True)
        assert len(log_text().splitlines()) == 2


@pytest.mark.parametrize("code", [401, 403, 500, 503])
def test_other_profile_errors_still_fail_the_reload(code):
    with SdServer() as sd:
        sd.answers["/api/v1/snmp-profiles"] = _status(code)
        with pytest.raises(TargetError, match=rf"/api/v1/snmp-profiles: HTTP {code}$"):
            HttpSdSource(sd.url, timeout=5).poll(force=True)


def test_exporter_probes_devices_of_a_profileless_sd_server():
    engine = FakeEngine(alive={"198.18.1.1"})
    config = loads_config("policies: {default: {interval: 100ms, packets: 1, spacing: 0, timeout: 50ms}}\n")
    with SdServer() as sd:
        sd.answers["/api/v1/snmp-profiles"] = _status(404)
        exp = Exporter(open_source(sd.url, 5), config, log=logging.getLogger("test.sd"),
                       factories={"icmp": lambda rt: IcmpComponent(rt, engine=engine)}, components=("icmp",))
        assert exp.refresh(force=True) == (True, "10 devices")
        assert exp.reload_success == 1


def test_file_sd_json_as_inventory(tmp_path):
    path = tmp_path / "targets.json"
    path.write_text(json.dumps(SD[:3]))
    source = open_source(str(path))
    assert isinstance(source, FileSource) and is_file_sd(str(path))
    inv = source.poll(force=True)
    assert [(d.name, d.ip, d.region, d.branch) for d in inv.enabled_devices()] == [
        ("d1", "198.18.1.1", "r", "b"), ("d2", "198.18.1.2", "r", "b"), ("d3", "198.18.1.3", "r", "b")]
    assert dict(inv.snmp_profiles) == {} and source.poll() is None  # unchanged file
    path.write_text(json.dumps(SD[:2]) + "\n")
    assert len(source.poll().enabled_devices()) == 2  # reloaded on change


def test_file_sd_without_json_suffix_is_recognised_by_content(tmp_path):
    path = tmp_path / "targets"
    path.write_text("\n  " + json.dumps(SD[:1]))
    assert is_file_sd(str(path))
    assert [d.name for d in open_source(str(path)).poll(force=True).enabled_devices()] == ["d1"]
    yaml_inv = tmp_path / "inv.yml"
    yaml_inv.write_text("devices: []\n")
    assert not is_file_sd(str(yaml_inv))


@pytest.mark.parametrize(("body", "message"), [
    ("[{", "not JSON"),
    ('{"targets": []}', "HTTP SD must be a JSON list of target groups"),
    ('[{"targets": ["198.18.1.1"], "labels": {"device": "d1", "region": "r"}}]', "lacks branch"),
])
def test_bad_file_sd_names_the_file(tmp_path, body, message):
    path = tmp_path / "targets.json"
    path.write_text(body)
    with pytest.raises(TargetError, match=message) as exc:
        FileSource(str(path)).poll(force=True)
    assert str(exc.value).startswith(str(path))


def test_config_check_accepts_file_sd(tmp_path, capsys):
    path = tmp_path / "targets.json"
    path.write_text(json.dumps(SD))
    assert main(["exporter", "--config.check", "--inventory", str(path)]) == 0
    assert f"OK: inventory {path}: 10 enabled devices, 0 SNMP profiles" in capsys.readouterr().out
