"""GET /api/v1/openapi.json: the API described as OpenAPI 3.0 (hand-built; schemathesis checks
that every response matches it)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from inventory.model import ROLES, SNMP_AUTH_PROTOCOLS, SNMP_PRIV_PROTOCOLS, SNMP_VERSIONS

bp = Blueprint("openapi", __name__)

STR = {"type": "string"}
NSTR = {"type": "string", "nullable": True}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
LABELS = {"type": "object", "additionalProperties": STR}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props: dict, required=(), additional=False) -> dict:
    out = {"type": "object", "properties": props, "additionalProperties": additional}
    if required:
        out["required"] = list(required)
    return out


PROFILE_FIELDS = {
    "version": {"type": "string", "enum": list(SNMP_VERSIONS)},
    "username": STR, "auth_protocol": {"type": "string", "enum": list(SNMP_AUTH_PROTOCOLS)},
    "priv_protocol": {"type": "string", "enum": list(SNMP_PRIV_PROTOCOLS)},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "timeout": {"type": "number"}, "retries": INT, "max_repetitions": INT,
    **{f"{s}_{k}": {"type": "string", "description": "reference only (env var name or file path)"}
       for s in ("community", "auth_key", "priv_key") for k in ("env", "file")},
}
DEVICE_FIELDS = {
    "name": STR, "ip": STR, "region": STR, "branch": STR, "role": {"type": "string", "enum": list(ROLES)},
    "isp": NSTR, "snmp": NSTR, "enabled": BOOL, "labels": LABELS,
    "sites": {"type": "array", "items": STR, "description": "probe sites that probe the device; [] (resolved): all"},
}
WINDOW_FIELDS = {
    "name": STR, "branches": {"type": "array", "items": STR}, "regions": {"type": "array", "items": STR},
    "devices": {"type": "array", "items": STR}, "weekdays": {"type": "array", "items": STR},
    "times": {"type": "array", "items": STR}, "timezone": STR,
}

SCHEMAS = {
    "Problem": obj({"message": STR, "location": STR, "field": NSTR, "op": STR, "index": INT, "device": STR,
                    "resource": STR}, ("message", "location")),
    "Error": obj({"error": STR, "message": STR, "problem_count": INT,
                  "problems": {"type": "array", "items": ref("Problem")}}, ("error", "message")),
    "DeviceInput": obj(DEVICE_FIELDS),
    "Device": obj({**DEVICE_FIELDS, "explicit": ref("DeviceInput"),
                   "created_at": {"type": "string", "format": "date-time"},
                   "updated_at": {"type": "string", "format": "date-time"}},
                  ("name", "ip", "region", "branch", "role", "isp", "snmp", "enabled", "labels", "sites", "explicit",
                   "created_at", "updated_at")),
    "DeviceList": obj({"items": {"type": "array", "items": ref("Device")}, "total": INT, "limit": INT,
                       "offset": {"type": "integer", "nullable": True}, "has_more": BOOL, "next_cursor": NSTR},
                      ("items", "total", "limit", "offset", "has_more", "next_cursor")),
    "BulkRequest": obj({"create": {"type": "array", "items": ref("DeviceInput")},
                        "update": {"type": "array", "items": ref("DeviceInput")},
                        "delete": {"type": "array", "items": STR}}),
    "BulkResult": obj({"created": INT, "updated": INT, "deleted": INT, "generation": INT, "devices": INT},
                      ("created", "updated", "deleted", "generation", "devices")),
    "SnmpProfileInput": obj(PROFILE_FIELDS),
    "SnmpProfile": obj({"name": STR, **PROFILE_FIELDS}, ("name", "version")),
    "SnmpProfileList": obj({"items": {"type": "array", "items": ref("SnmpProfile")}}, ("items",)),
    "ClassifyRuleInput": obj({"match": {"type": "object"}, "set": {"type": "object"}}, ("match", "set")),
    "ClassifyRule": obj({"index": INT, "match": {"type": "object"}, "set": {"type": "object"}},
                        ("index", "match", "set")),
    "ClassifyRuleList": obj({"items": {"type": "array", "items": ref("ClassifyRule")}}, ("items",)),
    "ClassifyRuleListInput": obj({"items": {"type": "array", "items": ref("ClassifyRuleInput")}}, ("items",)),
    "MaintenanceWindowInput": obj(WINDOW_FIELDS),
    "MaintenanceWindow": obj(WINDOW_FIELDS, ("name",)),
    "MaintenanceWindowList": obj({"items": {"type": "array", "items": ref("MaintenanceWindow")}}, ("items",)),
    "SdGroup": obj({"targets": {"type": "array", "items": STR, "minItems": 1, "maxItems": 1},
                    "labels": LABELS}, ("targets", "labels")),
    "Health": obj({"status": {"type": "string", "enum": ["ok", "error"]},
                   "database": {"type": "object"}, "inventory": {"type": "object"}}, ("status", "database")),
}

_DESCRIPTIONS = {200: "OK", 201: "Created", 204: "No content", 304: "Not modified (ETag matched)",
                 400: "Bad request (JSON syntax, query parameters)", 401: "Missing or invalid bearer token",
                 403: "Token lacks the admin role", 404: "Not found",
                 409: "Duplicate name/IP, or the change would break stored data", 413: "Body too large",
                 422: "Validation failed (problems name the item, device and field)", 429: "Rate limited",
                 503: "Database unavailable or stored inventory invalid"}
READ_ERRORS = (400, 401, 429, 503)
WRITE_ERRORS = (400, 401, 403, 409, 413, 422, 429, 503)


def _json(schema) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: dict, errors) -> dict:
    out = {}
    for code, schema in ok.items():
        out[str(code)] = {"description": _DESCRIPTIONS[code], **({} if schema is None else _json(schema))}
    for code in errors:
        out[str(code)] = {"description": _DESCRIPTIONS[code], **_json(ref("Error"))}
    return out


def _q(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _p(name: str, schema=STR) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def op(summary, ok, errors, write=False, params=(), body=None) -> dict:
    out: dict = {"summary": summary, "responses": _responses(ok, errors),
                 "security": [{"bearerAuth": []}] if write else [{}, {"bearerAuth": []}]}
    if params:
        out["parameters"] = list(params)
    if body is not None:
        out["requestBody"] = {"required": True, **_json(body)}
    return out


ROLE_LIST = {"type": "string", "description": f"comma-separated roles ({', '.join(ROLES)})"}


def document() -> dict:
    name, index = _p("name"), _p("index", {"type": "integer", "minimum": 0})
    paths = {
        "/api/v1/devices": {
            "get": op("List devices (resolved fields + explicit ones), filtered in SQL, paginated",
                      {200: ref("DeviceList")}, READ_ERRORS, params=[
                          _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                          _q("offset", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}),
                          _q("cursor", STR, "next_cursor of the previous page (instead of offset)"),
                          _q("region", STR), _q("branch", STR), _q("role", ROLE_LIST),
                          _q("enabled", {"type": "string", "enum": ["true", "false"]}),
                          _q("snmp", STR, "SNMP profile name; empty: devices without SNMP"),
                          _q("site", STR, "probe site name: only the devices that site probes "
                                          "(sites naming it, or none)"),
                          _q("q", STR, "substring of the name (case-insensitive) or IP")]),
            "post": op("Create a device", {201: ref("Device")}, WRITE_ERRORS, True, body=ref("DeviceInput")),
        },
        "/api/v1/devices/bulk": {
            "post": op("Atomic bulk delete, update, create (all or nothing)", {200: ref("BulkResult")},
                       WRITE_ERRORS, True, body=ref("BulkRequest")),
        },
        "/api/v1/devices/{name}": {
            "get": op("Get a device", {200: ref("Device")}, (401, 404, 429, 503), params=[name]),
            "put": op("Replace a device's explicit fields", {200: ref("Device")}, (*WRITE_ERRORS, 404), True,
                      [name], ref("DeviceInput")),
            "patch": op("Merge explicit fields into a device", {200: ref("Device")}, (*WRITE_ERRORS, 404), True,
                        [name], ref("DeviceInput")),
            "delete": op("Delete a device", {204: None}, (401, 403, 404, 409, 429, 503), True, [name]),
        },
        "/api/v1/snmp-profiles": {
            "get": op("SNMP profiles (secret references only, never values)", {200: ref("SnmpProfileList")},
                      READ_ERRORS),
        },
        "/api/v1/snmp-profiles/{name}": {
            "get": op("Get an SNMP profile", {200: ref("SnmpProfile")}, (401, 404, 429, 503), params=[name]),
            "put": op("Create or replace an SNMP profile", {200: ref("SnmpProfile"), 201: ref("SnmpProfile")},
                      WRITE_ERRORS, True, [name], ref("SnmpProfileInput")),
            "delete": op("Delete an SNMP profile (409 while in use)", {204: None}, (401, 403, 404, 409, 429, 503),
                         True, [name]),
        },
        "/api/v1/classify-rules": {
            "get": op("Classify rules in order", {200: ref("ClassifyRuleList")}, READ_ERRORS),
            "put": op("Replace all classify rules", {200: ref("ClassifyRuleList")}, WRITE_ERRORS, True,
                      body=ref("ClassifyRuleListInput")),
            "post": op("Append a classify rule", {201: ref("ClassifyRule")}, WRITE_ERRORS, True,
                       body=ref("ClassifyRuleInput")),
        },
        "/api/v1/classify-rules/{index}": {
            "get": op("Get a classify rule", {200: ref("ClassifyRule")}, (401, 404, 429, 503), params=[index]),
            "put": op("Replace a classify rule", {200: ref("ClassifyRule")}, (*WRITE_ERRORS, 404), True, [index],
                      ref("ClassifyRuleInput")),
            "delete": op("Delete a classify rule", {204: None}, (401, 403, 404, 409, 429, 503), True, [index]),
        },
        "/api/v1/maintenance-windows": {
            "get": op("Maintenance windows", {200: ref("MaintenanceWindowList")}, READ_ERRORS),
            "post": op("Create a maintenance window", {201: ref("MaintenanceWindow")}, WRITE_ERRORS, True,
                       body=ref("MaintenanceWindowInput")),
        },
        "/api/v1/maintenance-windows/{name}": {
            "get": op("Get a maintenance window", {200: ref("MaintenanceWindow")}, (401, 404, 429, 503),
                      params=[name]),
            "put": op("Create or replace a maintenance window",
                      {200: ref("MaintenanceWindow"), 201: ref("MaintenanceWindow")}, WRITE_ERRORS, True, [name],
                      ref("MaintenanceWindowInput")),
            "delete": op("Delete a maintenance window", {204: None}, (401, 403, 404, 409, 429, 503), True, [name]),
        },
        "/api/v1/sd": {
            "get": op("Prometheus HTTP SD: one target group per enabled device; ETag/304",
                      {200: {"type": "array", "items": ref("SdGroup")}, 304: None}, READ_ERRORS, params=[
                          _q("role", ROLE_LIST), _q("exclude_role", ROLE_LIST),
                          _q("shard", {"type": "string", "pattern": "^[0-9]+/[0-9]+$"},
                             "i/n: devices with shard_of(region/branch, n) == i: a branch stays whole"),
                          _q("site", STR, "probe site name: only the devices that site probes "
                                          "(sites naming it, or none)")]),
        },
        "/healthz": {
            "get": {"summary": "Database and inventory status", "security": [{}],
                    "responses": {"200": {"description": "healthy", **_json(ref("Health"))},
                                  "429": {"description": "Rate limited", **_json(ref("Error"))},
                                  "503": {"description": "unhealthy", **_json(ref("Health"))}}},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "wardops inventory service", "version": "1",
                 "description": "Devices, SNMP profiles (references only), classify rules, maintenance windows, "
                                "and Prometheus HTTP service discovery. Every write is validated by the same "
                                "code as the YAML inventory loader."},
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    }


@bp.get("/api/v1/openapi.json")
def openapi_json():
    return jsonify(document())
