"""The inventory in the database, validated by the shared loader on every change.

Design (explicit vs resolved fields): the service stores what the user sent — each device's
explicit fields (`spec`), the SNMP profiles, the classify rules and the maintenance windows — in
the file format's plain-data shape. Every write applies the change to a copy of the whole plain
inventory and runs `inventory.schema.build_inventory` on it, exactly like the YAML loader, so the
whole-inventory checks (duplicates, unknown profiles, rules, windows naming devices) are the
loader's own. Only when that succeeds are rows written: the explicit spec plus the resolved
columns (after classify rules) that list filters query in SQL. A classify rule change therefore
rewrites the resolved columns of the devices it affects, and only those.

Writers serialise on the generation row; the resolved Inventory and its plain data are cached per
process with that generation, so a write costs one validation and no full reload, and a reader
costs one `SELECT generation` while nothing changed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, bindparam, delete, insert, select, update

from inventory.errors import InventoryError, Problem
from inventory.model import Device, Inventory, ip_text_problem, label_value_problem
from inventory.schema import build_inventory
from inventory.service.db import (
    devices_table,
    profiles_table,
    rules_table,
    state_table,
    utcnow,
    windows_table,
)

CHUNK = 500  # rows per IN (...) list


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a piece of the draft came from in the request, for error messages."""

    op: str | None  # "create", "update", "delete", or None for a single-resource request
    index: int | None  # item index within the op's list
    base: str  # JSON path of the item in the request body, e.g. "$.create[3]" or "$"


@dataclass
class Snapshot:
    """One committed generation of the inventory: plain specs plus the validated Inventory."""

    generation: int
    profiles: dict[str, dict]
    rules: list[dict]
    windows: list[dict]
    devices: list[dict]
    ids: list[int]
    inventory: Inventory | None
    problems: list[Problem]  # non-empty only if stored data no longer validates
    changed_at: object = None
    cache: dict = field(default_factory=dict)  # rendered responses (SD) for this generation
    _positions: dict[str, int] | None = None

    def data(self) -> dict:
        return plain_data(self.profiles, self.rules, self.windows, self.devices)

    def position(self, name: str) -> int | None:
        if self._positions is None:
            self._positions = {d.get("name"): i for i, d in enumerate(self.devices)}
        return self._positions.get(name)


def plain_data(profiles, rules, windows, devices) -> dict:
    """The file format's plain-data shape, as build_inventory and dump_yaml know it."""
    out: dict = {}
    if rules:
        out["classify"] = list(rules)
    if profiles:
        out["snmp_profiles"] = dict(profiles)
    if windows:
        out["maintenance"] = list(windows)
    out["devices"] = list(devices)
    return out


class Draft:
    """A copy-on-write change to a snapshot. Specs are never mutated in place, only replaced."""

    def __init__(self, snap: Snapshot):
        self.snap = snap
        self.profiles = dict(snap.profiles)
        self.rules = list(snap.rules)
        self.windows = list(snap.windows)
        self.devices = list(snap.devices)
        self.ids: list[int | None] = list(snap.ids)
        self.device_origin: list[Origin | None] = [None] * len(self.devices)
        self.profile_origin: dict[str, Origin] = {}
        self.rule_origin: dict[int, Origin] = {}
        self.window_origin: dict[int, Origin] = {}
        self.refresh: set[int] = set()  # device ids whose resolved columns must be rewritten anyway
        self._positions: dict[str, int] | None = None

    def position(self, name: str) -> int | None:
        if self._positions is None:
            self._positions = {d.get("name"): i for i, d in enumerate(self.devices)}
        return self._positions.get(name)

    def add_device(self, spec: dict, origin: Origin) -> None:
        self.devices.append(spec)
        self.ids.append(None)
        self.device_origin.append(origin)
        if self._positions is not None and isinstance(spec, dict):
            self._positions.setdefault(spec.get("name"), len(self.devices) - 1)

    def replace_device(self, pos: int, spec: dict, origin: Origin) -> None:
        self.devices[pos] = spec
        self.device_origin[pos] = origin
        self._positions = None

    def remove_devices(self, positions: set[int]) -> None:
        keep = [i for i in range(len(self.devices)) if i not in positions]
        self.devices = [self.devices[i] for i in keep]
        self.ids = [self.ids[i] for i in keep]
        self.device_origin = [self.device_origin[i] for i in keep]
        self._positions = None

    def replace_all(self, data: dict, origin: Origin) -> None:
        """Import: the whole inventory is replaced (every device gets a new row)."""
        self.profiles = dict(data.get("snmp_profiles") or {})
        self.rules = list(data.get("classify") or [])
        self.windows = list(data.get("maintenance") or [])
        self.devices = list(data.get("devices") or [])
        self.ids = [None] * len(self.devices)
        self.device_origin = [origin] * len(self.devices)
        self.profile_origin = {n: origin for n in self.profiles}
        self.rule_origin = dict.fromkeys(range(len(self.rules)), origin)
        self.window_origin = dict.fromkeys(range(len(self.windows)), origin)
        self._positions = None

    def data(self) -> dict:
        return plain_data(self.profiles, self.rules, self.windows, self.devices)


