"""/api/v1/devices: CRUD, atomic bulk create/update/delete, paginated list with SQL filters."""

from __future__ import annotations

import base64
import json

from flask import Blueprint, current_app, jsonify, url_for
from sqlalchemy import and_, func, or_, select

from inventory.model import ROLES
from inventory.service.auth import ADMIN, READ, require
from inventory.service.db import devices_table as T
from inventory.service.errors import ApiError, item_problem
from inventory.service.store import Draft, Origin
from inventory.service.web import (
    int_param,
    json_body,
    json_object,
    query,
    site_param,
    store,
    with_generation,
    write,
)

bp = Blueprint("devices", __name__, url_prefix="/api/v1/devices")

LIST_PARAMS = ("limit", "offset", "cursor", "region", "branch", "role", "enabled", "snmp", "site", "q")
MAX_LIMIT = 1000
# Longer than any device name or address; SQLite refuses LIKE patterns over 50,000 bytes (a 500).
MAX_Q = 200
BULK_KEYS = ("create", "update", "delete")


def device_json(row) -> dict:
    return {
        "name": row.name, "ip": row.ip, "region": row.region, "branch": row.branch, "role": row.role,
        "isp": row.isp, "snmp": row.snmp, "enabled": row.enabled, "labels": json.loads(row.labels),
        "sites": json.loads(row.sites),
        "explicit": json.loads(row.spec),
        "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
    }


def _fetch(name: str):
    with store().engine.connect() as conn:
        return conn.execute(select(T).where(T.c.name == name)).first()


def _get_or_404(name: str):
    row = _fetch(name)
    if row is None:
        raise ApiError(404, "not_found", f"no device named {name!r}")
    return row


def _cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def _after(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "id" or not value.isascii() or not value.isdigit() or len(value) > 18:
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_request", "invalid cursor (pass next_cursor from a previous page)",
                       [{"message": "invalid cursor", "location": "query.cursor", "field": "cursor"}]) from None


def _filters(params: dict) -> list:
    where = []
    for key in ("region", "branch"):
        if key in params:
            where.append(T.c[key] == params[key])
    if "role" in params:
        roles = params["role"].split(",")
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise ApiError(400, "bad_request", f"unknown role {bad[0]!r} (one of {', '.join(ROLES)})",
                           [{"message": "unknown role", "location": "query.role", "field": "role"}])
        where.append(T.c.role.in_(roles))
    if "enabled" in params:
        value = params["enabled"].lower()
        if value not in ("true", "false"):
            raise ApiError(400, "bad_request", "enabled must be true or false",
                           [{"message": "must be true or false", "location": "query.enabled", "field": "enabled"}])
        where.append(T.c.enabled.is_(value == "true"))
    if "snmp" in params:
        # `snmp=` (empty): devices without SNMP; profile names are never empty
        value = params["snmp"]
        where.append(T.c.snmp.is_(None) if value == "" else T.c.snmp == value)
    site = site_param(params)
    if site is not None:
        # What that probe site probes: devices naming it, and those naming none (every site). A
        # site name has no quote character (NAME_RE), so '"NAME"' matches one whole JSON list item.
        where.append(or_(T.c.sites == "[]", T.c.sites.contains(f'"{site}"', autoescape=True)))
    if "q" in params and params["q"]:
        if len(params["q"]) > MAX_Q:
            raise ApiError(400, "bad_request", f"query parameter 'q' is longer than {MAX_Q} characters",
                           [{"message": f"at most {MAX_Q} characters", "location": "query.q", "field": "q"}])
        q = params["q"].lower()
        where.append(or_(func.lower(T.c.name).contains(q, autoescape=True), T.c.ip.contains(q, autoescape=True)))
    return where


def page(params: dict) -> dict:
    """One page of devices for validated query params (shared by the API and the HTML list)."""
    limit = int_param(params, "limit", 100, 1, MAX_LIMIT)
    offset = int_param(params, "offset", 0, 0, 2**31 - 1)
    if "cursor" in params and "offset" in params:
        raise ApiError(400, "bad_request", "give either offset or cursor, not both")
    cond = and_(True, *_filters(params))
    stmt = select(T).where(cond).order_by(T.c.id).limit(limit + 1)
    if "cursor" in params:
        stmt = stmt.where(T.c.id > _after(params["cursor"]))
    else:
        stmt = stmt.offset(offset)
    with store().engine.connect() as conn:
        with conn.begin():  # one snapshot for page and total
            rows = conn.execute(stmt).all()
            total = conn.execute(select(func.count()).select_from(T).where(cond)).scalar_one()
    has_more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [device_json(r) for r in rows], "total": total, "limit": limit,
        "offset": None if "cursor" in params else offset, "has_more": has_more,
        "next_cursor": _cursor(rows[-1].id) if has_more and rows else None,
    }


@bp.get("")
@require(READ)
def list_devices():
    return jsonify(page(query(LIST_PARAMS)))


@bp.get("/<name>")
@require(READ)
def get_device(name: str):
    return jsonify(device_json(_get_or_404(name)))


