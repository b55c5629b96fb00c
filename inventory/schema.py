"""Validate plain inventory data (from YAML or JSON) into an immutable Inventory.

Every problem is collected and reported at once; nothing is partially applied: either the
whole inventory is valid and returned, or InventoryError lists all problems.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import zoneinfo
from collections.abc import Callable
from types import MappingProxyType

from inventory.errors import InventoryError, Problem, describe_value
from inventory.model import (
    DEFAULT_ROLE,
    EXTRA_OID_TYPES,
    LABEL_NAME_RE,
    NAME_RE,
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
from inventory.secrets import Secret, reference_problem

Path_ = tuple[str | int, ...]
Locator = Callable[[Path_], str]

TOP_KEYS = ("classify", "snmp_profiles", "maintenance", "devices", "topology")
TOPOLOGY_KEYS = ("region_upstreams", "upstreams")
UPSTREAM_KEYS = ("devices", "upstream", "regions", "branches")
DEVICE_KEYS = ("name", "ip", "region", "branch", "role", "isp", "snmp", "enabled", "labels")
SETTABLE_KEYS = ("role", "isp", "region", "branch", "snmp", "enabled", "labels")
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
MAX_TEXT = 128
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")


def json_locator(path: Path_) -> str:
    """Location text for data that did not come from a file: `$.devices[3].ip`."""
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class _Checker:
    def __init__(self, locate: Locator):
        self.locate = locate
        self.problems: list[Problem] = []

    def error(self, path: Path_, message: str, code: str = "") -> None:
        self.problems.append(Problem(self.locate(path), message, path, code))

    def mapping(self, value: object, path: Path_, what: str, allowed: tuple[str, ...]) -> dict | None:
        if not isinstance(value, dict):
            self.error(path, f"{what} must be a mapping, got {describe_value(value)}")
            return None
        if value.keys() <= _allowed_set(allowed):
            return value
        for key in value:
            if key not in allowed:
                self.error(path + (key,) if isinstance(key, str | int) else path,
                           f"{what}: unknown key {key!r} (allowed: {', '.join(allowed)})")
        return value

    def text(self, value: object, path: Path_, what: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.error(path, f"{what} must be a non-empty string, got {describe_value(value)}")
            return None
        if len(value) > MAX_TEXT or _CONTROL_RE.search(value) or value != value.strip():
            self.error(path, f"{what} must be at most {MAX_TEXT} printable characters "
                             "without leading/trailing spaces")
            return None
        return value

    def text_list(self, value: object, path: Path_, what: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.error(path, f"{what} must be a list, got {describe_value(value)}")
            return ()
        items = [self.text(v, path + (i,), what) for i, v in enumerate(value)]
        return tuple(v for v in items if v is not None)

    def labels(self, value: object, path: Path_, what: str) -> dict[str, str] | None:
        if not isinstance(value, dict):
            self.error(path, f"{what}: labels must be a mapping, got {describe_value(value)}")
            return None
        out = {}
        ok = True
        for key, val in value.items():
            if not isinstance(key, str) or not LABEL_NAME_RE.match(key) or key.startswith("__"):
                self.error(path + (key,) if isinstance(key, str) else path,
                           f"{what}: invalid label name {key!r} (want [a-z_][a-z0-9_]*, not starting __)")
                ok = False
            elif key in RESERVED_LABELS:
                self.error(path + (key,), f"{what}: label {key!r} is reserved (set the field instead)")
                ok = False
            elif not isinstance(val, str) or len(val) > MAX_TEXT:
                self.error(path + (key,), f"{what}: label {key!r} value must be a string "
                                          f"of at most {MAX_TEXT} characters (quote numbers)")
                ok = False
            else:
                out[key] = val
        return out if ok else None


@functools.cache
def _allowed_set(allowed: tuple[str, ...]) -> frozenset[str]:
    return frozenset(allowed)


def _line_of(problem: Problem) -> int:
    """Sort key: source line for "file:line" locations (stable; JSON paths keep their order)."""
    tail = problem.location.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def build_inventory(data: object, locate: Locator = json_locator, source: str = "") -> Inventory:
    """Validate `data` and return the Inventory, or raise InventoryError listing every problem."""
    chk = _Checker(locate)
    if data is None:
        data = {}
    top = chk.mapping(data, (), "inventory", TOP_KEYS)
    if top is None:
        raise InventoryError(chk.problems)
    profiles = _profiles(chk, top.get("snmp_profiles"))
    rules = _classify(chk, top.get("classify"), profiles)
    devices = _devices(chk, top.get("devices"), rules, profiles)
    windows = _maintenance(chk, top.get("maintenance"), devices)
    topology = _topology(chk, top.get("topology"), devices)
    if chk.problems:
        raise InventoryError(sorted(chk.problems, key=_line_of))
    return Inventory(devices=tuple(devices), snmp_profiles=MappingProxyType(profiles),
                     classify=tuple(rules), maintenance=tuple(windows), topology=topology, source=source)


# --- SNMP profiles ----------------------------------------------------------------------------

def _profiles(chk: _Checker, value: object) -> dict[str, SnmpProfile]:
    if value is None:
        return {}
    path: Path_ = ("snmp_profiles",)
    if not isinstance(value, dict):
        chk.error(path, f"snmp_profiles must be a mapping of name to profile, got {describe_value(value)}")
        return {}
    out: dict[str, SnmpProfile] = {}
    extra_seen: dict[str, tuple[str, bool, str]] = {}
    for name, raw in value.items():
        p = path + (name,)
        if not isinstance(name, str) or not NAME_RE.match(name):
            chk.error(p, f"snmp profile name {name!r} must match [a-z0-9][a-z0-9._-]*")
            continue
        what = f"snmp profile {name!r}"
        if isinstance(raw, dict) and any(k in raw for k in SECRET_FIELDS):
            for k in SECRET_FIELDS:
                if k in raw:
                    chk.error(p + (k,), f"{what}: inline secret {k!r} is not allowed; "
                                        f"reference it with {k}_env or {k}_file")
            raw = {k: v for k, v in raw.items() if k not in SECRET_FIELDS}
        m = chk.mapping(raw, p, what, PROFILE_KEYS)
        if m is None:
            continue
        before = len(chk.problems)
        version = m.get("version")
        if isinstance(version, int | float) and not isinstance(version, bool):
            version = {1: "1", 2: "2c", 3: "3"}.get(version, str(version))
        if version not in SNMP_VERSIONS:
            chk.error(p + ("version",), f"{what}: version must be one of 1, 2c, 3, got {describe_value(m.get('version'))}")
        secrets = {f: _secret(chk, m, p, what, f) for f in SECRET_FIELDS}
        auth = _choice(chk, m, p, what, "auth_protocol", SNMP_AUTH_PROTOCOLS)
        priv = _choice(chk, m, p, what, "priv_protocol", SNMP_PRIV_PROTOCOLS)
        username = m.get("username")
        if version in ("1", "2c"):
            if secrets["community"] is None:
                chk.error(p, f"{what}: SNMP v{version} needs community_env or community_file")
            for f in ("username", "auth_protocol", "priv_protocol", "auth_key_env", "auth_key_file",
                      "priv_key_env", "priv_key_file"):
                if f in m:
                    chk.error(p + (f,), f"{what}: {f} is only valid for SNMP v3")
        elif version == "3":
            username = chk.text(username, p + ("username",), f"{what}: username")
            if "community_env" in m or "community_file" in m:
                chk.error(p, f"{what}: community is only valid for SNMP v1/v2c")
            if auth and secrets["auth_key"] is None:
                chk.error(p, f"{what}: auth_protocol needs auth_key_env or auth_key_file")
            if secrets["auth_key"] is not None and not auth:
                chk.error(p, f"{what}: an auth key needs auth_protocol")
            if priv and not auth:
                chk.error(p, f"{what}: priv_protocol needs auth_protocol (authPriv)")
            if priv and secrets["priv_key"] is None:
                chk.error(p, f"{what}: priv_protocol needs priv_key_env or priv_key_file")
            if secrets["priv_key"] is not None and not priv:
                chk.error(p, f"{what}: a priv key needs priv_protocol")
        port = _number(chk, m, p, what, "port", 161, int, 1, 65535)
        timeout = _number(chk, m, p, what, "timeout", 2.0, float, 0.05, 60)
        retries = _number(chk, m, p, what, "retries", 1, int, 0, 10)
        max_rep = _number(chk, m, p, what, "max_repetitions", 25, int, 1, 200)
        extra_oids = _extra_oids(chk, m.get("extra_oids"), p + ("extra_oids",), what, extra_seen)
        if len(chk.problems) == before:
            out[name] = SnmpProfile(name=name, version=version, community=secrets["community"],
                                    username=username if version == "3" else None,
                                    auth_protocol=auth, auth_key=secrets["auth_key"],
                                    priv_protocol=priv, priv_key=secrets["priv_key"],
                                    port=port, timeout=float(timeout), retries=retries,
                                    max_repetitions=max_rep, extra_oids=extra_oids)
        else:
            out[name] = None  # known name, invalid profile: devices may still reference it
    return out


def _extra_oids(chk, value, p, what, seen: dict) -> tuple[ExtraOid, ...]:
    """`extra_oids: [{metric, oid, type: gauge|counter, table: bool}]`. A metric name means one
    series family in the exporter, so it must keep one type and shape across all profiles (`seen`)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_EXTRA_OIDS:
        chk.error(p, f"{what}: extra_oids must be a list of at most {MAX_EXTRA_OIDS} entries, got {describe_value(value)}")
        return ()
    out = []
    for i, raw in enumerate(value):
        q = p + (i,)
        label = f"{what}: extra_oids[{i}]"
        m = chk.mapping(raw, q, label, EXTRA_OID_KEYS)
        if m is None:
            continue
        before = len(chk.problems)
        metric, oid_text = m.get("metric"), m.get("oid")
        kind, table = m.get("type", "gauge"), m.get("table", False)
        if not isinstance(metric, str) or not _METRIC_RE.match(metric) or metric.endswith("_total") \
                or metric.startswith(RESERVED_METRIC_PREFIXES) or metric in RESERVED_METRICS:
            chk.error(q + ("metric",), f"{label}: metric must match [a-z][a-z0-9_]* (exported as "
                                       f"wardops_snmp_<metric>; no _total suffix, not a built-in name), got {describe_value(metric)}")
        if not isinstance(oid_text, str) or not _OID_RE.match(oid_text):
            chk.error(q + ("oid",), f"{label}: oid must be a dotted numeric OID like 1.3.6.1.4.1.9.2.1.58.0, "
                                    f"got {describe_value(oid_text)}")
            oid_text = None
        if kind not in EXTRA_OID_TYPES:
            chk.error(q + ("type",), f"{label}: type must be one of {', '.join(EXTRA_OID_TYPES)}, got {describe_value(kind)}")
        if not isinstance(table, bool):
            chk.error(q + ("table",), f"{label}: table must be true or false, got {describe_value(table)}")
        elif oid_text is not None and not table and not oid_text.endswith(".0"):
            chk.error(q + ("oid",), f"{label}: a scalar oid must be the instance ending in .0 "
                                    "(set table: true to walk a column)")
        if len(chk.problems) != before:
            continue
        shape = (kind, table, chk.locate(q))
        first = seen.setdefault(metric, shape)
        if first is not shape and first[:2] != shape[:2]:
            chk.error(q, f"{label}: metric {metric!r} is a {'table' if first[1] else 'scalar'} {first[0]} "
                         f"at {first[2]}; one metric name must keep one type and shape")
            continue
        if any(e.metric == metric for e in out):
            chk.error(q + ("metric",), f"{label}: duplicate metric {metric!r} in this profile")
            continue
        out.append(ExtraOid(metric=metric, oid=tuple(int(x) for x in oid_text.split(".")), type=kind, table=table))
    return tuple(out)


