"""Real SNMP agents for tests, benchmarks and the demo lab: generated snmpsim recordings.

`start_agents(devices, netns=..., community=..., v3_users=...)` writes one `.snmprec` recording per
simulated device (sysUpTime, sysName, ifNumber and an IF-MIB ifTable/ifXTable with ~24 interfaces)
and runs one `snmpsim-command-responder` per device, bound to the device's address and port, inside
a network namespace (the lab's target namespace) or on loopback. snmpsim refuses to run as root and
binds after dropping privileges, so it runs as `nobody` with its own cache directory; in a namespace
`net.ipv4.ip_unprivileged_port_start=0` lets it bind port 161.

Recordings are data, so a test makes a device reboot (sysUpTime goes back) or a counter wrap by
calling `handle.restart(name, spec)` with a new `AgentSpec`: the agent process is restarted with the
new recording, as a real device would answer after a reboot.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

IF_TYPES = (6, 6, 6, 6, 131, 24, 53, 135)  # ethernetCsmacd, tunnel, softwareLoopback, propVirtual, l2vlan
SPEEDS_MBPS = (100, 1000, 1000, 10000)


@dataclass(frozen=True, slots=True)
class V3User:
    username: str
    auth_protocol: str = "SHA"  # snmpsim names: MD5, SHA, SHA224..SHA512
    auth_key: str = ""
    priv_protocol: str = "AES"  # DES, AES, AES192, AES256, or NONE
    priv_key: str = ""


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One simulated device. Counters are the values at `uptime_ticks`; offsets create wraps."""

    name: str
    ip: str = "127.0.0.1"
    port: int = 161
    interfaces: int = 24
    uptime_ticks: int = 8_640_000  # hundredths of a second (1 day)
    seed: int = 0
    # Added to every interface's counters, e.g. 2**32 - 10 for a ifInErrors about to wrap.
    in_errors_base: int = 0
    in_octets_base: int = 0
    step: int = 0  # how many "polls" of traffic have happened: counters grow with it
    silent: bool = False  # bind the port but never answer (a dead device that keeps its address)
    no_hc: bool = False  # an old agent without ifHC* 64-bit counters (ifIn/OutOctets only)
    extra: tuple[tuple[str, str, str], ...] = ()  # (oid, snmprec type, value) for extra OIDs


def _arcs(oid: str) -> tuple[int, ...]:
    return tuple(int(x) for x in oid.split("."))


