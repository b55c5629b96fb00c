"""Shared fixtures. Lab tests need root: they create network namespaces (nothing leaves the machine)."""

from __future__ import annotations

import os

import pytest

from wardops.lab.netns import Lab, remove_stale_labs


def lab_name() -> str:
    """Unique per test process, so parallel runs never share (or destroy) each other's lab."""
    return f"wd{os.getpid() % 1000000}"


@pytest.fixture(scope="session", autouse=True)
def _no_stale_labs():
    if os.geteuid() == 0:
        remove_stale_labs()


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.fail("lab tests need root (network namespaces); run the suite as root")
    with Lab(lab_name()) as the_lab:
        yield the_lab
