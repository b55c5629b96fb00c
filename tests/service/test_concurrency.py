"""Parallel bulk writes through two service instances (two caches, one database) under waitress:
every bulk is applied whole or not at all, and both instances converge on the same inventory."""

from __future__ import annotations

import threading

import requests
from conftest import AUTH, Server, make_app

BULKS = 12
PER_BULK = 40


def bulk_devices(k: int) -> list[dict]:
    # Bulk k and k+1 (k even) share their last IP: exactly one of each pair can win.
    out = []
    for j in range(PER_BULK):
        ip_index = k * PER_BULK + j
        if j == PER_BULK - 1 and k % 2 == 1:
            ip_index = (k - 1) * PER_BULK + j
        out.append({"name": f"b{k}-d{j}", "ip": f"198.18.{ip_index // 200}.{ip_index % 200 + 1}",
                    "region": "R", "branch": f"B{k}"})
    return out


def test_parallel_bulk_writes_never_half_apply(db_url):
    apps = [make_app(db_url), make_app(db_url)]
    results: dict[int, int] = {}
    errors: list[str] = []
    try:
        with Server(apps[0]) as s0, Server(apps[1]) as s1:
            servers = [s0, s1]
            barrier = threading.Barrier(BULKS)

            def worker(k: int):
                session = requests.Session()
                barrier.wait()
                try:
                    r = session.post(f"{servers[k % 2].url}/api/v1/devices/bulk",
                                     json={"create": bulk_devices(k)}, headers=AUTH, timeout=60)
                    results[k] = r.status_code
                    if r.status_code == 409:
                        assert r.json()["problems"][0]["op"] == "create"
                except Exception as exc:  # collected and reported below
                    errors.append(f"bulk {k}: {exc!r}")

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(BULKS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            assert not errors, errors
            assert set(results.values()) <= {200, 409}, results
            won = sorted(k for k, code in results.items() if code == 200)
            # one winner per pair sharing an IP, the other got 409
            assert all((k in won) != (k + 1 in won) for k in range(0, BULKS, 2)), won
            assert len(won) == BULKS // 2

            expected = sorted(d["name"] for k in won for d in bulk_devices(k))
            for s in servers:
                page = requests.get(f"{s.url}/api/v1/devices", params={"limit": 1000}, timeout=30).json()
                assert sorted(d["name"] for d in page["items"]) == expected
                assert page["total"] == len(expected)
                sd = requests.get(f"{s.url}/api/v1/sd", timeout=30).json()
                assert sorted(g["labels"]["device"] for g in sd) == expected
            # each surviving bulk is whole: every branch has all PER_BULK devices
            by_branch: dict[str, int] = {}
            for name in expected:
                by_branch[name.split("-")[0]] = by_branch.get(name.split("-")[0], 0) + 1
            assert set(by_branch.values()) == {PER_BULK}
            # the generation counts exactly the committed writes (plus the initial 1)
            health = requests.get(f"{s0.url}/healthz", timeout=10).json()
            assert health["inventory"]["generation"] == 1 + len(won)
    finally:
        for app in apps:
            app.extensions["wardops_engine"].dispose()


def test_parallel_updates_and_deletes_stay_consistent(db_url):
    app = make_app(db_url)
    try:
        with Server(app) as s:
            devices = [{"name": f"d{i}", "ip": f"198.18.1.{i + 1}", "region": "R", "branch": "B"} for i in range(60)]
            assert requests.post(f"{s.url}/api/v1/devices/bulk", json={"create": devices}, headers=AUTH,
                                 timeout=60).status_code == 200
            codes: list[int] = []

            def toggle(i: int):
                # each worker disables its 10 devices and deletes one in the same bulk
                mine = devices[i * 10:(i + 1) * 10]
                body = {"update": [{**d, "enabled": False} for d in mine[1:]], "delete": [mine[0]["name"]]}
                codes.append(requests.post(f"{s.url}/api/v1/devices/bulk", json=body, headers=AUTH,
                                           timeout=60).status_code)

            threads = [threading.Thread(target=toggle, args=(i,)) for i in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            assert codes == [200] * 6
            page = requests.get(f"{s.url}/api/v1/devices", params={"limit": 1000}, timeout=30).json()
            assert page["total"] == 54 and not any(d["enabled"] for d in page["items"])
            assert requests.get(f"{s.url}/api/v1/sd", timeout=30).json() == []
    finally:
        app.extensions["wardops_engine"].dispose()