def interface_rows(spec: AgentSpec) -> list[dict]:
    """The interface table a recording serves; tests compare the poller's output with it."""
    rng = random.Random(f"{spec.name}:{spec.seed}")
    rows = []
    for i in range(1, spec.interfaces + 1):
        if_type = IF_TYPES[(i - 1) % len(IF_TYPES)]
        speed = rng.choice(SPEEDS_MBPS)
        oper = 1 if i % 7 else 2
        rate = rng.randint(1_000, 5_000_000)
        rows.append({
            "index": i,
            "name": f"Gi0/{i - 1}" if if_type == 6 else f"if{i}",
            "alias": "" if i % 5 == 0 else f"{spec.name} link {i}",
            "type": if_type,
            "speed_mbps": speed,
            "admin": 1 if i % 11 else 2,
            "oper": oper,
            "last_change": max(0, spec.uptime_ticks - i * 1000),
            "in_octets": (spec.in_octets_base + rate * (spec.step + 1)) % 2**64,
            "out_octets": (rate // 2 * (spec.step + 1)) % 2**64,
            "in_errors": (spec.in_errors_base + i * (spec.step + 1)) % 2**32,
            "out_errors": (i * spec.step) % 2**32,
            "in_discards": (3 * i * spec.step) % 2**32,
            "out_discards": (spec.step // 2) % 2**32,
        })
    return rows


def snmprec(spec: AgentSpec) -> str:
    """A recording in snmpsim's `OID|TYPE|VALUE` format, sorted by OID."""
    rows = interface_rows(spec)
    recs: list[tuple[str, str, str]] = [
        ("1.3.6.1.2.1.1.1.0", "4", f"wardops simulated router {spec.name}"),
        ("1.3.6.1.2.1.1.3.0", "67", str(spec.uptime_ticks)),
        ("1.3.6.1.2.1.1.5.0", "4", spec.name),
        ("1.3.6.1.2.1.2.1.0", "2", str(len(rows))),
    ]
    for r in rows:
        r["in_octets32"], r["out_octets32"] = r["in_octets"] % 2**32, r["out_octets"] % 2**32
    if_table = {1: ("2", "index"), 2: ("4", "name"), 3: ("2", "type"), 7: ("2", "admin"), 8: ("2", "oper"),
                9: ("67", "last_change"), 10: ("65", "in_octets32"), 13: ("65", "in_discards"),
                14: ("65", "in_errors"), 16: ("65", "out_octets32"), 19: ("65", "out_discards"),
                20: ("65", "out_errors")}
    if_x_table = {1: ("4", "name"), 6: ("70", "in_octets"), 10: ("70", "out_octets"),
                  15: ("66", "speed_mbps"), 18: ("4", "alias")}
    if spec.no_hc:
        del if_x_table[6], if_x_table[10]
    for col, (typ, key) in if_table.items():
        for r in rows:
            recs.append((f"1.3.6.1.2.1.2.2.1.{col}.{r['index']}", typ, str(r[key])))
    for col, (typ, key) in if_x_table.items():
        for r in rows:
            recs.append((f"1.3.6.1.2.1.31.1.1.1.{col}.{r['index']}", typ, str(r[key])))
    recs.extend(spec.extra)
    recs.sort(key=lambda rec: _arcs(rec[0]))
    return "".join(f"{oid}|{typ}|{value}\n" for oid, typ, value in recs)


def _endpoint(spec: AgentSpec) -> str:
    if ":" in spec.ip:
        return f"--agent-udpv6-endpoint=[{spec.ip}]:{spec.port}"
    return f"--agent-udpv4-endpoint={spec.ip}:{spec.port}"


def _free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# snmpsim drops privileges before it opens its index (dbm) and before the first request; when this
# Python lives somewhere `nobody` cannot read (e.g. under /root), modules imported lazily after the
# drop fail. Import them while still root.
_RESPONDER = (
    "import sys, dbm, dbm.dumb, encodings.latin_1, encodings.ascii, encodings.idna\n"
    "import pysnmp.proto.secmod.rfc3414.priv.des, pysnmp.proto.secmod.rfc3826.priv.aes\n"
    "from snmpsim.commands.responder import main\n"
    "sys.argv[0] = 'snmpsim-command-responder'\n"
    "sys.exit(main())\n"
)


def _responder_cmd() -> list[str]:
    import sys

    return [sys.executable, "-c", _RESPONDER]


@dataclass
class _Agent:
    spec: AgentSpec
    proc: subprocess.Popen | None = None
    silent_sock: socket.socket | None = None
    workdir: Path = field(default_factory=Path)


class AgentSet:
    """Running agents; `stop()` ends them and removes their files (also use as a context manager)."""

    def __init__(self, root: Path, netns: str | None, community: str, v3_users: Sequence[V3User]):
        self.root = root
        self.netns = netns
        self.community = community
        self.v3_users = tuple(v3_users)
        self.agents: dict[str, _Agent] = {}

    def __enter__(self) -> AgentSet:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def address(self, name: str) -> tuple[str, int]:
        spec = self.agents[name].spec
        return spec.ip, spec.port

    def spec(self, name: str) -> AgentSpec:
        return self.agents[name].spec

    def _argv(self, agent: _Agent) -> list[str]:
        spec = agent.spec
        argv = [*_responder_cmd(), f"--data-dir={agent.workdir / 'data'}",
                f"--cache-dir={agent.workdir / 'cache'}", _endpoint(spec),
                "--logging-method=null", "--process-user=nobody", "--process-group=nogroup"]
        for user in self.v3_users:
            argv += [f"--v3-user={user.username}"]
            if user.auth_key:
                argv += [f"--v3-auth-key={user.auth_key}", f"--v3-auth-proto={user.auth_protocol}"]
                if user.priv_key:
                    argv += [f"--v3-priv-key={user.priv_key}", f"--v3-priv-proto={user.priv_protocol}"]
        if os.geteuid() != 0:
            argv = [a for a in argv if not a.startswith("--process-")]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        return argv

    def _write(self, agent: _Agent) -> None:
        data = agent.workdir / "data"
        if data.exists():
            shutil.rmtree(data)
        shutil.rmtree(agent.workdir / "cache", ignore_errors=True)
        data.mkdir(parents=True)
        (agent.workdir / "cache").mkdir()
        text = snmprec(agent.spec)
        # v1/v2c: the community selects `<community>.snmprec`. v3 with the default (empty) context:
        # snmpsim falls back to the file named after the transport domain of the first endpoint.
        (data / f"{self.community}.snmprec").write_text(text)
        if self.v3_users:
            (data / "1.3.6.1.6.1.1.0.snmprec").write_text(text)
        if os.geteuid() == 0:
            for path in (agent.workdir, data, agent.workdir / "cache", *data.iterdir()):
                shutil.chown(path, "nobody", "nogroup")

    def _launch(self, agent: _Agent) -> None:
        if agent.spec.silent:
            agent.silent_sock = self._silent_socket(agent.spec)
            return
        self._write(agent)
        agent.proc = subprocess.Popen(self._argv(agent), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, start_new_session=True)

    def _silent_socket(self, spec: AgentSpec) -> socket.socket:
        family = socket.AF_INET6 if ":" in spec.ip else socket.AF_INET
        if self.netns:
            from wardops.lab.netns import enter_netns

            with enter_netns(self.netns):
                sock = socket.socket(family, socket.SOCK_DGRAM)
        else:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((spec.ip, spec.port))
        return sock

    def wait_ready(self, names: Iterable[str] | None = None, timeout: float = 30.0) -> None:
        """Wait until each agent answers a GET of sysUpTime.0 (snmpsim indexes before binding)."""
        deadline = time.monotonic() + timeout
        pending = [n for n in (names or self.agents) if not self.agents[n].spec.silent]
        while pending:
            name = pending[0]
            agent = self.agents[name]
            if agent.proc is not None and agent.proc.poll() is not None:
                err = agent.proc.stderr.read().decode(errors="replace")[-2000:] if agent.proc.stderr else ""
                raise RuntimeError(f"snmpsim for {name} exited with {agent.proc.returncode}: {err}")
            if self._answers(agent.spec):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RuntimeError(f"snmpsim for {name} did not answer within {timeout} s")
            time.sleep(0.1)

    def _answers(self, spec: AgentSpec) -> bool:
        host = f"udp6:[{spec.ip}]:{spec.port}" if ":" in spec.ip else f"{spec.ip}:{spec.port}"
        argv = ["snmpget", "-v2c", "-c", self.community, "-t", "0.3", "-r", "0", "-Oqv", host, "1.3.6.1.2.1.1.3.0"]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        done = subprocess.run(argv, capture_output=True, timeout=10)
        return done.returncode == 0

    def restart(self, name: str, spec: AgentSpec | None = None, wait: bool = True) -> None:
        """Stop one agent and start it again, optionally with a new recording (reboot, wrap)."""
        agent = self.agents[name]
        self._end(agent)
        if spec is not None:
            agent.spec = spec
        self._launch(agent)
        if wait:
            self.wait_ready([name])

    def _end(self, agent: _Agent) -> None:
        if agent.silent_sock is not None:
            agent.silent_sock.close()
            agent.silent_sock = None
        proc = agent.proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc is not None and proc.stderr:
            proc.stderr.close()
        agent.proc = None

    def stop(self) -> None:
        for agent in self.agents.values():
            self._end(agent)
        shutil.rmtree(self.root, ignore_errors=True)


def start_agents(specs: Sequence[AgentSpec], *, netns: str | None = None, community: str = "public",
                 v3_users: Sequence[V3User] = (), wait: bool = True) -> AgentSet:
    """Start one snmpsim agent per spec. `netns`: run inside it (e.g. `lab.target_ns`), else loopback.

    In a namespace, unprivileged processes may bind port 161 (sysctl set here)."""
    root = Path(tempfile.mkdtemp(prefix="wardops-snmpsim-"))
    os.chmod(root, 0o755)
    handle = AgentSet(root, netns, community, v3_users)
    if netns:
        # port 161 without privileges; IPv6 AnyIP addresses are routes, not assigned: allow binding them
        subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0",
                        "net.ipv6.ip_nonlocal_bind=1"], check=True)
    try:
        for spec in specs:
            if spec.name in handle.agents:
                raise ValueError(f"duplicate agent name {spec.name!r}")
            agent = _Agent(spec=spec, workdir=root / spec.name)
            agent.workdir.mkdir()
            handle.agents[spec.name] = agent
            handle._launch(agent)
        if wait:
            handle.wait_ready()
    except BaseException:
        handle.stop()
        raise
    return handle


