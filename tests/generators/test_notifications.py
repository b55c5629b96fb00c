"""Notification texts as the on-call engineer reads them: every template rendered by the real amtool
(Alertmanager 0.25) for a firing, a resolved and a mixed group, in the settings' time zone."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import pytest

from generators.alertmanager import zone_periods
from generators.settings import SettingsError, loads_settings
from tests.generators.helpers import TEST_INVENTORY, generate_into, need

GRAFANA = "https://grafana.bank.example"
AM = "http://alertmanager.bank.example:9093"
SILENCE = (f"Silence: {AM}/#/silences/new?filter=%7Balertname%3D%22DeviceDown%22%2Cbranch%3D%22Branch%20A%22"
           "%2Cdevice%3D%22a-rtr1%22%2Cregion%3D%22R1%22%2Cscope%3D%22device%22%2Cseverity%3D%22warning%22%7D")


def _out(tmp_path_factory, settings: str):
    path = tmp_path_factory.mktemp("notify")
    generate_into(path, TEST_INVENTORY, loads_settings(settings, "settings.yml"))
    return path


@pytest.fixture(scope="module")
def tbilisi(tmp_path_factory):
    return _out(tmp_path_factory, f"time_zone: Asia/Tbilisi\nurls: {{dashboards: '{GRAFANA}'}}\n")


@pytest.fixture(scope="module")
def utc(tmp_path_factory):
    return _out(tmp_path_factory, "{}\n")


@pytest.fixture(scope="module")
def berlin(tmp_path_factory):
    return _out(tmp_path_factory, "time_zone: Europe/Berlin\n")


def render(out, name: str, data: dict, kind: str = "text") -> str:
    data_file = out / f"data-{name}-{kind}.json"
    data_file.write_text(json.dumps(data))
    result = subprocess.run([need("amtool"), "template", "render", f"--template.type={kind}",
                             f"--template.glob={out / 'alertmanager' / 'templates' / '*.tmpl'}",
                             f'--template.text={{{{ template "{name}" . }}}}', f"--template.data={data_file}"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def alert(status: str, device: str, starts: str, ends: str = "0001-01-01T00:00:00Z", name: str = "DeviceDown",
          severity: str = "warning") -> dict:
    labels = {"alertname": name, "severity": severity, "scope": "device", "device": device, "region": "R1",
              "branch": "Branch A"}
    return {"status": status, "labels": labels, "fingerprint": device, "generatorURL": "",
            "annotations": {"summary": f"{device} in Branch A is down", "description": f"{device} does not answer",
                            "runbook_url": f"https://wiki.bank.example/runbooks/{name}.md"},
            "startsAt": starts, "endsAt": ends}


FIRING = alert("firing", "a-rtr1", "2026-12-02T12:00:05.123456789Z")
RESOLVED = alert("resolved", "a-sw1", "2026-12-02T11:00:00Z", "2026-12-02T11:07:30Z")


def group(*alerts: dict) -> dict:
    first = alerts[0]["labels"]
    common = {k: v for k, v in first.items() if all(a["labels"].get(k) == v for a in alerts)}
    return {"receiver": "noc", "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
            "externalURL": AM, "groupLabels": first, "commonLabels": common, "commonAnnotations": {},
            "alerts": list(alerts)}


def test_firing_group_text(tbilisi):
    text = render(tbilisi, "wardops.text", group(FIRING))
    assert text == f"""Firing (1):

FIRING DeviceDown (warning): a-rtr1 in Branch A is down
a-rtr1 does not answer
Device: {GRAFANA}/d/wardops-device?var-device=a-rtr1
Runbook: https://wiki.bank.example/runbooks/DeviceDown.md
Since: 2026-12-02 16:00:05 +04:00 Asia/Tbilisi

{SILENCE}
"""


def test_resolved_group_says_resolved_and_never_reads_as_down(tbilisi):
    data = group(RESOLVED)
    text = render(tbilisi, "wardops.text", data)
    assert text == f"""Resolved (1):

