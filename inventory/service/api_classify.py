"""/api/v1/classify-rules: the ordered rules that fill fields a device does not set itself."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from inventory.service.auth import ADMIN, READ, require
from inventory.service.errors import ApiError
from inventory.service.store import Draft, Origin, Snapshot
from inventory.service.web import json_object, query, store, with_generation, write

bp = Blueprint("classify_rules", __name__, url_prefix="/api/v1/classify-rules")


def rule_json(snap: Snapshot, index: int) -> dict:
    return {"index": index, **snap.rules[index]}


def _list(snap: Snapshot):
    return with_generation(jsonify({"items": [rule_json(snap, i) for i in range(len(snap.rules))]}), snap)


@bp.get("")
@require(READ)
def list_rules():
    query(())
    return _list(store().snapshot())


@bp.put("")
@require(ADMIN)
def replace_rules():
    """Replace the whole ordered list: {"items": [{"match": ..., "set": ...}, ...]}."""
    body = json_object()
    items = body.get("items")
    if set(body) != {"items"} or not isinstance(items, list):
        raise ApiError(422, "invalid", 'body must be {"items": [rule, ...]}',
                       [{"message": "must be an object with only an items list", "location": "$", "field": None}])

    def change(draft: Draft):
        draft.rules = list(items)
        draft.rule_origin = {i: Origin("replace", i, f"$.items[{i}]") for i in range(len(items))}

    snap, _ = write(change)
    return _list(snap)


@bp.post("")
@require(ADMIN)
def append_rule():
    spec = json_object()

    def change(draft: Draft):
        draft.rules.append(spec)
        draft.rule_origin[len(draft.rules) - 1] = Origin(None, None, "$")
        return len(draft.rules) - 1

    snap, index = write(change)
    resp = jsonify(rule_json(snap, index))
    resp.status_code = 201
    return with_generation(resp, snap)


def _index(draft_or_snap, index: int) -> int:
    if index >= len(draft_or_snap.rules):
        raise ApiError(404, "not_found", f"no classify rule at index {index}")
    return index


@bp.get("/<int:index>")
@require(READ)
def get_rule(index: int):
    snap = store().snapshot()
    return with_generation(jsonify(rule_json(snap, _index(snap, index))), snap)


@bp.put("/<int:index>")
@require(ADMIN)
def put_rule(index: int):
    spec = json_object()

    def change(draft: Draft):
        draft.rules[_index(draft, index)] = spec
        draft.rule_origin[index] = Origin(None, None, "$")

    snap, _ = write(change)
    return with_generation(jsonify(rule_json(snap, index)), snap)


@bp.delete("/<int:index>")
@require(ADMIN)
def delete_rule(index: int):
    def change(draft: Draft):
        del draft.rules[_index(draft, index)]

    snap, _ = write(change)
    return with_generation(current_app.response_class(status=204), snap)
