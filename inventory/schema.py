"""Validate plain inventory data (from YAML or JSON) into an immutable Inventory.

Every problem is collected and reported at once (`FILE:LINE: dotted.path: message`, or a JSON
path for data without lines); nothing is partially applied: either the whole inventory is valid
and returned, or InventoryError lists all problems. Built on the strict-config kit
(inventory/strict.py).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import zoneinfo
from types import MappingProxyType

from inventory.errors import InventoryError, bounded, describe_value, quote
from inventory.located import Locator, Path_
from inventory.model import (
    EXTRA_OID_TYPES,
    RESERVED_LABELS,
    ROLES,
    SNMP_AUTH_PROTOCOLS,
    SNMP_PRIV_PROTOCOLS,
    SNMP_VERSIONS,
    WEEKDAYS,
    ClassifyRule,
    Device,
    ExtraOid,
    Inventory,
    MaintenanceWindow,
    Match,
    SnmpProfile,
    Topology,
    Upstream,
    frozen_labels,
)
from inventory.strict import INVALID, MAX_TEXT, Checker, field_default, label_value_problem

TOP_KEYS = ("classify", "snmp_profiles", "maintenance", "devices", "topology")
TOPOLOGY_KEYS = ("region_upstreams", "upstreams")
UPSTREAM_KEYS = ("devices", "upstream", "regions", "branches")
DEVICE_KEYS = ("name", "ip", "region", "branch", "role", "isp", "snmp", "enabled", "labels", "sites")
SETTABLE_KEYS = ("role", "isp", "region", "branch", "snmp", "enabled", "labels", "sites")
MATCH_KEYS = ("ip_last_octet", "ip_in", "name_regex", "labels", "region", "branch")
SECRET_FIELDS = ("community", "auth_key", "priv_key")
PROFILE_KEYS = ("version", "username", "auth_protocol", "priv_protocol", "port", "timeout", "retries",
                "max_repetitions", "extra_oids") + tuple(f"{f}_{k}" for f in SECRET_FIELDS for k in ("env", "file"))
EXTRA_OID_KEYS = ("metric", "oid", "type", "table")
MAX_EXTRA_OIDS = 32
_METRIC_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_OID_RE = re.compile(r"^[12](\.(0|[1-9][0-9]{0,9})){1,127}$")
# Names the SNMP exporter already uses (wardops_snmp_<name>): an extra OID must not collide.
RESERVED_METRIC_PREFIXES = ("if_", "poll_", "round_", "last_round")
RESERVED_METRICS = frozenset({"up", "uptime_seconds"})
MAINTENANCE_KEYS = ("name", "branches", "regions", "devices", "weekdays", "times", "timezone")
_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")


def json_locator(path: Path_) -> str:
    """Location text for data that did not come from a file: `$.devices[3].ip`."""
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{bounded(str(part))}"
    return out


class _Checker(Checker):
    """The kit's checker plus the inventory's label rules."""

    # The probe site names of the generator settings (`sites:`, or the one `site:`) when the
    # inventory is checked against them; None: any well-formed name (the inventory alone).
    known_sites: tuple[str, ...] | None = None

    def sites(self, value: object, path: Path_) -> tuple[str, ...] | None:
        """`sites: [NAME, ...]`: which probe sites probe the device; at least one (a device no site
        probes is `enabled: false`), each once, each a site the settings define (when known)."""
        items = self.seq(value, path, "a non-empty list of probe site names", null_ok=False, non_empty=True)
        if items is None:
            return None
        out: list[str] = []
        ok = True
        for j, item in enumerate(items):
            name = self.name(item, path + (j,), "a probe site name")
            if name is INVALID:
                ok = False
            elif name in out:
                self.error(path + (j,), f"duplicate site {quote(name)}")
                ok = False
            elif self.known_sites is not None and name not in self.known_sites:
                self.error(path + (j,), f"unknown probe site {quote(name)} (the settings define: "
                                        f"{', '.join(self.known_sites)})")
                ok = False
            else:
                out.append(name)
        return tuple(out) if ok else None

    def labels(self, value: object, path: Path_) -> dict[str, str] | None:
        """Extra labels: valid names, not reserved, values that are safe label values."""
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping of label name to value, got {describe_value(value)}")
            return None
        out = {}
        ok = True
        for key, val in value.items():
            p = path + (key if isinstance(key, str) else str(key),)
            if self.label_name(key, p) is INVALID:
                ok = False
            elif key in RESERVED_LABELS:
                self.error(p, f"label {quote(key)} is reserved (set the field instead)")
                ok = False
            elif not isinstance(val, str):
                self.error(p, f"label value must be a string (quote numbers), got {describe_value(val)}")
                ok = False
            elif problem := label_value_problem(val):
                self.error(p, problem)
                ok = False
            else:
                out[key] = val
        return out if ok else None


def build_inventory(data: object, locate: Locator = json_locator, source: str = "",
                    known_sites: tuple[str, ...] | None = None) -> Inventory:
    """Validate `data` and return the Inventory, or raise InventoryError listing every problem.
    `known_sites`: the probe site names the generator settings define; a `sites:` naming another
    is then an error at its line (None: names are checked for form only)."""
    chk = _Checker(locate)
    chk.known_sites = tuple(known_sites) if known_sites is not None else None
    if data is None:
        data = {}
    top = chk.mapping(data, (), TOP_KEYS)
    if top is None:
        chk.raise_if_any(InventoryError)
    profiles = _profiles(chk, top.get("snmp_profiles"))
    rules = _classify(chk, top.get("classify"), profiles)
    device_paths: list[Path_] = []
    devices = _devices(chk, top.get("devices"), rules, profiles, device_paths)
    _branch_sites(chk, devices, device_paths)
    windows = _maintenance(chk, top.get("maintenance"), devices)
    topology = _topology(chk, top.get("topology"), devices)
    chk.raise_if_any(InventoryError)
    return Inventory(devices=tuple(devices), snmp_profiles=MappingProxyType(profiles),
                     classify=tuple(rules), maintenance=tuple(windows), topology=topology, source=source)


# --- SNMP profiles ----------------------------------------------------------------------------

def _profiles(chk: _Checker, value: object) -> dict[str, SnmpProfile]:
    if value is None:
        return {}
    path: Path_ = ("snmp_profiles",)
    if not isinstance(value, dict):
        chk.error(path, f"must be a mapping of name to profile, got {describe_value(value)}")
        return {}
    out: dict[str, SnmpProfile] = {}
    extra_seen: dict[str, tuple[str, bool, str]] = {}
    for name, raw in value.items():
        p = path + (name if isinstance(name, str) else str(name),)
        if chk.name(name, p, "a profile name") is INVALID:
            continue
        if isinstance(raw, dict) and any(k in raw for k in SECRET_FIELDS):
            for k in SECRET_FIELDS:
                if k in raw:
                    chk.error(p + (k,), f"inline secret {quote(k)} is not allowed; reference it with {k}_env or {k}_file")
            raw = {k: v for k, v in raw.items() if k not in SECRET_FIELDS}
        m = chk.mapping(raw, p, PROFILE_KEYS, null_ok=False)
        if m is None:
            continue
        before = chk.count()
        version = m.get("version")
        if isinstance(version, int | float) and not isinstance(version, bool):
            version = {1: "1", 2: "2c", 3: "3"}.get(version, version)
        if version not in SNMP_VERSIONS:
            chk.error(p + ("version",), f"must be one of 1, 2c, 3, got {describe_value(m.get('version'))}")
        secrets = {f: chk.secret(m, f, p) for f in SECRET_FIELDS}
        secrets = {f: (None if v is INVALID else v) for f, v in secrets.items()}
        auth = _protocol(chk, m, p, "auth_protocol", SNMP_AUTH_PROTOCOLS)
        priv = _protocol(chk, m, p, "priv_protocol", SNMP_PRIV_PROTOCOLS)
        username = None
        if version in ("1", "2c"):
            if secrets["community"] is None:
                chk.error(p, f"SNMP v{version} needs community_env or community_file")
            for f in ("username", "auth_protocol", "priv_protocol", "auth_key_env", "auth_key_file",
                      "priv_key_env", "priv_key_file"):
                if f in m:
                    chk.error(p + (f,), "only valid for SNMP v3")
        elif version == "3":
            username = chk.text(m.get("username"), p + ("username",))
            if "community_env" in m or "community_file" in m:
                chk.error(p, "community is only valid for SNMP v1/v2c")
            if auth and secrets["auth_key"] is None:
                chk.error(p, "auth_protocol needs auth_key_env or auth_key_file")
            if secrets["auth_key"] is not None and not auth:
                chk.error(p, "an auth key needs auth_protocol")
            if priv and not auth:
                chk.error(p, "priv_protocol needs auth_protocol (authPriv)")
            if priv and secrets["priv_key"] is None:
                chk.error(p, "priv_protocol needs priv_key_env or priv_key_file")
            if secrets["priv_key"] is not None and not priv:
                chk.error(p, "a priv key needs priv_protocol")
        extra_oids = _extra_oids(chk, m.get("extra_oids"), p + ("extra_oids",), extra_seen)
        profile = chk.build(
            SnmpProfile, m, p, base=SnmpProfile(
                name=name, version=version, community=secrets["community"], username=username,
                auth_protocol=auth, auth_key=secrets["auth_key"], priv_protocol=priv,
                priv_key=secrets["priv_key"], extra_oids=extra_oids),
            port=lambda v, q: chk.integer(v, q, 1, 65535),
            timeout=lambda v, q: chk.seconds(v, q, 0.05, 60, inclusive=True),
            retries=lambda v, q: chk.integer(v, q, 0, 10),
            max_repetitions=lambda v, q: chk.integer(v, q, 1, 200))
        # An invalid profile keeps its name (None), so devices naming it get no second error.
        out[name] = profile if chk.count() == before else None
    return out


def _extra_oids(chk: _Checker, value, p: Path_, seen: dict) -> tuple[ExtraOid, ...]:
    """`extra_oids: [{metric, oid, type: gauge|counter, table: bool}]`. A metric name means one
    series family in the exporter, so it must keep one type and shape across all profiles (`seen`)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_EXTRA_OIDS:
        chk.error(p, f"must be a list of at most {MAX_EXTRA_OIDS} entries, got {describe_value(value)}")
        return ()
    out = []
    for i, raw in enumerate(value):
        q = p + (i,)
        m = chk.mapping(raw, q, EXTRA_OID_KEYS, null_ok=False)
        if m is None:
            continue
        before = chk.count()
        metric, oid_text = m.get("metric"), m.get("oid")
        kind = m.get("type", field_default(ExtraOid, "type"))
        table = m.get("table", field_default(ExtraOid, "table"))
        if not isinstance(metric, str) or not _METRIC_RE.match(metric) or metric.endswith("_total") \
                or metric.startswith(RESERVED_METRIC_PREFIXES) or metric in RESERVED_METRICS:
            chk.error(q + ("metric",), "must match [a-z][a-z0-9_]* (exported as wardops_snmp_<metric>; no _total "
                                       f"suffix, not a built-in name), got {describe_value(metric)}")
        if not isinstance(oid_text, str) or not _OID_RE.match(oid_text):
            chk.error(q + ("oid",), f"must be a dotted numeric OID like 1.3.6.1.4.1.9.2.1.58.0, "
                                    f"got {describe_value(oid_text)}")
            oid_text = None
        if kind not in EXTRA_OID_TYPES:
            chk.error(q + ("type",), f"must be one of {', '.join(EXTRA_OID_TYPES)}, got {describe_value(kind)}")
        if not isinstance(table, bool):
            chk.error(q + ("table",), f"must be true or false, got {describe_value(table)}")
        elif oid_text is not None and not table and not oid_text.endswith(".0"):
            chk.error(q + ("oid",), "a scalar oid must be the instance ending in .0 (set table: true to walk a column)")
        if chk.count() != before:
            continue
        shape = (kind, table, chk.locate(q))
        first = seen.setdefault(metric, shape)
        if first is not shape and first[:2] != shape[:2]:
            chk.error(q, f"metric {quote(metric)} is a {'table' if first[1] else 'scalar'} {first[0]} "
                         f"at {first[2]}; one metric name must keep one type and shape")
            continue
        if any(e.metric == metric for e in out):
            chk.error(q + ("metric",), f"duplicate metric {quote(metric)} in this profile")
            continue
        out.append(ExtraOid(metric=metric, oid=tuple(int(x) for x in oid_text.split(".")), type=kind, table=table))
    return tuple(out)


