"""`wardops lab ...`: a simulated network for an inventory, built from network namespaces (root only).

The lab's name and inventory are recorded in /run/wardops/lab/NAME.json by `create`, so later
commands (`down`, `flap`, `branch-down`, ...) take device and branch names from the same inventory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from exporter.netns import NetnsError
from inventory.errors import InventoryError
from inventory.loader import load_inventory
from wardops.lab.flap import Flapper
from wardops.lab.targets import (
    TargetError,
    branch_devices,
    branches_devices,
    devices_named,
    ips,
    region_devices,
    upstream_devices,
)

STATE_DIR = Path(os.environ.get("WARDOPS_LAB_STATE", "/run/wardops/lab"))
DEFAULT_NAME = os.environ.get("WARDOPS_LAB", "wd")
DEFAULT_INVENTORY = "examples/inventory.yml"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


class LabError(RuntimeError):
    pass


def parse_duration(text: str) -> float:
    """'20s', '5m', '1h', '500ms' or plain seconds -> seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"bad duration {text!r} (use e.g. 20s, 5m, 500ms)")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def parse_percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"loss {text!r} must be between 0% and 100%")
    return value


def configure(parser) -> None:
    parser.add_argument("--name", default=DEFAULT_NAME, help="lab name, <= 8 chars (default %(default)s)")
    parser.add_argument("--inventory", help="inventory file (default: the one recorded by `create`, "
                                            f"else {DEFAULT_INVENTORY})")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")

    def add(name, help_, func):
        p = sub.add_parser(name, help=help_)
        p.set_defaults(func=lambda args, _f=func: _guarded(_f, args))
        return p

    p = add("create", "create the prober/target namespaces answering for the inventory's addresses", cmd_create)
    p.add_argument("--sites", type=int, default=1, metavar="N",
                   help="probe sites: prober namespaces NAME-p, NAME-p2, ... each with its own path to the "
                        "targets (default 1)")
    p.add_argument("--snmp", action="store_true",
                   help="also run one snmpd answering the SNMP devices (profile secrets from their env vars)")
    add("destroy", "remove the lab's namespaces", cmd_destroy)
    add("status", "show namespaces and which devices are down", cmd_status)
    p = add("down", "take devices dark (echo requests dropped)", cmd_down)
    p.add_argument("devices", nargs="+", metavar="DEVICE")
    p = add("up", "bring devices back (`--all`: every device)", cmd_up)
    p.add_argument("devices", nargs="*", metavar="DEVICE")
    p.add_argument("--all", action="store_true")
    p = add("flap", "toggle devices down/up every PERIOD for a bounded time (foreground)", cmd_flap)
    p.add_argument("devices", nargs="+", metavar="DEVICE")
    p.add_argument("--period", type=parse_duration, default=20.0,
                   help="time in each state: down PERIOD, up PERIOD, ... (default 20s)")
    p.add_argument("--for", dest="duration", type=parse_duration, default=300.0,
                   help="how long to flap (default 5m); the devices are left up")
    p = add("loss", "random loss of echo requests, e.g. `loss 1%%` (0 clears); all devices unless named",
            cmd_loss)
    p.add_argument("percent", type=parse_percent)
    p.add_argument("devices", nargs="*", metavar="DEVICE")
    p = add("branch-down", "take every device of a branch dark", cmd_branch_down)
    p.add_argument("branch")
    p = add("branch-up", "bring every device of a branch back", cmd_branch_up)
    p.add_argument("branch")
    p = add("site-down", "probe-site blackout: a prober namespace loses its path (canaries too)", cmd_site_down)
    p.add_argument("--site", type=int, default=1, metavar="K", help="probe site K (default 1)")
    p = add("site-loss", "random loss on one probe site's path only, e.g. `site-loss 1%% --site 2` (0 restores)",
            cmd_site_loss)
    p.add_argument("percent", type=parse_percent)
    p.add_argument("--site", type=int, default=1, metavar="K", help="probe site K (default 1)")
    p = add("site-up", "restore a probe site's path (ends its blackout or loss)", cmd_site_up)
    p.add_argument("--site", type=int, default=1, metavar="K", help="probe site K (default 1)")
    for verb, func, does in (("down", cmd_region_down, "take dark"), ("up", cmd_region_up, "bring back")):
        p = add(f"region-{verb}", f"{does} every device of these regions and/or branches at once "
                                  "(one nft batch)", func)
        p.add_argument("regions", nargs="*", metavar="REGION")
        p.add_argument("--branch", action="append", default=[], metavar="BRANCH", help="also this branch")
    for verb, func, does in (("down", cmd_upstream_down, "take dark"), ("up", cmd_upstream_up, "bring back")):
        p = add(f"upstream-{verb}", f"{does} a topology node: every branch behind it and its own "
                                    "devices (a region when the inventory has no explicit upstreams)", func)
        p.add_argument("upstream")
    p = add("exec", "run a command in the prober namespace, e.g. `exec -- ping -c1 198.18.1.1` "
                    "(`exec --site 2 -- ...`: in probe site 2's)", cmd_exec)
    p.add_argument("--site", type=int, default=1, metavar="K", help="probe site K (default 1)")
    p.add_argument("argv", nargs=argparse.REMAINDER)


