import asyncio
import logging
import threading

from prometheus_client.parser import text_string_to_metric_families

from exporter.component import Runtime
from exporter.config import loads_config
from exporter.exposition import Exposition, label_text
from exporter.icmp.component import FAMILIES, IcmpComponent, render_rows
from inventory.model import Device
from tests.exporter.icmp.fakes import FakeEngine

LOG = logging.getLogger("test")


def devices(n, isp=2):
    out = []
    for i in range(n):
        role = "isp" if i < isp else "router"
        out.append(Device(name=f"d{i}", ip=f"198.18.0.{i + 1}", region="north", branch=f"b{i % 3}", role=role,
                          isp="acme" if role == "isp" else None))
    return tuple(out)


def samples(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, s.labels.get("device"))] = s.value
    return out


def make(config_text="", engine=None):
    loop = asyncio.get_running_loop()
    expo = Exposition()
    expo.register(FAMILIES)
    rt = Runtime(loads_config(config_text), expo, loop, LOG)
    comp = IcmpComponent(rt, engine=engine or FakeEngine(), clock=lambda: 1700000000.0)
    rt.components["icmp"] = comp
    return rt, comp, expo


def text(expo, **kw):
    return b"".join(expo.render(**kw)).decode()


def test_rounds_hysteresis_and_exposition():
    async def scenario():
        eng = FakeEngine(alive={"198.18.0.1", "198.18.0.3", "198.18.0.4"})
        rt, comp, expo = make(engine=eng)
        comp.set_devices(devices(4))
        isp, default = comp.policies["isp"], comp.policies["default"]
        await comp.run_round("isp", isp, comp.groups["isp"])
        await comp.run_round("default", default, comp.groups["default"])
        rt.flush()
        s = samples(text(expo))
        assert s[("wardops_icmp_up", "d0")] == 1
        assert ("wardops_icmp_up", "d1") not in s  # UNKNOWN after one failed round: absent
        assert s[("wardops_icmp_loss_ratio", "d1")] == 1.0
        assert ("wardops_icmp_rtt_seconds", "d1") not in s  # no reply: no RTT series
        assert s[("wardops_icmp_rtt_seconds", "d0")] == 0.002
        assert s[("wardops_icmp_packets_sent_total", "d0")] == isp.packets
        assert s[("wardops_icmp_packets_sent_total", "d2")] == default.packets
        # ISP policy: DOWN after 2 failed rounds; d0 goes dark too
        eng.alive.discard("198.18.0.1")
        for _ in range(isp.down_after):
            await comp.run_round("isp", isp, comp.groups["isp"])
        rt.flush()
        s = samples(text(expo))
        assert s[("wardops_icmp_up", "d0")] == 0
        assert s[("wardops_icmp_status_changes_total", "d0")] == 1
        assert s[("wardops_icmp_last_change_timestamp_seconds", "d0")] == 1700000000.0
        assert s[("wardops_icmp_up", "d1")] == 0  # UNKNOWN -> DOWN is not a change
        assert s[("wardops_icmp_status_changes_total", "d1")] == 0
        rt.shutdown()
    asyncio.run(scenario())


def test_role_filters_split_isp_series():
    async def scenario():
        rt, comp, expo = make(engine=FakeEngine(alive={f"198.18.0.{i}" for i in range(1, 6)}))
        comp.set_devices(devices(5, isp=2))
        for name, group in comp.groups.items():
            await comp.run_round(name, comp.policies[name], group)
        rt.flush()
        expo.register([FAMILIES[0]])
        expo.add_source(lambda: [("wardops_icmp_up", '{device="selfcheck"}', 1)])
        isp_only = samples(text(expo, role="isp"))
        rest = samples(text(expo, exclude_role="isp"))
        everything = samples(text(expo))
        # branch verdicts (no device label) travel with the ISP half: the fast job of a role split
        assert {d for _, d in isp_only} == {"d0", "d1", None}
        assert {n for n, d in isp_only if d is None} == {"wardops_icmp_branch_up",
                                                         "wardops_icmp_branch_last_change_timestamp_seconds"}
        assert {d for _, d in rest} == {"d2", "d3", "d4", "selfcheck"}  # self-metrics go with the rest
        assert set(everything) == set(isp_only) | set(rest)
        rt.shutdown()
    asyncio.run(scenario())