def _protocol(chk: _Checker, m: dict, p: Path_, key: str, allowed: tuple[str, ...]) -> str | None:
    if key not in m:
        return None
    value = m[key]
    if isinstance(value, str) and value.upper() in allowed:
        return value.upper()
    chk.error(p + (key,), f"must be one of {', '.join(allowed)}, got {describe_value(value)}")
    return None


# --- classification rules ---------------------------------------------------------------------

def _classify(chk: _Checker, value: object, profiles: dict) -> list[ClassifyRule]:
    if value is None:
        return []
    if not isinstance(value, list):
        chk.error(("classify",), f"must be a list of rules, got {describe_value(value)}")
        return []
    rules = []
    for i, raw in enumerate(value):
        p: Path_ = ("classify", i)
        m = chk.mapping(raw, p, ("match", "set"), null_ok=False)
        if m is None:
            continue
        before = chk.count()
        match = _match(chk, m.get("match"), p + ("match",))
        settings = _settable(chk, m.get("set"), p + ("set",), profiles)
        if chk.count() == before and match is not None and settings is not None:
            rules.append(ClassifyRule(match=match, set=MappingProxyType(settings), location=chk.locate(p)))
    return rules


def _match(chk: _Checker, value, p: Path_) -> Match | None:
    m = chk.mapping(value, p, MATCH_KEYS, null_ok=False)
    if m is None:
        return None
    if not m:
        chk.error(p, f"needs at least one condition ({', '.join(MATCH_KEYS)})")
        return None
    ip_in = lambda v, q: _networks(chk, v, q)  # noqa: E731
    return chk.build(
        Match, m, p,
        ip_last_octet=lambda v, q: chk.integer(v, q, 0, 255),
        ip_in=ip_in,
        name_regex=lambda v, q: _regex(chk, v, q),
        labels=lambda v, q: _frozen(chk.labels(v, q)),
        region=chk.text, branch=chk.text)


