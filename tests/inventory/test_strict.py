"""The strict-config kit shared by the inventory, the exporter config and the generator settings:
one duration grammar, one message format, one error base, bounded messages, YAML aliases."""

from __future__ import annotations

import tracemalloc

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.config import ExporterConfigError, loads_config
from generators.settings import SettingsError, loads_settings
from inventory import InventoryError, loads_inventory
from inventory.errors import ConfigError, describe_value, quote
from inventory.located import MAX_ALIAS_NODES, read_yaml
from inventory.strict import Duration, format_duration, parse_duration

DEVICE = "devices:\n  - {name: a, ip: 198.18.0.1, region: R, branch: B}\n"


@pytest.mark.parametrize(("text", "seconds"), [
    ("1h30m", 5400.0), ("2d", 172800.0), ("1.5s", 1.5), ("500ms", 0.5), ("1m30s500ms", 90.5), ("0s", 0.0),
    ("2", 2.0), (0.25, 0.25), (3, 3.0), ("1d2h3m4s5ms", 93784.005),
])
def test_durations_in_the_grammar(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", [
    "1h 30m", "30m1h", "1m1m", "1.", "5 s", "1w", "s", "", "-1s", "1e3s", "1.0001ms", "0.5ms", True, None, [1],
    "9" * 100 + "s", float("inf"), float("nan"),
])
def test_durations_outside_the_grammar(text):
    assert parse_duration(text) is None


def test_duration_text_is_always_what_prometheus_and_alertmanager_read():
    # Integers with units in order are kept as written (generated configs do not churn) ...
    assert [Duration.parse(t).text for t in ("60s", "1h30m", "15m", "0s")] == ["60s", "1h30m", "15m", "0s"]
    # ... fractions and plain numbers are written canonically (model.ParseDuration has no fractions).
    assert [Duration.parse(t).text for t in ("1.5s", 90, "0.25", "1.5h")] == ["1s500ms", "1m30s", "250ms", "1h30m"]
    assert Duration.parse("1.5s").seconds == 1.5 and format_duration(86400 + 0.001) == "1d1ms"


def test_one_duration_grammar_and_one_message_in_every_loader():
    """The same mistake reads the same in the inventory, the exporter config and the settings."""
    bad = "1h 30m"
    with pytest.raises(InventoryError) as inv:
        loads_inventory(f"snmp_profiles:\n  p: {{version: 2c, community_env: C, timeout: {bad}}}\n", "inv.yml")
    with pytest.raises(ExporterConfigError) as exp:
        loads_config(f"policies:\n  isp: {{interval: {bad}}}\n", "exporter.yml")
    with pytest.raises(SettingsError) as st:
        loads_settings(f"thresholds:\n  loss_window: {bad}\n", "settings.yml")
    grammar = ("must be a duration like 1h30m, 5m, 2s, 1.5s, 500ms (units d h m s ms, largest first; a plain "
               "number is seconds), got string '1h 30m'")
    assert [str(p) for p in inv.value.problems] == [f"inv.yml:2: snmp_profiles.p.timeout: {grammar}"]
    assert [str(p) for p in exp.value.problems] == [f"exporter.yml:2: policies.isp.interval: {grammar}"]
    assert [str(p) for p in st.value.problems] == [f"settings.yml:2: thresholds.loss_window: {grammar}"]
    # ... and what the grammar allows is allowed everywhere (the exporter once rejected 1h, settings 1.5s).
    assert loads_inventory(DEVICE + "snmp_profiles:\n  p: {version: 2c, community_env: C, timeout: 1.5s}\n") \
        .snmp_profiles["p"].timeout == 1.5
    assert loads_config("snmp: {interval: 1h}\n").snmp.interval == 3600.0
    assert str(loads_settings("thresholds: {recovery_hold: 1.5m}\n").thresholds.recovery_hold) == "1m30s"


def test_unknown_keys_read_the_same_in_every_loader():
    with pytest.raises(InventoryError) as inv:
        loads_inventory("colour: red\n", "i.yml")
    with pytest.raises(ExporterConfigError) as exp:
        loads_config("site: {colour: red}\n", "e.yml")
    with pytest.raises(SettingsError) as st:
        loads_settings("exporter: {colour: red}\n", "s.yml")
    assert str(inv.value.problems[0]).startswith("i.yml:1: colour: unknown key (allowed: classify, ")
    assert str(exp.value.problems[0]) == "e.yml:1: site.colour: unknown key (allowed: canaries, name)"
    assert str(st.value.problems[0]) == "s.yml:1: exporter.colour: unknown key (allowed: targets, scheme)"


def test_one_error_base_and_no_loader_error_is_another_loaders():
    for cls in (InventoryError, SettingsError, ExporterConfigError):
        assert issubclass(cls, ConfigError)
    assert not issubclass(SettingsError, InventoryError) and not issubclass(ExporterConfigError, InventoryError)
    # A YAML syntax error is raised as the loader's own class.
    with pytest.raises(SettingsError):
        loads_settings("a: [\n")
    with pytest.raises(ExporterConfigError):
        loads_config("a: [\n")


def test_problems_come_in_source_order_across_sections():
    with pytest.raises(ExporterConfigError) as exc:
        loads_config("snmp: {interval: 0}\nsite: {canaries: [x]}\npolicies: {isp: {packets: 0}}\n", "e.yml")
    assert [p.location for p in exc.value.problems] == ["e.yml:1", "e.yml:2", "e.yml:3"]


