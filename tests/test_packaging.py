"""Packaging: declared dependencies match the imports, and the exporter runs on the base install alone.

The base install (setup.cfg install_requires) is what the exporter, `wardops check` and the inventory
loader need; `[service]` adds the Flask inventory service, `[generate]` the generators, `[test]` the
tests and bench/. scripts/bootstrap installs all of them.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import hashlib
import importlib
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from wardops.cli import COMMANDS, EXTRA_OF

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"exporter", "inventory", "generators", "wardops", "tests", "bench", "conftest"}
PACKAGE_DIRS = ("exporter", "inventory", "generators", "wardops")
RUNTIME_GROUPS = ("base", "service", "generate")

# Distribution name (lower case) -> the module it provides, where the two differ.
MODULE_OF = {
    "pyyaml": "yaml",
    "prometheus-client": "prometheus_client",
    "flask-limiter": "flask_limiter",
    "grafana-foundation-sdk": "grafana_foundation_sdk",
    "pytest-timeout": "pytest_timeout",
    "pytest-xdist": "xdist",
}
# Declared although no wardops file imports them, and why.
NOT_IMPORTED = {
    "pytest-timeout": "a pytest plugin, used through `timeout =` in setup.cfg [tool:pytest]",
    "pytest-xdist": "a pytest plugin, used through `-n 2 --dist loadfile` in scripts/test",
    "ruff": "a command, run by scripts/test",
    "pysmi": "snmpsim imports it without declaring it",
    "psycopg": "SQLAlchemy loads it for postgresql+psycopg:// URLs (inventory/service/db.py)",
}
# Present only with an extra; the exporter must never load them.
EXTRA_ONLY = tuple(EXTRA_OF)


def requirements() -> dict[str, dict[str, str]]:
    """{group: {distribution (lower case): module}} from setup.cfg; group "base" = install_requires."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "setup.cfg")
    groups = {"base": cfg["options"]["install_requires"]}
    groups.update(cfg["options.extras_require"])
    out = {}
    for group, text in groups.items():
        names = [re.match(r"[A-Za-z0-9._-]+", line.strip()).group(0).lower()
                 for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
        out[group] = {n: MODULE_OF.get(n, n.replace("-", "_")) for n in names}
    return out


def py_files(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py"))


def third_party_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.partition(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in FIRST_PARTY}


def test_extras_split_runtime_from_service_generators_and_tests():
    req = requirements()
    assert set(req) == {"base", "service", "generate", "test"}
    assert set(req["base"]) == {"pysnmp", "pyyaml", "requests", "urllib3", "bcrypt"}
    assert {"flask", "sqlalchemy", "psycopg", "waitress", "flask-limiter"} <= set(req["service"])
    assert set(req["generate"]) == {"jinja2", "grafana-foundation-sdk"}
    everything = [d for group in req.values() for d in group]
    assert len(everything) == len(set(everything)), "a distribution is declared in two groups"


def test_the_cli_knows_which_extra_installs_each_module():
    req = requirements()
    declared = {module: group for group in ("service", "generate") for module in req[group].values()}
    assert declared == EXTRA_OF


def test_every_declared_distribution_is_imported_where_its_group_says():
    """icmplib (never imported: exporter/icmp has its own codec) and cryptography (tests only) fail here."""
    req = requirements()
    runtime_text = "\n".join(p.read_text() for p in py_files(*PACKAGE_DIRS))
    # [test] serves tests/, bench/ and the test agents in wardops/lab/ (snmpsim, started as
    # `python -c "from snmpsim..."`, which a text match finds and an AST walk would not)
    test_text = runtime_text + "\n".join(p.read_text() for p in py_files("tests", "bench")
                                         if p != Path(__file__).resolve())
    unused = []
    for group, dists in req.items():
        text = test_text if group == "test" else runtime_text
        for dist, module in dists.items():
            if dist in NOT_IMPORTED:
                continue
            if not re.search(rf"^\s*(?:import|from)\s+{module}\b|['\"]from {module}\b", text, re.M):
                unused.append(f"{group}: {dist} (module {module})")
    assert unused == []
    declared = {d for dists in req.values() for d in dists}
    assert set(NOT_IMPORTED) <= declared, "an entry of NOT_IMPORTED is no longer declared: drop it"


def test_every_third_party_import_is_declared_in_its_group():
    req = requirements()
    runtime = {m for g in RUNTIME_GROUPS for m in req[g].values()}
    everything = runtime | set(req["test"].values())
    missing = []
    for path in py_files(*PACKAGE_DIRS):
        missing += [f"{path.relative_to(ROOT)}: {m}" for m in sorted(third_party_imports(path) - runtime)]
    for path in py_files("tests", "bench"):
        missing += [f"{path.relative_to(ROOT)}: {m}" for m in sorted(third_party_imports(path) - everything)]
    assert missing == []


def test_exporter_code_imports_only_base_distributions():
    """Statically: no file the exporter is made of imports a service, generate or test distribution."""
    base = set(requirements()["base"].values())
    wrong = []
    for path in py_files("exporter") + [ROOT / "inventory" / p for p in
                                         ("__init__.py", "loader.py", "model.py", "schema.py", "located.py",
                                          "strict.py", "errors.py", "secrets.py", "dump.py")]:
        wrong += [f"{path.relative_to(ROOT)}: {m}" for m in sorted(third_party_imports(path) - base)]
    assert wrong == []


def test_importing_the_exporter_loads_no_service_or_generator_module():
    code = ("import sys\n"
            "import wardops.cli, exporter.cli, exporter.app, exporter.icmp.component, "
            "exporter.snmp.component, inventory, wardops.check\n"
            "try:\n"
            "    wardops.cli.main(['exporter', '--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            f"print(sorted(m for m in sys.modules if m.partition('.')[0] in {EXTRA_ONLY!r}), file=sys.stderr)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "--web.listen-address" in run.stdout
    assert run.stderr.strip() == "[]"


# Makes every [service]/[generate] module unimportable in the child, as if the extras were not installed.
BLOCK_EXTRAS = f"""
import importlib.abc, sys
class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in {EXTRA_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
from wardops.cli import main
sys.exit(main(sys.argv[1:]))
"""


def read_line(proc: subprocess.Popen, pattern: str, deadline: float) -> re.Match:
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.2)
        if ready:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if m := re.search(pattern, line):
                return m
    raise AssertionError(f"no line matching {pattern!r}; exit {proc.poll()}; stderr:\n{''.join(seen)}")


def assert_lo4_up(port: str, deadline: float) -> None:
    """The exporter on `port` reports the loopback device lo4 UP before `deadline`."""
    up, body = re.compile(r'^wardops_icmp_up\{device="lo4",[^}]*\} 1$', re.M), ""
    while time.monotonic() < deadline and not up.search(body):
        time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    assert up.search(body), body


def test_the_exporter_probes_and_serves_without_the_service_and_generate_extras(tmp_path):
    """A real exporter process, [service] and [generate] unimportable, probing loopback only."""
    inv = tmp_path / "inv.yml"
    inv.write_text("snmp_profiles:\n"
                   "  lo: {version: 2c, community_env: WARDOPS_TEST_COMMUNITY, timeout: 1, retries: 0}\n"
                   "devices:\n"
                   "  - {name: lo4, ip: 127.0.0.1, region: local, branch: loopback, role: router, snmp: lo}\n")
    env = {"PATH": "/usr/bin:/bin", "WARDOPS_TEST_COMMUNITY": "public"}
    proc = subprocess.Popen([sys.executable, "-c", BLOCK_EXTRAS, "exporter", "--inventory", str(inv),
                             "--web.listen-address", "127.0.0.1:0"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        port = read_line(proc, r'msg="listening" address=127\.0\.0\.1:(\d+)', deadline).group(1)
        assert_lo4_up(port, deadline)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "ModuleNotFoundError" not in err, err


@pytest.mark.parametrize(("argv", "extra"), [
    (["generate", "examples/inventory.yml", "-o", "{tmp}/out"], "generate"),
    (["inventory", "serve", "--db", "sqlite:///{tmp}/inv.db", "--listen", "127.0.0.1:0"], "service"),
    (["inventory", "import", "--db", "sqlite:///{tmp}/inv.db", "examples/inventory.yml"], "service"),
])
def test_a_command_whose_extra_is_missing_names_the_extra(tmp_path, argv, extra):
    argv = [a.format(tmp=tmp_path) for a in argv]
    run = subprocess.run([sys.executable, "-c", BLOCK_EXTRAS, *argv], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    assert f"pip install 'wardops[{extra}]'" in run.stderr
    assert "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == []  # failed before writing anything


# sha256 of the Apache License 2.0 as published at https://www.apache.org/licenses/LICENSE-2.0.txt
# (Debian ships the same bytes as /usr/share/common-licenses/Apache-2.0).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def test_license_file_is_the_unmodified_license_setup_cfg_names():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["license"] == "Apache-2.0"
    assert cfg["metadata"]["license_files"].split() == ["LICENSE"]
    assert hashlib.sha256((ROOT / "LICENSE").read_bytes()).hexdigest() == APACHE_2_SHA256


# -- examples/systemd: units whose commands the real CLIs accept ------------------------------------

SYSTEMD = ROOT / "examples" / "systemd"
INSTALLED_WARDOPS = "/opt/wardops/.venv/bin/wardops"


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values in order]}}; continuation lines joined, comments skipped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current, pending = None, ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith(("#", ";"))):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}: not key=value: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict, key: str, section: str = "Service") -> str:
    values = unit[section].get(key, [])
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def exec_argv(unit: dict) -> list[str]:
    """ExecStart as the process sees it: %d is the unit's credentials directory."""
    argv = shlex.split(one(unit, "ExecStart").replace("%d", "/run/credentials/unit"))
    assert argv[0] == INSTALLED_WARDOPS
    return argv[1:]


