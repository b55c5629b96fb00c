"""The batched ICMP engine: one socket per address family on ONE asyncio event loop.

A round sends `packets` waves. Every target of a wave gets the same sequence number, so a wave
encodes one packet and sends those bytes to each address in a burst, yielding to the event loop
every `burst` sends: the loop's reader callback then drains replies (a 10k burst would otherwise
overflow the receive queue). One reader per socket matches replies by (source address, sequence)
-- unprivileged sockets rewrite the identifier, raw sockets also filter by our random identifier.
RTT uses the kernel's receive timestamp (SO_TIMESTAMPNS), so a busy loop does not inflate it.
Several rounds (policies, /probe) may run at once: waves are keyed by their own sequence number.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from exporter.icmp.packet import ECHO_REPLY, echo_request
from exporter.icmp.sockets import SO_RXQ_OVFL, SO_TIMESTAMPNS, IcmpSocket, IcmpSocketError, open_icmp_socket

_SOL_SOCKET = socket.SOL_SOCKET
_TIMESPEC = struct.Struct("qq")
_DROPS = struct.Struct("I")
_REPLY = struct.Struct("!BBHHH")
_SEND_RETRIES = 100  # x 1 ms waits for a full send buffer before a packet counts as a send error


@dataclass(slots=True)
class PingResult:
    """Per target, in the order given: packets handed to the kernel and reply RTTs (seconds)."""

    sent: list[int]
    rtts: list[list[float]]
    duration: float = 0.0


@dataclass(slots=True)
class _Wave:
    index: dict[str, int]  # reply source address -> target index (shared by a round's waves)
    send_ns: list[int]
    rtt_ns: list[int]  # -1 = no reply yet
    timeout_ns: int
    round: _Round


@dataclass(slots=True)
class _Round:
    outstanding: int = 0
    all_sent: bool = False
    done: asyncio.Future | None = None


@dataclass(slots=True)
class EngineCounters:
    sent: int = 0
    received: int = 0  # matched replies within timeout
    send_errors: int = 0
    late: int = 0  # replies after their timeout, duplicates, unknown sequence
    drops: dict[int, int] = field(default_factory=dict)  # socket fileno -> kernel drop count

    @property
    def receive_drops(self) -> int:
        return sum(self.drops.values())


class IcmpEngine:
    """Owns the sockets; `ping()` runs one batched round. Use only on its event loop's thread."""

    def __init__(self, mode: str = "auto", source_ipv4: str | None = None, source_ipv6: str | None = None,
                 receive_buffer: int = 8 << 20, burst: int = 64):
        self.mode = mode
        self.sources = {4: source_ipv4, 6: source_ipv6}
        self.receive_buffer = receive_buffer
        self.burst = max(1, burst)
        self.sockets: dict[int, IcmpSocket] = {}
        self.unavailable: dict[int, str] = {}  # version -> why (e.g. no IPv6 in this namespace)
        self.counters = EngineCounters()
        self._waves: dict[int, _Wave] = {}
        self._sequence = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self, loop: asyncio.AbstractEventLoop, versions: Sequence[int] = (4, 6),
             required: Sequence[int] = (4,)) -> None:
        """Open sockets (in the calling thread's network namespace). IcmpSocketError for `required`."""
        self._loop = loop
        for version in versions:
            try:
                isock = open_icmp_socket(version, self.mode, self.sources[version], self.receive_buffer)
            except IcmpSocketError as exc:
                if version in required:
                    self.close()
                    raise
                self.unavailable[version] = str(exc)
                continue
            self.sockets[version] = isock
            loop.add_reader(isock.sock.fileno(), self._on_readable, isock)

    def close(self) -> None:
        for isock in self.sockets.values():
            if self._loop is not None:
                self._loop.remove_reader(isock.sock.fileno())
            isock.close()
        self.sockets.clear()

    def describe(self) -> str:
        return " ".join(f"ipv{v}={s.mode}(id={s.identifier},rcvbuf={s.receive_buffer})"
                        for v, s in sorted(self.sockets.items())) or "no sockets"

    def _next_sequence(self) -> int:
        self._sequence = (self._sequence + 1) & 0xFFFF
        while self._sequence in self._waves:  # 65,536 waves in flight cannot happen; be safe anyway
            self._sequence = (self._sequence + 1) & 0xFFFF
        return self._sequence

    async def ping(self, addresses: Sequence[str], packets: int = 1, spacing: float = 0.0,
                   timeout: float = 1.0) -> PingResult:
        """One round: `packets` echo requests to each address, `spacing` apart, `timeout` each.

        Addresses must be canonical text (ipaddress .compressed) and unique within the call.
        Returns as soon as every reply is in, else when the last packet's timeout has passed.
        """
        started = time.monotonic()
        count = len(addresses)
        index = {addr: i for i, addr in enumerate(addresses)}
        by_version: dict[int, list[tuple[int, str]]] = {4: [], 6: []}
        for i, addr in enumerate(addresses):
            by_version[6 if ":" in addr else 4].append((i, addr))
        rnd = _Round()
        waves: list[_Wave] = []
        timeout_ns = int(timeout * 1e9)
        last_send = time.monotonic()
        try:
            for k in range(packets):
                if k:
                    delay = started + k * spacing - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                seq = self._next_sequence()
                wave = _Wave(index, [0] * count, [-1] * count, timeout_ns, rnd)
                self._waves[seq] = wave
                waves.append(wave)
                for version, targets in by_version.items():
                    if targets:
                        await self._send_wave(version, seq, wave, targets)
                last_send = time.monotonic()
            rnd.all_sent = True
            remaining = last_send + timeout - time.monotonic()
            if rnd.outstanding > 0 and remaining > 0:
                rnd.done = self._loop.create_future()
                await asyncio.wait([rnd.done], timeout=remaining)
        finally:
            for seq, wave in list(self._waves.items()):
                if wave.round is rnd:
                    del self._waves[seq]
        sent = [0] * count
        rtts: list[list[float]] = [[] for _ in range(count)]
        for wave in waves:
            for i, s in enumerate(wave.send_ns):
                if s:
                    sent[i] += 1
                    r = wave.rtt_ns[i]
                    if r >= 0:
                        rtts[i].append(r / 1e9)
        return PingResult(sent, rtts, time.monotonic() - started)

    async def _send_wave(self, version: int, seq: int, wave: _Wave, targets: list[tuple[int, str]]) -> None:
        isock = self.sockets.get(version)
        if isock is None:
            self.counters.send_errors += len(targets)
            return
        packet = echo_request(version, isock.identifier, seq)
        sendto = isock.sock.sendto
        send_ns = wave.send_ns
        rnd = wave.round
        burst = self.burst
        n = 0
        counters = self.counters
        for i, addr in targets:
            for _ in range(_SEND_RETRIES):
                try:
                    send_ns[i] = time.time_ns()
                    sendto(packet, (addr, 0))
                    break
                except BlockingIOError:  # send queue full: let replies and the queue drain
                    send_ns[i] = 0
                    await asyncio.sleep(0.001)
                except OSError:
                    send_ns[i] = 0
                    counters.send_errors += 1
                    break
            else:
                counters.send_errors += 1
            if send_ns[i]:
                rnd.outstanding += 1
                counters.sent += 1
            n += 1
            if n % burst == 0:
                await asyncio.sleep(0)  # one loop iteration: the reader drains replies

    def _on_readable(self, isock: IcmpSocket) -> None:
        recvmsg = isock.sock.recvmsg
        offset_ip = isock.has_ip_header
        want_type = ECHO_REPLY[isock.version]
        raw = isock.raw
        ident = isock.identifier
        waves = self._waves
        counters = self.counters
        for _ in range(4096):  # bounded: other loop work must get its turn
            try:
                data, ancillary, _flags, addr = recvmsg(512, 128)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            rx_ns = 0
            for level, kind, payload in ancillary:
                if level == _SOL_SOCKET:
                    if kind == SO_TIMESTAMPNS:
                        sec, nsec = _TIMESPEC.unpack_from(payload)
                        rx_ns = sec * 1_000_000_000 + nsec
                    elif kind == SO_RXQ_OVFL:
                        counters.drops[isock.sock.fileno()] = _DROPS.unpack_from(payload)[0]
            # packet.parse_echo_reply's checks, inlined: this runs once per reply
            offset = (data[0] & 0x0F) * 4 if offset_ip and data else 0
            if len(data) < offset + 8:
                continue
            kind, code, _, identifier, seq = _REPLY.unpack_from(data, offset)
            if kind != want_type or code != 0 or (raw and identifier != ident):
                continue  # not ours (raw sockets see every reply on the host)
            wave = waves.get(seq)
            if wave is None:
                counters.late += 1
                continue
            i = wave.index.get(addr[0])
            if i is None or wave.rtt_ns[i] >= 0 or not wave.send_ns[i]:
                counters.late += 1
                continue
            rtt = (rx_ns or time.time_ns()) - wave.send_ns[i]
            if rtt > wave.timeout_ns:
                counters.late += 1
                continue
            wave.rtt_ns[i] = max(rtt, 0)
            counters.received += 1
            rnd = wave.round
            rnd.outstanding -= 1
            if rnd.outstanding == 0 and rnd.all_sent and rnd.done is not None and not rnd.done.done():
                rnd.done.set_result(None)


def canonical_ip(text: str) -> str:
    return ipaddress.ip_address(text).compressed
