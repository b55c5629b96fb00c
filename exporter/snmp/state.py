"""Per-device counter state: device counters -> monotonic exported counters.

The exported value of a counter is the sum of the deltas seen since the exporter first saw the
interface, starting from the device's value at that time. It never goes down:
- a 32-bit counter that goes down wrapped: delta = value + 2**32 - last;
- a 64-bit counter that goes down near the top of its range wrapped likewise; anywhere else a
  decrease means the counter was reset (e.g. the interface was re-created): delta = value;
- when sysUpTime goes back the device rebooted and every counter restarted from 0: delta = value.
An interface whose name changes under the same ifIndex is a different interface: its state restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WRAP64_ZONE = 2**62  # a 64-bit "decrease" counts as a wrap only when last was this close to 2**64


@dataclass(slots=True)
class DeviceState:
    uptime_ticks: int | None = None
    # (row index, counter name) -> last device value / exported value. Plain dicts of ints on
    # purpose: ~150k counters at 1,000 devices as objects would all be tracked by the cyclic GC,
    # whose full passes then stall the shared event loop (measured: 200+ ms).
    last: dict[tuple[bytes, str], int] = field(default_factory=dict)
    exported: dict[tuple[bytes, str], int] = field(default_factory=dict)
    names: dict[bytes, str] = field(default_factory=dict)  # row index -> ifName, to spot re-use
    wraps: int = 0
    resets: int = 0

    def rebooted(self, uptime_ticks: int | None) -> bool:
        """True when sysUpTime went back since the last poll (TimeTicks wrap after 497 days counts too:
        the agent's counters are equally suspect then)."""
        return (uptime_ticks is not None and self.uptime_ticks is not None
                and uptime_ticks < self.uptime_ticks)

    def update(self, uptime_ticks: int | None, rows: dict[bytes, dict[str, int]],
               names: dict[bytes, str], bits: dict[str, int]) -> dict[bytes, dict[str, int]]:
        """Feed one poll's raw counters (row -> counter -> value); return the exported values.
        Rows missing from this poll are forgotten."""
        reboot = self.rebooted(uptime_ticks)
        if uptime_ticks is not None:
            self.uptime_ticks = uptime_ticks
        out: dict[bytes, dict[str, int]] = {}
        seen: set[tuple[bytes, str]] = set()
        for row, counters in rows.items():
            name = names.get(row, "")
            renamed = self.names.get(row, name) != name
            self.names[row] = name
            exported_row = out[row] = {}
            for counter, value in counters.items():
                key = (row, counter)
                seen.add(key)
                last = self.last.get(key)
                if last is None or renamed:
                    total = value
                else:
                    total = self.exported[key] + self._delta(last, value, bits.get(counter, 64), reboot)
                self.last[key] = value
                self.exported[key] = exported_row[counter] = total
        for key in [k for k in self.last if k not in seen]:
            del self.last[key], self.exported[key]
        for row in [r for r in self.names if r not in rows]:
            del self.names[row]
        return out

    def _delta(self, last: int, value: int, bits: int, reboot: bool) -> int:
        if reboot:
            self.resets += 1
            return value
        if value >= last:
            return value - last
        if bits == 32 or last >= 2**64 - WRAP64_ZONE:
            self.wraps += 1
            return value + 2**bits - last
        self.resets += 1
        return value
