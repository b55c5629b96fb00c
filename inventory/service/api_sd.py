"""GET /api/v1/sd: Prometheus HTTP service discovery (http_sd_configs), one group per enabled device.

The rendered JSON is cached per inventory generation and filter, with a content ETag, so a
poller costs one `SELECT generation` and, when nothing changed, a 304 without a body.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re

from flask import Blueprint, current_app, request

from inventory.model import (
    ROLES,
    SD_META_LABEL_PREFIX,
    SD_META_SITES,
    SD_META_SNMP,
    Inventory,
    shard_key,
    shard_of,
    sites_meta,
)
from inventory.service.auth import READ, require
from inventory.service.errors import ApiError
from inventory.service.web import query, site_param, store

bp = Blueprint("sd", __name__, url_prefix="/api/v1")
MAX_SHARDS = 1024
GZIP_MIN_BYTES = 1024
_DIGITS = re.compile(r"[0-9]+")


def _roles(params: dict, key: str) -> frozenset[str]:
    if key not in params:
        return frozenset()
    roles = params[key].split(",")
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ApiError(400, "bad_request", f"{key}: unknown role {bad[0]!r} (one of {', '.join(ROLES)})",
                       [{"message": "unknown role", "location": f"query.{key}", "field": key}])
    return frozenset(roles)


def _shard(params: dict) -> tuple[int, int] | None:
    if "shard" not in params:
        return None
    i, _, n = params["shard"].partition("/")
    if not (_DIGITS.fullmatch(i) and _DIGITS.fullmatch(n)) or len(i) > 6 or len(n) > 6 \
            or not 1 <= int(n) <= MAX_SHARDS or int(i) >= int(n):
        raise ApiError(400, "bad_request", f"shard must be i/n with 0 <= i < n <= {MAX_SHARDS}, e.g. 0/2",
                       [{"message": "want i/n", "location": "query.shard", "field": "shard"}])
    return int(i), int(n)



def sd_groups(inv: Inventory, role=frozenset(), exclude_role=frozenset(), shard=None, site=None) -> list[dict]:
    """`site`: only the devices that probe site probes (those naming it, and those naming none)."""
    out = []
    for d in inv.devices:
        if not d.enabled or (role and d.role not in role) or d.role in exclude_role:
            continue
        if not d.probed_from(site):
            continue
        if shard is not None and shard_of(shard_key(d), shard[1]) != shard[0]:
            continue
        labels = d.target_labels()
        if d.snmp:
            labels[SD_META_SNMP] = d.snmp
        for key, value in d.labels.items():
            labels[SD_META_LABEL_PREFIX + key] = value
        if d.sites:
            labels[SD_META_SITES] = sites_meta(d.sites)
        out.append({"targets": [d.ip], "labels": labels})
    return out


@bp.get("/sd")
@require(READ)
def sd():
    params = query(("role", "exclude_role", "shard", "site"))
    key = ("sd", _roles(params, "role"), _roles(params, "exclude_role"), _shard(params), site_param(params))
    snap = store().snapshot()
    if snap.inventory is None:
        raise ApiError(503, "unavailable", "the stored inventory does not validate (see /healthz)")
    entry = snap.cache.get(key)
    if entry is None:
        body = json.dumps(sd_groups(snap.inventory, *key[1:]), separators=(",", ":")).encode()
        entry = {"identity": body, "etag": hashlib.sha256(body).hexdigest()[:32]}
        if len(snap.cache) < current_app.config["SD_CACHE_ENTRIES"]:
            snap.cache[key] = entry
    # Pollers (vmagent, the exporter) accept gzip: 10k devices are ~2 MB of JSON, ~0.1 MB gzipped.
    # Compressed once per generation and filter, like the JSON itself.
    use_gzip = request.accept_encodings["gzip"] > 0 and len(entry["identity"]) >= GZIP_MIN_BYTES
    if use_gzip and "gzip" not in entry:
        entry["gzip"] = gzip.compress(entry["identity"], compresslevel=6, mtime=0)
    etag = entry["etag"] + ("-gz" if use_gzip else "")
    headers = {"ETag": f'"{etag}"', "Cache-Control": "no-cache", "Vary": "Accept-Encoding",
               "X-Wardops-Generation": str(snap.generation)}
    if request.if_none_match.contains(etag):
        return current_app.response_class(status=304, headers=headers)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
    return current_app.response_class(entry["gzip" if use_gzip else "identity"], status=200,
                                      mimetype="application/json", headers=headers)
