import math

import pytest

from exporter.icmp.state import DOWN, UNKNOWN, UP, DeviceState, round_stats

GOOD = round_stats(2, [0.010, 0.014])
BAD = round_stats(2, [])


def run(pattern: str, down_after=3, up_after=2):
    """Feed rounds ('g' good, 'b' bad); return the state letter after each round."""
    st = DeviceState()
    seen = []
    for t, ch in enumerate(pattern):
        st.observe(GOOD if ch == "g" else BAD, float(t), down_after, up_after)
        seen.append({UNKNOWN: "?", UP: "U", DOWN: "D"}[st.state])
    return "".join(seen), st


@pytest.mark.parametrize("pattern, expected, changes", [
    ("g", "U", 0),  # the first good round decides UP at once, not a change
    ("b", "?", 0),
    ("bb", "??", 0),
    ("bbb", "??D", 0),  # UNKNOWN -> DOWN after down_after, not counted as a change
    ("gbb", "UUU", 0),  # 2 failed rounds < down_after=3
    ("gbbb", "UUUD", 1),
    ("gbbbg", "UUUDD", 1),  # 1 good round < up_after=2
    ("gbbbgg", "UUUDDU", 2),
    ("gbbgbbgbb", "UUUUUUUUU", 0),  # intermittent failures never reach 3 in a row
    ("gbbbgbgg", "UUUDDDDU", 2),  # a bad round resets the good streak
    ("bbbgg", "??DDU", 1),
])
def test_hysteresis(pattern, expected, changes):
    states, st = run(pattern)
    assert states == expected
    assert st.changes == changes


def test_counters_timestamps_and_last_round():
    st = DeviceState()
    st.observe(GOOD, 100.0, 2, 2)
    st.observe(BAD, 101.0, 2, 2)
    st.observe(BAD, 102.0, 2, 2)
    assert (st.state, st.since, st.changes) == (DOWN, 102.0, 1)
    assert (st.sent, st.received) == (6, 2)
    assert st.last is BAD
    st.observe(BAD, 103.0, 2, 2)
    assert st.since == 102.0  # staying DOWN keeps "down since"


def test_isp_policy_thresholds():
    states, _ = run("gbb", down_after=2, up_after=2)
    assert states == "UUD"


def test_round_stats():
    s = round_stats(3, [0.010, 0.020, 0.015])
    assert s.received == 3 and s.ok
    assert s.rtt_avg == pytest.approx(0.015)
    assert (s.rtt_min, s.rtt_max) == (0.010, 0.020)
    assert s.jitter == pytest.approx((0.010 + 0.005) / 2)
    assert s.loss == 0.0
    one = round_stats(3, [0.02])
    assert one.jitter == 0.0 and one.loss == pytest.approx(2 / 3)
    none = round_stats(3, [])
    assert not none.ok and none.loss == 1.0 and math.isnan(none.rtt_avg) and math.isnan(none.jitter)
    assert round_stats(0, []).loss == 1.0
