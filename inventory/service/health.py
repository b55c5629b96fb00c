"""/healthz: database reachability, schema version, inventory generation and validity."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from inventory.service.web import store

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    engine = current_app.extensions["wardops_engine"]
    db = {"backend": engine.dialect.name, "schema_version": current_app.extensions["wardops_schema_version"]}
    body: dict = {"status": "ok", "database": db}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        snap = store().snapshot()
        db["ok"] = True
    except SQLAlchemyError as exc:
        db["ok"] = False
        db["error"] = exc.__class__.__name__  # no URL or credentials in the message
        body["status"] = "error"
        resp = jsonify(body)
        resp.status_code = 503
        return resp
    body["inventory"] = {
        "generation": snap.generation, "devices": len(snap.devices), "valid": snap.inventory is not None,
        "changed_at": snap.changed_at.isoformat() if snap.changed_at else None,
        "problems": [str(p) for p in snap.problems[:20]],
    }
    if snap.inventory is None:
        body["status"] = "error"
    resp = jsonify(body)
    resp.status_code = 200 if body["status"] == "ok" else 503
    return resp