def service_problems(draft: Draft) -> list[Problem]:
    """Checks on what this request sent, beyond the shared loader's: IPv4-mapped IPv6 addresses (a
    duplicate of the IPv4 device in disguise) and unusable label values (inventory/model.py)."""
    problems = []
    for pos, origin in enumerate(draft.device_origin):
        spec = draft.devices[pos]
        if origin is None or not isinstance(spec, dict):
            continue
        where = ("devices", pos)
        problem = ip_text_problem(spec.get("ip"))
        if problem:
            problems.append(Problem("", f"ip: {problem}", where + ("ip",)))
        problems += _label_problems(spec.get("labels"), where + ("labels",))
    for index, origin in draft.rule_origin.items():
        rule = draft.rules[index] if index < len(draft.rules) else None
        if origin is not None and isinstance(rule, dict):
            for part in ("set", "match"):
                section = rule.get(part)
                if isinstance(section, dict):
                    problems += _label_problems(section.get("labels"), ("classify", index, part, "labels"))
    return problems


def _label_problems(labels: object, path: tuple) -> list[Problem]:
    if not isinstance(labels, dict):
        return []  # not a mapping: the loader has reported it
    return [Problem("", f"labels.{key}: {problem}", path + (key,))
            for key, value in labels.items() if (problem := label_value_problem(value))]


class ChangeRejected(Exception):
    """The changed inventory does not validate; `problems` are the loader's, `draft` maps them."""

    def __init__(self, draft: Draft, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s)")
        self.draft = draft
        self.problems = problems


class StorageError(Exception):
    """Stored data cannot be serialised (e.g. a value JSON cannot hold)."""


RESOLVED = ("name", "ip", "region", "branch", "role", "isp", "snmp", "enabled", "labels", "sites")


def resolved_row(d: Device) -> dict:
    return {"name": d.name, "ip": d.ip, "region": d.region, "branch": d.branch, "role": d.role,
            "isp": d.isp, "snmp": d.snmp, "enabled": d.enabled,
            "labels": json.dumps(dict(d.labels), sort_keys=True), "sites": json.dumps(list(d.sites))}