def _secret(chk, m, p, what, field_name) -> Secret | None:
    given = [(kind, m[f"{field_name}_{kind}"]) for kind in ("env", "file") if f"{field_name}_{kind}" in m]
    if len(given) > 1:
        chk.error(p, f"{what}: give only one of {field_name}_env and {field_name}_file")
        return None
    if not given:
        return None
    kind, ref = given[0]
    problem = reference_problem(kind, ref)
    if problem:
        chk.error(p + (f"{field_name}_{kind}",), f"{what}: {field_name}_{kind} {problem}")
        return None
    return Secret(kind, ref)


def _choice(chk, m, p, what, key, allowed):
    if key not in m:
        return None
    value = m[key]
    if isinstance(value, str) and value.upper() in allowed:
        return value.upper()
    chk.error(p + (key,), f"{what}: {key} must be one of {', '.join(allowed)}, got {describe_value(value)}")
    return None


def _number(chk, m, p, what, key, default, typ, low, high):
    if key not in m:
        return default
    value = m[key]
    ok_type = isinstance(value, int) if typ is int else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or not (low <= value <= high):
        chk.error(p + (key,), f"{what}: {key} must be a {'whole ' if typ is int else ''}number "
                              f"from {low} to {high}, got {describe_value(value)}")
        return default
    return typ(value)


