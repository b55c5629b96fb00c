"""GET /: a read-only HTML device list with filters (human text: Jinja2, autoescaped)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from flask import Blueprint, render_template_string

from inventory.model import ROLES
from inventory.service.api_devices import page
from inventory.service.auth import READ, require
from inventory.service.web import query

bp = Blueprint("html", __name__)
TEMPLATE = Path(__file__).with_name("devices.html.j2")
PARAMS = ("q", "region", "branch", "role", "offset")
PER_PAGE = 100


@bp.get("/")
@require(READ)
def device_list():
    params = {k: v for k, v in query(PARAMS).items() if v != ""}
    result = page({**params, "limit": str(PER_PAGE)})
    offset = result["offset"]

    def qs(new_offset: int) -> str:
        return urlencode({**params, "offset": max(0, new_offset)})

    return render_template_string(TEMPLATE.read_text(encoding="utf-8"), page=result, params=params, roles=ROLES,
                                  prev_qs=qs(offset - PER_PAGE), next_qs=qs(offset + PER_PAGE))
