"""The OIDs the poller reads, as raw tuples (no MIB loading), grouped by how often they change."""

from __future__ import annotations

from dataclasses import dataclass

SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1, 0)
SCALARS = {"sysUpTime": SYS_UPTIME, "sysName": SYS_NAME, "ifNumber": IF_NUMBER}

_IF = (1, 3, 6, 1, 2, 1, 2, 2, 1)  # IF-MIB::ifEntry
_IFX = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)  # IF-MIB::ifXEntry


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    oid: tuple[int, ...]


# Names, aliases, types and speeds change rarely: walked on the slow cycle and cached.
STATIC_COLUMNS = (
    Column("ifName", _IFX + (1,)),
    Column("ifAlias", _IFX + (18,)),
    Column("ifType", _IF + (3,)),
    Column("ifHighSpeed", _IFX + (15,)),
)
# Statuses and counters: walked every interval.
DYNAMIC_COLUMNS = (
    Column("ifAdminStatus", _IF + (7,)),
    Column("ifOperStatus", _IF + (8,)),
    Column("ifLastChange", _IF + (9,)),
    Column("ifHCInOctets", _IFX + (6,)),
    Column("ifHCOutOctets", _IFX + (10,)),
    Column("ifInErrors", _IF + (14,)),
    Column("ifOutErrors", _IF + (20,)),
    Column("ifInDiscards", _IF + (13,)),
    Column("ifOutDiscards", _IF + (19,)),
)
# Counter columns and their wrap modulus (Counter32 vs Counter64).
COUNTER_BITS = {"ifHCInOctets": 64, "ifHCOutOctets": 64, "ifInErrors": 32, "ifOutErrors": 32,
                "ifInDiscards": 32, "ifOutDiscards": 32}
# Agents without 64-bit counters (SNMP v1, old firmware): 32-bit octet counters instead of ifHC*,
# exported under the same names with 32-bit wrap handling.
OCTETS32_COLUMNS = (
    Column("ifInOctets", _IF + (10,)),
    Column("ifOutOctets", _IF + (16,)),
)
OCTETS32_FOR = {"ifInOctets": "ifHCInOctets", "ifOutOctets": "ifHCOutOctets"}
DYNAMIC_COLUMNS_32 = tuple(c for c in DYNAMIC_COLUMNS if c.name not in OCTETS32_FOR.values()) + OCTETS32_COLUMNS