BILLION_LAUGHS = "".join(
    [f'a: &a ["{"lol" * 3}"' + ', "lol"' * 9 + "]\n"]
    + [f"{x}: &{x} [" + ", ".join(f"*{p}" for _ in range(10)) + "]\n" for p, x in zip("abcdefgh", "bcdefghi", strict=True)]
    + ["devices: *i\n"])


def test_alias_bomb_is_rejected_in_bounded_memory_with_file_and_line():
    assert len(BILLION_LAUGHS) < 1400  # the 1.3 KB document that expands to 10^9 strings
    tracemalloc.start()
    try:
        with pytest.raises(InventoryError) as exc:
            loads_inventory(BILLION_LAUGHS, "bomb.yml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"peak {peak:,} bytes"
    (problem,) = exc.value.problems
    assert str(problem).startswith(f"bomb.yml:4: d[7]: aliases expand to more than {MAX_ALIAS_NODES:,} nodes")


def test_aliases_to_lists_and_mappings_are_values_like_any_other():
    inv = loads_inventory(DEVICE + """
maintenance:
  - name: nights
    branches: [B]
    weekdays: &workdays [monday, tuesday, wednesday, thursday, friday]
    times: &night ["01:00-03:00"]
  - name: weekend
    branches: [B]
    weekdays: *workdays
    times: *night
    timezone: Asia/Tbilisi
""")
    nights, weekend = inv.maintenance
    assert weekend.weekdays == nights.weekdays == ("monday", "tuesday", "wednesday", "thursday", "friday")
    assert weekend.times == (("01:00", "03:00"),)
    data, _ = read_yaml("base: &b {x: [1, 2]}\ncopy: *b\n", "t.yml")
    assert data["copy"] == data["base"] and data["copy"]["x"] is not data["base"]["x"]  # copies, not shared


def test_an_unknown_alias_is_named_with_its_line():
    with pytest.raises(InventoryError) as exc:
        read_yaml("a: 1\nb: *nope\n", "t.yml")
    assert [str(p) for p in exc.value.problems] == ["t.yml:2: b: unknown alias *nope"]


def test_messages_quote_at_most_80_characters_of_a_value():
    long = "x" * 1_000_000
    assert quote(long) == repr("x" * 80) + "… (1,000,000 characters)"
    assert describe_value(long).startswith("string 'xxx") and len(describe_value(long)) < 120
    assert quote(10 ** 5000) == "a 16610-bit number"
    with pytest.raises(InventoryError) as exc:
        loads_inventory(f"devices:\n  - {{name: a, ip: {long}, region: R, branch: B, role: {long}}}\n", "big.yml")
    assert all(len(str(p)) < 300 for p in exc.value.problems)
    with pytest.raises(SettingsError) as exc:
        loads_settings(f"receivers:\n  noc: {{webhooks: [{{url: 'ftp://{long}'}}]}}\n", "s.yml")
    assert all(len(str(p)) < 300 for p in exc.value.problems)


@pytest.mark.parametrize(("value", "message"), [
    ('"a\\x00b"', "must not contain control characters (NUL, CR, LF, tab, ...)"),
    ('"a\\r\\nb"', "must not contain control characters (NUL, CR, LF, tab, ...)"),
    ('"a\\tb"', "must not contain control characters (NUL, CR, LF, tab, ...)"),
    ('""', "must not be empty"),
    ('" edge"', "must not start or end with spaces"),
    ("x" * 129, "must be at most 128 characters"),
])
def test_label_values_that_would_break_exposition_are_rejected(value, message):
    with pytest.raises(InventoryError) as exc:
        loads_inventory(f"devices:\n  - {{name: a, ip: 198.18.0.1, region: R, branch: B, labels: {{rack: {value}}}}}\n",
                        "l.yml")
    (problem,) = exc.value.problems
    assert str(problem).startswith(f"l.yml:2: devices[0].labels.rack: {message}")


# --- fuzzing: the exporter config and the settings raise only their own ConfigError --------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["1h30m", "1.5s", "0", "-1", "198.18.0.1", "noc",
                                                           "http://127.0.0.1:1/", "127.0.0.1:9118", "isp"]))
keys = st.sampled_from([
    "policies", "role_policies", "default_policy", "policy_label", "icmp", "probe", "inventory", "snmp", "site",
    "isp", "default", "interval", "packets", "spacing", "timeout", "down_after", "up_after", "mode", "canaries",
    "allowed_cidrs", "deadline", "receivers", "routing", "intervals", "thresholds", "urls", "exporter",
    "external_labels", "noc", "webhooks", "emails", "telegram", "url", "critical", "watchdog", "loss_window",
    "flap_changes", "targets", "chat_id", "bot_token_env", "to", "from", "smarthost", "x"])
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(keys, inner, max_size=6)), max_leaves=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_fuzz_exporter_config_and_settings_raise_only_their_own_error(doc):
    text = yaml.safe_dump(doc)
    for load, error in ((loads_config, ExporterConfigError), (loads_settings, SettingsError)):
        try:
            load(text, "fuzz.yml")
        except error as exc:
            assert exc.problems and all(str(p).startswith("fuzz.yml") for p in exc.problems)