def real_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The wardops CLI's own parser for this command, and the unit's arguments parsed by it."""
    name = argv[0]
    parser = argparse.ArgumentParser(prog=f"wardops {name}", exit_on_error=False)
    importlib.import_module(COMMANDS[name][0]).configure(parser)
    return parser, parser.parse_args(argv[1:])


def test_exporter_unit_flags_are_the_exporter_cli_flags():
    argv = exec_argv(parse_unit(SYSTEMD / "wardops-exporter.service"))
    assert argv[0] == "exporter"
    parser, args = real_parser(argv)  # an unknown flag or a bad value raises here
    help_text = parser.format_help()
    for token in argv:
        if token.startswith("--"):
            assert token.partition("=")[0] in help_text
    assert args.inventory and args.secrets_dir and args.inventory_token_file.startswith("/run/credentials/")
    # the unit listens on the exporter's default port
    default_port = parser.get_default("listen").rpartition(":")[2]
    assert args.listen.rpartition(":")[2] == default_port


def test_inventory_unit_flags_are_the_serve_cli_flags():
    argv = exec_argv(parse_unit(SYSTEMD / "wardops-inventory.service"))
    assert argv[:2] == ["inventory", "serve"]
    parser, args = real_parser(argv)
    assert args.func.__name__ == "run_serve"
    assert args.db is None  # from WARDOPS_DB_URL in the env file
    from inventory.cli import DEFAULT_LISTEN

    assert args.listen.rpartition(":")[2] == DEFAULT_LISTEN.rpartition(":")[2]
    # the exporter unit reads service discovery from this service
    exporter_args = exec_argv(parse_unit(SYSTEMD / "wardops-exporter.service"))
    inventory_url = exporter_args[exporter_args.index("--inventory") + 1]
    assert inventory_url == f"http://{args.listen}/api/v1/sd"


def test_exporter_unit_runs_unprivileged_with_cap_net_raw_only():
    unit = parse_unit(SYSTEMD / "wardops-exporter.service")
    s = {k: v[-1] for k, v in unit["Service"].items()}
    assert s["User"] not in ("root", "0") and s["Group"] not in ("root", "0")
    assert s["AmbientCapabilities"] == s["CapabilityBoundingSet"] == "CAP_NET_RAW"
    expected = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                "Restart": "on-failure", "ExecReload": "/bin/kill -HUP $MAINPID"}
    assert {k: s.get(k) for k in expected} == expected
    assert set(s["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    assert re.fullmatch(r"\d+[KMG]", s["MemoryMax"])


def test_inventory_unit_holds_no_capability_and_no_secret():
    unit = parse_unit(SYSTEMD / "wardops-inventory.service")
    s = {k: v[-1] for k, v in unit["Service"].items()}
    assert s["User"] not in ("root", "0")
    assert s["CapabilityBoundingSet"] == "" and s["AmbientCapabilities"] == ""
    assert s["NoNewPrivileges"] == "yes" and s["ProtectSystem"] == "strict"
    # tokens are files from the credentials directory, never values
    credentials = dict(v.split(":", 1) for v in unit["Service"]["LoadCredential"])
    assert all(src.startswith("/etc/wardops/") for src in credentials.values())
    env = dict(kv.split("=", 1) for e in unit["Service"]["Environment"] for kv in e.split())
    assert env == {"WARDOPS_ADMIN_TOKEN_FILE": "%d/admin-tokens", "WARDOPS_READ_TOKEN_FILE": "%d/read-tokens"}
    assert {v.removeprefix("%d/") for v in env.values()} <= set(credentials)


def test_env_file_sets_only_known_service_settings_and_no_secret_value():
    from sqlalchemy.engine import make_url

    from inventory.service.app import ENV

    text = (SYSTEMD / "inventory.env").read_text()
    assigned = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    settings = dict(line.split("=", 1) for line in assigned)
    assert set(settings) <= set(ENV), "a variable the service does not read (typo?)"
    assert not set(settings) & {"WARDOPS_ADMIN_TOKENS", "WARDOPS_READ_TOKENS"}, "tokens belong in files"
    assert settings["WARDOPS_READ_AUTH"] == "token"
    # every database URL shown, commented or not, carries no password
    urls = re.findall(r"WARDOPS_DB_URL=(\S+)", text)
    assert len(urls) >= 2 and all(make_url(u).password is None for u in urls)


def installed_copy(tmp_path: Path, name: str) -> Path:
    """The unit with ExecStart pointing at this checkout's wardops (verify checks the binary exists)."""
    wardops = Path(sys.executable).with_name("wardops")
    assert wardops.exists()
    copy = tmp_path / name
    copy.write_text((SYSTEMD / name).read_text().replace(INSTALLED_WARDOPS, str(wardops)))
    return copy