def loopback_specs(names: Iterable[str], **kw) -> list[AgentSpec]:
    """Specs on 127.0.0.1 with free high ports (no lab needed)."""
    return [AgentSpec(name=n, ip="127.0.0.1", port=_free_udp_port(), **kw) for n in names]


def with_step(spec: AgentSpec, step: int) -> AgentSpec:
    return replace(spec, step=step, uptime_ticks=spec.uptime_ticks + step * 6000)


# --- net-snmp snmpd: v3 (snmpsim 1.2 with pysnmp 7.1 does not serve the default empty v3 context)
# and throughput (one C agent answers for a whole AnyIP range when bound to 0.0.0.0) -------------

NETSNMP_AUTH = {"MD5": "MD5", "SHA": "SHA", "SHA224": "SHA-224", "SHA256": "SHA-256", "SHA384": "SHA-384",
                "SHA512": "SHA-512"}
NETSNMP_PRIV = {"DES": "DES", "AES": "AES", "AES192": "AES-192", "AES256": "AES-256"}


class SnmpdAgent:
    """A net-snmp snmpd serving the interfaces of its namespace; `stop()` ends it."""

    def __init__(self, proc: subprocess.Popen, workdir: Path):
        self.proc = proc
        self.workdir = workdir

    def __enter__(self) -> SnmpdAgent:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def snmpd_config(listen: Sequence[str], community: str | None, v3_users: Sequence[V3User]) -> str:
    lines = [f"agentAddress {','.join(listen)}", "sysName wardops-lab-snmpd", "sysDescr wardops lab agent"]
    if community:
        lines.append(f"rocommunity {community} default")
        lines.append(f"rocommunity6 {community} default")
    for u in v3_users:
        if u.auth_key and u.priv_key and u.priv_protocol != "NONE":
            lines.append(f'createUser {u.username} {NETSNMP_AUTH[u.auth_protocol]} "{u.auth_key}" '
                         f'{NETSNMP_PRIV[u.priv_protocol]} "{u.priv_key}"')
            lines.append(f"rouser {u.username} priv")
        elif u.auth_key:
            lines.append(f'createUser {u.username} {NETSNMP_AUTH[u.auth_protocol]} "{u.auth_key}"')
            lines.append(f"rouser {u.username} auth")
        else:
            lines.append(f"createUser {u.username}")
            lines.append(f"rouser {u.username} noauth")
    return "\n".join(lines) + "\n"


