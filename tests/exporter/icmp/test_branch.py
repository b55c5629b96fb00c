"""Branch verdicts, confirmation bursts, canaries and the one-snapshot exposition, on the fake engine.

Rounds are driven by hand (run_round / run_burst_round) so every verdict transition is checked at
each publish; one test runs the real loops to check snapshot consistency under concurrency.
"""

import asyncio
import logging
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.component import Runtime
from exporter.config import ExporterConfig, Policy, SiteSettings
from exporter.exposition import Exposition
from exporter.icmp.component import FAMILIES, SITE_KEY, IcmpComponent
from exporter.targets import Shard
from inventory.model import Device
from tests.exporter.icmp.fakes import FakeEngine

LOG = logging.getLogger("test")


def policies(isp_interval, default_interval, down_after=2, up_after=2, **site):
    """Fast test policies (1 packet, a short timeout), built directly: no config grammar involved."""
    return ExporterConfig(policies={
        "isp": Policy("isp", isp_interval, 1, 0.0, 0.005, down_after, up_after),
        "default": Policy("default", default_interval, 1, 0.0, 0.005, down_after, up_after)},
        site=SiteSettings(**site))


def dev(name, ip, branch, role="router", isp=None, region="north"):
    return Device(name=name, ip=ip, region=region, branch=branch, role=role, isp=isp)


# br1: one uplink + two devices; br2: two uplinks (two providers) + one device; br3: no uplink;
# br4: a single device (no verdict); br5: only uplinks (no verdict)
DEVICES = (
    dev("a-isp", "198.18.1.1", "br1", "isp", "acme"),
    dev("a-rtr", "198.18.1.2", "br1"),
    dev("a-atm", "198.18.1.3", "br1", "atm"),
    dev("b-isp2", "198.18.2.2", "br2", "isp", "beta"),
    dev("b-isp1", "198.18.2.1", "br2", "isp", "acme"),
    dev("b-rtr", "198.18.2.3", "br2"),
    dev("c-sw1", "198.18.3.1", "br3", "switch"),
    dev("c-sw2", "198.18.3.2", "br3", "switch"),
    dev("d-rtr", "198.18.4.1", "br4"),
    dev("e-isp1", "198.18.5.1", "br5", "isp", "acme"),
    dev("e-isp2", "198.18.5.2", "br5", "isp", "acme"),
)
ALL = {d.ip for d in DEVICES}
BRANCH1 = {"198.18.1.1", "198.18.1.2", "198.18.1.3"}


class Clock:
    def __init__(self):
        self.now = 1700000000.0

    def __call__(self):
        self.now += 0.25
        return self.now


def make(config=None, alive=ALL):
    loop = asyncio.get_running_loop()
    expo = Exposition()
    expo.register(FAMILIES)
    rt = Runtime(config or ExporterConfig(), expo, loop, LOG)
    engine = FakeEngine(alive=set(alive))
    comp = IcmpComponent(rt, engine=engine, clock=Clock())
    rt.components["icmp"] = comp
    return rt, comp, expo, engine


def scrape(rt, expo, **kw):
    """{(metric, device or branch or canary): value} of the published exposition."""
    rt.flush()
    out = {}
    text = b"".join(expo.render(**kw)).decode()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = s.labels.get("device") or s.labels.get("branch") or s.labels.get("canary")
            out[(s.name, key)] = s.value
    return out


def branch_up(s, branch):
    return s.get(("wardops_icmp_branch_up", branch))


async def isp_round(comp):
    await comp.run_round("isp", comp.policies["isp"], comp.groups["isp"])


async def default_round(comp):
    await comp.run_round("default", comp.policies["default"], comp.groups["default"])


async def warm_up(comp):
    """Every device decided UP (one good round decides UP from UNKNOWN)."""
    await isp_round(comp)
    await default_round(comp)


