"""Everything at once on one machine: lab + generated configs + stack + inventory service + exporter.

Used by the demo, the end-to-end tests and the detection-latency benchmark. Each part is optional
and skipped with a clear message when its command is not installed, so the testbed is useful
while parts of wardops are still being built. Everything started is stopped by `stop()`, also
after a failed start.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from inventory.loader import load_inventory
from inventory.model import Device, Inventory
from wardops.stack.process import Daemon, StackError, tail
from wardops.stack.stack import Ports, Stack, StackSettings
from wardops.stack.webhook import Received, WebhookReceiver


def command_available(name: str) -> bool:
    """Is `wardops NAME` installed (its entry in the COMMANDS table and its module importable)?"""
    from wardops.cli import COMMANDS

    if name not in COMMANDS:
        return False
    try:
        return importlib.util.find_spec(COMMANDS[name][0]) is not None
    except ModuleNotFoundError:
        return False


@dataclass
class TestbedSettings:
    __test__ = False  # not a pytest test class
    workdir: Path
    inventory: Path
    lab_name: str
    ports: Ports = field(default_factory=Ports)
    exporter_port: int = 10118
    # More probe sites: one exporter each (site k on the k-1th port here) in the lab's prober
    # namespace of site k; the generated settings then list the sites (consensus rules).
    site_exporter_ports: tuple[int, ...] = ()
    inventory_port: int = 10119
    host: str = "127.0.0.1"
    use_inventory_service: bool = True  # the exporter reads targets from its HTTP SD
    snmp: bool = True  # answer SNMP for the inventory's SNMP devices (one snmpd in the target namespace)
    exporter_config: Path | None = None  # exporter --config.file
    # Hand the exporter the lab's canary addresses (exporter config `site: {canaries: [...]}`), so
    # a probe-site blackout is seen as one site losing its network.
    site_canaries: bool = True
    # Merged over the generated settings this testbed writes (receivers/exporter/inventory are set here).
    settings_overrides: dict = field(default_factory=dict)
    # command -> source tree put first on PYTHONPATH for that command's process (development only).
    trees: dict[str, Path] = field(default_factory=dict)
    start_timeout: float = 90.0


class Testbed:
    __test__ = False  # not a pytest test class

    def __init__(self, settings: TestbedSettings, log=print):
        self.s = settings
        self.log = log
        self.workdir = settings.workdir.resolve()
        settings.inventory = Path(settings.inventory).resolve()
        self.inventory: Inventory = load_inventory(settings.inventory)
        self.lab = None
        self.webhook: WebhookReceiver | None = None
        self.stack: Stack | None = None
        self.generated: Path | None = None
        self.daemons: dict[str, Daemon] = {}
        self.skipped: dict[str, str] = {}
        self.snmpd = None
        self._secrets_env: dict[str, str] = {}
        self.canaries: tuple[str, ...] = ()  # the canaries the running exporter was given
        self.exporter_config: Path | None = settings.exporter_config  # what --config.file got

    # -- addresses ---------------------------------------------------------------------------

    @property
    def vm_url(self) -> str:
        return f"http://{self.s.host}:{self.s.ports.victoria_metrics}"

    @property
    def exporter_url(self) -> str:
        return f"http://{self.s.host}:{self.s.exporter_port}"

    @property
    def inventory_url(self) -> str:
        return f"http://{self.s.host}:{self.s.inventory_port}"

    @property
    def sites(self) -> int:
        return 1 + len(self.s.site_exporter_ports)

    def site_name(self, site: int) -> str:
        """The `site` label of probe site `site` (1-based) as the generated settings name it."""
        return f"site{site}"

    def exporter_port_of(self, site: int) -> int:
        return self.s.exporter_port if site == 1 else self.s.site_exporter_ports[site - 2]

    def devices(self, **where) -> list[Device]:
        """Enabled devices whose attributes equal `where` (e.g. role="isp", branch="Branch 3")."""
        return [d for d in self.inventory.enabled_devices()
                if all(getattr(d, k) == v for k, v in where.items())]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Testbed:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from wardops.lab.netns import Lab

        self.lab = Lab(self.s.lab_name, sites=self.sites).create()
        self.log(f"lab: {self.lab.probe_ns} probes {len(self.inventory.enabled_devices())} devices "
                 f"answered in {self.lab.target_ns}")
        self._start_snmp()
        self.webhook = WebhookReceiver(self.s.host, self.s.ports.webhook,
                                       output=self.workdir / "notifications.jsonl").start()
        self.generated = self._generate()
        self.stack = Stack(StackSettings(dir=self.workdir / "stack", config_dir=self.generated,
                                         ports=self.s.ports, host=self.s.host, webhook=False,
                                         exporter=f"{self.s.host}:{self.s.exporter_port}"))
        self.stack.up(log=self.log)
        source = self._start_inventory_service()
        for site in range(1, self.sites + 1):
            self._start_exporter(source, site)

    def _start_snmp(self) -> None:
        """One net-snmp agent answering for every SNMP device of the inventory, with the profiles'
        credentials: taken from the environment when set, else lab-only values, which are then
        handed to the exporter's environment (never logged, never written to a file)."""
        from wardops.lab.snmplab import snmp_devices, start_inventory_snmpd

        if not self.s.snmp or not snmp_devices(self.inventory):
            return
        if importlib.util.find_spec("wardops.lab.snmpagents") is None:
            self.skipped["snmp"] = "the lab SNMP agents are not installed: SNMP devices do not answer"
            self.log(f"snmp: skipped ({self.skipped['snmp']})")
            return

        def value_of(ref, lab_default: str) -> str:
            if ref.kind != "env":
                return ref.resolve()
            value = os.environ.get(ref.ref) or lab_default
            self._secrets_env[ref.ref] = value
            return value

        self.snmpd, summary = start_inventory_snmpd(self.lab.target_ns, self.inventory, value_of)
        self.log(f"snmp: {summary}")

    def _generate(self) -> Path | None:
        if not self._available("generate"):
            self.skipped["generate"] = "`wardops generate` is not installed: minimal built-in stack configs"
            self.log(f"generate: skipped ({self.skipped['generate']})")
            return None
        settings = {
            "receivers": {"default": {"webhooks": [{"url": self.webhook.url}]}},
            "exporter": {"targets": [f"{self.s.host}:{self.s.exporter_port}"]},
        }
        if self.sites > 1:
            del settings["exporter"]
            settings["sites"] = [{"name": self.site_name(k), "targets": [f"{self.s.host}:{self.exporter_port_of(k)}"]}
                                 for k in range(1, self.sites + 1)]
        if self.s.use_inventory_service and self._service_available():
            settings["inventory_service"] = {"url": self.inventory_url}
        for key, value in self.s.settings_overrides.items():
            settings[key] = {**settings.get(key, {}), **value} if isinstance(value, dict) else value
        path = self.workdir / "settings.yml"
        path.write_text("# written by the wardops testbed\n" + yaml.safe_dump(settings, sort_keys=True))
        out = self.workdir / "generated"
        self.run_wardops(["generate", str(self.s.inventory), "--settings", str(path), "-o", str(out)],
                         timeout=120)
        self.log(f"generate: rules, Alertmanager config, dashboards and scrape config in {out}")
        return out

    def _available(self, command: str) -> bool:
        return command in self.s.trees or command_available(command)

    def _service_available(self) -> bool:
        return "inventory" in self.s.trees or importlib.util.find_spec("inventory.service") is not None

    def _start_inventory_service(self) -> str:
        """Start the inventory service if installed; returns what the exporter's --inventory gets."""
        if not self.s.use_inventory_service:
            return str(Path(self.s.inventory).resolve())
        if not self._service_available():
            self.skipped["inventory-service"] = "the inventory service is not installed: the exporter reads the file"
            self.log(f"inventory service: skipped ({self.skipped['inventory-service']})")
            return str(Path(self.s.inventory).resolve())
        db = f"sqlite:///{self.workdir / 'inventory.db'}"
        self.run_wardops(["inventory", "import", str(self.s.inventory), "--db", db], timeout=120)
        daemon = self._daemon("inventory-service", [
            "inventory", "serve", "--db", db, "--listen", f"{self.s.host}:{self.s.inventory_port}"],
            self.inventory_url, "/healthz")
        self._start_daemon(daemon)
        return self.inventory_url + "/api/v1/sd"

    def _start_exporter(self, source: str, site: int = 1) -> None:
        if not self._available("exporter"):
            self.skipped["exporter"] = "`wardops exporter` is not installed: nothing probes the lab"
            self.log(f"exporter: skipped ({self.skipped['exporter']})")
            return
        port = self.exporter_port_of(site)
        argv = ["exporter", "--inventory", source, "--netns", self.lab.probe_ns_of(site),
                "--web.listen-address", f"{self.s.host}:{port}"]
        if self.sites > 1:  # each exporter says which site it stands in (ExporterSiteMismatch compares)
            argv += ["--site", self.site_name(site)]
        if site == 1:
            self.exporter_config = self._exporter_config()
        if self.exporter_config:
            argv += ["--config.file", str(self.exporter_config)]
        prefix = os.path.commonprefix(sorted(self._secrets_env))  # profiles from the service: allow their env names
        if source.startswith("http") and prefix[:1].isalpha():
            argv += ["--secrets.env-prefix", prefix]
        name = "exporter" if site == 1 else f"exporter-{site}"
        self._start_daemon(self._daemon(name, argv, f"http://{self.s.host}:{port}", "/-/healthy"))

    def _exporter_config(self) -> Path | None:
        """The exporter's config file: the given one, plus `site.canaries` = the lab's canaries
        (unless the given file names its own). An exporter that does not know `site:` yet rejects
        the file; the testbed then runs it with the given file alone and records why in
        `skipped["site-canaries"]`, so older exporters still run."""
        given = self.s.exporter_config
        canaries = tuple(getattr(self.lab, "canaries", ()))
        if not self.s.site_canaries or not canaries:
            return given
        data = yaml.safe_load(Path(given).read_text()) if given else None
        data = data if isinstance(data, dict) else {}
        site = data.setdefault("site", {})
        if isinstance(site, dict) and not site.get("canaries"):
            site["canaries"] = list(canaries)
        path = self.workdir / "exporter.yml"
        path.write_text("# written by the wardops testbed: the lab's canaries are the probe site's path\n"
                        + yaml.safe_dump(data, sort_keys=True))
        try:
            self.run_wardops(["exporter", "--check-config", str(path)], timeout=60)
        except StackError as exc:
            lines = str(exc).strip().splitlines()  # header line, then the exporter's own messages
            self.skipped["site-canaries"] = ("this exporter rejects `site: {canaries: [...]}`: it runs without "
                                             f"canaries ({lines[1] if len(lines) > 1 else lines[0]})")
            self.log(f"exporter: site canaries skipped ({self.skipped['site-canaries']})")
            return given
        self.canaries = tuple(site.get("canaries") or ()) if isinstance(site, dict) else ()
        self.log(f"exporter: site canaries {', '.join(self.canaries)} ({path})")
        return path

    def _daemon(self, name: str, argv: list[str], url: str, health: str) -> Daemon:
        env = dict(self._secrets_env) if argv[0] == "exporter" else {}
        tree = self.s.trees.get(argv[0])
        if tree:
            env["PYTHONPATH"] = os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        d = Daemon(name=name, argv=(sys.executable, "-m", "wardops.cli", *argv), url=url, health_url=url + health,
                   pid_file=self.workdir / "run" / f"{name}.pid", log_file=self.workdir / "log" / f"{name}.log",
                   env=env, cwd=tree)
        self.daemons[name] = d
        return d

    def _start_daemon(self, daemon: Daemon) -> None:
        if daemon.pid() is None:
            daemon.start()
        daemon.wait_healthy(self.s.start_timeout)
        self.log(f"{daemon.name}: {daemon.url} (log {daemon.log_file})")

    def run_wardops(self, argv: list[str], timeout: float) -> str:
        import subprocess

        env = dict(os.environ)
        tree = self.s.trees.get(argv[0])
        if tree:
            env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        proc = subprocess.run([sys.executable, "-m", "wardops.cli", *argv], capture_output=True, text=True,  # noqa: S603
                              timeout=timeout, env=env, check=False, cwd=tree)
        if proc.returncode != 0:
            raise StackError(f"`wardops {' '.join(argv)}` failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def stop(self) -> None:
        """Stop everything started, in reverse order; never raises for a part that is already gone."""
        for name in reversed(list(self.daemons)):
            try:
                self.daemons[name].stop()
            except OSError:
                pass
        if self.stack is not None:
            try:
                self.stack.down(log=lambda _m: None)
            except (OSError, StackError):
                pass
        if self.webhook is not None:
            self.webhook.stop()
            self.webhook = None
        if self.snmpd is not None:
            self.snmpd.stop()
            self.snmpd = None
        if self.lab is not None:
            self.lab.destroy()
            self.lab = None

    def __enter__(self) -> Testbed:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- observing ---------------------------------------------------------------------------

    def query(self, expr: str) -> list[dict]:
        """Instant query against VictoriaMetrics; returns the result vector."""
        url = f"{self.vm_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise StackError(f"query {expr!r} failed: {body}")
        return body["data"]["result"]

    def query_range(self, expr: str, seconds: float, step: str = "15s") -> list[dict]:
        end = time.time()
        params = {"query": expr, "start": f"{end - seconds:.3f}", "end": f"{end:.3f}", "step": step}
        url = f"{self.vm_url}/api/v1/query_range?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=20) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise StackError(f"range query {expr!r} failed: {body}")
        return body["data"]["result"]

    def wait_ingested(self, timeout: float = 90.0) -> int:
        """Wait until VictoriaMetrics holds wardops_icmp_up for every enabled device (of every probe
        site); returns the count."""
        want = len(self.inventory.enabled_devices()) * self.sites
        deadline = time.monotonic() + timeout
        got = 0
        while time.monotonic() < deadline:
            try:
                got = len(self.query("wardops_icmp_up"))
            except (urllib.error.URLError, OSError, StackError):
                got = 0
            if got >= want:
                return got
            time.sleep(1)
        exporter = self.daemons.get("exporter")
        raise StackError(f"only {got} of {want} devices reached VictoriaMetrics in {timeout:.0f} s"
                         + (f"; exporter log:\n{tail(exporter.log_file)}" if exporter else ""))

    def wait_alert(self, name: str, timeout: float, since: float = 0.0, status: str = "firing",
                   **labels) -> Received | None:
        assert self.webhook is not None
        return self.webhook.wait_for(
            lambda a: a.name == name and a.status == status and all(a.labels.get(k) == v for k, v in labels.items()),
            timeout=timeout, since=since)

    def alerts(self, since: float = 0.0) -> list[Received]:
        assert self.webhook is not None
        return self.webhook.alerts(since)
