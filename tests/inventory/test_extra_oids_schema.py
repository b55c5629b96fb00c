"""The additive `extra_oids` key of snmp profiles: parsed, dumped, re-loaded (errors: testdata table)."""

from inventory import loads_inventory
from inventory.dump import dump_yaml
from inventory.model import ExtraOid

TEXT = """
snmp_profiles:
  p:
    version: 2c
    community_env: C
    extra_oids:
      - {metric: cpu_idle_percent, oid: 1.3.6.1.4.1.2021.11.11.0}
      - {metric: load_int, oid: 1.3.6.1.4.1.2021.10.1.5, table: true}
      - {metric: cpu_user_ticks, oid: 1.3.6.1.4.1.2021.11.50.0, type: counter}
devices:
  - {name: r1, ip: 198.18.0.1, region: R, branch: B, snmp: p}
"""


def test_extra_oids_parse_and_round_trip():
    inv = loads_inventory(TEXT, "x.yml")
    assert inv.snmp_profiles["p"].extra_oids == (
        ExtraOid("cpu_idle_percent", (1, 3, 6, 1, 4, 1, 2021, 11, 11, 0)),
        ExtraOid("load_int", (1, 3, 6, 1, 4, 1, 2021, 10, 1, 5), "gauge", True),
        ExtraOid("cpu_user_ticks", (1, 3, 6, 1, 4, 1, 2021, 11, 50, 0), "counter", False),
    )
    assert loads_inventory(dump_yaml(inv)) == inv
    plain = loads_inventory("snmp_profiles: {p: {version: 2c, community_env: C}}\n")
    assert plain.snmp_profiles["p"].extra_oids == ()
    assert "extra_oids" not in dump_yaml(plain)
