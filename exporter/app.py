"""The exporter process: probing event-loop thread (optionally inside --netns), render thread,
web thread, and the caller's thread polling the inventory (which stays in the caller's namespace)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import ipaddress
import logging
import platform
import threading
import time

from exporter.component import COMPONENTS, SELF_FAMILIES, Runtime
from exporter.config import ConfigError, ExporterConfig, load_config
from exporter.exposition import Exposition
from exporter.netns import LoopThread
from exporter.probers import ProbeTarget
from exporter.process import process_samples
from exporter.targets import FileSource, HttpSdSource, Shard, TargetError
from exporter.version import __version__, source_revision
from inventory.model import Device, Inventory


class StartupError(Exception):
    pass


class Exporter:
    def __init__(self, source: FileSource | HttpSdSource, config: ExporterConfig, *, netns: str | None = None,
                 shard: Shard | None = None, site: str | None = None, log: logging.Logger | None = None,
                 components: tuple[str, ...] = tuple(COMPONENTS), factories: dict | None = None,
                 config_path: str | None = None):
        self.source = source
        self.config = config
        if hasattr(source, "configure"):  # fetch limits, shrink hold and secret policy come from the config
            source.configure(config)
        self.config_path = config_path  # re-read on reload (SIGHUP, POST /-/reload)
        self.config_success = 1
        self.netns = netns
        self.shard = shard
        self.site_flag = site  # --site; wins over the config file's site.name
        self.log = log or logging.getLogger("wardops.exporter")
        self.component_names = components
        self.factories = factories or {}  # name -> callable(runtime) -> component (tests inject fakes)
        self.exposition = Exposition()
        self.runtime: Runtime | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.inventory: Inventory | None = None
        self.devices: tuple[Device, ...] = ()
        self._by_key: dict[str, Device] = {}
        self.reload_success = 0
        self.reload_timestamp = 0.0
        self._reload_lock = threading.Lock()
        self._last_reload_error = ""
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._force = False
        self._thread: LoopThread | None = None
        self.build_labels = (f'{{version="{__version__}",revision="{source_revision()}",'
                             f'python="{platform.python_version()}"}}')

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Start the probing loop thread; StartupError (e.g. no ICMP socket, no namespace) aborts."""
        thread = LoopThread(self.netns, name="probe")
        try:
            thread.start(timeout)
        except Exception as exc:  # NetnsError: the message names the namespace
            raise StartupError(str(exc)) from None
        runtime = Runtime(self.config, self.exposition, thread.loop, self.log, self.netns)
        try:
            thread.run(self._start_components(runtime), timeout)
        except Exception as exc:
            runtime.shutdown()
            thread.stop()
            if isinstance(exc, TimeoutError):
                raise StartupError(f"the probing components did not start within {timeout:g} s") from None
            raise StartupError(str(exc)) from None
        self._thread, self.loop, self.runtime = thread, thread.loop, runtime
        self.exposition.register(SELF_FAMILIES)
        self.exposition.add_source(self._self_samples)
        with self._reload_lock:  # devices loaded before start reach the components now
            if self.inventory is not None:
                self.loop.call_soon_threadsafe(self._apply, self.devices, self.inventory)

    async def _start_components(self, runtime: Runtime) -> None:
        for name in self.component_names:
            factory = self.factories.get(name)
            if factory is None:
                module, _, attr = COMPONENTS[name].partition(":")
                factory = getattr(importlib.import_module(module), attr)
            component = factory(runtime)
            self.exposition.register(component.families)
            runtime.components[name] = component
            await component.start()

    async def _stop_components(self, runtime: Runtime) -> None:
        for component in runtime.components.values():
            await component.stop()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread.alive():
            try:
                self._thread.run(self._stop_components(self.runtime), 30)
            finally:  # a component that fails to stop must not keep the loop thread alive
                self.runtime.shutdown()
                self._thread.stop()

    # -- inventory -----------------------------------------------------------------------------

    def refresh(self, force: bool = False) -> tuple[bool, str]:
        """Poll the source; apply a new device set. On failure keep the last good set."""
        with self._reload_lock:
            try:
                inv = self.source.poll(force)
            except TargetError as exc:
                self.reload_success = 0
                if str(exc) != self._last_reload_error:  # once per distinct failure, not every poll
                    self.log.error('msg="inventory reload failed, keeping the last good set" source=%s err="%s"',
                                   self.source.describe(), str(exc).replace('"', "'"))
                self._last_reload_error = str(exc)
                return False, str(exc)
            self._last_reload_error = ""
            if inv is None:
                # Unchanged since the last good load (e.g. a 304 once the inventory service is back).
                self.reload_success = 1
                return True, "unchanged"
            site = self.site
            devices = tuple(d for d in inv.enabled_devices() if d.probed_from(site))
            if self.shard is not None:
                devices = self.shard.select(devices)
            self.inventory, self.devices = inv, devices
            by_key = {d.name: d for d in devices}
            by_key.update({d.ip: d for d in devices})
            self._by_key = by_key
            self.reload_success = 1
            self.reload_timestamp = time.time()
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self._apply, devices, inv)
            self.log.info('msg="inventory loaded" source=%s site=%s devices=%d', self.source.describe(), site or "-",
                          len(devices))
            return True, f"{len(devices)} devices"

    @property
    def site(self) -> str | None:
        """The probe site this exporter stands in (None: every device, as with one site)."""
        return self.site_flag or self.config.site.name

    def _apply(self, devices: tuple[Device, ...], inventory: Inventory) -> None:
        self.runtime.inventory = inventory
        for component in self.runtime.components.values():
            component.set_devices(devices)

    def reload(self) -> tuple[bool, str]:
        """SIGHUP / POST /-/reload: re-read the config file (if any), then force an inventory reload."""
        messages = []
        ok = True
        if self.config_path:
            ok, message = self.reload_config()
            messages.append(message)
        inv_ok, message = self.refresh(force=True)
        return ok and inv_ok, "; ".join(messages + [message])

    def reload_config(self) -> tuple[bool, str]:
        """A new config applies its policies at once; a bad one keeps the old (gauge 0)."""
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            self.config_success = 0
            self.log.error('msg="config reload failed, keeping the old config" file=%s problems=%d first="%s"',
                           self.config_path, len(exc.problems), str(exc.problems[0]).replace('"', "'"))
            return False, f"invalid config: {exc}"
        self.config_success = 1
        if new.icmp != self.config.icmp:
            self.log.warning('msg="icmp socket settings change on restart only" file=%s', self.config_path)
            new = dataclasses.replace(new, icmp=self.config.icmp)
        if new == self.config:
            return True, "config unchanged"
        self.config = new
        if hasattr(self.source, "configure"):
            self.source.configure(new)
        if self.loop is not None:
            self._thread.run(self._reconfigure(new), 30)
        self.log.info('msg="config reloaded" file=%s policies="%s"', self.config_path, ",".join(new.policies))
        return True, "config reloaded"

    async def _reconfigure(self, config: ExporterConfig) -> None:
        self.runtime.config = config
        for component in self.runtime.components.values():
            await component.reconfigure()

    def request_reload(self) -> None:
        """From a signal handler: the watch loop reloads at once."""
        self._force = True
        self._wake.set()

    def watch(self) -> None:
        """Poll the inventory until stop(); run in the caller's thread (and namespace)."""
        while not self._stopping.is_set():
            self._wake.wait(self.config.inventory.poll_interval)
            self._wake.clear()
            if self._stopping.is_set():
                break
            force, self._force = self._force, False
            if force:
                self.reload()
            else:
                self.refresh()

    # -- queries from the web thread -----------------------------------------------------------

    def ready(self) -> bool:
        rt = self.runtime
        return bool(rt and self.inventory is not None and all(c.ready() for c in rt.components.values()))

    def resolve(self, target: str) -> ProbeTarget | None:
        """An inventory device by name or IP, or an address inside probe.allowed_cidrs; else None."""
        device = self._by_key.get(target)
        if device is None:
            with contextlib.suppress(ValueError):
                device = self._by_key.get(ipaddress.ip_address(target).compressed)
        if device is not None:
            return ProbeTarget(device.ip, device)
        try:
            addr = ipaddress.ip_address(target)
        except ValueError:
            return None
        if any(addr in net for net in self.config.probe.allowed_cidrs):
            return ProbeTarget(addr.compressed, None)
        return None

    def run_on_loop(self, coro, timeout: float):
        return self._thread.run(coro, timeout)

    def _self_samples(self):
        out = [("wardops_exporter_build_info", self.build_labels, 1),
               # Site names match [a-z0-9._-]* (validated): nothing to escape.
               ("wardops_exporter_site_info", f'{{exporter_site="{self.site or ""}"}}', 1),
               ("wardops_exporter_config_reload_success", "", self.config_success),
               ("wardops_exporter_inventory_reload_success", "", self.reload_success),
               ("wardops_exporter_inventory_devices", "", len(self.devices))]
        if hasattr(self.source, "self_samples"):
            out.extend(self.source.self_samples())
        # Leak watch (bench/soak.py): both must stay flat over hours of reloads and flapping.
        out.append(("wardops_exporter_threads", "", threading.active_count()))
        if self.loop is not None and not self.loop.is_closed():
            out.append(("wardops_exporter_asyncio_tasks", "", len(asyncio.all_tasks(self.loop))))
        if self.reload_timestamp:
            out.append(("wardops_exporter_inventory_reload_timestamp_seconds", "", self.reload_timestamp))
        rt = self.runtime
        if rt is not None:
            for component in list(rt.components.values()):
                out.extend(component.self_samples())
        out.extend(process_samples())
        return out