def _networks(chk: _Checker, value, p: Path_):
    items = chk.seq(value, p, "a non-empty list of CIDRs", null_ok=False, non_empty=True)
    if items is None:
        return INVALID
    nets = [chk.network(cidr, p + (j,)) for j, cidr in enumerate(items)]
    return INVALID if INVALID in nets else tuple(nets)


def _regex(chk: _Checker, value, p: Path_):
    if not isinstance(value, str):
        chk.error(p, f"must be a regular expression string, got {describe_value(value)}")
        return INVALID
    try:
        return re.compile(value)
    except (re.error, RecursionError, OverflowError) as exc:
        chk.error(p, f"{quote(value)} is not a valid regex: {bounded(str(exc))}")
        return INVALID


def _frozen(labels):
    return INVALID if labels is None else frozen_labels(labels)


def _settable(chk: _Checker, value, p: Path_, profiles: dict) -> dict | None:
    """Fields a classify rule may set; the same checks as on a device."""
    m = chk.mapping(value, p, SETTABLE_KEYS, null_ok=False)
    if m is None:
        return None
    if not m:
        chk.error(p, f"needs at least one field ({', '.join(SETTABLE_KEYS)})")
        return None
    return _fields(chk, m, p, profiles)


def _fields(chk: _Checker, m: dict, p: Path_, profiles: dict) -> dict:
    out: dict = {}
    for key in ("snmp", "isp"):
        if key in m and m[key] is None:
            out[key] = None  # explicit null: "none", and no classify rule may set it
    for key in ("region", "branch", "isp"):
        if key in m and key not in out:
            v = chk.text(m[key], p + (key,))
            if v is not INVALID:
                out[key] = v
    if "role" in m:
        v = m["role"]
        if isinstance(v, str) and v in ROLES:
            out["role"] = v
        else:
            chk.error(p + ("role",), f"unknown role {quote(v)} (one of {', '.join(ROLES)})")
    if "snmp" in m and "snmp" not in out:
        v = m["snmp"]
        if isinstance(v, str) and v in profiles:
            out["snmp"] = v
        else:
            known = ", ".join(sorted(profiles)) or "none defined"
            chk.error(p + ("snmp",), f"unknown snmp profile {quote(v)} (known: {known})")
    if "enabled" in m:
        v = chk.boolean(m["enabled"], p + ("enabled",))
        if v is not INVALID:
            out["enabled"] = v
    if "labels" in m:
        labels = chk.labels(m["labels"], p + ("labels",))
        if labels is not None:
            out["labels"] = labels
    if "sites" in m:
        sites = chk.sites(m["sites"], p + ("sites",))
        if sites is not None:
            out["sites"] = sites
    return out