def test_which_branches_get_a_series_and_their_labels():
    async def scenario():
        rt, comp, expo, _ = make()
        comp.set_devices(DEVICES)
        s = scrape(rt, expo)
        # before any round: a series per eligible branch, deciding
        assert {k for (m, k) in s if m == "wardops_icmp_branch_up"} == {"br1", "br2", "br3"}
        assert all(branch_up(s, b) == -1 for b in ("br1", "br2", "br3"))
        await warm_up(comp)
        s = scrape(rt, expo)
        assert [branch_up(s, b) for b in ("br1", "br2", "br3")] == [1, 1, 1]
        assert ("wardops_icmp_branch_last_change_timestamp_seconds", "br1") in s
        text = b"".join(expo.render()).decode()
        assert ('wardops_icmp_branch_up{region="north",branch="br2",uplinks="b-isp1,b-isp2",'
                'providers="acme,beta"} 1') in text
        assert 'wardops_icmp_branch_up{region="north",branch="br3",uplinks="",providers=""} 1' in text
        assert ('wardops_icmp_branch_last_change_timestamp_seconds{region="north",branch="br1"} '
                in text)
        rt.shutdown()
    asyncio.run(scenario())


def test_single_uplink_dark_while_branch_answers_is_1_after_a_burst():
    async def scenario():
        rt, comp, expo, engine = make()
        comp.set_devices(DEVICES)
        await warm_up(comp)
        fast = comp.fastest
        assert fast.name == "isp"
        engine.alive.discard("198.18.1.1")
        engine.calls.clear()
        await isp_round(comp)  # first failed uplink round: burst starts, branch deciding
        s = scrape(rt, expo)
        assert branch_up(s, "br1") == -1 and s[("wardops_icmp_up", "a-isp")] == 1
        assert comp.branches[("north", "br1")].burst_left == fast.down_after
        for _ in range(fast.down_after):
            await comp.run_burst_round()
        # the burst probed exactly br1's other devices, with the fastest policy's packets
        burst_calls = [c for c in engine.calls if set(c[0]) == {"198.18.1.2", "198.18.1.3"}]
        assert len(burst_calls) == fast.down_after and all(p == fast.packets for _, p in burst_calls)
        s = scrape(rt, expo)
        assert branch_up(s, "br1") == -1  # burst done, but the uplink has not decided yet
        await isp_round(comp)  # second failed round: uplink DOWN
        s = scrape(rt, expo)
        # IspLinkDown-worthy: the uplink DOWN while its branch answers, in one snapshot
        assert s[("wardops_icmp_up", "a-isp")] == 0 and branch_up(s, "br1") == 1
        assert s[("wardops_icmp_up", "a-rtr")] == 1 and s[("wardops_icmp_up", "a-atm")] == 1
        assert comp.bursts == 1 and branch_up(s, "br2") == 1
        rt.shutdown()
    asyncio.run(scenario())


def test_whole_branch_dark_is_0_within_the_uplinks_detection_rounds():
    async def scenario():
        rt, comp, expo, engine = make()
        comp.set_devices(DEVICES)
        await warm_up(comp)
        engine.alive -= BRANCH1
        seen = []
        await isp_round(comp)
        seen.append(branch_up(scrape(rt, expo), "br1"))
        await comp.run_burst_round()
        seen.append(branch_up(scrape(rt, expo), "br1"))
        await isp_round(comp)  # uplink DOWN before the burst is over: still deciding
        s = scrape(rt, expo)
        seen.append(branch_up(s, "br1"))
        assert s[("wardops_icmp_up", "a-isp")] == 0
        await comp.run_burst_round()
        s = scrape(rt, expo)
        seen.append(branch_up(s, "br1"))
        # no default-policy round ran: the burst alone decided the other devices
        assert seen == [-1, -1, -1, 0]
        assert s[("wardops_icmp_up", "a-rtr")] == 0 and s[("wardops_icmp_up", "a-atm")] == 0
        assert comp.stats["default"].rounds == 1
        # staying dark: no new burst on the next failed rounds
        await isp_round(comp)
        await default_round(comp)
        assert comp.bursts == 1 and branch_up(scrape(rt, expo), "br1") == 0
        rt.shutdown()
    asyncio.run(scenario())


