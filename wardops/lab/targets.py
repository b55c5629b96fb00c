"""Which lab addresses a command acts on: devices by inventory name, whole branches, or everything."""

from __future__ import annotations

from difflib import get_close_matches

from inventory.model import Device, Inventory


class TargetError(ValueError):
    """A device or branch named on the command line is not in the inventory."""


def devices_named(inv: Inventory, names: list[str]) -> list[Device]:
    """Devices by name (an IP literal of an inventory device is accepted too), all errors at once."""
    by_name = inv.by_name()
    by_ip = {d.ip: d for d in inv.devices}
    found, unknown = [], []
    for name in names:
        device = by_name.get(name) or by_ip.get(name)
        if device is None:
            hint = get_close_matches(name, list(by_name), n=1)
            unknown.append(f"{name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        else:
            found.append(device)
    if unknown:
        raise TargetError(f"not in inventory {inv.source or ''}: {', '.join(unknown)}".replace("  ", " "))
    return found


def branch_devices(inv: Inventory, branch: str) -> list[Device]:
    devices = [d for d in inv.devices if d.branch == branch]
    if not devices:
        branches = sorted({d.branch for d in inv.devices})
        hint = get_close_matches(branch, branches, n=1)
        raise TargetError(f"no branch {branch!r} in inventory {inv.source}"
                          + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    return devices


def ips(devices: list[Device]) -> list[str]:
    return sorted({d.ip for d in devices})