# --- devices ----------------------------------------------------------------------------------

def _devices(chk: _Checker, value: object, rules: list[ClassifyRule], profiles: dict,
             paths: list[Path_] | None = None) -> list[Device]:
    """The valid devices; `paths` gets each one's place in the document, in the same order."""
    if value is None:
        return []
    if not isinstance(value, list):
        chk.error(("devices",), f"must be a list, got {describe_value(value)}")
        return []
    devices: list[Device] = []
    first_name: dict[str, str] = {}
    first_ip: dict[str, tuple[str, str]] = {}
    default_role = field_default(Device, "role")
    for i, raw in enumerate(value):
        p: Path_ = ("devices", i)
        m = chk.mapping(raw, p, DEVICE_KEYS, null_ok=False)
        if m is None:
            continue
        before = chk.count()
        where = chk.locate(p)
        name = m.get("name")
        if chk.name(name, p + ("name",)) is INVALID:
            name = None
        ip = _ip(chk, m.get("ip"), p + ("ip",))
        fields = _fields(chk, m, p, profiles)
        if ip is not None and name is not None:
            _apply_rules(fields, rules, name, ip)
        role = fields.get("role", default_role)
        for key in ("region", "branch"):
            if key not in fields and key not in m:
                chk.error(p, f"missing required field {quote(key)} (set it or add a classify rule)")
        if fields.get("isp") is not None and role != "isp":
            chk.error(p + ("isp",), f"isp (provider) is only valid for role isp, role is {quote(role)}")
        if name is not None:
            if name in first_name:
                chk.error(p + ("name",), f"duplicate device name {quote(name)} (first defined at {first_name[name]})",
                          "duplicate")
            else:
                first_name[name] = where
        if ip is not None:
            key = ip.compressed
            if key in first_ip:
                other, other_where = first_ip[key]
                chk.error(p + ("ip",), f"duplicate ip {key} (also device {quote(other)} at {other_where})",
                          "duplicate")
            else:
                first_ip[key] = (name or f"#{i + 1}", where)
        if chk.count() == before:
            kw = {k: v for k, v in fields.items() if k in ("role", "snmp", "enabled", "sites")}
            if role == "isp" and fields.get("isp") is not None:
                kw["isp"] = fields["isp"]
            devices.append(Device(name=name, ip=ip.compressed, region=fields["region"], branch=fields["branch"],
                                  labels=frozen_labels(fields.get("labels")), location=where, **kw))
            if paths is not None:
                paths.append(p)
    return devices


