"""Inventory SnmpProfile + Secret references -> authentication data for the walker.

Secrets are resolved here and only here. The objects returned never show a secret in repr/str, and
every error names the profile and the reference, never the value.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from inventory.model import SnmpProfile
from inventory.secrets import Secret, SecretError, value_problem


class CredentialError(Exception):
    """A profile whose secrets cannot be resolved or are malformed (message carries no secret)."""


@dataclass(frozen=True, slots=True)
class CommunityAuth:
    """SNMP v1 (version 0) or v2c (version 1) community."""

    version: int
    community: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"CommunityAuth(v{'1' if self.version == 0 else '2c'}, community=***)"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class UsmAuth:
    """SNMP v3 USM user; `user_data()` builds pysnmp's UsmUserData on demand."""

    username: str
    auth_protocol: str | None
    auth_key: str | None = field(repr=False)
    priv_protocol: str | None
    priv_key: str | None = field(repr=False)

    def __repr__(self) -> str:
        return (f"UsmAuth({self.username!r}, auth={self.auth_protocol or 'none'}, "
                f"priv={self.priv_protocol or 'none'})")

    __str__ = __repr__

    def user_data(self):
        from pysnmp.hlapi.v3arch import asyncio as hl

        auth = {None: hl.usmNoAuthProtocol, "MD5": hl.usmHMACMD5AuthProtocol, "SHA": hl.usmHMACSHAAuthProtocol,
                "SHA224": hl.usmHMAC128SHA224AuthProtocol, "SHA256": hl.usmHMAC192SHA256AuthProtocol,
                "SHA384": hl.usmHMAC256SHA384AuthProtocol, "SHA512": hl.usmHMAC384SHA512AuthProtocol}
        priv = {None: hl.usmNoPrivProtocol, "DES": hl.usmDESPrivProtocol, "AES": hl.usmAesCfb128Protocol,
                "AES192": hl.usmAesCfb192Protocol, "AES256": hl.usmAesCfb256Protocol}
        return hl.UsmUserData(self.username, authKey=self.auth_key, privKey=self.priv_key,
                              authProtocol=auth[self.auth_protocol], privProtocol=priv[self.priv_protocol])


Auth = CommunityAuth | UsmAuth


@dataclass(frozen=True, slots=True)
class RefusedSecret(Secret):
    """A reference the exporter's secret policy refused: resolving it fails, so nothing is sent."""

    reason: str = ""

    def resolve(self, environ: dict[str, str] | None = None) -> str:
        raise SecretError(f"{self.kind}:{self.ref} refused by the exporter's secret policy: {self.reason}")


@dataclass(frozen=True, slots=True)
class SecretPolicy:
    """Where secret references may point, set on the exporter host (config `secrets:`).

    A profile that arrives over the network (the inventory service) is written by whoever may edit the
    inventory; without this policy such a profile could name /etc/shadow or AWS_SECRET_ACCESS_KEY as its
    community and have the exporter send it to any address. `None` for a field: that kind is refused.
    """

    directory: str | None = None
    env_prefix: str | None = None

    def problem(self, secret: Secret) -> str | None:
        """Why the policy refuses `secret`, or None. Looks at the reference only, never the value."""
        if secret.kind == "env":
            if not self.env_prefix:
                return "no secrets.env_prefix is configured on the exporter"
            if not secret.ref.startswith(self.env_prefix):
                return f"environment variable name does not start with secrets.env_prefix {self.env_prefix}"
            return None
        if not self.directory:
            return "no secrets.directory is configured on the exporter"
        ref = secret.ref
        if not ref.startswith("/"):
            return "file reference is not an absolute path"
        if ".." in ref.split("/"):
            return "file reference contains '..'"
        root = os.path.realpath(self.directory)
        path = os.path.realpath(ref)
        if os.path.commonpath([root, path]) != root or path == root:
            return f"file is not inside secrets.directory {self.directory} (symlinks resolved)"
        return None


NO_POLICY = SecretPolicy()  # refuses every reference


def police_profiles(profiles: Mapping[str, SnmpProfile], policy: SecretPolicy,
                    ) -> tuple[Mapping[str, SnmpProfile], list[tuple[str, str, Secret, str]]]:
    """Profiles with every reference the policy refuses replaced by a RefusedSecret, and the refusals
    as (profile, purpose, reference, reason)."""
    out: dict[str, SnmpProfile] = {}
    refusals = []
    for name, profile in profiles.items():
        changes = {}
        for purpose, secret in profile.secrets().items():
            reason = policy.problem(secret)
            if reason:
                changes[purpose] = RefusedSecret(secret.kind, secret.ref, reason)
                refusals.append((name, purpose, secret, reason))
        out[name] = dataclasses.replace(profile, **changes) if changes else profile
    return MappingProxyType(out), refusals


def resolve_auth(profile: SnmpProfile, environ: dict[str, str] | None = None) -> Auth:
    """Resolve a profile's secret references; raise CredentialError naming profile and reference."""
    values: dict[str, str] = {}
    problems = []
    for purpose, secret in profile.secrets().items():
        try:
            value = secret.resolve(environ)
        except SecretError as exc:
            problems.append(f"{purpose}: {exc}")
            continue
        problem = value_problem(purpose, value)
        if problem:
            problems.append(f"{purpose} ({secret}): {problem}")
        else:
            values[purpose] = value
    if problems:
        raise CredentialError(f"snmp profile {profile.name!r}: " + "; ".join(problems))
    if profile.version in ("1", "2c"):
        return CommunityAuth(0 if profile.version == "1" else 1, values["community"].encode())
    return UsmAuth(profile.username or "", profile.auth_protocol, values.get("auth_key"),
                   profile.priv_protocol, values.get("priv_key"))
