"""/api/v1/maintenance-windows: named windows scoped to branches, regions or devices."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, url_for

from inventory.service.auth import ADMIN, READ, require
from inventory.service.errors import ApiError
from inventory.service.store import Draft, Origin, Snapshot
from inventory.service.web import json_object, query, store, with_generation, write

bp = Blueprint("maintenance_windows", __name__, url_prefix="/api/v1/maintenance-windows")


def _find(windows: list[dict], name: str) -> int | None:
    for i, w in enumerate(windows):
        if w.get("name") == name:
            return i
    return None


def _get(snap: Snapshot, name: str) -> dict:
    i = _find(snap.windows, name)
    if i is None:
        raise ApiError(404, "not_found", f"no maintenance window named {name!r}")
    return snap.windows[i]


@bp.get("")
@require(READ)
def list_windows():
    query(())
    snap = store().snapshot()
    return with_generation(jsonify({"items": list(snap.windows)}), snap)


@bp.get("/<name>")
@require(READ)
def get_window(name: str):
    snap = store().snapshot()
    return with_generation(jsonify(_get(snap, name)), snap)


@bp.post("")
@require(ADMIN)
def create_window():
    spec = json_object()

    def change(draft: Draft):
        draft.windows.append(spec)
        draft.window_origin[len(draft.windows) - 1] = Origin(None, None, "$")

    snap, _ = write(change)
    resp = jsonify(spec)
    resp.status_code = 201
    if isinstance(spec.get("name"), str):
        resp.headers["Location"] = url_for("maintenance_windows.get_window", name=spec["name"])
    return with_generation(resp, snap)


@bp.put("/<name>")
@require(ADMIN)
def put_window(name: str):
    """Create or replace the window `name` (a different `name` in the body renames it)."""
    spec = json_object()
    spec.setdefault("name", name)
    created = []

    def change(draft: Draft):
        i = _find(draft.windows, name)
        created.append(i is None)
        if i is None:
            draft.windows.append(spec)
            i = len(draft.windows) - 1
        else:
            draft.windows[i] = spec
        draft.window_origin[i] = Origin(None, None, "$")

    snap, _ = write(change)
    resp = jsonify(spec)
    resp.status_code = 201 if created[0] else 200
    return with_generation(resp, snap)


@bp.delete("/<name>")
@require(ADMIN)
def delete_window(name: str):
    def change(draft: Draft):
        i = _find(draft.windows, name)
        if i is None:
            raise ApiError(404, "not_found", f"no maintenance window named {name!r}")
        del draft.windows[i]

    snap, _ = write(change)
    return with_generation(current_app.response_class(status=204), snap)
