"""Application factory: config from a mapping or the environment, no work at import time."""

from __future__ import annotations

import os

from flask import Flask
from flask_limiter import Limiter
from limits import parse_many

from inventory.service import errors
from inventory.service.auth import Tokens, rate_limit_key, read_token_file, split_tokens
from inventory.service.db import make_engine, migrate
from inventory.service.store import InventoryStore

DEFAULTS = {
    "DB_URL": None,  # default: SQLite file in the instance folder
    "ADMIN_TOKENS": [],
    "READ_TOKENS": [],
    "ADMIN_TOKEN_FILE": None,
    "READ_TOKEN_FILE": None,
    "READ_AUTH": "open",  # "open": SD and reads need no token; "token": a read or admin token
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_DEFAULT": "1200 per minute",  # every request, per token (or per client IP)
    "RATELIMIT_WRITE": "120 per minute",  # writes, on top of the default
    "RATELIMIT_STORAGE_URI": "memory://",
    "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,  # a 10,000-device bulk body is about 2.5 MB
    "SD_CACHE_ENTRIES": 64,  # rendered SD variants (role/shard filters) kept per generation
}
# Environment variable -> config key (strings; lists are comma-separated).
ENV = {
    "WARDOPS_DB_URL": "DB_URL",
    "WARDOPS_ADMIN_TOKENS": "ADMIN_TOKENS",
    "WARDOPS_READ_TOKENS": "READ_TOKENS",
    "WARDOPS_ADMIN_TOKEN_FILE": "ADMIN_TOKEN_FILE",
    "WARDOPS_READ_TOKEN_FILE": "READ_TOKEN_FILE",
    "WARDOPS_READ_AUTH": "READ_AUTH",
    "WARDOPS_RATELIMIT_ENABLED": "RATELIMIT_ENABLED",
    "WARDOPS_RATELIMIT_DEFAULT": "RATELIMIT_DEFAULT",
    "WARDOPS_RATELIMIT_WRITE": "RATELIMIT_WRITE",
    "WARDOPS_MAX_BODY_BYTES": "MAX_CONTENT_LENGTH",
}
WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]


class ConfigError(ValueError):
    """Invalid service configuration; lists every problem."""


def _env_config(environ) -> dict:
    out: dict = {}
    for var, key in ENV.items():
        if var in environ:
            out[key] = environ[var]
    return out


def _check_config(cfg) -> list[str]:
    problems = []
    unknown = set(cfg.get("WARDOPS_UNKNOWN_KEYS", ()))
    problems += [f"unknown config key {k!r}" for k in sorted(unknown)]
    if cfg["READ_AUTH"] not in ("open", "token"):
        problems.append(f"READ_AUTH must be 'open' or 'token', got {cfg['READ_AUTH']!r}")
    for key in ("RATELIMIT_DEFAULT", "RATELIMIT_WRITE"):
        try:
            parse_many(cfg[key])
        except ValueError:
            problems.append(f"{key}: invalid rate limit {cfg[key]!r} (e.g. '120 per minute')")
    if isinstance(cfg["RATELIMIT_ENABLED"], str):
        value = cfg["RATELIMIT_ENABLED"].lower()
        if value not in ("1", "0", "true", "false", "yes", "no"):
            problems.append(f"RATELIMIT_ENABLED must be true or false, got {cfg['RATELIMIT_ENABLED']!r}")
        cfg["RATELIMIT_ENABLED"] = value in ("1", "true", "yes")
    try:
        cfg["MAX_CONTENT_LENGTH"] = int(cfg["MAX_CONTENT_LENGTH"])
        if cfg["MAX_CONTENT_LENGTH"] < 1024:
            raise ValueError
    except (TypeError, ValueError):
        problems.append(f"MAX_CONTENT_LENGTH must be a whole number of bytes >= 1024, got {cfg['MAX_CONTENT_LENGTH']!r}")
    return problems


def _tokens(cfg) -> Tokens:
    admin = split_tokens(cfg["ADMIN_TOKENS"])
    read = split_tokens(cfg["READ_TOKENS"])
    if cfg["ADMIN_TOKEN_FILE"]:
        admin += read_token_file(cfg["ADMIN_TOKEN_FILE"])
    if cfg["READ_TOKEN_FILE"]:
        read += read_token_file(cfg["READ_TOKEN_FILE"])
    return Tokens(admin, read)


def create_app(test_config: dict | None = None, environ=None) -> Flask:
    """Build the app. Precedence: test_config > WARDOPS_* environment > defaults."""
    app = Flask("inventory.service", instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping(_env_config(os.environ if environ is None else environ))
    if test_config:
        unknown = [k for k in test_config if k not in DEFAULTS and k not in app.config]
        app.config.from_mapping(test_config)
        app.config["WARDOPS_UNKNOWN_KEYS"] = unknown
    problems = _check_config(app.config)
    try:
        tokens = _tokens(app.config)
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("; ".join(problems))
    if not app.config["DB_URL"]:
        os.makedirs(app.instance_path, exist_ok=True)
        app.config["DB_URL"] = "sqlite:///" + os.path.join(app.instance_path, "inventory.db")
    app.json.sort_keys = False

    engine = make_engine(app.config["DB_URL"])
    schema_version = migrate(engine)
    app.extensions["wardops_engine"] = engine
    app.extensions["wardops_schema_version"] = schema_version
    store = InventoryStore(engine)
    app.extensions["wardops_store"] = store
    fixed = store.resync()
    if fixed:
        app.logger.warning("msg=resolved columns rewritten rows=%d", fixed)
    app.extensions["wardops_tokens"] = tokens

    limiter = Limiter(rate_limit_key, app=app, default_limits=[lambda: app.config["RATELIMIT_DEFAULT"]],
                      storage_uri=app.config["RATELIMIT_STORAGE_URI"], headers_enabled=True)
    app.extensions["wardops_limiter"] = limiter

    errors.register(app)

    @app.after_request
    def _retry_after_only_on_429(resp):
        # flask-limiter adds Retry-After to every response when headers are enabled
        if resp.status_code != 429:
            resp.headers.pop("Retry-After", None)
        return resp

    from inventory.service import (
        api_classify,
        api_devices,
        api_maintenance,
        api_profiles,
        api_sd,
        health,
        html,
        openapi,
    )

    write_limit = limiter.shared_limit(lambda: app.config["RATELIMIT_WRITE"], scope="writes",
                                       methods=WRITE_METHODS, override_defaults=False)
    for module in (api_devices, api_profiles, api_classify, api_maintenance):
        write_limit(module.bp)  # registers the limit for the blueprint's routes
        app.register_blueprint(module.bp)
    app.register_blueprint(api_sd.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(html.bp)
    return app