RESOLVED DeviceDown (warning), was: a-sw1 in Branch A is down
Device: {GRAFANA}/d/wardops-device?var-device=a-sw1
Runbook: https://wiki.bank.example/runbooks/DeviceDown.md
Since: 2026-12-02 15:00:00 +04:00 Asia/Tbilisi, resolved: 2026-12-02 15:07:30 +04:00 Asia/Tbilisi (after 7m30s)

"""
    assert render(tbilisi, "wardops.subject", data) == "[RESOLVED] DeviceDown R1 / Branch A"
    telegram = render(tbilisi, "wardops.telegram", data)
    assert "Firing" not in telegram and "Silence" not in telegram
    assert "RESOLVED DeviceDown (warning), was: a-sw1 in Branch A is down" in telegram


def test_mixed_group_lists_firing_then_resolved_each_with_its_status(tbilisi):
    data = group(FIRING, RESOLVED)
    for name in ("wardops.text", "wardops.telegram"):
        text = render(tbilisi, name, data)
        firing, resolved = text.index("Firing (1):"), text.index("Resolved (1):")
        assert firing < text.index("FIRING DeviceDown (warning): a-rtr1") < resolved
        assert resolved < text.index("RESOLVED DeviceDown (warning), was: a-sw1") < text.index("Silence:")
        assert text.count("Since: ") == 2 and text.count("resolved: ") == 1
    assert render(tbilisi, "wardops.subject", data) == "[FIRING:1] DeviceDown R1 / Branch A"
    assert render(tbilisi, "wardops.telegram", data).startswith("[FIRING:1] DeviceDown R1 / Branch A\n")


def test_subject_names_the_alert_of_a_warning_and_of_a_mixed_name_group(tbilisi):
    flapping = alert("firing", "a-sw1", "2026-12-02T12:00:00Z", name="DeviceFlapping")
    assert render(tbilisi, "wardops.subject", group(FIRING)) == "[FIRING:1] DeviceDown R1 / Branch A"
    assert render(tbilisi, "wardops.subject", group(FIRING, flapping)) == \
        "[FIRING:2] DeviceDown and others R1 / Branch A"


def test_email_html_escapes_by_context_and_links(tbilisi):
    html = render(tbilisi, "wardops.html", group(FIRING, RESOLVED), kind="html")
    assert f'<a href="{GRAFANA}/d/wardops-device?var-device=a-rtr1">Device dashboard</a>' in html
    assert '<b style="color: #c4162a">FIRING</b> DeviceDown (warning): a-rtr1 in Branch A is down' in html
    assert '<b style="color: #37872d">RESOLVED</b> DeviceDown (warning), was: a-sw1 in Branch A is down' in html
    assert "Since: 2026-12-02 16:00:05 +04:00 Asia/Tbilisi</p>" in html
    assert f'<a href="{AM}/#/silences/new?filter=%7balertname%3d%22DeviceDown%22%2cbranch%3d%22Branch%20A%22' in html
    hostile = alert("firing", "x<y>&z", "2026-12-02T12:00:00Z")
    html = render(tbilisi, "wardops.html", group(hostile), kind="html")
    assert "x&lt;y&gt;&amp;z in Branch A is down" in html and "var-device=x%3cy%3e%26z" in html


def test_branch_and_exporter_alerts_link_their_dashboards(tbilisi):
    branch = alert("firing", "", "2026-12-02T12:00:00Z", name="BranchDown", severity="critical")
    del branch["labels"]["device"]
    branch["labels"]["scope"] = "branch"
    text = render(tbilisi, "wardops.text", group(branch))
    assert f"Branch: {GRAFANA}/d/wardops-region?var-region=R1&var-branch=Branch+A" in text
    assert "var-branch=Branch+A" in render(tbilisi, "wardops.telegram", group(branch)).replace("&amp;", "&")
    exporter = {**branch, "labels": {"alertname": "ExporterDown", "severity": "critical", "scope": "exporter",
                                     "instance": "127.0.0.1:9118"}}
    assert f"Exporter: {GRAFANA}/d/wardops-exporter" in render(tbilisi, "wardops.text", group(exporter))


def test_default_zone_is_utc_and_says_so(utc):
    text = render(utc, "wardops.text", group(FIRING, RESOLVED))
    assert "Since: 2026-12-02 12:00:05 UTC\n" in text
    assert "resolved: 2026-12-02 11:07:30 UTC (after 7m30s)" in text
    assert "+0000" not in text and ".123" not in text


@pytest.mark.parametrize("starts,shown", [
    ("2026-07-01T10:00:00Z", "2026-07-01 12:00:00 +02:00 Europe/Berlin"),  # summer time
    ("2026-12-01T10:00:00Z", "2026-12-01 11:00:00 +01:00 Europe/Berlin"),
    ("2026-03-29T00:59:59Z", "2026-03-29 01:59:59 +01:00 Europe/Berlin"),  # the second before the change
    ("2026-03-29T01:00:00Z", "2026-03-29 03:00:00 +02:00 Europe/Berlin"),
    ("2041-07-01T10:00:00Z", "2041-07-01 10:00:00 UTC"),  # beyond the baked-in years
])
def test_daylight_saving_zones_follow_their_clock_changes(berlin, starts, shown):
    assert f"Since: {shown}\n" in render(berlin, "wardops.text", group(alert("firing", "a-rtr1", starts)))


def test_zone_periods():
    assert zone_periods("UTC") == []
    start, end = (int(datetime(y, 1, 1, tzinfo=UTC).timestamp()) for y in (2020, 2040))
    assert zone_periods("Asia/Tbilisi") == [(start, end, 4 * 3600, "+04:00 Asia/Tbilisi")]
    berlin = zone_periods("Europe/Berlin")
    assert len(berlin) == 41 and berlin[0][0] == start and berlin[-1][1] == end
    assert all(a[1] == b[0] and a[2] != b[2] for a, b in zip(berlin, berlin[1:], strict=False))
    assert zone_periods("America/St_Johns")[0][3] == "-03:30 America/St_Johns"


def test_unknown_time_zone_is_an_error_with_its_place():
    with pytest.raises(SettingsError) as err:
        loads_settings("site: x\ntime_zone: Asia/Tiflis-Nowhere\n", "s.yml")
    assert [str(p) for p in err.value.problems] == [
        "s.yml:2: time_zone: unknown time zone 'Asia/Tiflis-Nowhere' (an IANA name like UTC or Asia/Tbilisi)"]
    assert loads_settings("time_zone: Asia/Tbilisi\n").time_zone == "Asia/Tbilisi"


def test_alert_descriptions_show_whole_seconds_labelled_utc():
    # vmalert 1.79.5 renders humanizeTimestamp as "2026-12-02 12:00:05.123456789 +0000 UTC" and cannot
    # shift a time; every "since" trims it to "2026-12-02 12:00:05 UTC" (checked against a real vmalert
    # in test_live_queries).
    import yaml

    from tests.generators.helpers import _SINCE, REPO, render_annotation
    rules = [r for g in yaml.safe_load((REPO / "rules" / "alerts.yml").read_text())["groups"] for r in g["rules"]]
    since = [r for r in rules if "humanizeTimestamp" in r["annotations"]["description"]]
    assert {r["alert"] for r in since} >= {"IspLinkDown", "DeviceDown", "BranchDown"}
    for rule in since:
        assert rule["annotations"]["description"].count("humanizeTimestamp") == \
            rule["annotations"]["description"].count(_SINCE), rule["alert"]
    text = render_annotation(_SINCE, {}, 1796212805.123)
    assert text == "2026-12-02 12:00:05 UTC"
