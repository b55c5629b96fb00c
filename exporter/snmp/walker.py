"""Fetch scalars and table columns from one agent: GETBULK of only the needed columns, side by side.

One request carries every wanted column (and, on the first request, the scalars as non-repeaters),
so a device with fewer interfaces than max-repetitions answers in a single round trip.

Two request backends share the walk loop:
- `CommunityClient` (v1/v2c): the BER codec in `ber` over ONE unconnected UDP socket per address
  family for all devices, matching replies by request-id and source address. No pyasn1 on this path.
- `UsmClient` (v3): pysnmp 7's asyncio API on one shared SnmpEngine (USM needs its key handling),
  with MIB lookup off.

Both create their sockets lazily on the event loop that first uses them, so a loop thread that
entered a network namespace gets sockets in that namespace. Never create a new loop per request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from exporter.snmp import ber
from exporter.snmp.credentials import Auth, CommunityAuth, UsmAuth
from exporter.snmp.oids import Column

Varbind = tuple[bytes, int, int | bytes | None]
MAX_REQUESTS_PER_WALK = 1000  # a buggy agent must not keep one device busy forever


class SnmpError(Exception):
    """A failed poll. `kind` is a short label value (timeout, auth, agent, protocol, ...); the text
    never contains credentials."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Target:
    ip: str
    port: int
    auth: Auth
    timeout: float = 2.0
    retries: int = 1
    max_repetitions: int = 25


@dataclass(slots=True)
class WalkResult:
    scalars: dict[str, int | bytes | None] = field(default_factory=dict)
    # column name -> {encoded row index (OID suffix) -> value}
    columns: dict[str, dict[bytes, int | bytes | None]] = field(default_factory=dict)
    tags: dict[str, int] = field(default_factory=dict)  # BER type of each scalar/column (last seen)
    requests: int = 0


# request(non_repeater_oids, repeater_oids, max_repetitions) -> (error_status, error_index, varbinds)
Requester = Callable[[list[bytes], list[bytes], int], Awaitable[tuple[int, int, list[Varbind]]]]


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, client: CommunityClient):
        self.client = client

    def datagram_received(self, data: bytes, addr) -> None:
        self.client._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.client.receive_errors += 1


class CommunityClient:
    """v1/v2c requests for every device over one socket per address family."""

    def __init__(self):
        self._transports: dict[int, asyncio.DatagramTransport] = {}
        self._pending: dict[int, tuple[str, asyncio.Future]] = {}
        self._next_id = random.randrange(1, 2**30)
        self.receive_errors = 0
        self.stray_replies = 0

    async def _transport(self, family: int) -> asyncio.DatagramTransport:
        transport = self._transports.get(family)
        if transport is None:
            loop = asyncio.get_running_loop()
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setblocking(False)
            transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=sock)
            self._transports[family] = transport
        return transport

    def _received(self, data: bytes, addr) -> None:
        try:
            _, request_id = ber.peek_request_id(data)
        except ber.BerError:
            self.stray_replies += 1
            return
        entry = self._pending.get(request_id)
        try:
            source = ipaddress.ip_address(addr[0]).compressed
        except ValueError:  # e.g. a scoped link-local source: never one of our targets
            source = None
        if entry is None or entry[0] != source or entry[1].done():
            self.stray_replies += 1
            return
        entry[1].set_result(data)

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()

    def requester(self, target: Target) -> Requester:
        auth = target.auth
        assert isinstance(auth, CommunityAuth)
        family = socket.AF_INET6 if ":" in target.ip else socket.AF_INET
        ip = ipaddress.ip_address(target.ip).compressed
        addr = (ip, target.port)

        async def request(non_repeaters: list[bytes], repeaters: list[bytes], max_rep: int):
            if auth.version == 0:  # v1 has no GETBULK: one GETNEXT row at a time
                pdu, nr, mr = ber.GETNEXT, 0, 0
            else:
                pdu, nr, mr = ber.GETBULK, len(non_repeaters), max_rep
            request_id = self._next_id
            self._next_id = self._next_id + 1 if self._next_id < 2**31 - 1 else 1
            msg = ber.encode_request(auth.version, auth.community, pdu, request_id,
                                     non_repeaters + repeaters, nr, mr)
            transport = await self._transport(family)
            future = asyncio.get_running_loop().create_future()
            self._pending[request_id] = (ip, future)
            try:
                for _ in range(target.retries + 1):
                    transport.sendto(msg, addr)
                    try:
                        data = await asyncio.wait_for(asyncio.shield(future), target.timeout)
                        break
                    except TimeoutError:
                        continue
                else:
                    raise SnmpError("timeout", f"no response after {target.retries + 1} tries")
            finally:
                del self._pending[request_id]
            try:
                response = ber.decode_response(data)
            except ber.BerError as exc:
                raise SnmpError("protocol", str(exc)) from None
            return response.error_status, response.error_index, response.varbinds

        return request