def _sites_text(sites: tuple[str, ...]) -> str:
    return ", ".join(sites) if sites else "every site"


def _branch_sites(chk: _Checker, devices: list[Device], paths: list[Path_]) -> None:
    """A branch's verdict carries its ISP uplinks in its labels, and every probe site that probes
    two or more of its devices exports one. So the sites that probe a branch must all probe the
    same uplinks: the uplinks share one `sites` choice, and the branch's other devices are probed
    from those sites only (or fewer). Otherwise one site's verdict names other uplinks (or none)
    and BranchDown splits into one alert per site. An empty choice means every site."""
    def within(inner: tuple[str, ...], outer: tuple[str, ...]) -> bool:
        return not outer or (bool(inner) and set(inner) <= set(outer))

    uplinks: dict[tuple[str, str], tuple[Device, Path_]] = {}
    for d, p in zip(devices, paths, strict=True):
        if d.enabled and d.role == "isp":
            first = uplinks.setdefault((d.region, d.branch), (d, p))[0]
            if set(d.sites) != set(first.sites):
                chk.error(p + ("sites",), f"branch {quote(d.region)}/{quote(d.branch)}: its ISP uplinks must be "
                                          f"probed from the same sites ({quote(first.name)}: {_sites_text(first.sites)}; "
                                          f"this one: {_sites_text(d.sites)}); set sites for the whole branch")
    for d, p in zip(devices, paths, strict=True):
        first = uplinks.get((d.region, d.branch), (None,))[0]
        if d.enabled and d.role != "isp" and first is not None and not within(d.sites, first.sites):
            chk.error(p + ("sites",), f"branch {quote(d.region)}/{quote(d.branch)}: probed from "
                                      f"{_sites_text(d.sites)}, but its ISP uplinks only from "
                                      f"{_sites_text(first.sites)}; a site that does not probe the uplinks "
                                      "cannot judge the branch (set sites for the whole branch)")


