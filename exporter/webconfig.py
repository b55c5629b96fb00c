"""`--web.config.file`: TLS and basic auth in the exporter-toolkit format Prometheus exporters use.

    tls_server_config:
      cert_file: /etc/wardops/tls/exporter.crt
      key_file: /etc/wardops/tls/exporter.key
      client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (default), VerifyClientCertIfGiven
      client_ca_file: /etc/wardops/tls/scrapers-ca.crt
      min_version: TLS12                            # TLS10..TLS13
    basic_auth_users:
      prometheus: $2y$10$...                        # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\n')
    http_server_config:
      headers: {Strict-Transport-Security: max-age=31536000}

Unknown keys are errors (every problem at once, file:line). Keys the toolkit knows but Python's ssl
module cannot honour as written (cipher_suites, curve_preferences, prefer_server_cipher_suites, http2)
are accepted and reported as ignored, so an existing file still loads. Read at start only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from inventory.errors import ConfigError, describe_value
from inventory.located import read_yaml
from inventory.strict import INVALID, Checker, read_config_file

TOP_KEYS = ("tls_server_config", "basic_auth_users", "http_server_config")
TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version",
            "cipher_suites", "curve_preferences", "prefer_server_cipher_suites")
IGNORED_TLS_KEYS = ("cipher_suites", "curve_preferences", "prefer_server_cipher_suites")
HTTP_KEYS = ("headers", "http2")
CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
# Python's ssl cannot demand a client certificate without verifying it against a CA.
UNSUPPORTED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")
TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# Headers the server sets itself (exporter-toolkit refuses the same kind of override).
RESERVED_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding",
                              "connection", "www-authenticate", "date", "server"})


class WebConfigError(ConfigError):
    """The web config file is invalid; `problems` lists every error, each with file:line."""


@dataclass(frozen=True)
class WebConfig:
    cert_file: str | None = None
    key_file: str | None = None
    client_auth_type: str = "NoClientCert"
    client_ca_file: str | None = None
    min_version: str = "TLS12"
    max_version: str | None = None
    users: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))  # user -> bcrypt hash
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    ignored: tuple[str, ...] = ()  # dotted keys accepted but without effect
    # sha256(user:password) of credentials bcrypt already accepted: a scrape every 15 s must not cost a
    # bcrypt check (~50 ms at cost 10, ~200 ms at cost 12) each time.
    _accepted: set = field(default_factory=set, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server context, or None without TLS. OSError/ssl.SSLError for unreadable files."""
        if not self.tls:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = TLS_VERSIONS[self.min_version]
        if self.max_version:
            ctx.maximum_version = TLS_VERSIONS[self.max_version]
        ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.verify_mode = CLIENT_AUTH[self.client_auth_type]
        if self.client_ca_file:
            ctx.load_verify_locations(cafile=self.client_ca_file)
        return ctx

    def authorized(self, header: str | None) -> bool:
        """True without basic_auth_users, else only for a user whose password matches its bcrypt hash."""
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if not sep or hashed is None:
            return False
        key = hashlib.sha256(f"{user}\0{password}\0".encode() + hashed).digest()
        with self._lock:
            if key in self._accepted:
                return True
        import bcrypt

        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:  # a malformed hash was refused on load; be safe anyway
            return False
        if ok:
            with self._lock:
                if len(self._accepted) > 1024:
                    self._accepted.clear()
                self._accepted.add(key)
        return ok


def load_web_config(path: str) -> WebConfig:
    return loads_web_config(read_config_file(path, WebConfigError, "web config"), path)


def loads_web_config(text: str, source: str = "<web config>") -> WebConfig:
    data, locate = read_yaml(text, source, WebConfigError)
    chk = Checker(locate)  # the one config kit: FILE:LINE: dotted.path: message, every error at once
    error = chk.error

    def mapping(value, path, allowed) -> dict:
        """Unknown keys reported; allowed=None: any key (user names, header names)."""
        if allowed is None:
            return chk.mapping(value, path, value.keys() if isinstance(value, dict) else ()) or {}
        return chk.mapping(value, path, allowed) or {}

    def string(m, path, key) -> str | None:
        if m.get(key) is None:
            return None
        value = chk.text(m[key], path + (key,))
        return None if value is INVALID else value

    top = mapping(data, (), TOP_KEYS)
    kwargs: dict = {}
    ignored = []
    p = ("tls_server_config",)
    tls = mapping(top.get("tls_server_config"), p, TLS_KEYS)
    if tls:
        cert, key = string(tls, p, "cert_file"), string(tls, p, "key_file")
        for name, value in (("cert_file", cert), ("key_file", key)):
            if value is None and name not in tls:
                error(p, f"{name} is required for TLS")
        kwargs.update(cert_file=cert, key_file=key)
        auth = tls.get("client_auth_type", "NoClientCert")
        if auth in UNSUPPORTED_CLIENT_AUTH:
            error(p + ("client_auth_type",), f"{auth} is not supported (a client certificate is verified "
                                             "against client_ca_file or not requested): use "
                                             "RequireAndVerifyClientCert or VerifyClientCertIfGiven")
        elif auth not in CLIENT_AUTH:
            error(p + ("client_auth_type",), f"must be one of {', '.join(CLIENT_AUTH)}, got {describe_value(auth)}")
        else:
            kwargs["client_auth_type"] = auth
            ca = string(tls, p, "client_ca_file")
            if auth != "NoClientCert" and ca is None:
                error(p + ("client_auth_type",), f"{auth} needs client_ca_file")
            kwargs["client_ca_file"] = ca
        for key_name in ("min_version", "max_version"):
            if key_name in tls:
                value = tls[key_name]
                if value not in TLS_VERSIONS:
                    error(p + (key_name,), f"must be one of {', '.join(TLS_VERSIONS)}, got {describe_value(value)}")
                else:
                    kwargs[key_name] = value
        ignored += [f"tls_server_config.{k}" for k in IGNORED_TLS_KEYS if k in tls]
    p = ("basic_auth_users",)
    users = {}
    for user, hashed in mapping(top.get("basic_auth_users"), p, None).items():
        if not isinstance(user, str) or not user or ":" in user:
            error(p + (user,), "user names must be non-empty strings without ':'")
        elif not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")) or len(hashed) != 60:
            error(p + (user,), "must be a bcrypt hash ($2a$/$2b$/$2y$, 60 characters), got "
                               + ("a string of another form" if isinstance(hashed, str) else describe_value(hashed)))
        else:
            users[user] = hashed.encode()
    kwargs["users"] = MappingProxyType(users)
    p = ("http_server_config",)
    http = mapping(top.get("http_server_config"), p, HTTP_KEYS)
    headers = {}
    for name, value in mapping(http.get("headers"), p + ("headers",), None).items():
        hp = p + ("headers", name)
        if not isinstance(name, str) or not name or any(c in name for c in " :\r\n\t"):
            error(hp, "is not a valid header name")
        elif name.lower() in RESERVED_HEADERS:
            error(hp, "is set by the exporter itself and cannot be configured")
        elif not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            error(hp, "must be a string without line breaks")
        else:
            headers[name] = value
    kwargs["headers"] = MappingProxyType(headers)
    if "http2" in http:
        ignored.append("http_server_config.http2")
    chk.raise_if_any(WebConfigError)
    return WebConfig(ignored=tuple(ignored), **kwargs)