def test_recovery_brings_devices_up_no_later_than_the_branch():
    async def scenario():
        rt, comp, expo, engine = make()
        comp.set_devices(DEVICES)
        await warm_up(comp)
        engine.alive -= BRANCH1
        for _ in range(2):
            await isp_round(comp)
            await comp.run_burst_round()
        assert branch_up(scrape(rt, expo), "br1") == 0
        engine.alive |= BRANCH1
        snapshots = []
        await isp_round(comp)  # the uplink answers once: recovery burst, deciding
        snapshots.append(scrape(rt, expo))
        assert comp.bursts == 2 and comp.branches[("north", "br1")].pending == "recover"
        for _ in range(comp.fastest.up_after):
            await comp.run_burst_round()
            snapshots.append(scrape(rt, expo))
        await isp_round(comp)  # the uplink's second good round: UP
        snapshots.append(scrape(rt, expo))
        verdicts = [branch_up(s, "br1") for s in snapshots]
        assert verdicts == [-1, -1, -1, 1]
        for s in snapshots:  # never "answers" with a device of it still DOWN (no DeviceDown flash)
            if branch_up(s, "br1") == 1:
                assert all(s[("wardops_icmp_up", d)] == 1 for d in ("a-isp", "a-rtr", "a-atm"))
        rt.shutdown()
    asyncio.run(scenario())


def test_one_of_two_uplinks_dark_stays_1_without_a_burst():
    async def scenario():
        rt, comp, expo, engine = make()
        comp.set_devices(DEVICES)
        await warm_up(comp)
        engine.alive.discard("198.18.2.1")
        for _ in range(3):
            await isp_round(comp)
            assert branch_up(scrape(rt, expo), "br2") == 1  # 1 at every publish
        s = scrape(rt, expo)
        assert s[("wardops_icmp_up", "b-isp1")] == 0 and s[("wardops_icmp_up", "b-isp2")] == 1
        assert comp.bursts == 0
        # then the second uplink fails too: now every uplink failed a round -> burst
        engine.alive.discard("198.18.2.2")
        await isp_round(comp)
        assert branch_up(scrape(rt, expo), "br2") == -1 and comp.bursts == 1
        rt.shutdown()
    asyncio.run(scenario())


def test_branch_without_uplinks_follows_its_devices_and_never_bursts():
    async def scenario():
        rt, comp, expo, engine = make()
        comp.set_devices(DEVICES)
        await warm_up(comp)
        engine.alive -= {"198.18.3.1"}
        for _ in range(2):
            await default_round(comp)
        assert branch_up(scrape(rt, expo), "br3") == 1  # one of two devices still answers
        engine.alive -= {"198.18.3.2"}
        await default_round(comp)
        assert branch_up(scrape(rt, expo), "br3") == 1
        await default_round(comp)
        assert branch_up(scrape(rt, expo), "br3") == 0
        assert comp.bursts == 0
        rt.shutdown()
    asyncio.run(scenario())


def test_no_device_decided_yet_is_deciding():
    async def scenario():
        rt, comp, expo, engine = make(alive=set())
        comp.set_devices(DEVICES)
        await default_round(comp)  # br3's devices failed once: UNKNOWN, not yet DOWN
        assert branch_up(scrape(rt, expo), "br3") == -1
        await default_round(comp)
        assert branch_up(scrape(rt, expo), "br3") == 0
        rt.shutdown()
    asyncio.run(scenario())


