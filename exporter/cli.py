"""`wardops exporter`: probe the inventory's devices and serve /metrics (default :10118)."""

from __future__ import annotations

import signal
import sys

from exporter.app import Exporter, StartupError
from exporter.config import ConfigError, ExporterConfig, SecretsSettings, load_config, loads_config
from exporter.logs import FORMATS, LEVELS, setup_logging
from exporter.targets import Shard, TargetError, is_file_sd, open_source
from exporter.web import WebServer, join_host_port, parse_listen
from exporter.webconfig import WebConfigError, load_web_config
from inventory import InventoryError, load_inventory
from inventory.errors import report_problems
from inventory.model import NAME_RE


def configure(parser) -> None:
    parser.add_argument("--inventory", metavar="FILE|URL",
                        help="inventory YAML file, or the inventory service's HTTP SD URL")
    parser.add_argument("--inventory.bearer-token-file", dest="inventory_token_file", metavar="FILE",
                        help="read token for an inventory service that requires one (re-read on every poll)")
    parser.add_argument("--config.file", dest="config_file", metavar="FILE", help="exporter config YAML")
    parser.add_argument("--web.listen-address", dest="listen", default="0.0.0.0:10118", metavar="HOST:PORT")
    parser.add_argument("--web.enable-lifecycle", dest="web_lifecycle", action="store_true",
                        help="allow POST /-/reload over HTTP (SIGHUP always reloads)")
    parser.add_argument("--web.config.file", dest="web_config", metavar="FILE",
                        help="TLS and basic auth, exporter-toolkit format (tls_server_config, basic_auth_users)")
    parser.add_argument("--secrets.directory", dest="secrets_dir", metavar="DIR",
                        help="SNMP *_file references from the inventory must resolve inside DIR (wins over the config)")
    parser.add_argument("--secrets.env-prefix", dest="secrets_env_prefix", metavar="PREFIX",
                        help="SNMP *_env references from the inventory must start with PREFIX (wins over the config)")
    parser.add_argument("--shard", metavar="i/n", help="probe only the branches with shard_of(region/branch, n) == i (a branch stays whole)")
    parser.add_argument("--site", metavar="NAME",
                        help="the probe site this exporter stands in (a settings `sites:` name; wins over the "
                             "config's site.name): probe only devices whose inventory sites include it or name none")
    parser.add_argument("--netns", metavar="NAME", help="probe from inside this network namespace")
    parser.add_argument("--log.level", dest="log_level", default="info", choices=(*LEVELS, "warning"),
                        help="debug | info | warn | error (tracebacks only at debug)")
    parser.add_argument("--log.format", dest="log_format", default="logfmt", choices=FORMATS)
    parser.add_argument("--config.check", dest="config_check", action="store_true",
                        help="check --config.file, --web.config.file and --inventory (one fetch of a URL), print OK "
                             "or every error with its place, and exit 0 or 1")
    parser.add_argument("--check-config", dest="check_config_file", metavar="FILE",
                        help="older spelling of --config.check --config.file FILE")
    parser.set_defaults(func=run)


def secrets_flags(args) -> SecretsSettings | None:
    """--secrets.directory / --secrets.env-prefix, validated like the config file's `secrets:`."""
    if args.secrets_dir is None and args.secrets_env_prefix is None:
        return None
    import json

    fields = {k: v for k, v in (("directory", args.secrets_dir), ("env_prefix", args.secrets_env_prefix)) if v}
    return loads_config(f"secrets: {json.dumps(fields)}\n", "--secrets.* flags").secrets


def site_flag(value: str | None) -> str | None:
    """--site NAME, checked like the config file's site.name (ValueError names the flag)."""
    if value is None:
        return None
    if not NAME_RE.match(value) or len(value) > 128:
        raise ValueError(f"--site must be a probe site name matching [a-z0-9][a-z0-9._-]*, got {value!r}")
    return value