def _dumps(spec: object) -> str:
    try:
        return json.dumps(spec, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StorageError(f"value cannot be stored as JSON: {exc}") from None


class InventoryStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._cached: Snapshot | None = None
        self._load_lock = threading.Lock()
        self._publish_lock = threading.Lock()

    # --- reading ------------------------------------------------------------------------------

    def generation(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(state_table.c.generation).where(state_table.c.id == 1)).scalar_one()

    def snapshot(self) -> Snapshot:
        """The current generation's snapshot: cached unless another writer committed since."""
        gen = self.generation()
        cached = self._cached
        if cached is not None and cached.generation >= gen:
            return cached
        with self._load_lock:
            cached = self._cached
            if cached is not None and cached.generation >= gen:
                return cached
            with self.engine.connect() as conn:
                if self.engine.dialect.name == "postgresql":
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    row = conn.execute(select(state_table.c.generation, state_table.c.changed_at)
                                       .where(state_table.c.id == 1)).one()
                    snap = self._load(conn, row.generation, row.changed_at)
            self._publish(snap)
            return snap

    def _load(self, conn, generation: int, changed_at) -> Snapshot:
        profiles = {r.name: json.loads(r.spec) for r in conn.execute(
            select(profiles_table.c.name, profiles_table.c.spec).order_by(profiles_table.c.position))}
        rules = [json.loads(s) for s in conn.execute(
            select(rules_table.c.spec).order_by(rules_table.c.position)).scalars()]
        windows = [json.loads(s) for s in conn.execute(
            select(windows_table.c.spec).order_by(windows_table.c.position)).scalars()]
        ids, devices = [], []
        for row in conn.execute(select(devices_table.c.id, devices_table.c.spec).order_by(devices_table.c.id)):
            ids.append(row.id)
            devices.append(json.loads(row.spec))
        try:
            inv, problems = build_inventory(plain_data(profiles, rules, windows, devices)), []
        except InventoryError as exc:  # e.g. a newer validator is stricter than the one that stored it
            inv, problems = None, exc.problems
        return Snapshot(generation, profiles, rules, windows, devices, ids, inv, problems, changed_at)

    def _publish(self, snap: Snapshot) -> None:
        with self._publish_lock:
            if self._cached is None or snap.generation > self._cached.generation:
                self._cached = snap

    def resync(self) -> int:
        """Rewrite resolved columns that disagree with what the validator builds from the stored
        specs (e.g. after an upgrade changed a rule's meaning). Returns how many rows were fixed.
        Run at start; also warms this process's snapshot cache."""
        snap = self.snapshot()
        if snap.inventory is None:
            return 0
        expected = {id_: resolved_row(d) for id_, d in zip(snap.ids, snap.inventory.devices, strict=True)}
        cols = [devices_table.c[k] for k in RESOLVED]
        with self.engine.connect() as conn:
            rows = conn.execute(select(devices_table.c.id, *cols)).all()
        stale = {r.id for r in rows if {k: getattr(r, k) for k in RESOLVED} != expected.get(r.id)}
        if stale:
            self.write(lambda draft: draft.refresh.update(stale))
        return len(stale)

    # --- writing ------------------------------------------------------------------------------

    def write(self, change: Callable[[Draft], object]) -> tuple[Snapshot, object]:
        """Apply `change` to a draft of the current inventory; validate; commit or raise.

        `change` may raise (e.g. ApiError for an unknown name): nothing is written. If the
        result does not validate, ChangeRejected carries every problem. Returns the new snapshot
        and whatever `change` returned.
        """
        now = utcnow()
        with self.engine.connect() as conn:
            conn = conn.execution_options(wardops_write=True)
            with conn.begin():
                generation = conn.execute(
                    update(state_table).where(state_table.c.id == 1)
                    .values(generation=state_table.c.generation + 1, changed_at=now)
                    .returning(state_table.c.generation)).scalar_one()
                base = self._cached
                if base is None or base.generation != generation - 1:
                    base = self._load(conn, generation - 1, None)
                draft = Draft(base)
                result = change(draft)
                try:
                    inv = build_inventory(draft.data())
                except InventoryError as exc:
                    raise ChangeRejected(draft, exc.problems) from None
                problems = service_problems(draft)
                if problems:
                    raise ChangeRejected(draft, problems)
                ids = self._apply(conn, base, draft, inv, now)
        snap = Snapshot(generation, draft.profiles, draft.rules, draft.windows, draft.devices, ids, inv, [], now)
        self._publish(snap)
        return snap, result

    def _apply(self, conn, base: Snapshot, draft: Draft, inv: Inventory, now) -> list[int]:
        if draft.profiles != base.profiles:
            conn.execute(delete(profiles_table))
            if draft.profiles:
                conn.execute(insert(profiles_table), [
                    {"name": n, "position": i, "spec": _dumps(s)} for i, (n, s) in enumerate(draft.profiles.items())])
        if draft.rules != base.rules:
            conn.execute(delete(rules_table))
            if draft.rules:
                conn.execute(insert(rules_table), [{"position": i, "spec": _dumps(s)} for i, s in enumerate(draft.rules)])
        if draft.windows != base.windows:
            conn.execute(delete(windows_table))
            if draft.windows:
                conn.execute(insert(windows_table), [
                    {"name": s.get("name"), "position": i, "spec": _dumps(s)} for i, s in enumerate(draft.windows)])

        old_pos = {id_: i for i, id_ in enumerate(base.ids)}
        kept = {id_ for id_ in draft.ids if id_ is not None}
        gone = [id_ for id_ in base.ids if id_ not in kept]
        for i in range(0, len(gone), CHUNK):
            conn.execute(delete(devices_table).where(devices_table.c.id.in_(gone[i:i + CHUNK])))

        old_devices = base.inventory.devices if base.inventory is not None else None
        updates, renames, inserts = [], [], []
        for pos, (id_, spec, dev) in enumerate(zip(draft.ids, draft.devices, inv.devices, strict=True)):
            row = resolved_row(dev)
            if id_ is None:
                inserts.append((pos, {**row, "spec": _dumps(spec), "created_at": now, "updated_at": now}))
                continue
            op = old_pos[id_]
            old_spec = base.devices[op]
            old_dev = old_devices[op] if old_devices is not None else None
            spec_changed = spec is not old_spec and spec != old_spec
            if not spec_changed and id_ not in draft.refresh and old_dev is not None and old_dev == dev \
                    and old_dev.labels == dev.labels and old_dev.sites == dev.sites:
                continue
            values = {**row, "_id": id_}
            if spec_changed:
                values["spec"] = _dumps(spec)
                values["updated_at"] = now
            updates.append(values)
            if old_dev is None or old_dev.name != dev.name or old_dev.ip != dev.ip:
                renames.append({"_id": id_, "name": f"~parked-{id_}", "ip": f"~parked-{id_}"})
        # Names and IPs are unique in the table: park changed ones first, so swaps within one
        # write (a <-> b) never collide midway.
        if renames:
            conn.execute(update(devices_table).where(devices_table.c.id == bindparam("_id"))
                         .values(name=bindparam("name"), ip=bindparam("ip")), renames)
        for group in _by_keys(updates):
            cols = {k: bindparam(k) for k in group[0] if k != "_id"}
            conn.execute(update(devices_table).where(devices_table.c.id == bindparam("_id")).values(**cols), group)
        ids = list(draft.ids)
        if inserts:
            result = conn.execute(insert(devices_table).returning(devices_table.c.id, sort_by_parameter_order=True),
                                  [row for _, row in inserts])
            for (pos, _), new_id in zip(inserts, result.scalars(), strict=True):
                ids[pos] = new_id
        return ids


def _by_keys(rows: list[dict]) -> list[list[dict]]:
    """executemany needs the same keys in every row: group rows by their key set."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())