_PYSNMP_TAGS = {"Integer32": ber.T_INTEGER, "Integer": ber.T_INTEGER, "Counter32": ber.T_COUNTER32,
                "Gauge32": ber.T_GAUGE32, "Unsigned32": ber.T_GAUGE32, "TimeTicks": ber.T_TIMETICKS,
                "Counter64": ber.T_COUNTER64, "OctetString": ber.T_OCTETS, "IpAddress": ber.T_IPADDR,
                "ObjectIdentifier": ber.T_OID, "Opaque": ber.T_OPAQUE, "Bits": ber.T_OCTETS,
                "NoSuchObject": ber.NO_SUCH_OBJECT, "NoSuchInstance": ber.NO_SUCH_INSTANCE,
                "EndOfMibView": ber.END_OF_MIB_VIEW, "Null": ber.T_NULL}
# pysnmp error indication classes that mean "the credentials were rejected" (by the agent's report
# or our own check of its answer).
AUTH_INDICATIONS = frozenset(("UnknownUserName", "WrongDigest", "UnsupportedSecurityLevel", "DecryptionError",
                              "UnknownSecurityName", "AuthenticationFailure", "AuthenticationError",
                              "UnsupportedAuthProtocol", "UnsupportedPrivProtocol", "NoAuthentication",
                              "NoEncryption"))


class UsmClient:
    """v3 requests through pysnmp, one SnmpEngine per distinct USM credential set (in practice one per
    profile), shared by every device using it. pysnmp keys its user table by user name (engine ids
    are discovered), so two profiles with the same user name but different keys must not share an
    engine: the second would silently replace the first's keys."""

    def __init__(self):
        self._engines: dict[UsmAuth, object] = {}
        self._targets: dict[tuple[str, int, float, int], object] = {}
        self._object_types: dict[bytes, object] = {}

    def engine(self, auth: UsmAuth):
        engine = self._engines.get(auth)
        if engine is None:
            from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

            engine = self._engines[auth] = SnmpEngine()
        return engine

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close_dispatcher()
        self._engines.clear()
        self._targets.clear()

    def _object_type(self, oid: bytes):
        """pysnmp resolves every request var-bind against its MIB tree (~13 % of a v3 poll); a
        resolved ObjectType is reused as is, so keep them (column starts repeat every poll)."""
        found = self._object_types.get(oid)
        if found is None:
            from pysnmp.hlapi.v3arch import asyncio as hl

            if len(self._object_types) >= 4096:
                self._object_types.clear()
            found = self._object_types[oid] = hl.ObjectType(hl.ObjectIdentity(ber.oid_arcs(oid)))
        return found

    def retain(self, targets: list[Target]) -> None:
        """After an inventory reload: drop transports and engines no current target uses."""
        keys = {(t.ip, t.port, t.timeout, t.retries) for t in targets}
        auths = {t.auth for t in targets}
        for key in [k for k in self._targets if k not in keys]:
            del self._targets[key]
        for auth in [a for a in self._engines if a not in auths]:
            self._engines.pop(auth).close_dispatcher()

    def requester(self, target: Target) -> Requester:
        from pysnmp.hlapi.v3arch import asyncio as hl

        auth = target.auth
        assert isinstance(auth, UsmAuth)
        user = auth.user_data()
        key = (target.ip, target.port, target.timeout, target.retries)

        async def request(non_repeaters: list[bytes], repeaters: list[bytes], max_rep: int):
            transport = self._targets.get(key)
            if transport is None:
                cls = hl.Udp6TransportTarget if ":" in target.ip else hl.UdpTransportTarget
                transport = await cls.create((target.ip, target.port), timeout=target.timeout,
                                             retries=target.retries)
                self._targets[key] = transport
            var_binds = [self._object_type(o) for o in non_repeaters + repeaters]
            indication, status, index, table = await hl.bulk_cmd(
                self.engine(auth), user, transport, hl.ContextData(), len(non_repeaters), max_rep, *var_binds,
                lookupMib=False)
            if indication:
                cls = type(indication).__name__
                kind = "timeout" if cls == "RequestTimedOut" else "auth" if cls in AUTH_INDICATIONS else "agent"
                # pysnmp's indications are fixed strings naming the condition, never the keys
                raise SnmpError(kind, cls)
            out: list[Varbind] = []
            for name, value in table:
                tag = _PYSNMP_TAGS.get(type(value).__name__, ber.T_OCTETS)
                if tag in ber.EXCEPTIONS or tag == ber.T_NULL:
                    val = None
                elif tag in (ber.T_OCTETS, ber.T_IPADDR, ber.T_OPAQUE):
                    val = value.asOctets()
                elif tag == ber.T_OID:
                    val = ber.oid_bytes(tuple(value))
                else:
                    val = int(value)
                out.append((ber.oid_bytes(tuple(name)), tag, val))
            return int(status), int(index), out

        return request


