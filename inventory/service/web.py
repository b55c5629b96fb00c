"""Request helpers shared by the blueprints: strict JSON bodies and query parameters, writes."""

from __future__ import annotations

import json
import math
import re

from flask import current_app, request
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, StatementError

from inventory.model import NAME_RE
from inventory.service.errors import ApiError, rejection
from inventory.service.store import ChangeRejected, InventoryStore, StorageError

_DIGITS = re.compile(r"[0-9]+")


def store() -> InventoryStore:
    return current_app.extensions["wardops_store"]


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list) -> dict:
    """A JSON object whose keys are unique: `{"ip": a, "ip": b}` is an error, as in the YAML loader
    (last-wins would store a value the sender may not have meant)."""
    out = {}
    for key, value in pairs:
        if key in out:
            shown = key if len(key) <= 80 else key[:80] + "..."
            raise _DuplicateKey(f"duplicate key {shown!r} in a JSON object")
        out[key] = value
    return out


def json_body() -> object:
    """The parsed body, or 400 naming the JSON syntax error; 413 comes from MAX_CONTENT_LENGTH."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(400, "bad_request", "request body is empty (send JSON)")
    try:
        return json.loads(raw, parse_float=_finite, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise ApiError(400, "bad_request", f"invalid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise ApiError(400, "bad_request", "request body must be UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "bad_request", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "bad_request", f"invalid JSON: {exc}") from None


def json_object() -> dict:
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(422, "invalid", "request body must be a JSON object",
                       [{"message": "must be a JSON object", "location": "$", "field": None}])
    return body


def query(allowed: tuple[str, ...]) -> dict[str, str]:
    """Query parameters, each at most once; unknown ones are a 400 (typos must not silently match all)."""
    out: dict[str, str] = {}
    problems = []
    for key in request.args:
        values = request.args.getlist(key)
        if key not in allowed:
            problems.append({"message": f"unknown query parameter {key!r} (allowed: {', '.join(allowed)})",
                             "location": f"query.{key}", "field": key})
        elif len(values) > 1:
            problems.append({"message": f"query parameter {key!r} given more than once",
                             "location": f"query.{key}", "field": key})
        else:
            out[key] = values[0]
    if problems:
        raise ApiError(400, "bad_request", "invalid query parameters", problems)
    return out


def int_param(params: dict, key: str, default: int, low: int, high: int) -> int:
    if key not in params:
        return default
    text = params[key]
    if not _DIGITS.fullmatch(text) or len(text) > 12 or not low <= int(text) <= high:
        raise ApiError(400, "bad_request", f"query parameter {key!r} must be a whole number from {low} to {high}",
                       [{"message": f"must be a whole number from {low} to {high}", "location": f"query.{key}",
                         "field": key}])
    return int(text)


def site_param(params: dict) -> str | None:
    """`?site=NAME`: a probe site name (the inventory's own name rule), or None when absent."""
    if "site" not in params:
        return None
    site = params["site"]
    if not NAME_RE.match(site) or len(site) > 128:
        raise ApiError(400, "bad_request", "site must be a probe site name like dc1",
                       [{"message": "want a site name", "location": "query.site", "field": "site"}])
    return site


def write(change):
    """Run a store write, turning validation and storage failures into JSON errors."""
    try:
        return store().write(change)
    except ChangeRejected as exc:
        raise rejection(exc) from None
    except StorageError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    except IntegrityError:
        raise ApiError(409, "conflict", "the change conflicts with stored data (unique name or IP)") from None
    except OperationalError:
        current_app.logger.exception("database error during write")
        raise ApiError(503, "unavailable", "database unavailable") from None
    except (DBAPIError, StatementError) as exc:
        # e.g. PostgreSQL refusing a NUL character the validator let through in an IPv6 scope id
        raise ApiError(422, "invalid", f"value rejected by the database: {exc.orig.__class__.__name__ if getattr(exc, 'orig', None) else 'error'}") from None


def with_generation(resp, snap):
    resp.headers["X-Wardops-Generation"] = str(snap.generation)
    return resp
