"""The testbed on the HA stack: two probe sites, two chains, an Alertmanager cluster of two.

Composes `Testbed` unchanged: it runs one exporter per probe site (`site_exporter_ports`, each in its
own prober namespace) and generates the consensus rules and the scrape config listing both sites;
every stack it builds is turned into its --ha variant, whose two vmagents both scrape both sites.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace

from wardops.stack.ha import cluster_state
from wardops.stack.process import StackError
from wardops.stack.stack import Stack
from wardops.stack.testbed import Testbed, TestbedSettings


class HaTestbed(Testbed):
    __test__ = False

    def __init__(self, settings: TestbedSettings, log=print):
        if not settings.site_exporter_ports:
            raise StackError("HaTestbed: give site_exporter_ports (the second probe site's exporter port): "
                             "both chains scrape every site")
        super().__init__(settings, log=log)

    @property
    def stack(self) -> Stack | None:
        return self._stack

    @stack.setter
    def stack(self, value: Stack | None) -> None:
        if value is not None and not value.settings.ha:
            value = Stack(replace(value.settings, ha=True))
        self._stack = value

    # -- observing both chains ---------------------------------------------------------------

    def vm_urls(self) -> list[str]:
        p = self.s.ports
        return [f"http://{self.s.host}:{p.victoria_metrics}", f"http://{self.s.host}:{p.victoria_metrics_2}"]

    def count(self, vm_url: str, expr: str) -> int:
        url = f"{vm_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return len(json.loads(resp.read())["data"]["result"])
        except (urllib.error.URLError, OSError, KeyError, ValueError):
            return 0

    def wait_ingested_everywhere(self, timeout: float = 120.0) -> list[int]:
        """Every enabled device's wardops_icmp_up of every site in both storages."""
        want = len(self.inventory.enabled_devices()) * self.sites
        deadline = time.monotonic() + timeout
        got = [0, 0]
        while time.monotonic() < deadline:
            got = [self.count(u, "wardops_icmp_up") for u in self.vm_urls()]
            if all(g >= want for g in got):
                return got
            time.sleep(1)
        raise StackError(f"devices in VictoriaMetrics 1 and 2: {got}, want {want} each")

    def vmalert_firing(self, n: int, name: str, **labels) -> bool:
        port = self.s.ports.of("vmalert", n)
        try:
            with urllib.request.urlopen(f"http://{self.s.host}:{port}/api/v1/alerts", timeout=5) as resp:
                # vmalert answers "alerts": null, not [], while no rule is active (seen right after
                # a restart, before the first evaluation restored the outage).
                alerts = json.loads(resp.read())["data"]["alerts"] or []
        except (urllib.error.URLError, OSError, KeyError, ValueError, TypeError):
            return False
        return any(a["name"] == name and a["state"] == "firing"
                   and all(a["labels"].get(k) == v for k, v in labels.items()) for a in alerts)

    def first_alertmanager(self) -> str:
        """The member that sends first (position 0: lowest peer name); the other waits its peer timeout."""
        names = {}
        for n in (1, 2):
            url = f"http://{self.s.host}:{self.s.ports.of('alertmanager', n)}"
            with urllib.request.urlopen(url + "/api/v2/status", timeout=5) as resp:
                names[json.loads(resp.read())["cluster"]["name"]] = "alertmanager" if n == 1 else "alertmanager-2"
        return names[min(names)]

    def cluster_ready(self) -> bool:
        return all(cluster_state(f"http://{self.s.host}:{self.s.ports.of('alertmanager', n)}") == ("ready", 2)
                   for n in (1, 2))