# --- classification rules ---------------------------------------------------------------------

def _classify(chk: _Checker, value: object, profiles: dict) -> list[ClassifyRule]:
    if value is None:
        return []
    if not isinstance(value, list):
        chk.error(("classify",), f"classify must be a list of rules, got {describe_value(value)}")
        return []
    rules = []
    for i, raw in enumerate(value):
        p: Path_ = ("classify", i)
        what = f"classify rule {i + 1}"
        m = chk.mapping(raw, p, what, ("match", "set"))
        if m is None:
            continue
        before = len(chk.problems)
        match = _match(chk, m.get("match"), p + ("match",), what)
        settings = _settable(chk, m.get("set"), p + ("set",), what, profiles, require=True)
        if len(chk.problems) == before and match is not None and settings is not None:
            rules.append(ClassifyRule(match=match, set=MappingProxyType(settings), location=chk.locate(p)))
    return rules


def _match(chk, value, p, what) -> Match | None:
    m = chk.mapping(value, p, f"{what}: match", MATCH_KEYS)
    if m is None:
        return None
    if not m:
        chk.error(p, f"{what}: match needs at least one condition ({', '.join(MATCH_KEYS)})")
        return None
    kw: dict = {}
    if "ip_last_octet" in m:
        v = m["ip_last_octet"]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 255:
            chk.error(p + ("ip_last_octet",), f"{what}: ip_last_octet must be 0-255, got {describe_value(v)}")
        else:
            kw["ip_last_octet"] = v
    if "ip_in" in m:
        nets = []
        v = m["ip_in"]
        if not isinstance(v, list) or not v:
            chk.error(p + ("ip_in",), f"{what}: ip_in must be a non-empty list of CIDRs, got {describe_value(v)}")
        else:
            for j, cidr in enumerate(v):
                try:
                    nets.append(ipaddress.ip_network(cidr, strict=True) if isinstance(cidr, str)
                                else _raise(ValueError("not a string")))
                except ValueError as exc:
                    chk.error(p + ("ip_in", j), f"{what}: ip_in: invalid CIDR {cidr!r}: {exc}")
        kw["ip_in"] = tuple(nets)
    if "name_regex" in m:
        v = m["name_regex"]
        try:
            kw["name_regex"] = re.compile(v) if isinstance(v, str) else _raise(TypeError("not a string"))
        except (re.error, TypeError) as exc:
            chk.error(p + ("name_regex",), f"{what}: name_regex {v!r} is not a valid regex: {exc}")
    if "labels" in m:
        labels = chk.labels(m["labels"], p + ("labels",), what)
        if labels is not None:
            kw["labels"] = frozen_labels(labels)
    for key in ("region", "branch"):
        if key in m:
            kw[key] = chk.text(m[key], p + (key,), f"{what}: match {key}")
    return Match(**kw)