def _ip(chk: _Checker, value, p: Path_):
    if not isinstance(value, str):
        chk.error(p, f"must be an IPv4 or IPv6 address string, got {describe_value(value)}")
        return None
    try:
        ip = _parse_ip(value)
        if getattr(ip, "scope_id", None) is not None:
            raise ValueError("scoped address")  # fe80::1%eth0 names a local interface, not a device
    except ValueError:
        chk.error(p, f"invalid ip {quote(value)} (want an IPv4 or IPv6 literal, no prefix or zone)")
        return None
    if ip.is_unspecified or ip.is_multicast or (ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255")):
        chk.error(p, f"{ip.compressed} is not a unicast host address")
        return None
    return ip


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """ipaddress.ip_address, with a fast path for canonical dotted quads (the common case; the
    full parser is ~4x slower and 10,000 devices must load well under a second)."""
    if value.count(".") == 3:
        try:
            ip = ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, value))
        except OSError:
            ip = None
        if ip is not None and str(ip) == value:
            return ip
    return ipaddress.ip_address(value)


def _apply_rules(fields: dict, rules: list[ClassifyRule], name: str, ip) -> None:
    """Rules run in order; a field set explicitly, or by an earlier rule, is never overwritten."""
    for rule in rules:
        labels = fields.get("labels") or {}
        if not rule.match.matches(name, ip, fields.get("region"), fields.get("branch"), labels):
            continue
        for key, value in rule.set.items():
            if key == "labels":
                merged = dict(value)
                merged.update(labels)
                fields["labels"] = merged
            elif key not in fields:
                fields[key] = value


# --- maintenance windows ----------------------------------------------------------------------

_SINGULAR = {"devices": "device", "regions": "region", "branches": "branch"}