# -- plumbing --------------------------------------------------------------------------------

def _guarded(func, args) -> int:
    if os.geteuid() != 0:
        print("wardops lab: needs root (it creates network namespaces and nftables rules); "
              "run it as root, e.g. `sudo .venv/bin/wardops lab ...`", file=sys.stderr)
        return 2
    try:
        return func(args) or 0
    except (LabError, TargetError, ValueError, NetnsError, _netns_error(), _snmp_error()) as exc:
        print(f"wardops lab: {exc}", file=sys.stderr)
        return 1
    except InventoryError as exc:
        print(f"wardops lab: invalid inventory:\n{exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        err = (exc.stderr or b"").decode(errors="replace").strip() if isinstance(exc.stderr, bytes) \
            else (exc.stderr or "").strip()
        print(f"wardops lab: {' '.join(map(str, exc.cmd))} failed: {err or exc}", file=sys.stderr)
        return 1


def _netns_error() -> type[Exception]:
    try:
        from wardops.lab.netns import LabError as NetnsError
    except ImportError:
        return LabError
    return NetnsError


def _snmp_error() -> type[Exception]:
    from wardops.lab.snmplab import SnmpLabError

    return SnmpLabError


def lab_class():
    try:
        from wardops.lab.netns import Lab
    except ImportError as exc:  # the core lands separately; say so instead of a traceback
        raise LabError(f"the namespace lab core (wardops.lab.netns) is not available: {exc}") from exc
    return Lab


def _state_file(name: str) -> Path:
    return STATE_DIR / f"{name}.json"


def _state(name: str) -> dict | None:
    try:
        return json.loads(_state_file(name).read_text())
    except FileNotFoundError:
        return None


def namespaces_exist(name: str) -> bool:
    return all(Path(f"/run/netns/{name}-{side}").exists() for side in ("p", "t"))


def _inventory(args):
    state = _state(args.name) or {}
    path = args.inventory or state.get("inventory") or DEFAULT_INVENTORY
    return load_inventory(path)


def _existing_lab(args):
    if not namespaces_exist(args.name):
        raise LabError(f"no lab {args.name!r} (namespaces {args.name}-p/{args.name}-t missing); "
                       f"create it with `wardops lab --name {args.name} create`")
    return lab_class()(args.name)


def _names(devices) -> str:
    names = [d.name for d in devices]
    return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")


# -- commands --------------------------------------------------------------------------------

def cmd_create(args) -> int:
    inv = _inventory(args)
    if args.snmp:  # check the secrets before anything is created
        from wardops.lab.snmplab import env_value, lab_credentials

        lab_credentials(inv, env_value)
    Lab = lab_class()
    lab = Lab(args.name, args.sites)
    if namespaces_exist(args.name):
        print(f"lab {args.name}: already exists")
    else:
        lab.create()
    state = _state(args.name) or {}
    if args.snmp and not _snmpd_alive(state):
        from wardops.lab.snmplab import env_value, snmp_devices, start_inventory_snmpd

        if not snmp_devices(inv):
            raise LabError(f"--snmp: no enabled device of {inv.source} has an SNMP profile")
        agent, summary = start_inventory_snmpd(f"{args.name}-t", inv, env_value)
        # The agent outlives this command (own session); `destroy` ends it by its process group.
        state["snmpd"] = {"pid": agent.pid, "workdir": str(agent.workdir)}
        print(f"lab {args.name}: {summary}")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    state.update({"name": args.name, "inventory": str(Path(inv.source).resolve()) if inv.source else None,
                  "created_at": state.get("created_at") or datetime.now(UTC).isoformat(timespec="seconds")})
    _state_file(args.name).write_text(json.dumps(state, indent=2) + "\n")
    lab = Lab(args.name)  # what exists (an existing lab keeps its sites)
    print(f"lab {args.name}: prober namespace{'s' if lab.sites > 1 else ''} {', '.join(lab.probe_namespaces)}, "
          f"targets namespace {args.name}-t; {len(inv.enabled_devices())} devices of {inv.source} answer ICMP")
    for ns in lab.probe_namespaces:
        print(f"  probe from it:   wardops exporter --inventory {inv.source} --netns {ns}")
    if inv.devices:
        print(f"  try it:          wardops lab --name {args.name} exec -- ping -c1 {inv.devices[0].ip}")
    return 0


def _snmpd_alive(state: dict) -> bool:
    pid = (state.get("snmpd") or {}).get("pid")
    return bool(pid) and Path(f"/proc/{pid}").exists()


def _stop_snmpd(state: dict) -> None:
    agent = state.get("snmpd") or {}
    if _snmpd_alive(state):
        try:
            os.killpg(agent["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
        for _ in range(50):
            if not Path(f"/proc/{agent['pid']}").exists():
                break
            time.sleep(0.1)
        else:
            os.killpg(agent["pid"], signal.SIGKILL)
    if agent.get("workdir"):
        shutil.rmtree(agent["workdir"], ignore_errors=True)


def cmd_destroy(args) -> int:
    _stop_snmpd(_state(args.name) or {})
    if namespaces_exist(args.name):
        lab_class()(args.name).destroy()
        print(f"lab {args.name}: destroyed")
    else:
        print(f"lab {args.name}: nothing to destroy")
    _state_file(args.name).unlink(missing_ok=True)
    return 0


def cmd_status(args) -> int:
    if not namespaces_exist(args.name):
        print(f"lab {args.name}: not created")
        return 3
    lab = _existing_lab(args)
    inv = _inventory(args)
    by_ip = {d.ip: d for d in inv.devices}
    down = sorted(lab.down_ips())
    snmp = "snmpd running" if _snmpd_alive(_state(args.name) or {}) else "no snmpd"
    if lab.sites == 1:
        site = "probe site BLACKED OUT" if lab.site_is_down() else "probe site up"
    else:
        site = "; ".join(f"site {k} ({lab.probe_ns_of(k)}) {lab.site_state(k).replace('down', 'BLACKED OUT')}"
                         for k in range(1, lab.sites + 1))
    print(f"lab {args.name}: namespaces {', '.join(lab.probe_namespaces)}, {args.name}-t; inventory {inv.source}; "
          f"{len(inv.devices)} devices, {len(down)} down; {site}; {snmp}")
    for ip in down:
        d = by_ip.get(ip)
        print(f"  down  {ip:<16} {d.name + '  ' + d.branch if d else '(not in inventory)'}")
    return 0


def cmd_down(args) -> int:
    devices = devices_named(_inventory(args), args.devices)
    _existing_lab(args).down(ips(devices))
    print(f"lab {args.name}: down: {_names(devices)}")
    return 0


def cmd_up(args) -> int:
    lab = _existing_lab(args)
    if args.all:
        addresses = sorted(lab.down_ips())
        lab.up(addresses)
        print(f"lab {args.name}: up: all ({len(addresses)} were down)")
        return 0
    if not args.devices:
        raise LabError("name the devices to bring up, or --all")
    devices = devices_named(_inventory(args), args.devices)
    lab.up(ips(devices))
    print(f"lab {args.name}: up: {_names(devices)}")
    return 0


def cmd_flap(args) -> int:
    devices = devices_named(_inventory(args), args.devices)
    flapper = Flapper(_existing_lab(args), ips(devices), args.period, args.duration)
    print(f"lab {args.name}: flapping {_names(devices)}: down {args.period:g} s / up {args.period:g} s "
          f"for {args.duration:g} s (Ctrl-C ends it; the devices are left up)", flush=True)
    previous = signal.signal(signal.SIGTERM, lambda *_: flapper.stop(timeout=0))
    try:
        flapper.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"lab {args.name}: flap ended after {len(flapper.transitions)} transitions; devices up")
    return 0


def cmd_loss(args) -> int:
    lab = _existing_lab(args)
    if args.devices:
        devices = devices_named(_inventory(args), args.devices)
        lab.set_loss(args.percent, ips=ips(devices))
        what = _names(devices)
    else:
        lab.set_loss(args.percent)
        what = "every device"
    print(f"lab {args.name}: {args.percent:g}% random loss on {what}" if args.percent
          else f"lab {args.name}: loss cleared")
    return 0


def _switch(args, devices, what: str, up: bool) -> int:
    """Take `devices` down or bring them back in one nft batch (branch, region, upstream alike)."""
    lab = _existing_lab(args)
    (lab.up if up else lab.down)(ips(devices))
    print(f"lab {args.name}: {what} {'up' if up else 'down'} ({len(devices)} devices)")
    return 0


def cmd_branch_down(args) -> int:
    return _switch(args, branch_devices(_inventory(args), args.branch), f"branch {args.branch!r}", up=False)


def cmd_branch_up(args) -> int:
    return _switch(args, branch_devices(_inventory(args), args.branch), f"branch {args.branch!r}", up=True)


def _site_name(lab, site: int) -> str:
    return "probe site" if lab.sites == 1 else f"probe site {site} ({lab.probe_ns_of(site)})"


def cmd_site_down(args) -> int:
    lab = _existing_lab(args)
    lab.site_down(args.site)
    print(f"lab {args.name}: {_site_name(lab, args.site)} blacked out: nothing answers its prober namespace, "
          f"canaries {', '.join(lab.canaries)} included (`site-up` restores)")
    return 0


def cmd_site_loss(args) -> int:
    lab = _existing_lab(args)
    lab.site_loss(args.percent, args.site)
    print(f"lab {args.name}: {_site_name(lab, args.site)}: {args.percent:g} % loss on its path only"
          + (" (`site-up` restores)" if args.percent else ""))
    return 0


def cmd_site_up(args) -> int:
    lab = _existing_lab(args)
    lab.site_up(args.site)
    print(f"lab {args.name}: {_site_name(lab, args.site)} up")
    return 0


def _region_scope(args):
    if not args.regions and not args.branch:
        raise LabError("name at least one REGION or --branch")
    inv = _inventory(args)
    devices = region_devices(inv, args.regions) if args.regions else []
    devices += branches_devices(inv, args.branch) if args.branch else []
    what = ", ".join([*args.regions, *args.branch])
    return devices, what


def cmd_region_down(args) -> int:
    return _switch(args, *_region_scope(args), up=False)


def cmd_region_up(args) -> int:
    return _switch(args, *_region_scope(args), up=True)


def cmd_upstream_down(args) -> int:
    devices = upstream_devices(_inventory(args), args.upstream)
    return _switch(args, devices, f"upstream {args.upstream!r} and what is behind it", up=False)


def cmd_upstream_up(args) -> int:
    devices = upstream_devices(_inventory(args), args.upstream)
    return _switch(args, devices, f"upstream {args.upstream!r} and what is behind it", up=True)


def cmd_exec(args) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise LabError("give a command, e.g. `wardops lab exec -- ping -c1 198.18.1.1`")
    lab = _existing_lab(args)
    return subprocess.run(lab.probe_argv(argv, args.site), check=False).returncode  # noqa: S603