def _create(draft: Draft, specs: list, op: str | None, base: str) -> None:
    for i, spec in enumerate(specs):
        draft.add_device(spec, Origin(op, i if op else None, f"{base}[{i}]" if op else base))


@bp.post("")
@require(ADMIN)
def create_device():
    spec = json_object()
    snap, _ = write(lambda d: _create(d, [spec], None, "$"))
    name = spec["name"]
    resp = jsonify(device_json(_get_or_404(name)))
    resp.status_code = 201
    resp.headers["Location"] = url_for("devices.get_device", name=name)
    return with_generation(resp, snap)


def _replace(draft: Draft, name: str, spec: dict, origin: Origin) -> None:
    pos = draft.position(name)
    if pos is None:
        raise ApiError(404, "not_found", f"no device named {name!r}")
    draft.replace_device(pos, spec, origin)


@bp.put("/<name>")
@require(ADMIN)
def put_device(name: str):
    """Replace the device's explicit fields (a `name` in the body renames it)."""
    spec = json_object()
    spec.setdefault("name", name)
    snap, _ = write(lambda d: _replace(d, name, spec, Origin(None, None, "$")))
    return with_generation(jsonify(device_json(_get_or_404(spec["name"]))), snap)


@bp.patch("/<name>")
@require(ADMIN)
def patch_device(name: str):
    """Merge the given explicit fields (top level; `labels` is replaced whole). null on snmp/isp
    means "none" (as in the file); to drop an explicit field so rules apply again, use PUT."""
    changes = json_object()
    merged_name = changes.get("name", name)

    def change(draft: Draft):
        pos = draft.position(name)
        if pos is None:
            raise ApiError(404, "not_found", f"no device named {name!r}")
        draft.replace_device(pos, {**draft.devices[pos], **changes}, Origin(None, None, "$"))

    snap, _ = write(change)
    return with_generation(jsonify(device_json(_get_or_404(merged_name))), snap)


@bp.delete("/<name>")
@require(ADMIN)
def delete_device(name: str):
    def change(draft: Draft):
        pos = draft.position(name)
        if pos is None:
            raise ApiError(404, "not_found", f"no device named {name!r}")
        draft.remove_devices({pos})

    snap, _ = write(change)
    return _no_content(snap)


def _no_content(snap):
    return with_generation(current_app.response_class(status=204), snap)


def _bulk(draft: Draft, body: dict) -> dict:
    """delete, then update, then create: all or nothing; every item problem reported at once."""
    problems = []
    for key in body:
        if key not in BULK_KEYS:
            problems.append({"message": f"unknown key {key!r} (allowed: {', '.join(BULK_KEYS)})",
                             "location": f"$.{key}", "field": key})
    lists = {}
    for key in BULK_KEYS:
        value = body.get(key, [])
        if not isinstance(value, list):
            problems.append({"message": f"{key} must be a list", "location": f"$.{key}", "field": key})
            value = []
        lists[key] = value
    if problems:
        raise ApiError(422, "invalid", "invalid bulk request", problems)

    doomed: set[int] = set()
    seen: dict[str, str] = {}
    for i, name in enumerate(lists["delete"]):
        origin = Origin("delete", i, f"$.delete[{i}]")
        if isinstance(name, dict) and set(name) == {"name"}:
            name = name["name"]
        if not isinstance(name, str):
            problems.append(item_problem(origin, "delete items are device names (strings)"))
            continue
        pos = draft.position(name)
        if pos is None:
            problems.append(item_problem(origin, f"no device named {name!r}", device=name))
        elif name in seen:
            problems.append(item_problem(origin, f"device {name!r} is also at {seen[name]}", device=name))
        else:
            seen[name] = origin.base
            doomed.add(pos)
    updates = []
    for i, spec in enumerate(lists["update"]):
        origin = Origin("update", i, f"$.update[{i}]")
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str):
            problems.append(item_problem(origin, "update items must be objects with the device's name", ("name",)))
            continue
        pos = draft.position(name)
        if pos is None:
            problems.append(item_problem(origin, f"no device named {name!r} (create it instead)", ("name",), name))
        elif name in seen:
            problems.append(item_problem(origin, f"device {name!r} is also at {seen[name]}", ("name",), name))
        else:
            seen[name] = origin.base
            updates.append((name, spec, origin))
    if problems:
        raise ApiError(422, "invalid", f"{len(problems)} problem(s) in the bulk request", problems)
    draft.remove_devices(doomed)
    for name, spec, origin in updates:
        draft.replace_device(draft.position(name), spec, origin)
    _create(draft, lists["create"], "create", "$.create")
    return {key: len(value) for key, value in (("created", lists["create"]), ("updated", updates),
                                                ("deleted", doomed))}


@bp.post("/bulk")
@require(ADMIN)
def bulk():
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(422, "invalid", "bulk body must be an object with create/update/delete lists",
                       [{"message": "must be a JSON object", "location": "$", "field": None}])
    snap, counts = write(lambda d: _bulk(d, body))
    return with_generation(jsonify({**counts, "generation": snap.generation, "devices": len(snap.devices)}), snap)
