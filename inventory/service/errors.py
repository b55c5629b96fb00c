"""JSON errors for every failure, and the mapping from loader problems to request items."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from inventory.errors import Problem
from inventory.service.store import ChangeRejected, Draft, Origin

log = logging.getLogger("wardops.inventory.service")
MAX_LISTED = 1000  # problems listed in one response; problem_count has the total


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, problems: list[dict] | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.problems = problems
        self.headers = headers or {}

    def body(self) -> dict:
        out: dict = {"error": self.error, "message": self.message}
        if self.problems is not None:
            out["problem_count"] = len(self.problems)
            out["problems"] = self.problems[:MAX_LISTED]
        return out


def json_path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def field_name(parts) -> str | None:
    return json_path(parts).lstrip(".") or None


def item_problem(origin: Origin, message: str, rest=(), device: str | None = None) -> dict:
    out: dict = {"message": message, "location": origin.base + json_path(rest), "field": field_name(rest)}
    if origin.op is not None:
        out["op"] = origin.op
    if origin.index is not None:
        out["index"] = origin.index
    if device is not None:
        out["device"] = device
    return out


def _describe(draft: Draft, problem: Problem) -> tuple[dict, bool]:
    """(problem JSON, whether it concerns something the request did not touch)."""
    path = problem.path
    kind = path[0] if path else None
    origin, rest, device, resource = None, path[1:], None, None
    if kind == "devices" and len(path) >= 2 and isinstance(path[1], int) and path[1] < len(draft.devices):
        pos = path[1]
        origin, rest, resource = draft.device_origin[pos], path[2:], "device"
        spec = draft.devices[pos]
        device = spec.get("name") if isinstance(spec, dict) and isinstance(spec.get("name"), str) else None
    elif kind == "snmp_profiles" and len(path) >= 2:
        origin, rest, resource = draft.profile_origin.get(path[1]), path[2:], "snmp_profile"
    elif kind == "classify" and len(path) >= 2:
        origin, rest, resource = draft.rule_origin.get(path[1]), path[2:], "classify_rule"
    elif kind == "maintenance" and len(path) >= 2:
        origin, rest, resource = draft.window_origin.get(path[1]), path[2:], "maintenance_window"
    if origin is not None:
        out = item_problem(origin, problem.message, rest, device)
    else:
        # Something the request did not send broke (a deleted profile still in use, a rule that
        # no longer sets a required field, ...): name it by its place in the stored inventory.
        out = {"message": problem.message, "location": "inventory" + json_path(path), "field": field_name(rest)}
        if device is not None:
            out["device"] = device
    if resource is not None:
        out["resource"] = resource
    return out, origin is None


def is_duplicate(problem: Problem) -> bool:
    return problem.code == "duplicate"


def rejection(exc: ChangeRejected) -> ApiError:
    """409 on a duplicate name/IP; 422 when something the request sent is invalid; otherwise 409:
    the change breaks stored data it did not send (a profile still in use, a window naming a device)."""
    problems, in_request = [], False
    for p in exc.problems:
        out, elsewhere = _describe(exc.draft, p)
        problems.append(out)
        in_request = in_request or not elsewhere
    if any(is_duplicate(p) for p in exc.problems):
        return ApiError(409, "duplicate", "duplicate name or IP address", problems)
    if in_request:  # fix the request first; consequences elsewhere are listed too
        return ApiError(422, "invalid", f"{len(problems)} validation problem(s)", problems)
    return ApiError(409, "conflict", "the change would make the stored inventory invalid", problems)


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        resp = jsonify(exc.body())
        resp.status_code = exc.status
        resp.headers.update(exc.headers)
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        name = (exc.name or "error").lower().replace(" ", "_")
        resp = jsonify({"error": name, "message": exc.description or exc.name})
        resp.status_code = exc.code or 500
        if exc.code == 405 and exc.response is None:
            allowed = getattr(exc, "valid_methods", None)
            if allowed:
                resp.headers["Allow"] = ", ".join(allowed)
        if exc.code == 429:
            resp.headers["Retry-After"] = "60"
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        resp = jsonify({"error": "internal_error", "message": "internal error (logged)"})
        resp.status_code = 500
        return resp