@pytest.mark.parametrize("name", ["wardops-exporter.service", "wardops-inventory.service"])
def test_systemd_analyze_verify_and_security(tmp_path, name):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = installed_copy(tmp_path, name)
    run = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and name not in run.stderr, run.stderr
    run = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                         capture_output=True, text=True, timeout=60)
    if "--offline" in run.stderr:
        pytest.skip("this systemd-analyze has no `security --offline` (systemd < 250)")
    level = float(re.search(rf"Overall exposure level for {re.escape(name)}: ([\d.]+)", run.stdout).group(1))
    # systemd 252 scores the exporter 1.9 and the service 1.7 ("OK"); 2.5 allows other versions' weights
    assert level <= 2.5, run.stdout


def setpriv_argv(caps: str) -> list[str]:
    """Root without root's implicit capabilities (securebits noroot): only `caps`, as the unit grants."""
    return ["setpriv", "--no-new-privs", "--securebits", "+noroot,+noroot_locked,+no_setuid_fixup",
            "--bounding-set", caps, "--inh-caps", caps, "--ambient-caps", caps]


@pytest.mark.parametrize("granted", [True, False])
def test_the_units_capabilities_are_what_raw_icmp_needs(tmp_path, granted):
    """With exactly AmbientCapabilities= of the unit, the exporter probes 127.0.0.1 over a raw socket;
    with no capability it refuses to start and names CAP_NET_RAW."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to hand the process exactly the unit's capabilities")
    unit = parse_unit(SYSTEMD / "wardops-exporter.service")
    ambient = one(unit, "AmbientCapabilities").split()
    caps = "-all" + "".join(f",+{c.removeprefix('CAP_').lower()}" for c in ambient) if granted else "-all"
    (tmp_path / "exporter.yml").write_text("icmp: {mode: raw}\n")
    (tmp_path / "inv.yml").write_text(
        "devices:\n  - {name: lo4, ip: 127.0.0.1, region: local, branch: loopback, role: router}\n")
    argv = setpriv_argv(caps) + [sys.executable, "-c", BLOCK_EXTRAS, "exporter",
                                 "--inventory", str(tmp_path / "inv.yml"),
                                 "--config.file", str(tmp_path / "exporter.yml"),
                                 "--web.listen-address", "127.0.0.1:0"]
    proc = subprocess.Popen(argv, cwd=ROOT, env={"PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        if not granted:
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 1 and "CAP_NET_RAW" in err, err
            return
        deadline = time.monotonic() + 30
        port = read_line(proc, r'msg="listening" address=127\.0\.0\.1:(\d+)', deadline).group(1)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert re.search(r"^CapEff:\s*0000000000002000$", status, re.M), status  # bit 13: CAP_NET_RAW
        assert_lo4_up(port, deadline)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
