"""Network namespaces for the lab: a prober namespace whose only routes lead to a target namespace
that answers for all of 198.18.0.0/15 and 2001:2::/48 (AnyIP local routes), with nftables sets to
take hosts down, flap them, or add random loss.

Entering a namespace (enter_netns, NetnsError) is the exporter's (exporter.netns); the lab builds on it.

Safety: the prober namespace has no default route and no route but the lab ranges, so nothing
probed from inside it can leave the machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Iterable

from exporter.netns import NetnsError, enter_netns

__all__ = ["Lab", "LabError", "NetnsError", "enter_netns", "list_netns", "remove_stale_labs", "require_root"]

LAB_V4 = "198.18.0.0/15"  # RFC 2544 benchmarking range
LAB_V6 = "2001:2::/48"  # RFC 5180 benchmarking range
LINK_V4 = ("192.0.2.1/30", "192.0.2.2/30")  # prober side, target side (TEST-NET-1)
LINK_V6 = ("2001:db8::1/126", "2001:db8::2/126")
NFT_TABLE = "wardops"
# The probe site's own path (its gateway, its upstream router): addresses a site that loses its
# network cannot reach either, while a dark region or branch leaves them answering. Inside LAB_V4,
# so answered like every lab address; the last /24 of it, which synthetic inventories (64
# addresses per branch from 198.18.0.0 up) reach only past branch 2,044.
CANARY_V4 = "198.19.255.0/24"
CANARIES = ("198.19.255.1", "198.19.255.2")
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
# Several probe sites: prober namespaces <name>-p (site 1), <name>-p2, ... each with its own veth
# pair to the one target namespace, so each site's path can fail on its own. Site k's link is the
# k-th /30 of TEST-NET-1 (and /126 of 2001:db8::), which leaves 63 sites; 8 is plenty for a lab.
MAX_SITES = 8
CHUNK = 500  # set elements per nft command


class LabError(Exception):
    pass


def _run(argv: list[str], input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(argv, input=input_text, text=True, capture_output=True, timeout=60)
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} not found (install iproute2 and nftables)") from exc
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(argv[:6])}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def require_root(what: str = "the lab") -> None:
    if os.geteuid() != 0:
        raise LabError(f"{what} needs root (it creates network namespaces and nftables rules)")


def list_netns() -> set[str]:
    proc = _run(["ip", "netns", "list"], check=False)
    return {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}


def site_link(site: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """(v4 prober, v4 target), (v6 prober, v6 target) addresses of probe site `site`'s link."""
    if site == 1:
        return LINK_V4, LINK_V6
    base = 4 * (site - 1)
    return ((f"192.0.2.{base + 1}/30", f"192.0.2.{base + 2}/30"),
            (f"2001:db8::{base + 1:x}/126", f"2001:db8::{base + 2:x}/126"))


def lab_sites(name: str, present: set[str] | None = None) -> int:
    """How many probe sites an existing lab has (1 when it has none or only the first)."""
    present = list_netns() if present is None else present
    return max([1] + [k for k in range(2, MAX_SITES + 1) if f"{name}-p{k}" in present])