def _raise(exc):
    raise exc


def _settable(chk, value, p, what, profiles, require=False) -> dict | None:
    """Fields a classify rule may set; the same checks as on a device."""
    m = chk.mapping(value, p, f"{what}: set", SETTABLE_KEYS)
    if m is None:
        return None
    if require and not m:
        chk.error(p, f"{what}: set needs at least one field ({', '.join(SETTABLE_KEYS)})")
        return None
    return _fields(chk, m, p, what, profiles)


def _fields(chk, m, p, what, profiles) -> dict:
    out: dict = {}
    for key in ("snmp", "isp"):
        if key in m and m[key] is None:
            out[key] = None  # explicit null: "none", and no classify rule may set it
    for key in ("region", "branch", "isp"):
        if key in m and key not in out:
            v = chk.text(m[key], p + (key,), f"{what}: {key}")
            if v is not None:
                out[key] = v
    if "role" in m:
        v = m["role"]
        if v in ROLES:
            out["role"] = v
        else:
            chk.error(p + ("role",), f"{what}: unknown role {v!r} (one of {', '.join(ROLES)})")
    if "snmp" in m and "snmp" not in out:
        v = m["snmp"]
        if isinstance(v, str) and v in profiles:
            out["snmp"] = v
        else:
            known = ", ".join(sorted(profiles)) or "none defined"
            chk.error(p + ("snmp",), f"{what}: unknown snmp profile {v!r} (known: {known})")
    if "enabled" in m:
        v = m["enabled"]
        if isinstance(v, bool):
            out["enabled"] = v
        else:
            chk.error(p + ("enabled",), f"{what}: enabled must be true or false, got {describe_value(v)}")
    if "labels" in m:
        labels = chk.labels(m["labels"], p + ("labels",), what)
        if labels is not None:
            out["labels"] = labels
    return out


