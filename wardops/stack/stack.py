"""The local stack as data: which daemons, with which flags and configs, under one working directory.

Layout under DIR: `stack.json` (ports and config sources of the running stack, so `status`/`down`
need no flags), `run/NAME.pid`, `log/NAME.log`, `data/NAME/`, `config/` (the minimal built-in
configs, written only when no generated config directory is given) and `secrets/inventory-db`
(mode 0600: the inventory services' database URL, which may hold a password; stack.json keeps it
masked, and the services get it from the environment, not from their argv, which `ps` shows).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import yaml

from generators.flags import (
    HA_MEMBERS,
    alertmanager_ha_flags,
    read_args,
    victoria_metrics_ha_flags,
    vmagent_ha_flags,
    vmalert_ha_flags,
)
from generators.vmagent import probe_job
from wardops.stack import defaults, ha
from wardops.stack.process import Daemon, StackError

# Debian package binaries, searched on PATH first and then in /usr/bin.
BINARIES = {
    "victoria-metrics": "victoria-metrics",
    "vmagent": "vmagent",
    "vmalert": "vmalert",
    "alertmanager": "prometheus-alertmanager",
}
# Start order: storage first, then writers/readers of it, then the notification chain's ends; the
# inventory services before the vmagents, which read their HTTP SD.
KINDS = ("webhook", "inventory-service", "victoria-metrics", "alertmanager", "vmagent", "vmalert")
ORDER = KINDS  # one member each (without --ha)


def member_name(kind: str, n: int) -> str:
    """Daemon name of member `n` (1-based): the first keeps the plain name, so tools and scripts
    written for the single stack find it under --ha too."""
    return kind if n == 1 else f"{kind}-{n}"


@dataclass(frozen=True)
class Ports:
    victoria_metrics: int = 8428
    vmagent: int = 8429
    vmalert: int = 8880
    alertmanager: int = 9093
    webhook: int = 9095
    inventory_service: int = 10119  # `wardops inventory serve`'s own default; the exporter is on 10118
    # Second members (--ha) and the Alertmanagers' gossip ports (9094 is Alertmanager's own default).
    victoria_metrics_2: int = 8438
    vmagent_2: int = 8439
    vmalert_2: int = 8881
    alertmanager_2: int = 9096
    alertmanager_cluster: int = 9094
    alertmanager_cluster_2: int = 9097
    inventory_service_2: int = 10120

    def of(self, kind: str, n: int = 1) -> int:
        name = kind.replace("-", "_")
        return getattr(self, name if n == 1 else f"{name}_{n}")


@dataclass(frozen=True)
class StackSettings:
    dir: Path
    config_dir: Path | None = None  # `wardops generate` output; None = minimal built-in configs
    ports: Ports = field(default_factory=Ports)
    host: str = "127.0.0.1"
    retention: str = "7d"
    # VictoriaMetrics hides samples newer than this (default 30 s): 1 s is the minimum in 1.79.5.
    latency_offset: str = "1s"
    evaluation_interval: str = "5s"  # groups without their own `interval`
    sd_check_interval: str = "10s"
    webhook: bool = True  # run the local webhook receiver (the default receiver of generated configs)
    exporter: str = "127.0.0.1:10118"  # scraped by the minimal built-in vmagent config
    health_timeout: float = 30.0
    ha: bool = False  # two of every daemon (wardops/stack/ha.py)
    exporter_2: str = ""  # --ha: a second exporter (probe site) for the built-in config; both chains scrape both
    # Run inventory services on this database (two with --ha, one without; "" = none). Held here
    # in clear; stack.json gets it masked and DIR/secrets/inventory-db (0600) in clear.
    inventory_db: str = ""

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"


def shown_db(url: str) -> str:
    """The database URL with its password masked (as `wardops inventory` prints it)."""
    from inventory.cli import _shown

    try:
        return _shown(url)
    except Exception:  # noqa: BLE001 - an unparseable URL must not reach a log in clear either
        return "(a database URL that does not parse)"


def secret_file(directory: Path) -> Path:
    return directory / "secrets" / "inventory-db"


def read_secret(directory: Path) -> str:
    try:
        return secret_file(directory).read_text().strip()
    except FileNotFoundError:
        return ""


def write_secret(directory: Path, text: str) -> bool:
    """Write DIR/secrets/inventory-db with mode 0600 (created so, never widened); True if it changed."""
    path = secret_file(directory)
    if read_secret(directory) == text:
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    return True


def find_binary(name: str) -> str:
    package_binary = BINARIES[name]
    found = shutil.which(package_binary) or (
        f"/usr/bin/{package_binary}" if Path(f"/usr/bin/{package_binary}").exists() else None)
    if not found:
        raise StackError(f"{package_binary} not found on PATH or in /usr/bin "
                         f"(install the Debian package; scripts/bootstrap does)")
    return str(Path(found).resolve())


class Stack:
    def __init__(self, settings: StackSettings):
        self.settings = settings
        self.dir = settings.dir.resolve()

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_dir(cls, directory: Path) -> Stack:
        """The stack recorded in DIR/stack.json by a previous `up` (defaults when there is none)."""
        state = directory / "stack.json"
        if not state.exists():
            return cls(StackSettings(dir=directory))
        data = json.loads(state.read_text())
        data["dir"] = directory
        data["ports"] = Ports(**data["ports"])
        data["config_dir"] = Path(data["config_dir"]) if data.get("config_dir") else None
        # Masked when the secret file is gone (after `down`): `status` still lists the services.
        data["inventory_db"] = (read_secret(directory) or data["inventory_db"]) if data.get("inventory_db") else ""
        return cls(StackSettings(**data))

    def _save(self) -> None:
        data = asdict(self.settings)
        data["dir"] = str(self.dir)
        data["config_dir"] = str(self.settings.config_dir) if self.settings.config_dir else None
        data["inventory_db"] = shown_db(self.settings.inventory_db) if self.settings.inventory_db else ""
        (self.dir / "stack.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    # -- config files ------------------------------------------------------------------------

    def config_files(self) -> dict[str, list[Path]]:
        """scrape config, rule files, alertmanager config: generated ones or the built-in minimal set."""
        s = self.settings
        if s.config_dir is not None:
            cfg = s.config_dir.resolve()
            rules = sorted((cfg / "rules").glob("*.yml")) + sorted((cfg / "rules").glob("*.yaml"))
            files = {"scrape": [cfg / "vmagent" / "scrape.yml"], "rules": rules,
                     "alertmanager": [cfg / "alertmanager" / "alertmanager.yml"],
                     # The flags the generated rules' latency depends on (generators/flags.py).
                     "flags": sorted((cfg / "flags").glob("*.args"))}
            missing = [str(p) for paths in files.values() for p in paths if not p.exists()]
            if not files["flags"]:
                missing.append(str(cfg / "flags" / "*.args"))
            if not rules:
                missing.append(str(cfg / "rules" / "*.yml"))
            if missing:
                raise StackError(f"generated config incomplete in {cfg}: missing {', '.join(missing)} "
                                 f"(run `wardops generate INVENTORY -o {cfg}`)")
            return files
        cfg = self.dir / "config"
        cfg.mkdir(parents=True, exist_ok=True)
        written = {
            "scrape": (cfg / "scrape.yml", defaults.scrape_config(s)),
            "rules": (cfg / "rules.yml", defaults.rules()),
            "alertmanager": (cfg / "alertmanager.yml", defaults.alertmanager_config(s)),
        }
        if s.inventory_db:
            scrape = yaml.safe_load(written["scrape"][1])
            scrape["scrape_configs"].append(probe_job(self.inventory_sd_urls(), s.exporter))
            written["scrape"] = (written["scrape"][0], defaults.HEADER + yaml.safe_dump(scrape, sort_keys=True))
        for path, text in written.values():
            path.write_text(text)
        return {name: [path] for name, (path, _) in written.items()}

    def inventory_sd_urls(self) -> list[str]:
        """Every inventory service's HTTP SD: the built-in /probe job lists them all, so a dead
        service loses no target (generators/vmagent.py probe_job: what vmagent does with the copies)."""
        s = self.settings
        return [s.url(s.ports.of("inventory-service", n)) + "/api/v1/sd" for n in self.service_members()]

    # -- daemons -----------------------------------------------------------------------------

    def members(self) -> int:
        return HA_MEMBERS if self.settings.ha else 1

    def service_members(self) -> range:
        """Inventory service members: one per chain when a database is given, else none."""
        return range(1, self.members() + 1) if self.settings.inventory_db else range(0)

    def daemons(self, files: dict[str, list[Path]] | None = None) -> dict[str, Daemon]:
        s, p, d = self.settings, self.settings.ports, self.dir
        files = files if files is not None else self._recorded_files()
        generated = {f.stem: read_args(f.read_text()) for f in files.get("flags", ()) if f.exists()}
        members = range(1, self.members() + 1)
        am_urls = [s.url(p.of("alertmanager", n)) for n in members]
        vm_urls = [s.url(p.of("victoria-metrics", n)) for n in members]
        gossip = [f"{s.host}:{p.of('alertmanager_cluster', n)}" for n in members]

        def flags(kind: str, own: list[str], ha_flags=()) -> list[str]:
            """The generated flags of `kind` win over the stack's own value of the same flag; the HA
            member flags (addresses only the stack knows) win over both; repeated flags
            (-notifier.url, --cluster.peer) are replaced as a whole."""
            theirs = generated.get(kind, [])
            member = [f for f, _why in ha_flags]
            keys = {f.split("=", 1)[0] for f in member}
            theirs = [f for f in theirs if f.split("=", 1)[0] not in keys]
            keys |= {f.split("=", 1)[0] for f in theirs}
            return [f for f in own if f.split("=", 1)[0] not in keys] + theirs + member

        def listen(port: int) -> str:
            return f"{s.host}:{port}"

        def daemon(name: str, argv: list[str], health: str, env=None) -> Daemon:
            return Daemon(name=name, argv=tuple(argv), url=health.rsplit("/-/", 1)[0].rsplit("/health", 1)[0],
                          health_url=health, env=env or {},
                          pid_file=d / "run" / f"{name}.pid", log_file=d / "log" / f"{name}.log")

        out: dict[str, Daemon] = {}
        if s.webhook:
            out["webhook"] = daemon("webhook", [
                sys.executable, "-m", "wardops.stack.webhook", f"--listen={listen(p.webhook)}",
                f"--output={d / 'notifications.jsonl'}"], s.url(p.webhook) + "/-/healthy")
        for n in self.service_members():
            # All members on one database: a device written through one is served by every one.
            # The URL goes by environment (`serve` reads WARDOPS_DB_URL when --db is absent).
            name = member_name("inventory-service", n)
            out[name] = daemon(name, [
                sys.executable, "-m", "wardops.cli", "inventory", "serve",
                f"--listen={listen(p.of('inventory-service', n))}",
            ], s.url(p.of("inventory-service", n)) + "/healthz", env={"WARDOPS_DB_URL": s.inventory_db})
        for n in members:
            vm, am, agent, alert = (member_name(k, n) for k in ("victoria-metrics", "alertmanager", "vmagent", "vmalert"))
            vm_url = s.url(p.of("victoria-metrics", n))
            am_url = s.url(p.of("alertmanager", n))
            out[vm] = daemon(vm, flags("victoria-metrics", [
                find_binary("victoria-metrics"), f"-httpListenAddr={listen(p.of('victoria-metrics', n))}",
                f"-storageDataPath={d / 'data' / vm}", f"-retentionPeriod={s.retention}",
                f"-search.latencyOffset={s.latency_offset}",
            ], victoria_metrics_ha_flags() if s.ha else ()), vm_url + "/health")
            out[am] = daemon(am, [
                find_binary("alertmanager"), f"--config.file={files['alertmanager'][0]}",
                f"--storage.path={d / 'data' / am}", f"--web.listen-address={listen(p.of('alertmanager', n))}",
                f"--web.external-url={am_url}",
                *([f for f, _why in alertmanager_ha_flags(gossip[n - 1], gossip)] if s.ha
                  else ["--cluster.listen-address="]),  # a single local instance: no gossip port
            ], am_url + "/-/ready")
            out[agent] = daemon(agent, flags("vmagent", [
                find_binary("vmagent"), f"-httpListenAddr={listen(p.of('vmagent', n))}",
                f"-promscrape.config={files['scrape'][0]}",
                f"-remoteWrite.url={vm_url}/api/v1/write",
                f"-remoteWrite.tmpDataPath={d / 'data' / agent}",
                f"-promscrape.httpSDCheckInterval={s.sd_check_interval}",
                # Two services list the same devices: one dropped copy per device and SD check would
                # each log an error line (generators/vmagent.py probe_job).
                *(["-promscrape.suppressDuplicateScrapeTargetErrors=true"] if len(self.service_members()) > 1 else []),
            ], vmagent_ha_flags(vm_urls) if s.ha else ()), s.url(p.of("vmagent", n)) + "/health")
            out[alert] = daemon(alert, flags("vmalert", [
                find_binary("vmalert"), f"-httpListenAddr={listen(p.of('vmalert', n))}",
                *[f"-rule={r}" for r in files["rules"]],
                f"-datasource.url={vm_url}", f"-notifier.url={am_url}",
                # ALERTS/ALERTS_FOR_STATE are written back and read on start: `for` timers survive restarts.
                f"-remoteWrite.url={vm_url}", f"-remoteRead.url={vm_url}",
                f"-evaluationInterval={s.evaluation_interval}",
                # Aligning the query time down to the interval would cost up to one interval of latency.
                "-datasource.queryTimeAlignment=false",
                f"-external.url={s.url(p.of('vmalert', n))}",
            ], vmalert_ha_flags(am_urls, vm_url) if s.ha else ()), s.url(p.of("vmalert", n)) + "/health")
        order = [member_name(k, n) for k in KINDS for n in members]
        return {name: out[name] for name in order if name in out}

    def _recorded_files(self) -> dict[str, list[Path]]:
        state = self.dir / "files.json"
        if state.exists():
            return {k: [Path(p) for p in v] for k, v in json.loads(state.read_text()).items()}
        # Never started here: paths only (status/down must not write configs into DIR).
        cfg = self.dir / "config"
        return {"scrape": [cfg / "scrape.yml"], "rules": [cfg / "rules.yml"],
                "alertmanager": [cfg / "alertmanager.yml"]}

    # -- lifecycle ---------------------------------------------------------------------------

    def up(self, log=print) -> dict[str, str]:
        """Start what is not running, reload what is (restart it if its flags or config paths
        changed), wait for health. Returns name -> "started" | "restarted" | "reloaded" | "running"."""
        self.dir.mkdir(parents=True, exist_ok=True)
        # A changed database URL is not in the services' argv: restart them explicitly.
        db_changed = write_secret(self.dir, self.settings.inventory_db) if self.settings.inventory_db else False
        files = self.config_files()
        if self.settings.ha:
            extra = [self.settings.exporter_2] if self.settings.exporter_2 else []
            files["scrape"] = [ha.write_shared_scrape_config(files["scrape"][0], self.dir / "config" / "ha", extra)]
        (self.dir / "files.json").write_text(json.dumps(
            {k: [str(p) for p in v] for k, v in files.items()}, indent=2, sort_keys=True) + "\n")
        self._save()
        actions: dict[str, str] = {}
        started: list[Daemon] = []
        try:
            for name, daemon in self.daemons(files).items():
                if daemon.pid() is not None:
                    if daemon.started_with() == daemon.argv and not (db_changed and daemon.env):
                        actions[name] = "reloaded" if self._reload(name) else "running"
                        daemon.wait_healthy(self.settings.health_timeout)
                        continue
                    daemon.stop()  # new ports, paths or flags: a reload would not apply them
                    actions[name] = "restarted"
                daemon.start()
                started.append(daemon)
                daemon.wait_healthy(self.settings.health_timeout)
                actions[name] = actions.get(name, "started")
                log(f"stack: {name} {actions[name]} ({daemon.url}, log {daemon.log_file})")
            if self.settings.ha:
                ha.wait_cluster([self.settings.url(self.settings.ports.of("alertmanager", n))
                                 for n in range(1, self.members() + 1)], self.settings.health_timeout)
        except StackError:
            for daemon in reversed(started):  # leave nothing half-started behind
                daemon.stop()
            raise
        return actions

    def _reload(self, name: str) -> bool:
        """Ask a running daemon to re-read its config files (a second `up` after regenerating)."""
        n = 2 if name.endswith("-2") else 1
        kind = name.removesuffix("-2")
        if kind not in ("vmagent", "vmalert", "alertmanager"):
            return False
        port = self.settings.ports.of(kind, n)
        method = "POST" if kind == "alertmanager" else "GET"
        try:
            req = urllib.request.Request(self.settings.url(port) + "/-/reload", method=method)
            with urllib.request.urlopen(req, timeout=5) as resp:
                return 200 <= resp.status < 300
        except (urllib.error.URLError, OSError):
            return False

    def down(self, log=print) -> list[str]:
        stopped = []
        daemons = self.daemons()
        # Members of an earlier `up` with other settings (an --ha stack, then a single one) have pid
        # files too: stop them as well, so `down` never leaves a process behind.
        for pid_file in sorted((self.dir / "run").glob("*.pid")):
            if pid_file.stem not in daemons:
                daemons[pid_file.stem] = Daemon(name=pid_file.stem, argv=(), url="", health_url="",
                                                pid_file=pid_file, log_file=self.dir / "log" / f"{pid_file.stem}.log")
        for name, daemon in reversed(list(daemons.items())):
            if daemon.stop():
                stopped.append(name)
                log(f"stack: {name} stopped")
        secret_file(self.dir).unlink(missing_ok=True)  # nothing runs that needs the URL any more
        return stopped

    def status(self) -> dict[str, dict]:
        out = {}
        for name, daemon in self.daemons().items():
            pid = daemon.pid()
            out[name] = {"pid": pid, "healthy": pid is not None and daemon.healthy(),
                         "url": daemon.url,
                         "log": str(daemon.log_file)}
        return out

    def daemon(self, name: str) -> Daemon:
        return self.daemons()[name]

    def restart(self, name: str) -> None:
        daemon = self.daemon(name)
        daemon.stop()
        daemon.start()
        daemon.wait_healthy(self.settings.health_timeout)

    def urls(self) -> dict[str, str]:
        s, p = self.settings, self.settings.ports
        out = {}
        for n in range(1, self.members() + 1):
            sfx = "" if n == 1 else f" {n}"
            out.update({
                f"vmui{sfx}": s.url(p.of("victoria-metrics", n)) + "/vmui",
                f"victoria-metrics{sfx}": s.url(p.of("victoria-metrics", n)),
                f"vmagent{sfx} targets": s.url(p.of("vmagent", n)) + "/targets",
                f"vmalert{sfx}": s.url(p.of("vmalert", n)),
                f"alertmanager{sfx}": s.url(p.of("alertmanager", n)),
            })
        for n in self.service_members():
            out[f"inventory-service{'' if n == 1 else f' {n}'}"] = s.url(p.of("inventory-service", n)) + "/api/v1/sd"
        if s.webhook:
            out["webhook"] = s.url(p.webhook) + "/alerts"
            out["notifications"] = str(self.dir / "notifications.jsonl")
        if s.config_dir is not None:
            out["dashboards"] = str((s.config_dir / "dashboards").resolve())
        return out

    def with_ports(self, **ports: int) -> Stack:
        return Stack(replace(self.settings, ports=replace(self.settings.ports, **ports)))


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """`n` distinct ports free right now (bound to port 0 together, then released)."""
    import socket

    socks = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def ephemeral_ports() -> Ports:
    names = [f.name for f in fields(Ports)]
    return Ports(**dict(zip(names, free_ports(len(names)), strict=True)))
