"""Secrets by reference: the inventory names an env var or a file, never the value.

A Secret prints as its reference, so dumping or logging a profile cannot leak the value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


class SecretError(Exception):
    """A reference that cannot be resolved or whose value is malformed. Never contains the value."""


@dataclass(frozen=True, slots=True)
class Secret:
    kind: str  # "env" | "file"
    ref: str  # variable name or path

    def __repr__(self) -> str:
        return f"Secret({self.kind}:{self.ref})"

    __str__ = __repr__

    def resolve(self, environ: dict[str, str] | None = None) -> str:
        env = os.environ if environ is None else environ
        if self.kind == "env":
            if self.ref not in env:
                raise SecretError(f"environment variable {self.ref} is not set")
            value = env[self.ref]
        else:
            try:
                value = Path(self.ref).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise SecretError(f"cannot read secret file {self.ref}: {exc.__class__.__name__}") from None
            value = value.rstrip("\r\n")
        if not value:
            raise SecretError(f"secret {self.kind}:{self.ref} is empty")
        return value


def reference_problem(kind: str, ref: object) -> str | None:
    """Why a reference is malformed, or None. Checks the reference, not the value."""
    if not isinstance(ref, str) or not ref:
        return "must be a non-empty string"
    if kind == "env" and (set(ref) - ENV_NAME_CHARS or ref[0].isdigit()):
        return f"{ref!r} is not a valid environment variable name"
    return None


def value_problem(purpose: str, value: str) -> str | None:
    """Format rules checked when a secret is resolved (at exporter start and by `check --secrets`)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return f"{purpose} contains control characters"
    if purpose == "community" and len(value) > 255:
        return "community is longer than 255 characters"
    if purpose in ("auth_key", "priv_key") and len(value) < 8:
        # RFC 3414: USM passphrases must be at least 8 characters; agents reject shorter ones.
        return f"{purpose} is shorter than 8 characters"
    return None
