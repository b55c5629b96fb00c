"""Probing from inside a network namespace: enter one on the calling thread, or run an event loop
on a thread that lives inside it.

A socket keeps the namespace it was created in, so the exporter creates its probing sockets on a
thread inside `--netns` while its web listener and inventory polling stay in the caller's
namespace. The lab (wardops.lab.netns) builds on this module; the exporter never imports the lab.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from typing import TypeVar

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"  # where `ip netns add NAME` bind-mounts the namespace

T = TypeVar("T")


class NetnsError(Exception):
    """A network namespace cannot be entered or left; the message names the namespace."""


@contextlib.contextmanager
def enter_netns(name: str) -> Iterator[None]:
    """Move the calling THREAD into network namespace `name` (from `ip netns add`), then back.

    Sockets opened inside keep that namespace after the thread returns.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    path = os.path.join(NETNS_DIR, name)
    try:
        target = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise NetnsError(f"network namespace {name!r} cannot be opened: {path}: {exc.strerror} "
                         f"(create it with `ip netns add {name}`)") from None
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"cannot enter network namespace {name!r}: {os.strerror(err)} "
                             "(entering a namespace needs root or CAP_SYS_ADMIN)")
        try:
            yield
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover - would leave the thread inside
                raise NetnsError(f"cannot leave network namespace {name!r}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(target)
        os.close(own)


class LoopThread:
    """An asyncio event loop running on its own thread, inside network namespace `netns` if given.

    Everything submitted with `run()`/`call()` executes on that thread, so every socket it opens is
    created inside the namespace. `start()` raises NetnsError if the namespace cannot be entered.
    """

    def __init__(self, netns: str | None = None, name: str = "loop"):
        self.netns = netns
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._done: Future = Future()

    def start(self, timeout: float = 10.0) -> LoopThread:
        started: Future = Future()
        self._thread = threading.Thread(target=self._main, args=(started,), name=self.name, daemon=True)
        self._thread.start()
        self.loop = started.result(timeout)  # re-raises NetnsError from the thread
        return self

    def _main(self, started: Future) -> None:
        try:
            with enter_netns(self.netns) if self.netns else contextlib.nullcontext():
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                started.set_result(loop)
                try:
                    loop.run_forever()
                    _finish(loop)
                finally:
                    loop.close()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
        finally:
            self._done.set_result(None)

    def run(self, coro: Awaitable[T], timeout: float | None = 60.0) -> T:
        """Run a coroutine on the loop thread and return its result (or raise its exception);
        TimeoutError after `timeout` seconds (None: wait as long as it takes)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float | None = 10.0) -> T:
        """Call a plain function on the loop thread (e.g. to open a socket inside the namespace)."""
        async def wrapper() -> T:
            return fn()
        return self.run(wrapper(), timeout)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loop, close it and leave the namespace; idempotent."""
        if self.alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._done.result(timeout)
            self._thread.join(timeout)

    def __enter__(self) -> LoopThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still scheduled and close async generators, as asyncio.run() does."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


def run_in_netns(netns: str | None, coro_factory: Callable[[], Awaitable[T]], name: str = "netns",
                 timeout: float | None = None) -> T:
    """Run one coroutine to completion on a fresh loop thread inside `netns` (one-shot commands)."""
    with LoopThread(netns, name) as thread:
        return thread.run(coro_factory(), timeout)
