"""--log.level / --log.format like Go exporters; --config.check (and its older spelling)."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest

from exporter.logs import parse_logfmt, setup_logging
from tests.exporter.sdserver import SdServer
from wardops.cli import main

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "testdata"
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture
def logs():
    """(setup(level, fmt) -> logger, text written so far); the loggers are put back afterwards."""
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level, logging.getLogger(n).propagate)
             for n in ("wardops.exporter", "wardops.snmp")}
    buf = io.StringIO()
    yield (lambda level="info", fmt="logfmt": setup_logging(level, fmt, buf)), buf.getvalue
    for name, (handlers, level, propagate) in saved.items():
        log = logging.getLogger(name)
        log.handlers[:], log.level, log.propagate = handlers, level, propagate


def _boom(log):
    try:
        raise ValueError('bad "value"\nsecond line')
    except ValueError:
        log.exception('msg="render failed" section=%s', "icmp")


def test_logfmt_line(logs):
    setup, text = logs
    log = setup("info")
    log.info('msg="inventory loaded" source=%s devices=%d', "/etc/wardops/inv.yml", 12)
    log.warning('msg="x" note="%s" quote="say \\"hi\\""', "two words")
    log.debug('msg="not shown"')
    lines = text().splitlines()
    assert re.fullmatch(rf'ts={TS} level=info msg="inventory loaded" source=/etc/wardops/inv.yml devices=12',
                        lines[0])
    assert lines[1].endswith('level=warn msg="x" note="two words" quote="say \\"hi\\""')
    assert len(lines) == 2


def test_json_lines(logs):
    setup, text = logs
    log = setup("debug", "json")
    log.info('msg="inventory loaded" source="%s" devices=%d', "a b", 3)
    log.debug("snmp poll failed device=%s error=%s", "rtr1", "timeout")  # free text becomes msg
    first, second = (json.loads(line) for line in text().splitlines())
    assert re.fullmatch(TS, first.pop("ts"))
    assert first == {"level": "info", "msg": "inventory loaded", "source": "a b", "devices": "3"}
    second.pop("ts")
    assert second == {"level": "debug", "msg": "snmp poll failed", "device": "rtr1", "error": "timeout"}


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_no_traceback_below_debug(logs, fmt):
    setup, text = logs
    _boom(setup("info", fmt))
    out = text()
    assert out.count("\n") == 1 and "Traceback" not in out
    fields = json.loads(out) if fmt == "json" else parse_logfmt(out.strip())
    assert fields["err"] == 'ValueError: bad "value" second line'
    assert fields["level"] == "error" and fields["msg"] == "render failed" and "stack" not in fields


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_traceback_at_debug_stays_one_line(logs, fmt):
    setup, text = logs
    _boom(setup("debug", fmt))
    out = text()
    assert out.count("\n") == 1
    fields = json.loads(out) if fmt == "json" else parse_logfmt(out.strip())
    assert fields["stack"].startswith("Traceback (most recent call last):") and "in _boom" in fields["stack"]


def test_snmp_logger_shares_the_format(logs):
    setup, text = logs
    setup("info", "json")
    logging.getLogger("wardops.snmp").warning("snmp poll failed device=%s", "rtr1")
    assert json.loads(text())["device"] == "rtr1"


def test_bad_flag_values_are_refused(capsys):
    for argv in (["--log.format", "xml"], ["--log.level", "trace"]):
        with pytest.raises(SystemExit) as exc:
            main(["exporter", "--inventory", "x.yml", *argv])
        assert exc.value.code == 2
    assert "invalid choice: 'trace'" in capsys.readouterr().err


# -- --config.check --------------------------------------------------------------------------------

def test_config_check_ok(capsys):
    code = main(["exporter", "--config.check", "--config.file", str(DATA / "valid-full.yml"),
                 "--inventory", str(ROOT / "examples" / "inventory.yml")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("OK: config ") and "OK: inventory " in out and "enabled devices" in out


def test_config_check_reports_config_and_inventory_errors_at_once(tmp_path, capsys):
    inv = tmp_path / "inv.yml"
    inv.write_text("devices:\n  - {name: a, ip: 300.1.1.1, region: r, branch: b}\n"
                   "  - {name: b, ip: 10.0.0.2, region: r, branch: b, role: nope}\n")
    code = main(["exporter", "--config.check", "--config.file", str(DATA / "invalid-icmp.yml"),
                 "--inventory", str(inv)])
    err = capsys.readouterr().err
    assert code == 1
    assert "invalid-icmp.yml:2: icmp.mode" in err and "3 error(s) in" in err
    assert f"{inv}:2:" in err and f"{inv}:3:" in err and f"2 error(s) in {inv}" in err


def test_config_check_fetches_an_inventory_url(capsys):
    with SdServer() as sd:
        assert main(["exporter", "--config.check", "--inventory", sd.url]) == 0
        assert "OK: inventory http://127.0.0.1:" in capsys.readouterr().out
        sd.answers["/api/v1/sd"] = b'[{"targets": ["x"], "labels": {}}]'
        assert main(["exporter", "--config.check", "--inventory", sd.url]) == 1
        assert "invalid HTTP SD" in capsys.readouterr().err


def test_old_check_config_spelling_still_works(capsys):
    assert main(["exporter", "--check-config", str(DATA / "valid-full.yml")]) == 0
    assert "isp every 2s" in capsys.readouterr().out


def test_config_check_says_what_the_site_probes(tmp_path, capsys):
    inv = tmp_path / "inv.yml"
    inv.write_text("devices:\n"
                   "  - {name: a, ip: 198.18.0.1, region: r, branch: b, sites: [dc1]}\n"
                   "  - {name: b, ip: 198.18.0.2, region: r, branch: b, sites: [dc2]}\n"
                   "  - {name: c, ip: 198.18.0.3, region: r, branch: b}\n")
    assert main(["exporter", "--config.check", "--inventory", str(inv), "--site", "dc1"]) == 0
    assert "OK: probe site dc1: 2 of 3 enabled devices" in capsys.readouterr().out
    # a site no device names still probes those naming none; a site name with a typo shows it
    assert main(["exporter", "--config.check", "--inventory", str(inv), "--site", "dc-1"]) == 0
    assert "probe site dc-1: 1 of 3 enabled devices" in capsys.readouterr().out
    assert main(["exporter", "--config.check", "--inventory", str(inv), "--site", "Bad Site"]) == 1
    assert "--site must be a probe site name" in capsys.readouterr().err