# --- devices ----------------------------------------------------------------------------------

def _devices(chk: _Checker, value: object, rules: list[ClassifyRule], profiles: dict) -> list[Device]:
    if value is None:
        return []
    if not isinstance(value, list):
        chk.error(("devices",), f"devices must be a list, got {describe_value(value)}")
        return []
    devices: list[Device] = []
    first_name: dict[str, str] = {}
    first_ip: dict[str, tuple[str, str]] = {}
    for i, raw in enumerate(value):
        p: Path_ = ("devices", i)
        name = raw.get("name") if isinstance(raw, dict) else None
        label = f"device {name!r}" if isinstance(name, str) else f"device #{i + 1}"
        m = chk.mapping(raw, p, label, DEVICE_KEYS)
        if m is None:
            continue
        before = len(chk.problems)
        where = chk.locate(p)
        if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > MAX_TEXT:
            chk.error(p + ("name",), f"{label}: name must match [a-z0-9][a-z0-9._-]* "
                                     f"(at most {MAX_TEXT} characters), got {describe_value(name)}")
            name = None
        ip = _ip(chk, m.get("ip"), p + ("ip",), label)
        fields = _fields(chk, m, p, label, profiles)
        if ip is not None and name is not None:
            _apply_rules(fields, rules, name, ip)
        role = fields.get("role", DEFAULT_ROLE)
        for key in ("region", "branch"):
            if key not in fields and key not in m:
                chk.error(p, f"{label}: missing required field {key!r} (set it or add a classify rule)")
        if fields.get("isp") is not None and role != "isp":
            chk.error(p + ("isp",), f"{label}: isp (provider) is only valid for role isp, role is {role!r}")
        if name is not None:
            if name in first_name:
                chk.error(p + ("name",), f"{label}: duplicate device name (first defined at {first_name[name]})", "duplicate")
            else:
                first_name[name] = where
        if ip is not None:
            key = ip.compressed
            if key in first_ip:
                other, where = first_ip[key]
                chk.error(p + ("ip",), f"{label}: duplicate ip {key} (also device {other!r} at {where})",
                          "duplicate")
            else:
                first_ip[key] = (name or f"#{i + 1}", where)
        if len(chk.problems) == before:
            devices.append(Device(
                name=name, ip=ip.compressed, region=fields["region"], branch=fields["branch"], role=role,
                isp=fields.get("isp") if role == "isp" else None, snmp=fields.get("snmp"),
                enabled=fields.get("enabled", True), labels=frozen_labels(fields.get("labels")),
                location=chk.locate(p)))
    return devices


