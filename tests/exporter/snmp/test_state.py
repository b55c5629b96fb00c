"""Counter state: wraps, reboots, resets and re-used indexes never make an exported counter go down."""

from hypothesis import given
from hypothesis import strategies as st

from exporter.snmp.oids import COUNTER_BITS
from exporter.snmp.state import DeviceState

R = b"\x01"


def feed(state, uptime, **values):
    return state.update(uptime, {R: values}, {R: "Gi0/0"}, COUNTER_BITS)[R]


def test_first_poll_exports_device_value_then_deltas():
    s = DeviceState()
    assert feed(s, 100, ifInErrors=5, ifHCInOctets=1000) == {"ifInErrors": 5, "ifHCInOctets": 1000}
    assert feed(s, 200, ifInErrors=9, ifHCInOctets=1500) == {"ifInErrors": 9, "ifHCInOctets": 1500}


def test_32bit_wrap_adds_the_distance_through_zero():
    s = DeviceState()
    feed(s, 100, ifInErrors=2**32 - 10)
    assert feed(s, 200, ifInErrors=5)["ifInErrors"] == 2**32 - 10 + 15
    assert s.wraps == 1 and s.resets == 0


def test_64bit_wrap_near_top_and_reset_elsewhere():
    s = DeviceState()
    feed(s, 100, ifHCInOctets=2**64 - 100)
    assert feed(s, 200, ifHCInOctets=50)["ifHCInOctets"] == 2**64 - 100 + 150
    # a decrease far from the top is a reset (e.g. counters cleared): counted from zero
    feed(s, 300, ifHCInOctets=10_000)
    before = feed(s, 400, ifHCInOctets=20_000)["ifHCInOctets"]
    assert feed(s, 500, ifHCInOctets=300)["ifHCInOctets"] == before + 300
    assert s.wraps == 1 and s.resets == 1


def test_reboot_counts_new_values_from_zero_even_when_higher():
    s = DeviceState()
    feed(s, 10_000, ifInErrors=100, ifHCInOctets=5_000)
    out = feed(s, 50, ifInErrors=700, ifHCInOctets=10)  # uptime went back: device rebooted
    assert out == {"ifInErrors": 800, "ifHCInOctets": 5_010}


def test_renamed_row_and_vanished_rows_restart_state():
    s = DeviceState()
    s.update(1, {R: {"ifInErrors": 50}, b"\x02": {"ifInErrors": 7}}, {R: "a", b"\x02": "b"}, COUNTER_BITS)
    out = s.update(2, {R: {"ifInErrors": 3}}, {R: "other"}, COUNTER_BITS)
    assert out[R]["ifInErrors"] == 3
    assert (b"\x02", "ifInErrors") not in s.last and (b"\x02", "ifInErrors") not in s.exported


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1), st.booleans()), min_size=2,
                max_size=30))
def test_exported_counters_never_decrease(polls):
    s = DeviceState()
    uptime = 1_000_000
    last = None
    for v32, v64, reboot in polls:
        uptime = uptime // 2 if reboot else uptime + 6000
        out = feed(s, uptime, ifInErrors=v32, ifHCInOctets=v64)
        if last is not None:
            assert out["ifInErrors"] >= last["ifInErrors"]
            assert out["ifHCInOctets"] >= last["ifHCInOctets"]
        last = out