class Lab:
    """Prober namespace `<name>-p` and target namespace `<name>-t` joined by a veth pair; with
    `sites` > 1, more prober namespaces `<name>-p2` ... (probe sites 2 ...), each joined to the
    target namespace by its own veth pair. `sites=None`: as many as the existing lab has."""

    def __init__(self, name: str = "wardops", sites: int | None = None):
        if not NAME_RE.match(name):
            raise LabError(f"lab name {name!r} must be 1-8 characters [a-z0-9], starting with a letter")
        if sites is not None and not 1 <= sites <= MAX_SITES:
            raise LabError(f"a lab has 1 to {MAX_SITES} probe sites, got {sites}")
        self.name = name
        self.sites = lab_sites(name) if sites is None else sites
        self.probe_ns = f"{name}-p"
        self.target_ns = f"{name}-t"
        self._veth_probe = f"{name}-pv"
        self._veth_target = f"{name}-tv"

    def probe_ns_of(self, site: int = 1) -> str:
        self._check_site(site)
        return self.probe_ns if site == 1 else f"{self.probe_ns}{site}"

    def _veths(self, site: int) -> tuple[str, str]:
        suffix = "" if site == 1 else str(site)
        return self._veth_probe + suffix, self._veth_target + suffix

    def _check_site(self, site: int) -> None:
        if not 1 <= site <= self.sites:
            raise LabError(f"lab {self.name} has probe sites 1 to {self.sites}, not {site}")

    @property
    def probe_namespaces(self) -> tuple[str, ...]:
        return tuple(self.probe_ns_of(k) for k in range(1, self.sites + 1))

    # -- lifecycle -------------------------------------------------------------------------------

    def exists(self) -> bool:
        return {*self.probe_namespaces, self.target_ns} <= list_netns()

    def create(self) -> Lab:
        require_root()
        self.destroy()  # a stale lab of the same name (crashed run) is replaced, not reused
        try:
            self._create()
        except BaseException:
            self.destroy()
            raise
        return self

    def _create(self) -> None:
        t = self.target_ns
        _run(["ip", "netns", "add", t])
        self._sysctl(t, {"net.ipv6.conf.all.accept_dad": "0", "net.ipv6.conf.default.accept_dad": "0"})
        _run(["ip", "-n", t, "link", "set", "lo", "up"])
        for site in range(1, self.sites + 1):
            self._create_site(site)
        # AnyIP: the target namespace owns the whole ranges, no per-address setup.
        _run(["ip", "-n", t, "-batch", "-"],
             f"route add local {LAB_V4} dev lo\nroute add local {LAB_V6} dev lo\n")
        self._sysctl(t, {
            # The kernel must answer every echo request it gets, at any rate.
            "net.ipv4.icmp_ratelimit": "0", "net.ipv4.icmp_msgs_per_sec": "1000000",
            "net.ipv4.icmp_msgs_burst": "1000000", "net.ipv6.icmp.ratelimit": "0",
            "net.ipv4.icmp_echo_ignore_broadcasts": "1",
            "net.ipv4.ip_unprivileged_port_start": "0",  # unprivileged SNMP agents bind :161
        })
        for site in range(1, self.sites + 1):
            self._wait_link(site)
        self._nft(f"""
table inet {NFT_TABLE} {{
  set down4 {{ type ipv4_addr; }}
  set down6 {{ type ipv6_addr; }}
  set loss4 {{ type ipv4_addr; }}
  set loss6 {{ type ipv6_addr; }}
  chain loss {{ }}
  chain input {{
    type filter hook input priority 0; policy accept;
    ip daddr @down4 drop
    ip6 daddr @down6 drop
    jump loss
  }}
}}
""")

    def _create_site(self, site: int) -> None:
        """Prober namespace of `site`, its veth pair to the target namespace, its routes (only the
        lab ranges) and its `site` chain."""
        p, t = self.probe_ns_of(site), self.target_ns
        veth_p, veth_t = self._veths(site)
        link4, link6 = site_link(site)
        _run(["ip", "netns", "add", p])
        # No duplicate-address detection: a fresh veth must route IPv6 at once, not after ~2 s.
        self._sysctl(p, {"net.ipv6.conf.all.accept_dad": "0", "net.ipv6.conf.default.accept_dad": "0"})
        _run(["ip", "link", "add", veth_p, "netns", p, "type", "veth", "peer", "name", veth_t, "netns", t])
        for ns, veth, v4, v6, lo in ((p, veth_p, link4[0], link6[0], True), (t, veth_t, link4[1], link6[1], False)):
            batch = (["link set lo up"] if lo else []) + [
                f"addr add {v4} dev {veth}", f"addr add {v6} dev {veth} nodad", f"link set {veth} up"]
            _run(["ip", "-n", ns, "-batch", "-"], "\n".join(batch) + "\n")
        gw4, gw6 = link4[1].split("/")[0], link6[1].split("/")[0]
        _run(["ip", "-n", p, "-batch", "-"],
             f"route add {LAB_V4} via {gw4}\nroute add {LAB_V6} via {gw6}\n")
        self._sysctl(p, {"net.ipv4.ping_group_range": "0 2147483647"})
        # The probe site's own path lives in its prober namespace: its `site` chain sees what
        # arrives over the veth (replies, and the other side's packets); a blackout drops all of
        # it, so every probe times out as on a site whose uplink died, and loss drops a share. It
        # drops on input, not output: a packet dropped on output makes sendto() fail with EPERM
        # at once, which no real dead uplink does.
        _run(self.probe_argv(["nft", "-f", "-"], site), f"""
table inet {NFT_TABLE} {{
  chain site {{ }}
  chain input {{
    type filter hook input priority 0; policy accept;
    iifname "{veth_p}" jump site
  }}
}}
""")

    def _wait_link(self, site: int = 1) -> None:
        """Return once both families cross the site's veth (bounded: ~5 s)."""
        link4, link6 = site_link(site)
        gw4, gw6 = link4[1].split("/")[0], link6[1].split("/")[0]
        for _ in range(50):
            probe = _run(self.probe_argv(["fping", "-q", "-r", "0", "-t", "100", gw4, gw6], site), check=False)
            if probe.returncode == 0:
                return
        raise LabError(f"the lab link of probe site {site} did not come up within 5 s")

    def destroy(self) -> None:
        present = list_netns()
        extra = [f"{self.probe_ns}{k}" for k in range(2, MAX_SITES + 1)]  # sites of an earlier lab too
        for ns in (self.probe_ns, *extra, self.target_ns):
            if ns in present:
                _run(["ip", "netns", "del", ns], check=False)

    def __enter__(self) -> Lab:
        return self.create()

    def __exit__(self, *exc) -> None:
        self.destroy()

    # -- commands inside the namespaces ----------------------------------------------------------

    @staticmethod
    def exec_argv(ns: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def probe_argv(self, argv: list[str], site: int = 1) -> list[str]:
        return self.exec_argv(self.probe_ns_of(site), argv)

    def _sysctl(self, ns: str, values: dict[str, str]) -> None:
        for key, value in values.items():
            _run(self.exec_argv(ns, ["sysctl", "-q", "-w", f"{key}={value}"]))

    def unprivileged_ping(self, enable: bool) -> None:
        """Allow (or forbid) SOCK_DGRAM ICMP for every group in the prober namespaces."""
        for ns in self.probe_namespaces:
            self._sysctl(ns, {"net.ipv4.ping_group_range": "0 2147483647" if enable else "1 0"})

    def _nft(self, script: str) -> None:
        _run(self.exec_argv(self.target_ns, ["nft", "-f", "-"]), script)

    # -- misbehaviour ----------------------------------------------------------------------------

    def down(self, ips: Iterable[str]) -> None:
        """Drop all traffic to these addresses (the hosts are dark)."""
        self._elements("add", "down", ips)

    def up(self, ips: Iterable[str]) -> None:
        wanted = {_canonical(ip) for ip in ips}
        self._elements("delete", "down", wanted & self.down_ips())

    def down_ips(self) -> set[str]:
        return self._set_members("down4") | self._set_members("down6")

    def set_loss(self, percent: float, ips: Iterable[str] | None = None) -> None:
        """Randomly drop `percent` % of packets to lab addresses (all, or only `ips`); 0 clears."""
        if not 0 <= percent <= 100:
            raise LabError(f"loss must be between 0 and 100 %, got {percent}")
        per_10k = round(percent * 100)
        script = [f"flush chain inet {NFT_TABLE} loss", f"flush set inet {NFT_TABLE} loss4",
                  f"flush set inet {NFT_TABLE} loss6"]
        if per_10k:
            if ips is None:
                script += [f"add rule inet {NFT_TABLE} loss ip daddr {LAB_V4} numgen random mod 10000 < {per_10k} drop",
                           f"add rule inet {NFT_TABLE} loss ip6 daddr {LAB_V6} numgen random mod 10000 < {per_10k} drop"]
            else:
                script += [f"add rule inet {NFT_TABLE} loss ip daddr @loss4 numgen random mod 10000 < {per_10k} drop",
                           f"add rule inet {NFT_TABLE} loss ip6 daddr @loss6 numgen random mod 10000 < {per_10k} drop"]
        self._nft("\n".join(script) + "\n")
        if per_10k and ips is not None:
            self._elements("add", "loss", ips)

    # -- correlated failures -----------------------------------------------------------------

    @property
    def canaries(self) -> tuple[str, ...]:
        """Addresses on the probe site's own path: answered unless the site is blacked out."""
        return CANARIES

    def site_down(self, site: int = 1) -> None:
        """Probe-site blackout (site `site`'s path cut): nothing its prober sends is answered,
        canaries included; the target namespace (and its down set) and the other sites are
        untouched, so `site_up()` restores exactly the state before."""
        self._site(f"flush chain inet {NFT_TABLE} site\nadd rule inet {NFT_TABLE} site drop\n", site)

    def site_loss(self, percent: float, site: int = 1) -> None:
        """Random loss of `percent` % on site `site`'s path only (0 restores): what reaches its
        prober namespace is dropped at random; other sites see the targets as they are."""
        if not 0 <= percent <= 100:
            raise LabError(f"loss must be between 0 and 100 %, got {percent}")
        per_10k = round(percent * 100)
        rule = f"add rule inet {NFT_TABLE} site numgen random mod 10000 < {per_10k} drop\n" if per_10k else ""
        self._site(f"flush chain inet {NFT_TABLE} site\n{rule}", site)

    def site_up(self, site: int = 1) -> None:
        """Restore site `site`'s path (ends a blackout or loss on it)."""
        self._site(f"flush chain inet {NFT_TABLE} site\n", site)

    def site_state(self, site: int = 1) -> str:
        """"up", "down" (blacked out) or "loss N%" for site `site`'s path."""
        proc = _run(self.probe_argv(["nft", "-j", "list", "chain", "inet", NFT_TABLE, "site"], site), check=False)
        if proc.returncode != 0:  # a lab created before the site chain existed: never blacked out
            return "up"
        for item in json.loads(proc.stdout).get("nftables", []):
            rule = item.get("rule")
            if rule is None:
                continue
            for expr in rule.get("expr", []):
                match = expr.get("match", {})
                if isinstance(match.get("left"), dict) and "numgen" in match["left"]:
                    return f"loss {match['right'] / 100:g}%"
            return "down"
        return "up"

    def site_is_down(self, site: int = 1) -> bool:
        return self.site_state(site) == "down"

    def _site(self, script: str, site: int = 1) -> None:
        proc = _run(self.probe_argv(["nft", "-f", "-"], site), script, check=False)
        if proc.returncode != 0:
            raise LabError(f"lab {self.name}: no probe-site chain in {self.probe_ns_of(site)} (a lab created "
                           f"by an older wardops? destroy and create it again): {proc.stderr.strip()}")

    def _elements(self, verb: str, base: str, ips: Iterable[str]) -> None:
        by_family: dict[int, list[str]] = {4: [], 6: []}
        for ip in ips:
            addr = ipaddress.ip_address(ip)
            if addr not in ipaddress.ip_network(LAB_V4 if addr.version == 4 else LAB_V6):
                raise LabError(f"{ip} is outside the lab ranges {LAB_V4} / {LAB_V6}")
            by_family[addr.version].append(addr.compressed)
        lines = []
        for family, addrs in by_family.items():
            for i in range(0, len(addrs), CHUNK):
                chunk = ", ".join(addrs[i:i + CHUNK])
                lines.append(f"{verb} element inet {NFT_TABLE} {base}{family} {{ {chunk} }}")
        if lines:
            self._nft("\n".join(lines) + "\n")

    def _set_members(self, set_name: str) -> set[str]:
        proc = _run(self.exec_argv(self.target_ns, ["nft", "-j", "list", "set", "inet", NFT_TABLE, set_name]))
        out: set[str] = set()
        for item in json.loads(proc.stdout).get("nftables", []):
            for elem in item.get("set", {}).get("elem", []):
                if isinstance(elem, str):
                    out.add(_canonical(elem))
        return out


def _canonical(ip: str) -> str:
    return ipaddress.ip_address(ip).compressed


def remove_stale_labs(prefix: str = "wd") -> list[str]:
    """Remove test labs named `<prefix><pid>` whose creating process is gone (crashed runs)."""
    removed = []
    for ns in sorted(list_netns()):
        m = re.match(rf"^{re.escape(prefix)}(\d+)-(?:p\d*|t)$", ns)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            _run(["ip", "netns", "del", ns], check=False)
            removed.append(ns)
    return removed