def _known(devices: list[Device]) -> dict[str, set[str]]:
    return {"branches": {d.branch for d in devices}, "regions": {d.region for d in devices},
            "devices": {d.name for d in devices}}


def _references(chk: _Checker, m: dict, p: Path_, known: dict[str, set[str]]) -> dict[str, tuple[str, ...]]:
    """`devices`, `regions`, `branches` lists naming what the devices have."""
    out = {}
    for key in ("branches", "regions", "devices"):
        items = chk.text_list(m[key], p + (key,)) if key in m else ()
        for j, item in enumerate(items):
            if item not in known[key]:
                chk.error(p + (key, j), f"unknown {_SINGULAR[key]} {quote(item)} (no device has it)")
        out[key] = items
    return out


def _maintenance(chk: _Checker, value: object, devices: list[Device]) -> list[MaintenanceWindow]:
    if value is None:
        return []
    if not isinstance(value, list):
        chk.error(("maintenance",), f"must be a list of windows, got {describe_value(value)}")
        return []
    known = _known(devices)
    names: set[str] = set()
    out = []
    for i, raw in enumerate(value):
        p: Path_ = ("maintenance", i)
        m = chk.mapping(raw, p, MAINTENANCE_KEYS, null_ok=False)
        if m is None:
            continue
        before = chk.count()
        name = chk.name(m.get("name"), p + ("name",))
        if name is not INVALID:
            if name in names:
                chk.error(p + ("name",), f"duplicate maintenance window name {quote(name)}", "duplicate")
            names.add(name)
        scope = _references(chk, m, p, known)
        if not any(scope.values()):
            chk.error(p, "needs at least one of branches, regions, devices")
        window = chk.build(MaintenanceWindow, m, p,
                           base=MaintenanceWindow(name=name, weekdays=(), times=(), location=chk.locate(p), **scope),
                           weekdays=lambda v, q: _weekdays(chk, v, q),
                           times=lambda v, q: _times(chk, v, q),
                           timezone=lambda v, q: _timezone(chk, v, q))
        if chk.count() == before:
            out.append(window)
    return out


def _weekdays(chk: _Checker, value, p: Path_):
    if value is None:
        return ()
    items = chk.seq(value, p, "a non-empty list", null_ok=False, non_empty=True)
    if items is None:
        return INVALID
    out = []
    for j, item in enumerate(items):
        parts = item.lower().split(":") if isinstance(item, str) else [None]
        if len(parts) > 2 or any(x not in WEEKDAYS for x in parts) or (
                len(parts) == 2 and WEEKDAYS.index(parts[0]) > WEEKDAYS.index(parts[1])):
            chk.error(p + (j,), f"invalid weekday {quote(item)} (monday..sunday, or a range like monday:friday)")
        else:
            out.append(item.lower())
    return tuple(out)


def _times(chk: _Checker, value, p: Path_):
    if value is None:
        return ()
    items = chk.seq(value, p, 'a non-empty list of "HH:MM-HH:MM"', null_ok=False, non_empty=True)
    if items is None:
        return INVALID
    out = []
    for j, item in enumerate(items):
        m = _TIME_RE.match(item) if isinstance(item, str) else None
        if m is None or (m.group(3) == "24" and m.group(4) != "00"):
            chk.error(p + (j,), f'invalid time range {quote(item)} (want "HH:MM-HH:MM", 24-hour)')
            continue
        start, end = item.split("-")
        if start >= end:
            chk.error(p + (j,), f"time range {quote(item)} ends before it starts "
                                "(split a range that crosses midnight in two)")
            continue
        out.append((start, end))
    return tuple(out)


def _timezone(chk: _Checker, value, p: Path_):
    if not isinstance(value, str) or len(value) > MAX_TEXT or not _valid_tz(value):
        chk.error(p, f"unknown timezone {quote(value)} (want an IANA name like Asia/Tbilisi)")
        return INVALID
    return value


