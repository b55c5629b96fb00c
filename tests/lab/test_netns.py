"""The lab itself: reachability, isolation, down/up, loss, entering the prober namespace."""

from __future__ import annotations

import socket
import struct
import subprocess

import pytest

from wardops.lab.netns import Lab, LabError, enter_netns

pytestmark = pytest.mark.lab


def fping_alive(lab: Lab, ips: list[str]) -> set[str]:
    proc = subprocess.run(lab.probe_argv(["fping", "-a", "-r", "1", "-t", "300", *ips]),
                          capture_output=True, text=True, timeout=30)
    return set(proc.stdout.split())


def test_every_lab_address_answers_v4_and_v6(lab):
    ips = ["198.18.0.1", "198.18.77.200", "198.19.255.254", "2001:2::1", "2001:2:0:ffff::9"]
    assert fping_alive(lab, ips) == set(ips)


def test_prober_namespace_routes_only_to_the_lab(lab):
    routes = subprocess.run(lab.probe_argv(["ip", "route", "get", "203.0.113.1"]),
                            capture_output=True, text=True, timeout=10)
    assert routes.returncode != 0 and "unreachable" in routes.stderr
    v4 = subprocess.run(lab.probe_argv(["ip", "-4", "route"]), capture_output=True, text=True).stdout
    assert "default" not in v4 and "198.18.0.0/15" in v4


def test_down_and_up_are_exact(lab):
    ips = [f"198.18.40.{i}" for i in range(1, 21)] + ["2001:2::40"]
    dark = set(ips[::3])
    lab.down(dark)
    try:
        assert lab.down_ips() >= dark
        assert fping_alive(lab, ips) == set(ips) - dark
    finally:
        lab.up(dark)
    assert not (lab.down_ips() & dark)
    assert fping_alive(lab, ips) == set(ips)


def test_addresses_outside_the_lab_are_refused(lab):
    with pytest.raises(LabError, match="outside the lab"):
        lab.down(["192.168.1.1"])


def test_random_loss_is_roughly_the_requested_share(lab):
    lab.set_loss(20)
    try:
        proc = subprocess.run(lab.probe_argv(["fping", "-c", "1000", "-p", "1", "-q", "198.18.9.9"]),
                              capture_output=True, text=True, timeout=60)
    finally:
        lab.set_loss(0)
    sent, received = map(int, proc.stderr.split("=")[1].split(",")[0].strip().split("/")[:2])
    assert sent == 1000
    assert 0.12 < 1 - received / sent < 0.28  # 20 % +- 8 points: > 6 sigma at n=1000


def test_enter_netns_opens_sockets_inside_and_returns(lab):
    with enter_netns(lab.probe_ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    try:
        sock.settimeout(2)
        sock.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, 7) + b"wardops", ("198.18.5.5", 0))
        data, (addr, _) = sock.recvfrom(128)
        assert addr == "198.18.5.5" and data[0] == 0  # echo reply
    finally:
        sock.close()
    # Back in the host namespace the lab range is not routed through the lab.
    host = subprocess.run(["ip", "route", "get", "198.18.5.5"], capture_output=True, text=True)
    assert "wd" not in host.stdout


def test_bad_lab_name_is_rejected():
    with pytest.raises(LabError, match="1-8 characters"):
        Lab("this-name-is-far-too-long")
