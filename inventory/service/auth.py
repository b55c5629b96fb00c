"""Bearer tokens: admin (read + write) and read-only, from files or env; constant-time checks.

Tokens are never logged: only a short SHA-256 prefix is used as the rate-limit key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from pathlib import Path

from flask import current_app, g, request

from inventory.service.errors import ApiError

READ, ADMIN = "read", "admin"


def read_token_file(path: str) -> list[str]:
    """One token per line; blank lines and `#` comments ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read token file {path}: {exc.__class__.__name__}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def split_tokens(value: str | list | tuple | None) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [t.strip() for t in value if t and t.strip()]


class Tokens:
    def __init__(self, admin: list[str], read: list[str]):
        for token in admin + read:
            if len(token) < 16:
                raise ValueError("API tokens must be at least 16 characters")
        self._admin = [t.encode() for t in admin]
        self._read = [t.encode() for t in read]

    @property
    def has_admin(self) -> bool:
        return bool(self._admin)

    def role(self, presented: str) -> str | None:
        """Compare against every token (no early exit), in constant time per comparison."""
        given = presented.encode()
        is_admin = is_read = False
        for token in self._admin:
            is_admin |= hmac.compare_digest(given, token)
        for token in self._read:
            is_read |= hmac.compare_digest(given, token)
        return ADMIN if is_admin else READ if is_read else None


def bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def rate_limit_key() -> str:
    """Per valid token; otherwise per client IP (random invalid tokens must not buy fresh budgets)."""
    token = bearer()
    if token and current_app.extensions["wardops_tokens"].role(token) is not None:
        return "t:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    return "ip:" + (request.remote_addr or "unknown")


def _caller_role() -> str | None:
    if "wardops_role" not in g:
        token = bearer()
        role = current_app.extensions["wardops_tokens"].role(token) if token else None
        if token and role is None:
            raise ApiError(401, "unauthorized", "invalid token",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        g.wardops_role = role
    return g.wardops_role


def require(level: str):
    """`read`: open unless READ_AUTH is "token"; `admin`: an admin token, always."""

    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            role = _caller_role()
            if level == ADMIN:
                if role is None:
                    raise ApiError(401, "unauthorized", "this operation needs an admin bearer token",
                                   headers={"WWW-Authenticate": "Bearer"})
                if role != ADMIN:
                    raise ApiError(403, "forbidden", "this operation needs an admin token (a read token was given)")
            elif current_app.config["READ_AUTH"] == "token" and role is None:
                raise ApiError(401, "unauthorized", "reads need a bearer token (READ_AUTH=token)",
                               headers={"WWW-Authenticate": "Bearer"})
            return view(*args, **kwargs)

        return inner

    return wrap
