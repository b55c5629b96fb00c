"""The webhook receiver over real HTTP (in-process server on an ephemeral port)."""

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from wardops.stack.webhook import WebhookReceiver


def post(url, body, content_type="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": content_type}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, json.loads(resp.read())


def notification(name, status="firing", **labels):
    return {"receiver": "webhook", "status": status, "alerts": [
        {"status": status, "labels": {"alertname": name, **labels}, "annotations": {"summary": "s"},
         "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}]}


def test_records_notifications_with_utc_time_and_json_lines(tmp_path):
    out = tmp_path / "n.jsonl"
    with WebhookReceiver(port=0, output=out) as rx:
        before = time.time()
        assert post(rx.url, notification("IspLinkDown", device="a"))[0] == 200
        assert post(rx.url, notification("DeviceDown", status="resolved", device="b"))[0] == 200
        alerts = rx.alerts()
    assert [(a.name, a.status, a.labels["device"]) for a in alerts] == [
        ("IspLinkDown", "firing", "a"), ("DeviceDown", "resolved", "b")]
    assert before <= alerts[0].received_ts <= time.time()
    assert alerts[0].received_at.tzinfo is not None and alerts[0].received_at.utcoffset().total_seconds() == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["notification"]["alerts"][0]["labels"]["alertname"] for line in lines] == [
        "IspLinkDown", "DeviceDown"]
    assert lines[0]["received_at"].endswith("+00:00")


def test_wait_for_returns_the_matching_alert_once_it_arrives():
    with WebhookReceiver(port=0) as rx:
        since = time.time()
        timer = threading.Timer(0.3, post, args=(rx.url, notification("BranchDown", branch="Branch 3")))
        timer.start()
        got = rx.wait_for(lambda a: a.name == "BranchDown", timeout=5, since=since)
        timer.join()
        assert got is not None and got.labels["branch"] == "Branch 3"
        assert got.received_ts - since >= 0.25
        assert rx.wait_for(lambda a: a.name == "Other", timeout=0.2) is None


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "invalid JSON"),
    (b'{"receiver": "x"}', "no alerts list"),
    (b"[1, 2]", "no alerts list"),
])
def test_rejects_what_is_not_a_notification(body, fragment):
    with WebhookReceiver(port=0) as rx:
        with pytest.raises(urllib.error.HTTPError) as err:
            post(rx.url, body)
        assert err.value.code == 400
        assert fragment in json.loads(err.value.read())["error"]
        assert rx.records() == []


def test_get_alerts_lists_records_and_health_answers():
    with WebhookReceiver(port=0) as rx:
        post(rx.url, notification("ExporterDown"))
        with urllib.request.urlopen(rx.url, timeout=5) as resp:
            listed = json.loads(resp.read())
        assert listed[0]["notification"]["alerts"][0]["labels"]["alertname"] == "ExporterDown"
        base = rx.url.rsplit("/", 1)[0]
        with urllib.request.urlopen(base + "/-/healthy", timeout=5) as resp:
            assert resp.status == 200
