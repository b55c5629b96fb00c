"""`wardops demo`: the outage demonstration end to end, and a clean exit on SIGTERM mid-start."""

from __future__ import annotations

import argparse
import io
import os
import signal
import threading

import pytest

from wardops import demo
from wardops.lab.netns import list_netns

pytestmark = [pytest.mark.stack, pytest.mark.lab, pytest.mark.slow]


def demo_args(tmp_path, *extra):
    parser = argparse.ArgumentParser()
    demo.configure(parser)
    name = f"wd{os.getpid() % 1000000}"  # the same name as the module testbeds: never alive together
    return name, parser.parse_args(["--free-ports", "--dir", str(tmp_path / "demo"), "--lab-name", name, *extra])


def our_processes(workdir) -> list[int]:
    """Processes whose command line mentions the demo's working directory (everything it started)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if str(workdir).encode() in fh.read():
                        out.append(int(entry))
            except OSError:
                pass
    return out


def test_demo_once_pages_on_isp_outage_and_cleans_up(tmp_path, e2e_trees):
    trees = e2e_trees
    name, args = demo_args(tmp_path, "--once")
    out = io.StringIO()
    assert demo.run(args, trees=trees, out=out) == 0, out.getvalue()
    text = out.getvalue()
    assert "PAGE  IspLinkDown [critical]" in text and "RESOLVED IspLinkDown" in text
    assert "/vmui" in text and "dashboards" in text
    assert not {f"{name}-p", f"{name}-t"} & list_netns()
    assert our_processes(tmp_path / "demo") == []


class Trigger(io.StringIO):
    """Sends SIGTERM to this process once a line containing `marker` is written."""

    def __init__(self, marker):
        super().__init__()
        self.marker = marker
        self.fired = False

    def write(self, s):
        if self.marker in s and not self.fired:
            self.fired = True
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return super().write(s)


def test_demo_sigterm_during_start_stops_everything(tmp_path, e2e_trees):
    trees = e2e_trees
    name, args = demo_args(tmp_path)
    out = Trigger("stack: vmagent started")
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert demo.run(args, trees=trees, out=out) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert out.fired and "demo: stopping" in out.getvalue()
    assert "lab removed, stack stopped" in out.getvalue()
    assert not {f"{name}-p", f"{name}-t"} & list_netns()
    assert our_processes(tmp_path / "demo") == []
