"""Inventory SnmpProfile + Secret references -> authentication data for the walker.

Secrets are resolved here and only here. The objects returned never show a secret in repr/str, and
every error names the profile and the reference, never the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inventory.model import SnmpProfile
from inventory.secrets import SecretError, value_problem


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
