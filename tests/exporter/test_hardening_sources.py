"""Hostile or broken inventory answers: every one is a failed reload with bounded time and memory,
the last good set is kept, and the polling loop lives on."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from exporter.app import Exporter
from exporter.config import loads_config
from exporter.targets import FileSource, HttpSdSource, TargetError
from exporter.web import WebServer
from tests.exporter.sdserver import SD, SdServer, drip, endless
from tests.exporter.test_web import get

LOG = logging.getLogger("test.hardening")


def poll_bounded(src, limit: float):
    """src.poll() in a thread: (result or exception, seconds); a poll still running after `limit` fails."""
    out = {}

    def run():
        started = time.monotonic()
        try:
            out["value"] = src.poll()
        except BaseException as exc:  # noqa: BLE001 - the test inspects whatever escaped
            out["value"] = exc
        out["took"] = time.monotonic() - started

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(limit)
    assert not t.is_alive(), f"poll still running after {limit}s"
    return out["value"], out["took"]


def sd_source(server, config=""):
    src = HttpSdSource(server.url)
    src.configure(loads_config(config))
    return src


def test_deeply_nested_json_is_a_failed_reload_and_watch_survives():
    with SdServer() as server:
        src = sd_source(server)
        exp = Exporter(src, loads_config("inventory: {poll_interval: 200ms}"), log=LOG, components=())
        assert exp.refresh() == (True, "10 devices")
        server.answers["/api/v1/sd"] = b"[" * 200_000 + b"]" * 200_000
        ok, message = exp.refresh(force=True)
        assert not ok and "not JSON: nested too deeply" in message and exp.reload_success == 0
        assert len(exp.devices) == 10
        # the watch loop keeps polling (a RecursionError used to end it): it applies the fixed answer
        watcher = threading.Thread(target=exp.watch, daemon=True)
        watcher.start()
        server.answers["/api/v1/sd"] = json.dumps(SD[:6]).encode()
        deadline = time.monotonic() + 5
        while len(exp.devices) != 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        exp.stop()
        watcher.join(5)
        assert len(exp.devices) == 6 and exp.reload_success == 1


def test_a_dripping_server_fails_the_reload_within_the_deadline():
    with SdServer() as server:
        server.answers["/api/v1/sd"] = drip(0.2)
        src = sd_source(server, "inventory: {timeout: 1s}")
        result, took = poll_bounded(src, 10)
        assert isinstance(result, TargetError), result
        assert "no complete answer within inventory.timeout 1s" in str(result)
        assert took < 2.0  # the deadline (1 s) plus at most one socket wait of a quarter of it, with margin
        again, _ = poll_bounded(src, 10)
        assert str(again) == str(result)  # the same failure, the same text: logged once, not every poll


@pytest.mark.parametrize("claimed", [None, 300 << 20], ids=["close-delimited", "content-length"])
def test_a_huge_body_is_refused_while_streaming(claimed):
    with SdServer() as server:
        server.answers["/api/v1/sd"] = endless(claimed)
        src = sd_source(server, "inventory: {max_bytes: 1048576, timeout: 20s}")
        result, _ = poll_bounded(src, 20)
        assert isinstance(result, TargetError) and "larger than inventory.max_bytes 1048576" in str(result)
        # stopped reading at the cap: the server could write at most the cap plus socket buffers
        assert server.sent < 40 << 20


@pytest.mark.parametrize("answer, fragment", [
    (b"", "not JSON"),
    (b"{}", "HTTP SD must be a JSON list"),
    (b"null", "HTTP SD must be a JSON list"),
    (b'[{"targets": "198.18.0.1", "labels": {}}]', "want {\"targets\": [ip]"),
    (b'[{"targets": [12], "labels": {"device": "a", "region": "r", "branch": "b"}}]', "want exactly one IP string"),
    (b'[{"targets": ["198.18.0.1"], "labels": {"device": "a", "region": 7, "branch": "b"}}]',
     "labels.region: label values must be strings"),
    (b'[{"targets": ["198.18.0.1"], "labels": {"device": "a", "region": "r", "branch": "b", '
     b'"__meta_wardops_snmp_profile": {"x": 1}}}]', "label values must be strings"),
    (json.dumps([{"targets": ["x" * 100_000], "labels": {"device": "a", "region": "r", "branch": "b"}}]).encode(),
     "is not an IP address"),
])
def test_wrong_types_are_one_bounded_error(answer, fragment):
    with SdServer() as server:
        server.answers["/api/v1/sd"] = answer
        with pytest.raises(TargetError) as err:
            sd_source(server).poll()
        assert fragment in str(err.value) and len(str(err.value)) < 1000


def test_reload_over_http_does_not_hang_on_a_dripping_server():
    with SdServer() as server:
        src = sd_source(server)
        exp = Exporter(src, loads_config("inventory: {timeout: 1s}"), log=LOG, components=())
        assert exp.refresh()[0]
        exp.start()
        web = WebServer(exp, "127.0.0.1", 0, lifecycle=True).start()
        try:
            server.answers["/api/v1/sd"] = drip(0.2)
            started = time.monotonic()
            status, body = get(f"http://127.0.0.1:{web.port}/-/reload", "POST")
            assert status == 500 and "inventory.timeout" in body
            assert time.monotonic() - started < 3.0
            assert len(exp.devices) == 10
        finally:
            web.stop()
            exp.stop()


# -- shrink hold ---------------------------------------------------------------------------------


def inventory_text(n: int) -> str:
    return "devices:\n" + "".join(f"  - {{name: d{i}, ip: 198.18.1.{i}, region: r, branch: b}}\n"
                                  for i in range(1, n + 1))


def test_an_emptied_answer_is_held_then_applied_after_the_hold_time():
    with SdServer() as server:
        src = sd_source(server, "inventory: {hold_time: 1s}")
        exp = Exporter(src, loads_config("inventory: {hold_time: 1s}"), log=LOG, components=())
        assert exp.refresh() == (True, "10 devices")
        server.answers["/api/v1/sd"] = b"[]"
        ok, message = exp.refresh()
        assert not ok and message.startswith("held: the new answer removes 10 of 10 devices (100%")
        samples = {name: value for name, _, value in exp._self_samples()}
        assert samples["wardops_exporter_inventory_reload_held"] == 1
        assert samples["wardops_exporter_inventory_held_removals"] == 10
        assert samples["wardops_exporter_inventory_reload_success"] == 0
        assert samples["wardops_exporter_inventory_devices"] == 10  # still probing the last good set
        assert exp.refresh()[0] is False  # the same answer again (a 304 would do the same): still held
        time.sleep(1.1)
        assert exp.refresh() == (True, "0 devices")
        samples = {name: value for name, _, value in exp._self_samples()}
        assert samples["wardops_exporter_inventory_reload_held"] == 0
        assert samples["wardops_exporter_inventory_devices"] == 0 and exp.reload_success == 1


def test_a_changed_answer_restarts_the_hold_and_a_recovery_clears_it(tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text(inventory_text(10))
    src = FileSource(str(inv))
    exp = Exporter(src, loads_config("inventory: {hold_time: 1s, max_drop_share: 0.3}"), log=LOG, components=())
    assert exp.refresh() == (True, "10 devices")
    inv.write_text(inventory_text(7))  # 30 %: not more than the share, applied
    assert exp.refresh() == (True, "7 devices")
    inv.write_text(inventory_text(4))  # 3 of 7 = 43 %: held
    assert "removes 3 of 7 devices" in exp.refresh()[1]
    time.sleep(0.6)
    inv.write_text(inventory_text(3))  # a different answer: the hold starts again
    assert "removes 4 of 7 devices" in exp.refresh()[1]
    time.sleep(0.6)
    assert exp.refresh()[0] is False  # 0.6 s of this answer, not 1.2 s
    inv.write_text(inventory_text(7))  # the source recovered: nothing held any more
    assert exp.refresh()[0] is True and src.held == 0 and len(exp.devices) == 7


def test_an_operator_forces_a_held_answer_over_http():
    with SdServer() as server:
        src = sd_source(server)
        exp = Exporter(src, loads_config(""), log=LOG, components=())
        assert exp.refresh()[0]
        exp.start()
        web = WebServer(exp, "127.0.0.1", 0, lifecycle=True).start()
        base = f"http://127.0.0.1:{web.port}"
        try:
            server.answers["/api/v1/sd"] = json.dumps(SD[:2]).encode()
            status, body = get(base + "/-/reload", "POST")
            assert status == 500 and "held: the new answer removes 8 of 10 devices" in body
            metrics = get(base + "/metrics")[1]
            assert "wardops_exporter_inventory_reload_held 1" in metrics
            assert "wardops_exporter_inventory_devices 10" in metrics
            assert "\nwardops_exporter_threads " in metrics and "\nwardops_exporter_asyncio_tasks 0" in metrics
            status, body = get(base + "/-/reload?force=1", "POST")
            assert status == 200 and "2 devices" in body
            assert "wardops_exporter_inventory_reload_held 0" in get(base + "/metrics")[1]
        finally:
            web.stop()
            exp.stop()