def _valid_tz(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


# --- topology ---------------------------------------------------------------------------------

def _topology(chk: _Checker, value: object, devices: list[Device]) -> Topology:
    """`topology: {region_upstreams, upstreams: {NAME: {devices, upstream, regions, branches}}}`.

    Upstreams are kept sorted by name, so the dump (which sorts keys) loads back equal."""
    if value is None:
        return Topology()
    path: Path_ = ("topology",)
    m = chk.mapping(value, path, TOPOLOGY_KEYS, null_ok=False)
    if m is None:
        return Topology()
    raw_nodes = m.get("upstreams")
    if raw_nodes is None:
        raw_nodes = {}
    if not isinstance(raw_nodes, dict):
        chk.error(path + ("upstreams",), f"must be a mapping of name to upstream, got {describe_value(raw_nodes)}")
        raw_nodes = {}
    known = _known(devices)
    branches_of_region: dict[str, list[str]] = {}
    for d in devices:
        seen = branches_of_region.setdefault(d.region, [])
        if d.branch not in seen:
            seen.append(d.branch)
    nodes: dict[str, Upstream] = {}
    for name, raw in raw_nodes.items():
        p = path + ("upstreams", name if isinstance(name, str) else str(name))
        if chk.name(name, p, "an upstream name") is INVALID:
            continue
        node = chk.mapping(raw, p, UPSTREAM_KEYS)
        if node is None:
            continue
        lists = _references(chk, node, p, known)
        parent = node.get("upstream")
        if parent is not None and (not isinstance(parent, str) or parent not in raw_nodes or parent == name):
            if parent == name:
                chk.error(p + ("upstream",), "a node cannot sit behind itself")
            else:
                defined = ", ".join(str(n) for n in raw_nodes)
                chk.error(p + ("upstream",), f"unknown upstream {quote(parent)} (defined: {bounded(defined)})")
            parent = None
        nodes[name] = Upstream(name=name, upstream=parent, location=chk.locate(p), **lists)
    _check_tree(chk, nodes, branches_of_region, path + ("upstreams",))
    topology = chk.build(Topology, m, path, base=Topology(upstreams=tuple(nodes[n] for n in sorted(nodes)),
                                                          location=chk.locate(path)),
                         region_upstreams=chk.boolean)
    return topology


def _check_tree(chk: _Checker, nodes: dict[str, Upstream], branches_of_region: dict[str, list[str]],
                base: Path_) -> None:
    """Cycles of `upstream:`, branches directly behind two nodes, nodes with nothing behind them."""
    reported: set[str] = set()
    for name in nodes:
        chain = [name]
        parent = nodes[name].upstream
        while parent is not None and parent in nodes and parent not in chain:
            chain.append(parent)
            parent = nodes[parent].upstream
        if parent is not None and parent == name and not reported.intersection(chain):
            reported.update(chain)
            chk.error(base + (name,), f"upstream cycle {' -> '.join(chain + [name])}")
    owner: dict[str, tuple[str, str]] = {}  # branch -> (node, how)
    for name, node in nodes.items():
        p = base + (name,)
        direct: list[tuple[str, Path_, str]] = []
        for j, region in enumerate(node.regions):
            direct += [(b, p + ("regions", j), f"region {quote(region)}") for b in branches_of_region.get(region, ())]
        direct += [(b, p + ("branches", j), "branches") for j, b in enumerate(node.branches)]
        mine: set[str] = set()
        for branch, where, how in direct:
            if branch in mine:
                continue
            mine.add(branch)
            first = owner.setdefault(branch, (name, how))
            if first[0] != name:
                chk.error(where, f"branch {quote(branch)} is already directly behind upstream {quote(first[0])} "
                                 f"({first[1]}); a branch sits directly behind one node")
        has_child = any(other.upstream == name for other in nodes.values())
        if not node.regions and not node.branches and not has_child:
            chk.error(p, "nothing behind it (give regions, branches, or another upstream naming it as its upstream)")