def start_snmpd(listen: Sequence[str] = ("udp:127.0.0.1:161",), *, netns: str | None = None,
                community: str | None = "public", v3_users: Sequence[V3User] = (),
                ready: tuple[str, int] | None = None, timeout: float = 15.0) -> SnmpdAgent:
    """Run snmpd (foreground, own config and persistent dir) on `listen` endpoints, e.g.
    `udp:0.0.0.0:161` in a target namespace with AnyIP routes answers for every lab address.
    `ready`: (ip, port) to poll with a GET of sysUpTime.0 before returning (v2c community, else the
    first v3 user)."""
    workdir = Path(tempfile.mkdtemp(prefix="wardops-snmpd-"))
    conf = workdir / "snmpd.conf"
    conf.write_text(snmpd_config(listen, community, v3_users))
    argv = ["/usr/sbin/snmpd", "-f", "-C", "-c", str(conf), "-Lf", str(workdir / "snmpd.log"),
            "-p", str(workdir / "snmpd.pid"), "-I", "-smux,mteTrigger,mteTriggerConf"]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir / "persist"), "MIBS": ""}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    agent = SnmpdAgent(proc, workdir)
    if ready is None:
        return agent
    deadline = time.monotonic() + timeout
    if community:
        get = ["snmpget", "-v2c", "-c", community]
    else:
        u = v3_users[0]
        get = ["snmpget", "-v3", "-u", u.username, "-l", "authPriv" if u.priv_key else "authNoPriv",
               "-a", NETSNMP_AUTH[u.auth_protocol], "-A", u.auth_key]
        if u.priv_key:
            get += ["-x", NETSNMP_PRIV[u.priv_protocol], "-X", u.priv_key]
    get += ["-t", "0.3", "-r", "0", "-Oqv", f"{ready[0]}:{ready[1]}", "1.3.6.1.2.1.1.3.0"]
    if netns:
        get = ["ip", "netns", "exec", netns, *get]
    while True:
        if proc.poll() is not None:
            log = (workdir / "snmpd.log").read_text(errors="replace")[-2000:] if (workdir / "snmpd.log").exists() else ""
            agent.stop()
            raise RuntimeError(f"snmpd exited with {proc.returncode}: {log}")
        if subprocess.run(get, capture_output=True, timeout=10, env={**os.environ, "MIBS": ""}).returncode == 0:
            return agent
        if time.monotonic() > deadline:
            agent.stop()
            raise RuntimeError(f"snmpd did not answer within {timeout} s")
        time.sleep(0.1)