def check(args) -> int:
    """--config.check: every file given (and one fetch of an inventory URL), all errors at once."""
    ok = True
    try:
        cfg = load_config(args.config_file)
        print(f"OK: config {args.config_file or '(defaults)'}: policies "
              f"{', '.join(f'{p.name} every {p.interval:g}s' for p in cfg.policies.values())}")
    except ConfigError as exc:
        report_problems(exc.problems, args.config_file)
        cfg, ok = None, False
    try:
        if args.web_config:
            load_web_config(args.web_config)
            print(f"OK: web config {args.web_config}")
        secrets = secrets_flags(args)
    except (WebConfigError, ConfigError) as exc:
        report_problems(exc.problems, args.web_config or "--secrets.* flags")
        secrets, ok = None, False
    if args.inventory and not args.inventory.startswith(("http://", "https://")) and not is_file_sd(args.inventory):
        try:  # the file directly: every problem, not the reload log's first five
            inv = load_inventory(args.inventory)
        except InventoryError as exc:
            report_problems(exc.problems, args.inventory)
            inv, ok = None, False
    elif args.inventory:
        source = open_source(args.inventory, (cfg or ExporterConfig()).inventory.timeout, args.inventory_token_file)
        source.secrets_override = secrets
        source.configure(cfg or ExporterConfig())
        try:
            inv = source.poll(force=True)
        except TargetError as exc:
            print(f"{args.inventory}: {exc}", file=sys.stderr)
            inv, ok = None, False
    try:
        site = site_flag(args.site) or (cfg.site.name if cfg else None)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        site, ok = None, False
    if args.inventory and inv is not None:
        print(f"OK: inventory {args.inventory}: {len(inv.enabled_devices())} enabled devices, "
              f"{len(inv.snmp_profiles)} SNMP profiles")
        if site is not None:  # what this exporter will probe: a wrong --site shows as 0 here
            probed = sum(d.probed_from(site) for d in inv.enabled_devices())
            print(f"{'OK' if probed else 'WARNING'}: probe site {site}: {probed} of "
                  f"{len(inv.enabled_devices())} enabled devices")
    return 0 if ok else 1


def run(args) -> int:
    if args.check_config_file:  # the older spelling (wardops/stack/testbed.py uses it)
        args.config_file, args.config_check = args.check_config_file, True
    if args.config_check:
        return check(args)
    if not args.inventory:
        print("wardops exporter: --inventory FILE|URL is required", file=sys.stderr)
        return 2
    log = setup_logging(args.log_level, args.log_format)
    try:
        cfg = load_config(args.config_file)
        shard = Shard.parse(args.shard) if args.shard else None
        site = site_flag(args.site)
        host, port = parse_listen(args.listen)
    except ConfigError as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"wardops exporter: {exc}", file=sys.stderr)
        return 2
    try:
        web_config = load_web_config(args.web_config) if args.web_config else None
        secrets = secrets_flags(args)
    except (WebConfigError, ConfigError) as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        return 1
    for key in web_config.ignored if web_config else ():
        log.warning('msg="web config key has no effect here" file=%s key=%s', args.web_config, key)
    source = open_source(args.inventory, cfg.inventory.timeout, args.inventory_token_file)
    source.secrets_override = secrets
    exporter = Exporter(source, cfg, netns=args.netns, shard=shard, site=site, log=log,
                        config_path=args.config_file)
    ok, message = exporter.refresh(force=True)
    if not ok and not args.inventory.startswith(("http://", "https://")):
        print(f"wardops exporter: {message}", file=sys.stderr)
        return 1
    try:
        exporter.start()
    except StartupError as exc:
        print(f"wardops exporter: {exc}", file=sys.stderr)
        return 1
    try:
        web = WebServer(exporter, host, port, lifecycle=args.web_lifecycle, web_config=web_config).start()
    except OSError as exc:  # includes ssl.SSLError for an unusable certificate or key
        exporter.stop()
        print(f"wardops exporter: cannot listen on {args.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    log.info('msg="listening" address=%s inventory=%s netns=%s site=%s shard=%s', join_host_port(host, web.port),
             args.inventory, args.netns or "-", exporter.site or "-", args.shard or "-")
    signal.signal(signal.SIGHUP, lambda *_: exporter.request_reload())
    signal.signal(signal.SIGTERM, lambda *_: exporter.stop())
    try:
        exporter.watch()
    except KeyboardInterrupt:
        pass
    finally:
        web.stop()
        exporter.stop()
    log.info('msg="stopped"')
    return 0
