"""exporter.netns: entering a namespace, the loop thread both the exporter and `snmp poll` use,
and the build version (from package metadata, not from the wardops umbrella package)."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from exporter.app import Exporter, StartupError
from exporter.config import loads_config
from exporter.netns import LoopThread, NetnsError, enter_netns, run_in_netns
from exporter.targets import FileSource
from exporter.version import __version__

MISSING = "wdnosuchns"


def test_missing_namespace_is_a_netns_error_naming_it():
    with pytest.raises(NetnsError, match=rf"network namespace '{MISSING}' cannot be opened: /run/netns/{MISSING}"):
        with enter_netns(MISSING):
            pass


def test_loop_thread_runs_work_on_its_own_thread_and_propagates_errors():
    caller = threading.get_ident()

    async def where():
        await asyncio.sleep(0)
        return threading.get_ident(), threading.current_thread().name

    async def fails():
        raise ValueError("boom")

    with LoopThread(name="t-loop") as thread:
        ident, name = thread.run(where(), 5)
        assert ident != caller and name == "t-loop"
        assert thread.call(threading.get_ident, 5) == ident
        with pytest.raises(ValueError, match="boom"):
            thread.run(fails(), 5)
        loop = thread.loop
    assert not thread.alive() and loop.is_closed()
    thread.stop()  # idempotent


def test_stop_cancels_tasks_left_on_the_loop():
    cancelled = threading.Event()

    async def forever():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with LoopThread() as thread:
        thread.call(lambda: thread.loop.create_task(forever()), 5)
    assert cancelled.is_set()


def test_loop_thread_start_fails_with_netns_error():
    with pytest.raises(NetnsError, match=MISSING):
        LoopThread(MISSING).start(5)


def test_run_in_netns_without_namespace_returns_the_result():
    async def answer():
        return 42
    assert run_in_netns(None, answer) == 42


def test_exporter_start_in_a_missing_namespace_names_it(tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text("regions: {}\n")
    exp = Exporter(FileSource(str(inv)), loads_config(""), netns=MISSING, log=logging.getLogger("test.netns"),
                   components=())
    with pytest.raises(StartupError, match=rf"network namespace '{MISSING}'"):
        exp.start(5)


def test_exporter_does_not_import_the_lab_or_the_umbrella_package():
    code = ("import sys, exporter.app, exporter.cli, exporter.snmp.cli; "
            "print(sorted(m for m in sys.modules if m == 'wardops' or m.startswith('wardops.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_version_comes_from_the_package_metadata():
    import wardops
    assert __version__ == importlib.metadata.version("wardops") == wardops.__version__


@pytest.mark.lab
def test_loop_thread_opens_sockets_inside_the_namespace(lab):
    def ping_socket():
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)

    with LoopThread(lab.probe_ns, name="t-ns") as thread:
        sock = thread.call(ping_socket, 5)
    try:  # 198.18.0.0/15 answers only inside the lab: the socket kept the prober namespace
        sock.settimeout(2)
        sock.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, 9) + b"wardops", ("198.18.6.6", 0))
        data, (addr, _) = sock.recvfrom(128)
        assert addr == "198.18.6.6" and data[0] == 0
    finally:
        sock.close()


def test_snmp_poll_in_a_missing_namespace_says_which(tmp_path, capsys):
    from exporter.snmp import cli

    inv = tmp_path / "inv.yml"
    inv.write_text("""
snmp_profiles:
  lo: {version: 2c, community_env: NETNS_TEST_COMMUNITY}
devices:
  - {name: r1, ip: 127.0.0.1, region: R, branch: B, role: router, snmp: lo}
""")
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["poll", str(inv), "--netns", MISSING])
    assert args.func(args) == 1
    assert f"snmp poll failed: network namespace '{MISSING}' cannot be opened" in capsys.readouterr().err


def test_version_of_a_source_tree_that_is_not_installed_comes_from_setup_cfg(monkeypatch):
    from exporter import version

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    setup_cfg = (Path(version.__file__).resolve().parents[1] / "setup.cfg").read_text()
    declared = next(line.split("=", 1)[1].strip() for line in setup_cfg.splitlines() if line.startswith("version"))
    assert version.package_version() == declared


class _Component:
    """A component whose start or stop fails, to check the loop thread never outlives the exporter."""

    families = ()

    def __init__(self, runtime, fail_start=False, fail_stop=False):
        self.fail_start, self.fail_stop = fail_start, fail_stop

    async def start(self):
        if self.fail_start:
            raise OSError("no ICMP socket")

    async def stop(self):
        if self.fail_stop:
            raise RuntimeError("stop failed")

    def self_samples(self):
        return []


def _exporter(tmp_path, **component):
    inv = tmp_path / "inv.yml"
    inv.write_text("regions: {}\n")
    return Exporter(FileSource(str(inv)), loads_config(""), log=logging.getLogger("test.netns"),
                    components=("icmp",), factories={"icmp": lambda rt: _Component(rt, **component)})


def test_a_component_that_fails_to_start_is_a_startup_error_and_no_thread_stays(tmp_path):
    before = set(threading.enumerate())
    with pytest.raises(StartupError, match="no ICMP socket"):
        _exporter(tmp_path, fail_start=True).start(5)
    assert not [t for t in set(threading.enumerate()) - before if t.name == "probe" and t.is_alive()]


def test_a_component_that_fails_to_stop_still_ends_the_loop_thread(tmp_path):
    exp = _exporter(tmp_path, fail_stop=True)
    exp.start(5)
    loop = exp.loop
    with pytest.raises(RuntimeError, match="stop failed"):
        exp.stop()
    assert loop.is_closed()