def add_veth_interfaces(netns: str, pairs: int = 11, prefix: str = "sv") -> None:
    """Give a (target) namespace more interfaces for snmpd to serve: `pairs` veth pairs with
    aliases; every 4th pair has its b end down, so the a end is admin up / oper down."""
    batch = []
    for i in range(pairs):
        batch.append(f"link add {prefix}{i}a type veth peer name {prefix}{i}b")
        for end in "ab":
            batch.append(f'link set {prefix}{i}{end} alias "lab link {i}{end}"')
            if end == "a" or i % 4:
                batch.append(f"link set {prefix}{i}{end} up")
    subprocess.run(["ip", "-n", netns, "-batch", "-"], input="\n".join(batch) + "\n", text=True, check=True)


def start_lab_snmpd(netns: str, *, community: str | None = "public", v3_users: Sequence[V3User] = (),
                    ipv6: Sequence[str] = (), interfaces: bool = True, port: int = 161) -> SnmpdAgent:
    """One snmpd in a lab's target namespace answering SNMP for EVERY lab IPv4 address (bound to
    0.0.0.0, it replies from the address asked), e.g. for the demo:
    `start_lab_snmpd(lab.target_ns, community=..., v3_users=[...], ipv6=[d.ip for d in v6 devices])`.
    snmpd bound to [::] replies from the wrong IPv6 source, so IPv6 devices are bound one by one.
    With `interfaces`, 11 veth pairs are added first, so each "device" shows 24 interfaces."""
    if interfaces:
        add_veth_interfaces(netns, 11)
    if ipv6:
        subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv6.ip_nonlocal_bind=1"], check=True)
    listen = [f"udp:0.0.0.0:{port}"] + [f"udp6:[{ip}]:{port}" for ip in ipv6]
    return start_snmpd(listen, netns=netns, community=community, v3_users=v3_users, ready=("198.18.0.1", port))
