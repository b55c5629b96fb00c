"""/api/v1/snmp-profiles: SNMP profiles as references only (env var names / file paths)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from inventory.dump import profile_data
from inventory.service.auth import ADMIN, READ, require
from inventory.service.errors import ApiError
from inventory.service.store import Draft, Origin, Snapshot
from inventory.service.web import json_object, query, store, with_generation, write

bp = Blueprint("snmp_profiles", __name__, url_prefix="/api/v1/snmp-profiles")


def _valid(snap: Snapshot):
    if snap.inventory is None:
        raise ApiError(503, "unavailable", "the stored inventory does not validate (see /healthz)")
    return snap.inventory


def profile_json(snap: Snapshot, name: str) -> dict:
    # Built from the validated SnmpProfile, through the shared dumper that writes only references.
    return {"name": name, **profile_data(_valid(snap).snmp_profiles[name])}


@bp.get("")
@require(READ)
def list_profiles():
    query(())
    snap = store().snapshot()
    inv = _valid(snap)
    return with_generation(jsonify({"items": [profile_json(snap, n) for n in sorted(inv.snmp_profiles)]}), snap)


@bp.get("/<name>")
@require(READ)
def get_profile(name: str):
    snap = store().snapshot()
    if name not in _valid(snap).snmp_profiles:
        raise ApiError(404, "not_found", f"no snmp profile named {name!r}")
    return with_generation(jsonify(profile_json(snap, name)), snap)


@bp.put("/<name>")
@require(ADMIN)
def put_profile(name: str):
    """Create or replace. Body: the file format's profile fields (version, community_env, ...)."""
    spec = json_object()
    created = []

    def change(draft: Draft):
        created.append(name not in draft.profiles)
        draft.profiles[name] = spec
        draft.profile_origin[name] = Origin(None, None, "$")

    snap, _ = write(change)
    resp = jsonify(profile_json(snap, name))
    resp.status_code = 201 if created[0] else 200
    return with_generation(resp, snap)


@bp.delete("/<name>")
@require(ADMIN)
def delete_profile(name: str):
    """409 while devices or classify rules still use it (the loader's unknown-profile check)."""

    def change(draft: Draft):
        if name not in draft.profiles:
            raise ApiError(404, "not_found", f"no snmp profile named {name!r}")
        del draft.profiles[name]

    snap, _ = write(change)
    return with_generation(current_app.response_class(status=204), snap)