def test_removed_device_disappears_at_once_and_label_change_keeps_state():
    async def scenario():
        rt, comp, expo = make(engine=FakeEngine(alive={f"198.18.0.{i}" for i in range(1, 6)}))
        devs = devices(5)
        comp.set_devices(devs)
        for name, group in comp.groups.items():
            await comp.run_round(name, comp.policies[name], group)
        rt.flush()
        assert ("wardops_icmp_up", "d4") in samples(text(expo))
        moved = Device(name="d3", ip="198.18.0.4", region="south", branch="b9", role="router")
        comp.set_devices(devs[:3] + (moved,))  # d4 removed, d3 relabelled; no round in between
        rt.flush()
        s = samples(text(expo))
        assert ("wardops_icmp_up", "d4") not in s
        assert s[("wardops_icmp_up", "d3")] == 1  # state kept across the relabel
        assert 'region="south"' in text(expo)
        rt.shutdown()
    asyncio.run(scenario())


def test_device_label_selects_policy_and_unknown_label_falls_back():
    async def scenario():
        rt, comp, expo = make(engine=FakeEngine())
        a = Device(name="a", ip="198.18.0.1", region="r", branch="b", role="router", labels={"probe_policy": "isp"})
        b = Device(name="b", ip="198.18.0.2", region="r", branch="b", role="isp", labels={"probe_policy": "bogus"})
        comp.set_devices((a, b))
        assert [t.device.name for t in comp.groups["isp"]] == ["a", "b"]
        assert comp.groups["default"] == []
        rt.shutdown()
    asyncio.run(scenario())


def test_scrape_never_sees_half_a_round():
    """Publish rounds from one thread while scraping from another: every scrape is one round."""
    devs = devices(300)
    labels = [label_text(d.target_labels()) for d in devs]
    expo = Exposition()
    expo.register(FAMILIES)
    stop = threading.Event()
    bad = []

    def publish(n):
        rows = tuple((lt, i < 2, 1, 1.0, 0, n, n, 0.001, 0.001, 0.001, 0.0, 0.0) for i, lt in enumerate(labels))
        expo.publish(("icmp", "default"), render_rows(rows))

    def publisher():
        n = 1
        while not stop.is_set():
            n += 1
            publish(n)

    publish(1)

    t = threading.Thread(target=publisher)
    t.start()
    try:
        for _ in range(100):
            body = b"".join(expo.render()).decode()
            sent = {line.rsplit(" ", 1)[1] for line in body.splitlines()
                    if line.startswith("wardops_icmp_packets_sent_total{")}
            if len(sent) != 1:
                bad.append(sent)
    finally:
        stop.set()
        t.join()
    assert not bad


def test_overrun_is_counted_not_queued():
    async def scenario():
        rt, comp, expo = make("policies:\n  isp: {interval: 100ms, packets: 1, spacing: 0, timeout: 50ms}\n",
                              engine=FakeEngine(delay=0.25))
        comp.set_devices(devices(2, isp=2))
        await comp.start()
        await asyncio.sleep(1.0)
        await comp.stop()
        st = comp.stats["isp"]
        # each 250 ms round skips the 2 slots it ran over: ~4 rounds and ~8 overruns in 1 s, none queued
        assert 3 <= st.rounds <= 5
        assert st.overruns >= 2 * (st.rounds - 1)
        assert abs(st.duration - 0.25) < 0.05
        rt.shutdown()
    asyncio.run(scenario())


def test_gzip_exposition_is_the_same_text_in_members():
    import gzip

    devs = devices(50, isp=5)
    rows = tuple((label_text(d.target_labels()), d.role == "isp", 1, 1.0, 0, 7, 7, 0.001, 0.001, 0.001, 0.0, 0.0)
                 for d in devs)
    expo = Exposition()
    expo.register(FAMILIES)
    expo.add_source(lambda: [("wardops_icmp_up", '{device="self"}', 1)])
    expo.publish(("icmp", "default"), render_rows(rows))
    for _ in range(2):  # compressed on the fly, then (gzip_wanted) compressed once at publish
        for kw in ({}, {"role": "isp"}, {"exclude_role": "isp"}):
            assert gzip.decompress(b"".join(expo.render(gzip=True, **kw))) == b"".join(expo.render(**kw))
        expo.gzip_wanted = True
        expo.publish(("icmp", "default"), render_rows(rows))