def test_reloads_during_a_burst_keep_it_and_it_still_decides():
    async def scenario():
        rt, comp, expo, engine = make(policies(0.05, 3600))
        comp.set_devices(DEVICES)
        await warm_up(comp)
        engine.delay = 0.2  # a burst round in flight when the reload comes
        engine.alive -= BRANCH1
        await comp.start()
        for _ in range(300):
            await asyncio.sleep(0.01)
            if engine.calls[-1][0] == ["198.18.1.2", "198.18.1.3"]:
                break
        branch = comp.branches[("north", "br1")]
        assert branch.burst_left > 0 and branch_up(scrape(rt, expo), "br1") == -1
        comp.set_devices(DEVICES[:-1])  # inventory reload: the branch object and its burst kept
        assert comp.branches[("north", "br1")] is branch and branch.burst_left > 0
        done_before = comp.burst_rounds
        await comp.reconfigure()  # cancels the burst round in flight; the loops restart, it resumes
        assert sum(t.get_name() == "icmp-burst" for t in comp._tasks) == 1
        engine.delay = 0.0
        for _ in range(300):  # bounded: the resumed burst and the uplink decide the branch dark
            await asyncio.sleep(0.01)
            if branch_up(scrape(rt, expo), "br1") == 0:
                break
        await comp.stop()
        s = scrape(rt, expo)
        assert branch_up(s, "br1") == 0 and s[("wardops_icmp_up", "a-rtr")] == 0
        assert comp.burst_rounds > done_before and branch.burst_left == 0  # the burst resumed and finished
        rt.shutdown()
    asyncio.run(scenario())


def test_canaries_use_the_fastest_policy_and_appear_once_decided():
    async def scenario():
        cfg = ExporterConfig(site=SiteSettings(canaries=("198.19.0.1", "198.19.0.2")))
        rt, comp, expo, engine = make(cfg, alive={"198.19.0.1"})
        comp.set_devices(())  # no devices at all: the fastest policy still probes the canaries
        assert not [k for k in scrape(rt, expo) if k[0] == "wardops_probe_site_canary_up"]
        await isp_round(comp)
        s = scrape(rt, expo)
        assert s[("wardops_probe_site_canary_up", "198.19.0.1")] == 1
        assert ("wardops_probe_site_canary_up", "198.19.0.2") not in s  # UNKNOWN: absent
        await isp_round(comp)
        s = scrape(rt, expo)
        assert s[("wardops_probe_site_canary_up", "198.19.0.2")] == 0  # DOWN after the isp down_after
        assert engine.calls[-1] == (["198.19.0.1", "198.19.0.2"], comp.policies["isp"].packets)
        engine.alive.add("198.19.0.2")
        await isp_round(comp)
        assert scrape(rt, expo)[("wardops_probe_site_canary_up", "198.19.0.2")] == 0  # up_after 2
        await isp_round(comp)
        assert scrape(rt, expo)[("wardops_probe_site_canary_up", "198.19.0.2")] == 1
        await default_round(comp)
        assert "198.19.0.1" not in engine.calls[-1][0]  # only the fastest policy probes them
        rt.shutdown()
    asyncio.run(scenario())


def test_canaries_run_in_the_fastest_loop_without_devices():
    async def scenario():
        cfg = policies(0.05, 3600, canaries=("198.19.0.1",))
        rt, comp, expo, engine = make(cfg, alive={"198.19.0.1"})
        await comp.start()
        comp.set_devices(())
        for _ in range(100):
            await asyncio.sleep(0.02)
            if ("wardops_probe_site_canary_up", "198.19.0.1") in scrape(rt, expo):
                break
        await comp.stop()
        assert scrape(rt, expo)[("wardops_probe_site_canary_up", "198.19.0.1")] == 1
        rt.shutdown()
    asyncio.run(scenario())


