"""bench/root_cause.py's bookkeeping without a lab: which root cause a notification belongs to,
what counts as a page, what overstates the scope, and the per-kind figures and checks."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from inventory.synth import synth_bank_inventory
from wardops.stack.webhook import Received

_spec = importlib.util.spec_from_file_location("root_cause", Path(__file__).parents[2] / "bench" / "root_cause.py")
rc = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("root_cause", rc)  # dataclasses look their module up while the class is built
_spec.loader.exec_module(rc)

INV = synth_bank_inventory(seed=2, topology=True)


def alert(name, at, status="firing", starts="s1", **labels) -> Received:
    return Received(name=name, status=status, labels={"alertname": name, **labels}, annotations={},
                    starts_at=starts, ends_at="", received_ts=at, receiver="default")


def cause(kind, devices, start, end, expected, scope="x") -> rc.Cause:
    return rc.Cause(kind, scope, frozenset(devices), (), start, end, expected, until=end + rc.COOLDOWN)


def branch_of(name):
    d = next(d for d in INV.devices if d.name == name)
    return d.region, d.branch, {x.name for x in INV.devices if x.branch == d.branch}


def test_repeats_resolved_and_watchdog_are_not_pages():
    alerts = [alert("DeviceDown", 5, device="a"), alert("DeviceDown", 15, device="a"),  # repeat
              alert("DeviceDown", 40, starts="s2", device="a"),  # fired again: a second page
              alert("DeviceDown", 20, status="resolved", device="a"), alert("Watchdog", 1)]
    pages = rc.distinct_firing(alerts)
    assert [(a.name, a.received_ts) for a in pages] == [("DeviceDown", 5), ("DeviceDown", 40)]


def test_attribution_by_scope_and_window_and_overstated_pages():
    region, branch, devices = branch_of(next(d.name for d in INV.devices if d.region == "Batumi" and d.role == "isp"))
    isp = next(n for n in devices if "-isp" in n)
    c_isp = cause("isp", {isp}, 100, 150, {"alertname": "IspLinkDown", "device": isp})
    other = next(d.name for d in INV.devices if d.region == "Poti" and d.role == "atm")
    c_dev = cause("device", {other}, 110, 170, {"alertname": "DeviceDown", "device": other})
    pages = [alert("BranchDown", 104, region=region, branch=branch),  # overstates the ISP fault
             alert("IspLinkDown", 105, device=isp, region=region, branch=branch),
             alert("DeviceDown", 118, device=other),
             alert("DeviceDown", 95, device=other),  # before its fault began: nobody's
             alert("ExporterDown", 120)]  # about no place in the network
    unexplained = rc.attribute([c_isp, c_dev], pages, INV)
    assert [(a.name, a.received_ts) for a in unexplained] == [("DeviceDown", 95), ("ExporterDown", 120)]
    kinds = rc.summarize([c_isp, c_dev])
    assert kinds["isp"]["pages"] == 2 and kinds["isp"]["pages_per_cause"] == 2.0
    assert kinds["isp"]["overstated"] == [{"cause": "x", "alert": "BranchDown", "branch": branch, "region": region}]
    assert kinds["isp"]["latency_s"] == {"n": 1, "p50": 5.0, "p95": 5.0, "max": 5.0}
    assert kinds["device"]["pages_per_cause"] == 1.0 and kinds["device"]["latency_s"]["p50"] == 8.0
    checks = rc.verdict(kinds, loss_pages=0, unexplained=len(unexplained))
    assert checks["device_pages_per_cause_1"] and checks["device_overstated_0"] and checks["device_p95_le_8s"]
    assert not checks["isp_pages_per_cause_1"] and not checks["isp_overstated_0"] and checks["isp_p95_le_5s"]
    assert not checks["unexplained_pages_0"] and checks["loss_pages_0"]


def test_region_and_upstream_pages_cover_everything_behind_them():
    poti = {d.name for d in INV.devices if d.region == "Poti"}
    c_region = cause("region", poti, 0, 60, {"alertname": "UpstreamDown", "upstream": "core-poti"})
    one_branch = next(d.branch for d in INV.devices if d.region == "Gori")
    gori_branch = {d.name for d in INV.devices if d.branch == one_branch}
    c_branch = cause("branch", gori_branch, 0, 60, {"alertname": "BranchDown", "branch": one_branch})
    pages = [alert("UpstreamDown", 7, upstream="core-poti"), alert("RegionDown", 6, region="Gori")]
    assert rc.attribute([c_region, c_branch], pages, INV) == []
    kinds = rc.summarize([c_region, c_branch])
    assert kinds["region"]["pages_per_cause"] == 1.0 and not kinds["region"]["overstated"]
    assert kinds["branch"]["missed"] == ["x"]
    assert kinds["branch"]["overstated"][0]["alert"] == "RegionDown"  # one branch dark is no region


def test_site_page_covers_everything_and_missed_latency_is_absent():
    c_site = cause("site", {d.name for d in INV.devices}, 0, 60, {"alertname": "ProbeSiteBlind"})
    assert rc.attribute([c_site], [alert("ProbeSiteBlind", 9.5, site="lab")], INV) == []
    kinds = rc.summarize([c_site])
    assert kinds["site"]["latency_s"]["p95"] == 9.5 and rc.verdict(kinds, 0, 0)["site_p95_le_10s"]
    kinds = rc.summarize([cause("site", {"a"}, 0, 60, {"alertname": "ProbeSiteBlind"})])
    assert "latency_s" not in kinds["site"] and not rc.verdict(kinds, 0, 0)["site_p95_le_10s"]


@pytest.mark.parametrize("values, p50, p95", [([1.0], 1.0, 1.0), ([3.0, 1.0, 2.0, 10.0], 2.0, 10.0),
                                              ([float(i) for i in range(1, 101)], 50.0, 95.0)])
def test_nearest_rank_percentiles(values, p50, p95):
    assert rc.percentile(values, 50) == p50 and rc.percentile(values, 95) == p95


def test_cause_window_defaults_open():
    assert rc.Cause("device", "d", frozenset({"d"}), (), 0, 1, {}).until == math.inf


def test_a_page_covering_overlapping_causes_counts_once():
    region, branch, devices = branch_of(next(d.name for d in INV.devices if d.region == "Rustavi" and d.role == "isp"))
    isp = next(n for n in sorted(devices) if "-isp" in n)
    atm = next(n for n in sorted(devices) if "-atm" in n)
    c_dev = cause("device", {atm}, 100, 200, {"alertname": "DeviceDown", "device": atm})
    c_isp = cause("isp", {isp}, 130, 200, {"alertname": "IspLinkDown", "device": isp})
    pages = [alert("DeviceDown", 140, device=atm), alert("BranchDown", 136, region=region, branch=branch)]
    assert rc.attribute([c_dev, c_isp], pages, INV) == []
    assert [a.name for a in c_dev.pages] == ["DeviceDown"]  # its own page, although c_isp began later
    assert [a.name for a in c_isp.pages] == ["BranchDown"]  # the latest change gets the wrong page