async def walk(request: Requester, scalars: dict[str, tuple[int, ...]], columns: Sequence[Column],
               max_repetitions: int, *, getnext_only: bool = False) -> WalkResult:
    """Scalars (instances ending in .0) ride as non-repeaters on the first request; columns are
    walked side by side until each leaves its subtree. A column truncated by the agent simply
    continues on the next request from its own last OID."""
    result = WalkResult()
    scalar_names = list(scalars)
    scalar_oids = [ber.oid_bytes(scalars[n]) for n in scalar_names]
    # GETNEXT of the object (x) returns its only instance (x.0)
    scalar_requests = [ber.oid_bytes(scalars[n][:-1]) for n in scalar_names]
    prefixes = {c.name: ber.oid_bytes(c.oid) for c in columns}
    cursor = dict(prefixes)  # column -> last OID seen (encoded)
    active = [c.name for c in columns]
    for name in active:
        result.columns[name] = {}
    max_rep = max_repetitions
    first = True
    while active or first:
        if result.requests >= MAX_REQUESTS_PER_WALK:
            raise SnmpError("protocol", f"walk did not finish in {MAX_REQUESTS_PER_WALK} requests")
        nr = scalar_requests if first else []
        reps = [cursor[n] for n in active]
        status, index, varbinds = await request(nr, reps, max_rep)
        result.requests += 1
        if status == 1 and max_rep > 1:  # tooBig: ask for fewer rows
            max_rep = max(1, max_rep // 2)
            continue
        if status == 2 and getnext_only and index > len(nr):  # v1 end of MIB on a column
            active.pop(index - len(nr) - 1)
            continue
        if status:
            raise SnmpError("agent", f"error-status {ber.ERROR_NAMES.get(status, status)} at varbind {index}")
        if first:
            for i, name in enumerate(scalar_names):
                if i < len(varbinds) and varbinds[i][0] == scalar_oids[i] and varbinds[i][1] not in ber.EXCEPTIONS:
                    result.scalars[name] = varbinds[i][2]
                    result.tags[name] = varbinds[i][1]
                else:
                    result.scalars[name] = None
            varbinds = varbinds[len(nr):]
            first = False
        if not active:
            break
        width = len(active)
        finished = set()
        progressed = False
        for j, name in enumerate(active):
            prefix = prefixes[name]
            plen = len(prefix)
            store = result.columns[name]
            last = None
            for oid, tag, value in varbinds[j::width]:
                if tag in ber.EXCEPTIONS or len(oid) <= plen or not oid.startswith(prefix):
                    finished.add(name)
                    break
                store[oid[plen:]] = value
                last = oid
            if last is not None:
                result.tags[name] = tag
                if ber.oid_arcs(last) <= ber.oid_arcs(cursor[name]):
                    raise SnmpError("protocol", "agent returned OIDs out of order")
                cursor[name] = last
                progressed = True
            # else: a truncated response gave this column nothing this time; it continues next request
        if not progressed and not finished:
            raise SnmpError("protocol", "empty GETBULK response")
        active = [n for n in active if n not in finished]
        if getnext_only:
            max_rep = 1
    return result