def test_scrapes_never_mix_a_verdict_with_device_states_of_another_round():
    """Real loops (fast policies) flip whole branches while another thread scrapes: in every scrape
    a verdict 1 has a device UP and a verdict 0 has every device DOWN, in the same body."""
    cfg = policies(0.02, 0.03, down_after=1, up_after=1)
    members = {}
    for d in DEVICES:
        members.setdefault(d.branch, []).append(d.name)
    bad, checked = [], []

    def check(expo, stop):
        while not stop.is_set():
            text = b"".join(expo.render()).decode()
            s = {}
            for fam in text_string_to_metric_families(text):
                for smp in fam.samples:
                    s[(smp.name, smp.labels.get("device") or smp.labels.get("branch"))] = smp.value
            for b in ("br1", "br2", "br3"):
                v = s.get(("wardops_icmp_branch_up", b))
                ups = [s.get(("wardops_icmp_up", d)) for d in members[b]]
                if v == 1 and 1 not in ups or v == 0 and any(u != 0 for u in ups):
                    bad.append((b, v, ups))
                if v in (0, 1):
                    checked.append(v)

    async def scenario():
        loop = asyncio.get_running_loop()
        expo = Exposition()
        expo.register(FAMILIES)
        rt = Runtime(cfg, expo, loop, LOG)
        engine = FakeEngine(alive=ALL, delay=0.002)
        comp = IcmpComponent(rt, engine=engine)
        comp.set_devices(DEVICES)
        await comp.start()
        stop = threading.Event()
        t = threading.Thread(target=check, args=(expo, stop))
        t.start()
        try:
            for i in range(30):
                await asyncio.sleep(0.05)
                if i % 2:
                    engine.alive |= ALL
                else:
                    engine.alive -= BRANCH1 | {"198.18.3.1", "198.18.3.2", "198.18.2.1", "198.18.2.2"}
        finally:
            stop.set()
            await loop.run_in_executor(None, t.join)
            await comp.stop()
            rt.shutdown()
    asyncio.run(scenario())
    assert not bad
    assert 0 in checked and 1 in checked  # both verdicts were seen, so the check had teeth


def test_module_filter_splits_icmp_snmp_and_self_metrics():
    from exporter.contract import Family

    expo = Exposition()
    expo.register([Family("wardops_icmp_up", "gauge", "x"), Family("wardops_snmp_up", "gauge", "y"),
                   Family("wardops_exporter_build_info", "gauge", "z")])
    expo.add_source(lambda: [("wardops_exporter_build_info", "", 1)])
    expo.publish_many({("icmp", "isp"): {"wardops_icmp_up": (b'wardops_icmp_up{device="a"} 1\n', b"")},
                       ("snmp", "devices"): {"wardops_snmp_up": (b"", b'wardops_snmp_up{device="b"} 1\n')}})
    icmp = b"".join(expo.render(module="icmp")).decode()
    snmp = b"".join(expo.render(module="snmp")).decode()
    both = b"".join(expo.render()).decode()
    assert "wardops_icmp_up{" in icmp and "wardops_snmp_up{" not in icmp and "build_info 1" in icmp
    assert "wardops_snmp_up{" in snmp and "wardops_icmp_up{" not in snmp and "build_info" not in snmp
    assert all(x in both for x in ("wardops_icmp_up{", "wardops_snmp_up{", "build_info 1"))
    assert "wardops_icmp_up{" in b"".join(expo.render(module="icmp", role="isp")).decode()
    expo.publish_many({("snmp", "devices"): None})
    assert "wardops_snmp_up{" not in b"".join(expo.render()).decode()


@pytest.mark.parametrize("shards", [2, 3])
def test_sharding_keeps_every_branch_verdict_on_one_exporter(shards):
    async def scenario():
        devices = tuple(dev(f"{r}-{b}-{k}", f"198.18.{i}.{k + 1}", f"b{b}", "isp" if k == 0 else "router",
                            "acme" if k == 0 else None, region=r)
                        for i, (r, b) in enumerate((r, b) for r in ("east", "west") for b in range(20))
                        for k in range(3))
        seen = {}
        for i in range(shards):
            rt, comp, expo, _ = make()
            comp.set_devices(Shard(i, shards).select(devices))
            for key, b in comp.branches.items():
                assert len(b.uplinks) == 1 and len(b.others) == 2  # whole branch
                assert seen.setdefault(key, i) == i
            rt.shutdown()
        assert len(seen) == 40
    asyncio.run(scenario())


def test_site_section_is_published_with_the_device_sections():
    async def scenario():
        rt, comp, expo, _ = make()
        comp.set_devices(DEVICES)
        await warm_up(comp)
        rt.flush()
        assert set(expo.sections()) == {("icmp", "isp"), ("icmp", "default"), SITE_KEY}
        rt.shutdown()
    asyncio.run(scenario())