def _ip(chk, value, p, label):
    if not isinstance(value, str):
        chk.error(p, f"{label}: ip must be an IPv4 or IPv6 address string, got {describe_value(value)}")
        return None
    try:
        ip = _parse_ip(value)
        if getattr(ip, "scope_id", None) is not None:
            raise ValueError("scoped address")  # fe80::1%eth0 names a local interface, not a device
    except ValueError:
        chk.error(p, f"{label}: invalid ip {value!r} (want an IPv4 or IPv6 literal, no prefix or zone)")
        return None
    if ip.is_unspecified or ip.is_multicast or (ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255")):
        chk.error(p, f"{label}: ip {value} is not a unicast host address")
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

def _maintenance(chk: _Checker, value: object, devices: list[Device]) -> list[MaintenanceWindow]:
    if value is None:
        return []
    if not isinstance(value, list):
        chk.error(("maintenance",), f"maintenance must be a list of windows, got {describe_value(value)}")
        return []
    known = {"branches": {d.branch for d in devices}, "regions": {d.region for d in devices},
             "devices": {d.name for d in devices}}
    names: set[str] = set()
    out = []
    for i, raw in enumerate(value):
        p: Path_ = ("maintenance", i)
        name = raw.get("name") if isinstance(raw, dict) else None
        what = f"maintenance window {name!r}" if isinstance(name, str) else f"maintenance window #{i + 1}"
        m = chk.mapping(raw, p, what, MAINTENANCE_KEYS)
        if m is None:
            continue
        before = len(chk.problems)
        if not isinstance(name, str) or not NAME_RE.match(name):
            chk.error(p + ("name",), f"{what}: name must match [a-z0-9][a-z0-9._-]*, got {describe_value(name)}")
        elif name in names:
            chk.error(p + ("name",), f"{what}: duplicate maintenance window name", "duplicate")
        else:
            names.add(name)
        scope = {}
        for key in ("branches", "regions", "devices"):
            items = chk.text_list(m[key], p + (key,), f"{what}: {key}") if key in m else ()
            for j, item in enumerate(items):
                if item not in known[key]:
                    chk.error(p + (key, j), f"{what}: unknown {key[:-1] if key != 'branches' else 'branch'} "
                                            f"{item!r} (no device has it)")
            scope[key] = items
        if not any(scope.values()):
            chk.error(p, f"{what}: needs at least one of branches, regions, devices")
        weekdays = _weekdays(chk, m.get("weekdays"), p + ("weekdays",), what)
        times = _times(chk, m.get("times"), p + ("times",), what)
        tz = m.get("timezone", "UTC")
        if not isinstance(tz, str) or not _valid_tz(tz):
            chk.error(p + ("timezone",), f"{what}: unknown timezone {tz!r} (want an IANA name like Asia/Tbilisi)")
        if len(chk.problems) == before:
            out.append(MaintenanceWindow(name=name, weekdays=weekdays, times=times, timezone=tz,
                                         location=chk.locate(p), **scope))
    return out


def _weekdays(chk, value, p, what) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        chk.error(p, f"{what}: weekdays must be a non-empty list, got {describe_value(value)}")
        return ()
    out = []
    for j, item in enumerate(value):
        parts = item.lower().split(":") if isinstance(item, str) else [None]
        if len(parts) > 2 or any(x not in WEEKDAYS for x in parts) or (
                len(parts) == 2 and WEEKDAYS.index(parts[0]) > WEEKDAYS.index(parts[1])):
            chk.error(p + (j,), f"{what}: invalid weekday {item!r} (monday..sunday, or a range like monday:friday)")
        else:
            out.append(item.lower())
    return tuple(out)


def _times(chk, value, p, what) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        chk.error(p, f"{what}: times must be a non-empty list of \"HH:MM-HH:MM\", got {describe_value(value)}")
        return ()
    out = []
    for j, item in enumerate(value):
        m = _TIME_RE.match(item) if isinstance(item, str) else None
        if m is None or (m.group(3) == "24" and m.group(4) != "00"):
            chk.error(p + (j,), f"{what}: invalid time range {item!r} (want \"HH:MM-HH:MM\", 24-hour)")
            continue
        start, end = item.split("-")
        if start >= end:
            chk.error(p + (j,), f"{what}: time range {item!r} ends before it starts "
                                "(split a range that crosses midnight in two)")
            continue
        out.append((start, end))
    return tuple(out)


def _valid_tz(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True




# --- topology ---------------------------------------------------------------------------------

def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_NO_TOPOLOGY = Topology()


def _topology(chk: _Checker, value: object, devices: list[Device]) -> Topology:
    """`topology: {region_upstreams, upstreams: {NAME: {devices, upstream, regions, branches}}}`.

    Upstreams are kept sorted by name, so the dump (which sorts keys) loads back equal."""
    if value is None:
        return Topology()
    path: Path_ = ("topology",)
    m = chk.mapping(value, path, "topology", TOPOLOGY_KEYS)
    if m is None:
        return Topology()
    region_upstreams = m.get("region_upstreams", _NO_TOPOLOGY.region_upstreams)
    if not isinstance(region_upstreams, bool):
        chk.error(path + ("region_upstreams",), f"topology.region_upstreams: must be true or false, "
                                                f"got {describe_value(region_upstreams)}")
    raw_nodes = m.get("upstreams")
    if raw_nodes is None:
        raw_nodes = {}
    if not isinstance(raw_nodes, dict):
        chk.error(path + ("upstreams",), f"topology.upstreams: must be a mapping of name to upstream, "
                                         f"got {describe_value(raw_nodes)}")
        raw_nodes = {}
    known = {"devices": {d.name for d in devices}, "regions": {d.region for d in devices},
             "branches": {d.branch for d in devices}}
    singular = {"devices": "device", "regions": "region", "branches": "branch"}
    branches_of_region: dict[str, list[str]] = {}
    for d in devices:
        seen = branches_of_region.setdefault(d.region, [])
        if d.branch not in seen:
            seen.append(d.branch)
    nodes: dict[str, Upstream] = {}
    for name, raw in raw_nodes.items():
        p = path + ("upstreams", name)
        if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > MAX_TEXT:
            chk.error(p if isinstance(name, str) else path + ("upstreams",),
                      f"{_dotted(path + ('upstreams',))}: upstream name {name!r} must match [a-z0-9][a-z0-9._-]*")
            continue
        where = _dotted(p)
        node = chk.mapping(raw if raw is not None else {}, p, where, UPSTREAM_KEYS)
        if node is None:
            continue
        lists = {}
        for key in ("devices", "regions", "branches"):
            items = chk.text_list(node[key], p + (key,), f"{where}.{key}") if key in node else ()
            for j, item in enumerate(items):
                if item not in known[key]:
                    chk.error(p + (key, j), f"{where}.{key}[{j}]: unknown {singular[key]} {item!r} (no device has it)")
            lists[key] = items
        parent = node.get("upstream")
        if parent is not None and (not isinstance(parent, str) or parent not in raw_nodes or parent == name):
            if parent == name:
                chk.error(p + ("upstream",), f"{where}.upstream: a node cannot sit behind itself")
            else:
                defined = ", ".join(str(n) for n in raw_nodes)
                chk.error(p + ("upstream",), f"{where}.upstream: unknown upstream "
                                             f"{repr(parent) if isinstance(parent, str) else describe_value(parent)} "
                                             f"(defined: {defined})")
            parent = None
        nodes[name] = Upstream(name=name, upstream=parent, location=chk.locate(p), **lists)
    _check_tree(chk, nodes, branches_of_region, path + ("upstreams",))
    return Topology(upstreams=tuple(nodes[n] for n in sorted(nodes)),
                    region_upstreams=region_upstreams if isinstance(region_upstreams, bool)
                    else _NO_TOPOLOGY.region_upstreams,
                    location=chk.locate(path))


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
            chk.error(base + (name,), f"{_dotted(base + (name,))}: upstream cycle {' -> '.join(chain + [name])}")
    owner: dict[str, tuple[str, str]] = {}  # branch -> (node, how)
    for name, node in nodes.items():
        p = base + (name,)
        direct: list[tuple[str, Path_, str]] = []
        for j, region in enumerate(node.regions):
            direct += [(b, p + ("regions", j), f"region {region!r}") for b in branches_of_region.get(region, ())]
        direct += [(b, p + ("branches", j), "branches") for j, b in enumerate(node.branches)]
        mine: set[str] = set()
        for branch, where, how in direct:
            if branch in mine:
                continue
            mine.add(branch)
            first = owner.setdefault(branch, (name, how))
            if first[0] != name:
                chk.error(where, f"{_dotted(where)}: branch {branch!r} is already directly behind upstream "
                                 f"{first[0]!r} ({first[1]}); a branch sits directly behind one node")
        has_child = any(other.upstream == name for other in nodes.values())
        if not node.regions and not node.branches and not has_child:
            chk.error(p, f"{_dotted(p)}: nothing behind it (give regions, branches, or another "
                         "upstream naming it as its upstream)")
